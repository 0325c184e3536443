"""A check, stage by stage, over one explicit ``CheckContext``.

    inputs -> eager (every set; the first twice: determinism) -> conversion -> parity
           -> control flow -> round trips (reload, fresh process, C++) -> timing and perf gates

Each stage fills its part of the ``CheckReport`` and names itself in ``ctx.stage`` before it
starts; a stage that fails raises ``Stop`` with its name and a message written for the person
reading the CI log. ``run_check`` turns every way a check can end into what the test sees: a
``CheckFailed`` naming the stage (an unanticipated error included, never an escape from the
plugin), a usage error, a timeout, or a passed report. The stages themselves live in
``stages.py`` (eager, control flow), ``parity_stage.py``, ``deploy/roundtrips.py`` and
``perf/stage.py``; what a mode does differently lives in its backend (``modes/``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from ..config.options import Options
from ..deploy import artifacts
from ..deploy.roundtrips import roundtrip_all
from ..errors import CheckFailed, UsageProblem
from ..modes import Backend, ConversionFailed, Target
from ..modes.export import export_example, infer_dynamic_shapes
from ..perf.stage import time_and_gate
from ..text import bounded, first_lines, short_repr, strip_ansi
from .deadline import CheckTimedOut, deadline
from .decisions import DecisionRecorder
from .evidence import Evidence
from .inputs import ValueChanges, changed_python_values, normalize_inputs
from .jit_warnings import RecordedWarning, import_torch, quiet_structured_trace
from .parity_stage import judge_parity_and_control_flow, nested_tensor_encoders, parity_all
from .report import INTERRUPTED, CheckReport
from .stages import (
    Stop,
    buffers_written_by,
    control_flow,
    evaluation,
    require_deterministic,
    run_eager,
    warn_if_all_nan,
)


@dataclass
class CheckContext:
    """Everything one check's stages share; built by the fixture object for each check."""

    session: Any  # SessionState
    item: Any  # the pytest item
    options: Options
    backend: Backend
    report: CheckReport
    check_number: int = 1  # among this test's checks of this mode: keys its baseline entry
    artifact_counts: dict[str, int] = field(default_factory=dict)  # per test: artifact names
    evidence: Evidence = field(default_factory=Evidence)
    pending_warnings: list[tuple[str, type[Warning]]] = field(default_factory=list)
    stage: str = "model"
    # input set -> the Python values it passes that differ from the example's, where the
    # converted module computes with the example's (see Backend.records_python_values)
    changed_python_values: dict[int, ValueChanges] = field(default_factory=dict)
    # Where the model has nn.TransformerEncoders whose eager forward takes the nested-tensor
    # fast path (eval, no_grad, a padding mask): their names (``stages.eager_zeroed_hint``).
    nested_tensor_encoders: list[str] = field(default_factory=list)
    example_index: int = 0  # the input set the module was converted with

    @property
    def test_id(self) -> str:
        return self.item.nodeid

    @property
    def device(self) -> Any:
        return self.session.device.device

    @property
    def location(self) -> tuple[str, int]:
        """Where the plugin's own warnings point: the test function."""
        path, lineno, _ = self.item.reportinfo()
        return str(path), (lineno or 0) + 1


