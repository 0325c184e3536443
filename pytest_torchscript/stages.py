"""The stages of a check before its round trips: eager (twice, to prove the model
deterministic), parity on every input set, and control flow (coverage, divergences, hazards).
A failing stage raises ``Stop`` with its name; ``pipeline.py`` runs them in order over the
check's context.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from .controlflow import (
    ControlFlowReport,
    analyse_coverage,
    analyse_script,
    analyse_trace,
    divergence_block,
)
from .decisions import DecisionRecorder
from .errors import TorchScriptWarning, TraceHazardWarning
from .graphs import first_difference, script_decisions, trace_steps
from .hazards import hazards_from, tracer_hint
from .inputs import InputSet, tensor_leaves
from .jit_warnings import (
    import_torch,
    recording_warnings,
)
from .modes import ConversionFailed, Target
from .modes.export import explain_rejected_input
from .options import Options
from .parity import ParityResult, UncomparableOutput, compare_outputs
from .report import describe_mismatch
from .text import first_lines, interpreter_error, short_path


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
            f"0: {error}{_uncomparable_hint(error.kind, model)}",
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


def judge_parity_and_control_flow(ctx: Any, total_sets: int) -> None:
    """Parity first; then a proven divergence fails even where values happened to agree;
    then coverage against ``min_coverage``; a trace with only hazards passes with a warning."""
    __tracebackhide__ = True
    report, options = ctx.report, ctx.options
    flow = report.control_flow
    divergences = divergence_block(flow)
    if not all(result.ok for result in report.parity):
        message = describe_mismatch(report.parity, total_sets, "the converted module")
        recorded = recorded_python_values(
            ctx, [result.input_index for result in report.parity if not result.ok]
        )
        raise Stop(
            "parity",
            message
            + (
                eager_zeroed_hint(ctx, report.parity)
                or recorded
                or divergences
                or scripted_detection_hint(report.warnings)
                or tracer_hint(report.warnings)
            ),
        )
    compiled = report.compile
    failure = (
        compiled.failure(options.max_graph_breaks, options.max_recompiles) if compiled else None
    )
    if failure is not None:
        raise Stop(*failure)
    if divergences:
        raise Stop(
            "control-flow",
            "the outputs agree on these input sets, but the trace does not compute what "
            "eager computes for all of them:" + divergences,
        )
    if (
        options.min_coverage is not None
        and flow.coverage is not None
        and flow.coverage < options.min_coverage
    ):
        raise Stop(
            "coverage",
            f"the input sets exercise {flow.describe_coverage()} of the data-dependent "
            f"branches and loops, below min_coverage={options.min_coverage:g}; parity did "
            f"not verify:\n  " + "\n  ".join(flow.unexercised_lines()),
        )
    user_hazards = [
        hazard
        for hazard in flow.hazards
        if hazard.in_user_code and not _acknowledged(hazard, options.known_hazards)
    ]
    if user_hazards:
        ctx.pending_warnings.append(
            (
                f"the trace of {report.model} turned tensors into Python values at "
                + "; ".join(f"{h.location} ({h.kind})" for h in user_hazards[:6])
                + ". Every input set agreed, so the check passed, but inputs that take other "
                "paths may break the deployed trace; add such inputs, or use mode='script'",
                TraceHazardWarning,
            )
        )


_SCRIPTED_DETECTIONS = re.compile(
    r"(\w+) always returns a \(Losses, Detections\) tuple in scripting"
)


def scripted_detection_hint(recorded: list) -> str:
    """torchvision's detection models (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD)
    return ``(losses, detections)`` when scripted and the detections alone in eager, by
    design, and warn so: the parity failure is that contract, and the fix is a wrapper that
    returns what a deployment reads."""
    for warning in recorded:
        found = _SCRIPTED_DETECTIONS.search(warning.message)
        if found:
            return (
                f"\nhint: torchvision's detection models return (losses, detections) when "
                f"scripted and only the detections in eager (torchvision warned: "
                f"{found.group(0)!r}); check a wrapper that returns the detections in both, "
                f"as a deployment reads them: forward(self, images: List[Tensor]) -> "
                f"List[Dict[str, Tensor]] with `if torch.jit.is_scripting(): return "
                f"self.model(images)[1]` and `return self.model(images)` after it (TorchScript "
                f"compiles only the scripting branch)"
            )
    return ""


def nested_tensor_encoders(model: Any, torch: Any) -> list[str]:
    """The nn.TransformerEncoders in ``model`` set to take the nested-tensor fast path."""
    modules = model.named_modules() if isinstance(model, torch.nn.Module) else ()
    return [
        name or "the model"
        for name, module in modules
        if isinstance(module, torch.nn.TransformerEncoder)
        and getattr(module, "use_nested_tensor", False)
    ]


def eager_zeroed_hint(ctx: Any, results: list) -> str:
    """Why a model with a nested-tensor encoder differs only where eager returned 0: in eval
    mode under no_grad, nn.TransformerEncoder packs a padded batch into a nested tensor and
    returns 0 at the padded positions, while every converted form (export, onnx, a reloaded
    script) computes them; the positions it keeps agree. Empty unless that is the pattern."""
    failing = [leaf for result in results for leaf in result.failures if leaf.problem is None]
    if not ctx.nested_tensor_encoders or not failing:
        return ""
    if any(leaf.mismatched_at_eager_zero != leaf.mismatched for leaf in failing):
        return ""
    names = ", ".join(f"`{name}`" for name in ctx.nested_tensor_encoders[:3])
    return (
        f"\nevery element that differs is exactly 0 in eager: nn.TransformerEncoder ({names}) "
        f"takes its nested-tensor fast path in eval mode under no_grad and returns 0 at the "
        f"positions src_key_padding_mask pads, where the converted module computes them; the "
        f"other positions agree"
        f"\nhint: if those positions are padding, build the encoder with "
        f"enable_nested_tensor=False (or call torch.backends.mha.set_fastpath_enabled(False) "
        f"in the test) so eager computes them too, or zero them in forward "
        f"(out.masked_fill(mask.unsqueeze(-1), 0.0)) so every form returns 0 there"
    )


def recorded_python_values(ctx: Any, failing: list[int]) -> str:
    """Why input sets that pass other Python values than the example fail: the converted
    module computes with (or guards on) the example's values. Empty when none of ``failing``
    does."""
    changed = [(index, ctx.changed_python_values.get(index)) for index in failing]
    changed = [(index, change) for index, change in changed if change is not None]
    if not changed:
        return ""
    lines = [f"input set {index} passes {change.text}" for index, change in changed]
    optional = any(change.optional for _, change in changed)
    return (
        "\n" + "\n".join(lines) + f"\n{ctx.backend.converter} records the Python values "
        "(numbers, flags, strings, None) of the example it converts as constants: the "
        "converted module computes with them, or refuses other values, whatever it is called "
        "with"
        + (
            "\nhint: an optional argument that is None in one input set and a tensor in "
            "another is two programs to a converter: check each form in its own check (one "
            "test with the argument, one without), or pass a tensor in every set (one that "
            "means 'none', such as a mask of ones), or use mode='script', which keeps "
            "Optional arguments"
            if optional
            else "\nhint: pass a value that varies in deployment as a tensor "
            "(torch.tensor(value)), or use mode='script', which compiles it as an argument; "
            "or keep it the same in every input set (one test per value)"
        )
    )


def _converted_with(ctx: Any, input_sets: list, index: int) -> str:
    """Which input set the module that raised was converted with, and, where the failing
    set calls it another way (an optional argument left out or added, other keywords), that
    a converted module takes the example's arguments only."""
    example_index = ctx.example_index
    if index == example_index:
        return ""
    example, failing = input_sets[example_index], input_sets[index]
    text = f"\nthe module was converted with input set {example_index} {example.describe()}"
    if ctx.backend.name == "script" or (
        len(failing.args) == len(example.args) and set(failing.kwargs) == set(example.kwargs)
    ):
        return text + _other_dtypes(ctx, example, failing, index, example_index)
    return text + (
        f"\nhint: input set {index} calls forward with other arguments than input set "
        f"{example_index} (an optional argument given or left out, other keywords), and "
        f"{ctx.backend.converter} fixes the arguments of the example it converts; give every "
        f"input set the same arguments, or check each way of calling the model in its own "
        f"check (mode='script' keeps optional arguments)"
    )


