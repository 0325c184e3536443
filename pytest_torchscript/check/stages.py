"""The stages of a check before its round trips: eager (twice, to prove the model
deterministic), and control flow (coverage, divergences, hazards); parity on every input set is
``parity_stage.py``. A failing stage raises ``Stop`` with its name; ``pipeline.py`` runs them in
order over the check's context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ..config.options import Options
from ..errors import TorchScriptWarning
from ..modes import ConversionFailed, Target
from .controlflow import (
    ControlFlowReport,
    analyse_coverage,
    analyse_script,
    analyse_trace,
)
from .decisions import DecisionRecorder
from .graphs import first_difference, script_decisions, trace_steps
from .hazards import hazards_from
from .inputs import InputSet, tensor_leaves
from .jit_warnings import (
    import_torch,
)
from .parity import UncomparableOutput, compare_outputs


class Stop(Exception):
    """A stage failed; ``pipeline.run_check`` turns this into a ``CheckFailed`` with the
    report, naming the stage."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


@contextlib.contextmanager
def evaluation(model: Any, device: Any) -> Iterator[None]:
    """Eval mode, on the device, without autograd; the train/eval flags are restored."""
    torch = import_torch()
    modules = list(model.modules()) if isinstance(model, torch.nn.Module) else []
    flags = [(module, module.training) for module in modules]
    if modules:
        model.eval()
        model.to(device)
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training


def run_eager(
    ctx: Any, model: Any, input_set: InputSet, index: int, recorder: DecisionRecorder | None = None
) -> tuple[Any, Any]:
    """Eager outputs and the inputs as the model left them (in-place writes included);
    with a ``recorder``, the run's data-dependent decisions are noted too."""
    # The model's error is chained as the cause (its frames are the user's to debug): this
    # frame, at its root, is the plugin's and stays out of the traceback pytest prints.
    __tracebackhide__ = True
    args, kwargs = input_set.copy_to(ctx.device)
    recording = recorder.recording(index) if recorder else contextlib.nullcontext()
    try:
        with recording:
            output = model(*args, **kwargs)
    except Exception as error:
        raise Stop(
            "eager",
            f"the model raised in eager mode on input set {index} {input_set.describe()}, "
            f"before any conversion: {type(error).__name__}: {error}"
            + _arity_hint(error, input_set),
        ) from error
    return output, (args, kwargs)


def _arity_hint(error: Exception, input_set: Any) -> str:
    """A forward given the wrong number of arguments, where the inputs' shape explains it:
    a tuple is one input set of positional arguments, a list is several input sets."""
    text = str(error)
    if not isinstance(error, TypeError) or input_set.kwargs or "forward()" not in text:
        return ""  # not the call of forward itself (a helper deeper in the model)
    if "positional argument" in text and "were given" in text and len(input_set.args) > 1:
        return (
            f"\nhint: a tuple is one input set of {len(input_set.args)} positional "
            f"arguments; if you meant {len(input_set.args)} input sets, pass a list: "
            f"inputs=[a, b]"
        )
    if "missing" in text and "required positional argument" in text:
        return (
            "\nhint: a tensor is an input set of one argument, and each item of a list an "
            "input set of its own; to pass several positional arguments in one set, use a "
            "tuple: inputs=(x, mask), or a list of tuples for several sets"
        )
    return ""


def require_deterministic(
    first: Any,
    second: Any,
    options: Options,
    rerun: Callable[[], Any] | None = None,
    model: Any = None,
) -> None:
    """Two eager runs on input set 0 agree. Comparing them also proves, before anything is
    converted, that the plugin can compare what the model returns. Where they differ,
    ``rerun`` (one more eager run) tells a model that changes its own buffers from one that
    draws random numbers: the fixes differ. ``model`` lets an output that cannot be compared
    be explained by the model's configuration."""
    try:
        result = compare_outputs(first[0], second[0], 0, options.rtol, options.atol)
    except UncomparableOutput as error:
        raise Stop(
            "eager",
            f"the model's output cannot be checked (found before any conversion): input set "
            f"0: {error}{uncomparable_hint(error.kind, model)}",
        ) from None
    if not result.ok:
        leaf = result.failures[0]
        differ = (
            f"two eager runs on input set 0 differ at {leaf.path} (max abs difference "
            f"{leaf.max_abs:.4g}{'; ' + leaf.problem if leaf.problem else ''})"
        )
        changed = rerun() if rerun is not None else []
        if changed:
            raise Stop(
                "determinism",
                f"the eager model changes its own state: {differ}, and forward wrote to "
                f"{_names(changed)}, so every run starts from another state and a conversion "
                f"cannot be judged against it. Keep running statistics and counters out of "
                f"the deployed forward (update them only when self.training).",
            )
        raise Stop(
            "determinism",
            f"the eager model is not deterministic: {differ}, so a conversion cannot be "
            f"judged against it. Remove the randomness from forward (torch.rand, dropout "
            f"applied with training=True, nondeterministic kernels) or seed it inside "
            f"forward.",
        )


def _names(buffers: list[str]) -> str:
    return _listed([f"buffer {name!r}" for name in buffers])