def run_check(ctx: CheckContext, model: Any) -> CheckReport:
    """Run every stage; translate how it ended (see the module docstring)."""
    __tracebackhide__ = True
    report, options = ctx.report, ctx.options
    try:
        with deadline(options.timeout) as armed, quiet_structured_trace():
            if options.timeout is not None and not armed:  # said, never silently ignored
                report.warnings.append(
                    RecordedWarning(
                        "TimeoutNotArmed",
                        f"timeout={options.timeout:g} was not armed: no SIGALRM here (a "
                        f"thread other than the main one, Windows, or pytest-timeout's own "
                        f"timer already running)",
                        "",
                        0,
                    )
                )
            _stages(ctx, model)
    except CheckTimedOut:
        raise _failed(
            ctx,
            ctx.stage,
            f"the check did not finish within timeout={options.timeout:g} s; it was in "
            f"its {ctx.stage} stage (raise timeout=, or use smaller input sets or "
            f"time_budget=)",
        ) from None
    except UsageProblem as problem:
        report.failed_stage, report.failure = ctx.stage, str(problem)
        raise problem.with_traceback(None) from problem.__cause__
    except Stop as stop:
        raise _failed(ctx, stop.stage, strip_ansi(stop.message)) from stop.__cause__
    except Warning:
        # A warning turned error by -W error: it is the user's to see, as raised.
        report.failed_stage = report.failed_stage or ctx.stage
        raise
    except Exception as error:  # any other stage error is a failed check, never an escape
        failure = _failed(ctx, ctx.stage, unexpected_error_message(error, ctx.stage, report))
        failure.original = error  # the exception itself, for debugging
        raise failure from None
    except KeyboardInterrupt:
        # Not a failure of the model, and pytest counts the test as neither passed nor
        # failed: the report (written also for an interrupted run) says how far it got.
        report.skipped = f"{INTERRUPTED} in its {ctx.stage} stage"
        raise
    except BaseException:
        # pytest's own outcomes (a skip or fail from inside forward)...: never report a pass.
        report.failed_stage = report.failed_stage or ctx.stage
        raise
    finally:
        # Reports keep figures; the modules and outputs a check needed go now, not when the
        # session ends (a zoo of models would otherwise pile up in memory).
        ctx.evidence = Evidence()
    root = ctx.session.settings.artifact_root
    if root is not None:  # passed: an earlier run's evidence of a failure no longer holds
        stem = artifacts.stem_for(report.mode, ctx.check_number)
        artifacts.forget_earlier_evidence(
            artifacts.folder_for(root, ctx.test_id) / f"{stem}-failure"
        )
    # The plugin's own warnings come once the check is complete, so a suite that turns them
    # into errors still gets the whole check (round trip and timings included).
    for message, category in ctx.pending_warnings:
        try:
            warnings.warn_explicit(bounded(message), category, *ctx.location)
        except Warning:  # -W error: the complete check fails on it, and says why
            report.failed_stage, report.failure = "warning", message
            raise
    return report


def _stages(ctx: CheckContext, model: Any) -> None:
    torch = import_torch()
    report, options, backend = ctx.report, ctx.options, ctx.backend
    _require_model(model, ctx.test_id, torch)
    ctx.nested_tensor_encoders = nested_tensor_encoders(model, torch)
    ctx.stage = "inputs"
    input_sets = normalize_inputs(options.inputs, ctx.test_id)
    report.input_sets = [input_set.describe() for input_set in input_sets]
    recorder, trace_recorder = DecisionRecorder(), DecisionRecorder()
    ctx.stage = "eager"
    with evaluation(model, ctx.device):
        first = run_eager(ctx, model, input_sets[0], 0, recorder)
        require_deterministic(
            first,
            run_eager(ctx, model, input_sets[0], 0),
            options,
            rerun=lambda: buffers_written_by(
                model, lambda: run_eager(ctx, model, input_sets[0], 0)
            ),
            model=model,
        )
        warn_if_all_nan(ctx, first[0])
        # Every input set through eager before converting: a set the model itself rejects
        # is named as such, not read by a converter as a size that varies.
        eager = [first] + [
            run_eager(ctx, model, input_set, index, recorder)
            for index, input_set in enumerate(input_sets[1:], start=1)
        ]
        example_index = 0
        dynamic_shapes = options.dynamic_shapes
        if backend.exported and dynamic_shapes is None:
            dynamic_shapes = infer_dynamic_shapes(model, input_sets)
            example_index = export_example(input_sets, dynamic_shapes)
        example = input_sets[example_index]
        ctx.example_index = example_index
        if backend.records_python_values:
            ctx.changed_python_values = changed_python_values(input_sets, example_index)
        ctx.stage = "conversion"
        args, kwargs = example.copy_to(ctx.device)
        target = Target(
            ctx.device,
            ctx.session.settings.perf.threads,
            dynamic_shapes,
            options.onnx_options,
            options.compile_options,
            options.tvm_target,
        )
        try:
            if backend.control_flow == "trace":  # under tracing, sizes are tensors too
                with trace_recorder.recording(0):
                    conversion = backend.convert(model, args, kwargs, target)
            else:
                conversion = backend.convert(model, args, kwargs, target)
        except ConversionFailed as failure:
            ctx.evidence.full_error = failure.full_text
            raise Stop("conversion", str(failure)) from None
        report.conversion_seconds = conversion.seconds
        report.warnings.extend(conversion.warnings)
        report.graph = _fingerprint(backend, conversion, report)
        ctx.evidence.artifact = conversion.artifact
        ctx.stage = "parity"
        report.parity = parity_all(
            ctx,
            conversion.module,
            input_sets,
            eager,
            options,
            report.warnings,
            conversion.size_decisions if backend.exported else None,
        )
        ctx.stage = "control-flow"
        report.control_flow = control_flow(
            ctx, model, conversion, input_sets, recorder, trace_recorder
        )
        report.compile = backend.findings(conversion)
        if report.compile is not None:  # recompiles are compile time too
            report.conversion_seconds += report.compile.recompile_seconds
    judge_parity_and_control_flow(ctx, len(input_sets))
    reloaded = None
    if options.roundtrip:
        ctx.stage = "roundtrip"
        reloaded = roundtrip_all(ctx, conversion, input_sets, eager)
    if options.benchmark:
        ctx.stage = "timing"
        time_and_gate(ctx, model, conversion.module, reloaded, input_sets[0])