def _other_dtypes(ctx: Any, example: Any, failing: Any, index: int, example_index: int) -> str:
    """Where the set that raised passes a tensor in another dtype than the example: a
    converted module (an ONNX graph above all) is typed by the example it was built from."""
    ours = tensor_leaves((example.args, example.kwargs))
    theirs = tensor_leaves((failing.args, failing.kwargs))
    changed = [
        f"{name} is {str(theirs[name].dtype).removeprefix('torch.')} (input set "
        f"{example_index}: {str(tensor.dtype).removeprefix('torch.')})"
        for name, tensor in ours.items()
        if name in theirs and theirs[name].dtype != tensor.dtype
    ]
    if not changed:
        return ""
    return (
        f"\nhint: in input set {index}, {'; '.join(changed[:3])}: {ctx.backend.converter} "
        f"built the module for the example's dtypes; check each dtype the deployment feeds "
        f"in its own check, or cast the inputs as the deployment does"
    )


def parity_all(
    ctx: Any, module, input_sets, eager, options, into, size_decisions=None
) -> list[ParityResult]:
    """The converted module on every input set against eager's outputs, and against what
    eager wrote into its inputs; ``size_decisions`` explain an input an exported program
    rejects."""
    results = []
    for index, input_set in enumerate(input_sets):
        args, kwargs = input_set.copy_to(ctx.device)
        try:
            with recording_warnings(into):
                output = module(*args, **kwargs)
        except Exception as error:
            recorded = recorded_python_values(ctx, [index])
            # export guards on the Python values it recorded too: those are not sizes
            if size_decisions is not None and not recorded:
                narrowed = explain_rejected_input(
                    error, index, input_set.describe(), size_decisions
                )
                if narrowed:
                    raise Stop("conversion", narrowed) from None
            raise Stop(
                "parity",
                f"the converted module raised on input set {index} {input_set.describe()}, "
                f"where eager did not: {_converted_error(error, ctx)}"
                + (recorded or _converted_with(ctx, input_sets, index) + tracer_hint(into)),
            ) from None
        result = compare(eager[index][0], output, index, options)
        if not result.ok:  # kept as evidence only where they differ; released otherwise
            ctx.evidence.outputs[index] = (eager[index][0], output)
        del output
        # A model that writes into its inputs must write the same values once converted.
        written_by_converted = tensor_leaves((args, kwargs))
        for name, written in tensor_leaves(eager[index][1]).items():
            after = compare_outputs(
                written,
                written_by_converted[name],
                index,
                options.rtol,
                options.atol,
                root=f"{name} (input, after the call)",
                floor=options.tolerance_floor,
            )
            result.leaves.extend(after.leaves)
        results.append(result)
    return results