def buffers_written_by(model: Any, run: Callable[[], Any]) -> list[str]:
    """The names of ``model``'s buffers that ``run`` changes (a module only; buffers are
    small next to weights, so copying them is cheap)."""
    torch = import_torch()
    if not isinstance(model, torch.nn.Module):
        return []
    before = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    run()
    after = dict(model.named_buffers())
    return [
        name
        for name, old in before.items()
        if name in after
        and (old.shape != after[name].shape or not torch.equal(old, after[name].detach()))
    ]


def warn_if_all_nan(ctx: Any, output: Any) -> None:
    """Parity counts NaNs in the same places as equal, so an eager output that is NaN
    throughout passes against any converted module that also returns NaN: it proves nothing,
    and the user is told rather than shown a pass that means nothing."""
    torch = import_torch()
    floats = [
        tensor
        for tensor in tensor_leaves(((output,), {})).values()
        if tensor.is_floating_point()
        and tensor.layout == torch.strided  # sparse layouts have no elementwise all()
        and not (tensor.is_meta or tensor.is_nested)
        and tensor.numel()
    ]
    if floats and all(bool(torch.isnan(tensor).all()) for tensor in floats):
        ctx.pending_warnings.append(
            (
                f"{ctx.report.model}'s eager output on input set 0 is NaN throughout, so "
                f"parity compares NaN with NaN and proves nothing about the conversion; check "
                f"the model's inputs and initialisation",
                TorchScriptWarning,
            )
        )


def control_flow(
    ctx: Any,
    model: Any,
    conversion: Any,
    input_sets: list[InputSet],
    recorder: DecisionRecorder,
    trace_recorder: DecisionRecorder,
) -> ControlFlowReport:
    """Script: which arms eager exercised. Trace: also re-trace on every other input set,
    noting its decisions and its graph, to prove where another input leaves the path."""
    analysis = ctx.backend.control_flow
    if analysis == "script":
        return analyse_script(script_decisions(conversion.module), recorder.by_set)
    if analysis == "coverage":  # the converter refuses data-dependent branches itself
        return analyse_coverage(ctx.backend.name, recorder.by_set)
    hazards = hazards_from(conversion.warnings)
    if (
        not hazards
        and not any(recorder.by_set.values())
        and not any(trace_recorder.by_set.values())
    ):
        # Nothing in the user's code turned a tensor (or, while tracing, a size) into a
        # Python value, and the tracer warned of nothing: there is no path a re-trace
        # could find another way through. Parity on every input set still runs.
        return analyse_trace(recorder.by_set, trace_recorder.by_set, {}, hazards)
    example_steps = trace_steps(conversion.module)
    differences = {}
    for index, input_set in enumerate(input_sets[1:], start=1):
        args, kwargs = input_set.copy_to(ctx.device)
        try:
            with trace_recorder.recording(index):
                retraced = ctx.backend.convert(model, args, kwargs, Target(ctx.device)).module
        except ConversionFailed:
            continue  # parity on this set already judges a model that cannot be traced so
        difference = first_difference(example_steps, trace_steps(retraced))
        if difference is not None:
            differences[index] = difference
            ctx.evidence.retraced_graphs[index] = str(retraced.inlined_graph)
    return analyse_trace(recorder.by_set, trace_recorder.by_set, differences, hazards)


def uncomparable_hint(kind: type, model: Any = None) -> str:
    """What gets past an output the plugin cannot compare, where the type tells."""
    if kind.__module__.startswith("transformers") and "Cache" in kind.__name__:
        still_caching = _configs_still_caching(model)
        if still_caching and getattr(getattr(model, "config", None), "use_cache", None) is False:
            how = (
                f"model.config.use_cache is False, but {_listed(still_caching)} "
                f"(a copy of the config that a submodule keeps, as T5's decoder does) still "
                f"has use_cache = True: build the model from a config with use_cache=False "
                f"(from_pretrained(..., use_cache=False), or the config class's "
                f"use_cache=False), which every copy inherits, or set it on "
                f"{'that config' if len(still_caching) == 1 else 'each of them'} too"
            )
        else:
            how = (
                "build the model from a config with use_cache=False "
                "(from_pretrained(..., use_cache=False), or the config class's "
                "use_cache=False), or set model.config.use_cache = False before returning it"
            )
        return (
            f"\nhint: {kind.__name__} is transformers' key/value cache, returned while "
            f"use_cache is on (the default for generative models); {how}, and its logits are "
            f"checked in every mode (a use_cache=False in the input sets works only where the "
            f"converter accepts Python values: not with trace); to compare the cache as well "
            f"(export, onnx), call transformers.integrations.executorch."
            f"register_dynamic_cache_export_support() first"
        )
    return ""


def _configs_still_caching(model: Any) -> list[str]:
    """Where in ``model`` a transformers config other than the model's own has use_cache on
    (``model.decoder.config``): setting model.config.use_cache does not reach those."""
    own = getattr(model, "config", None)
    seen, found = {id(own)}, []
    named_modules = getattr(model, "named_modules", None)
    for name, module in named_modules() if callable(named_modules) else ():
        config = getattr(module, "config", None)
        if config is None or id(config) in seen:
            continue
        seen.add(id(config))
        if getattr(config, "use_cache", None) is True:
            found.append(f"model.{name}.config")
    return found


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
