"""The parity stage: the converted module's outputs against eager's on every input set,
judged together with control-flow coverage (a mismatch on a set whose decisions the example
did not cover names the frozen branch), and every mismatch explained in the user's terms."""

from __future__ import annotations

import re
from typing import Any

from ..config.options import Options
from ..errors import TraceHazardWarning
from ..modes.export import explain_rejected_input
from ..text import first_lines, interpreter_error, short_path
from .controlflow import (
    divergence_block,
)
from .hazards import tracer_hint
from .inputs import tensor_leaves
from .jit_warnings import (
    recording_warnings,
)
from .parity import ParityResult, UncomparableOutput, compare_outputs
from .report import describe_mismatch
from .stages import Stop


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


def _acknowledged(hazard: Any, patterns: tuple[str, ...]) -> bool:
    """``known_hazards``: a pattern names a location by the end of its path, or a library."""
    location = hazard.location.replace("\\", "/")
    return any(
        location.endswith(pattern.replace("\\", "/")) or pattern == hazard.library
        for pattern in patterns
    )