def compare(expected: Any, actual: Any, index: int, options: Options) -> ParityResult:
    try:
        return compare_outputs(
            expected, actual, index, options.rtol, options.atol, floor=options.tolerance_floor
        )
    except UncomparableOutput as error:
        raise Stop("parity", f"input set {index}: {error}") from None


def _converted_error(error: Exception, ctx: Any) -> str:
    """The error a converted module raised; for TorchScript's interpreter, its last line (the
    error itself) and where it happened, the whole text kept under --ts-artifacts."""
    text = str(error)
    summary = interpreter_error(text)
    if summary is None:
        return f"{type(error).__name__}: {first_lines(text)}"
    ctx.evidence.full_error = text
    message, frame = summary
    if frame is not None:
        filename, line, function = frame
        message += (
            f"\n  raised in the converted module at {short_path(filename)}:{line} in {function}"
        )
    return message


def _uncomparable_hint(kind: type, model: Any = None) -> str:
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


def _acknowledged(hazard: Any, patterns: tuple[str, ...]) -> bool:
    """``known_hazards``: a pattern names a location by the end of its path, or a library."""
    location = hazard.location.replace("\\", "/")
    return any(
        location.endswith(pattern.replace("\\", "/")) or pattern == hazard.library
        for pattern in patterns
    )