def _fingerprint(backend: Backend, conversion: Any, report: CheckReport) -> Any:
    """The converted graph's operator counts (graph_diff), or None: reading a graph never
    fails a check; where it cannot be read, the report says why."""
    try:
        return backend.fingerprint(conversion)
    except Exception as error:  # noqa: BLE001 - an unreadable graph is said, not a failure
        report.warnings.append(
            RecordedWarning(
                "GraphNotFingerprinted",
                f"the converted graph could not be read for the baseline's comparison "
                f"({type(error).__name__}: {first_lines(str(error), 1)})",
                "",
                0,
            )
        )
        return None


def _failed(ctx: CheckContext, stage: str, message: str) -> CheckFailed:
    """Record the failure in the report, keep the evidence, and say it as the test sees it."""
    report = ctx.report
    report.failed_stage, report.failure = stage, message
    root = ctx.session.settings.artifact_root
    if root is not None:  # with --ts-artifacts, keep what the failing check knew
        folder = artifacts.folder_for(root, ctx.test_id)
        stem = artifacts.stem_for(report.mode, ctx.check_number)
        if report.artifact_path is None:  # not saved in this run: no earlier run's stands in
            artifacts.forget_earlier_artifact(folder, stem, ctx.session.published_artifacts)
        artifacts.forget_earlier_evidence(folder / f"{stem}-failure")
        ctx.evidence.keep(folder / f"{stem}-failure", report)
    return CheckFailed(
        f"torchscript check of {report.model} failed at {stage} "
        f"(mode={report.mode!r}, device={report.device})\n{message}",
        report,
    )


def unexpected_error_message(error: Exception, stage: str, report: CheckReport) -> str:
    """An error no stage anticipated, put as a failed check: what happened, at which stage,
    what was given, and what the plugin supports."""
    text = f"{type(error).__name__}: {first_lines(str(error))}"
    given = f"input sets {', '.join(report.input_sets)}" if report.input_sets else "the inputs"
    hint = (
        "models and inputs must hold values on a real device (cpu, cuda, ...): tensors on the "
        "meta device have shapes only, so nothing can be compared"
        if "meta" in str(error).lower()
        else "outputs may be tensors (dense), numbers, strings and None, in tuples, lists, "
        "dicts, named tuples or dataclasses"
    )
    return (
        f"the check could not complete its {stage} stage: {text}\n"
        f"given: {report.model} on {report.device}, {given}\n"
        f"supported: {hint}. If the model and inputs are of that kind, please report this "
        f"message as a pytest-torchscript bug"
    )


def _require_model(model: Any, where: str, torch: Any) -> None:
    """The model is an eager module (or a function of tensors); the usual near misses are
    named with their fix."""
    kind = type(model).__name__
    if kind == "OptimizedModule":  # torch.compile's wrapper: checked by name, not imported
        raise UsageProblem(
            f"{where}: the model is a torch.compile wrapper, which is not a deployable module "
            f"and cannot be traced, scripted or exported; return the module before "
            f"torch.compile (torch.compile(model) leaves `model` itself unchanged), and "
            f"mode='compile' compiles it itself (compile_options= passes torch.compile's "
            f"keywords)"
        )
    if kind == "ExportedProgram":
        raise UsageProblem(
            f"{where}: the model is an ExportedProgram; return the nn.Module it was exported "
            f"from, and the plugin exports it itself (mode='export') and checks the result "
            f"against it"
        )
    if isinstance(model, (tuple, list)) and model and isinstance(model[0], torch.nn.Module):
        raise UsageProblem(
            f"{where}: the model to check is a {kind} holding a module ({short_repr(model)}); "
            f"return the model alone and give its input sets on the marker: "
            f"@pytest.mark.torchscript(inputs=...), or call torchscript.check(model, inputs)"
        )
    if isinstance(model, torch.nn.Module) or (
        callable(model) and not isinstance(model, (type, torch.Tensor))
    ):
        return
    if isinstance(model, type) and issubclass(model, torch.nn.Module):
        raise UsageProblem(
            f"{where}: the model to check is the class {model.__name__}, not an instance; "
            f"return {model.__name__}(...).eval()"
        )
    raise UsageProblem(
        f"{where}: the model to check is {kind} {short_repr(model)}; pass a "
        f"torch.nn.Module instance (or a function of tensors)"
    )
