"""The ``torchscript`` fixture object: runs a whole check, or its single steps, for one test.

A check goes eager (twice, to prove the model deterministic) -> convert -> parity on every
input set -> control flow -> save/reload parity -> fresh-process parity -> C++ parity ->
timing, and stops at the first stage that fails with a message written for the person
reading the CI log; any other error of a stage is a failed check naming that stage, never an
escape from the plugin. Every check leaves a ``CheckReport`` in the session, passed or
failed, for the end-of-run summary. The stages themselves live in ``stages.py`` and
``roundtrips.py``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import pytest

from . import artifacts
from .convert import ConversionFailed, convert
from .deadline import CheckTimedOut, deadline
from .decisions import DecisionRecorder
from .errors import CheckFailed, TrainModeWarning, UsageProblem
from .evidence import Evidence
from .exporting import export_example, infer_dynamic_shapes
from .inputs import normalize_inputs
from .jit_warnings import (
    RecordedWarning,
    import_torch,
    torchscript_missing_reason,
)
from .onnx_mode import TOLERANCES as ONNX_TOLERANCES
from .onnx_mode import missing_reason as onnx_missing_reason
from .options import EXPORTED_MODES, Options, parse_check_options
from .parity import ParityResult
from .report import CheckReport, describe_mismatch
from .roundtrips import RoundTripStages
from .session import SessionState
from .stages import CheckStages, Stop, TimingStage
from .text import first_lines, model_name, short_repr, strip_ansi
from .train_mode import modes_that_matter


class TorchScriptChecker(CheckStages, TimingStage, RoundTripStages):
    """Checks that models convert and behave like eager; see ``check``. The stages live in
    ``stages.py`` and ``roundtrips.py``; this class holds what they share and the public API
    of the ``torchscript`` fixture."""

    def __init__(self, session: SessionState, item: Any, options: Options) -> None:
        self._session = session
        self._item = item
        self._test_id = item.nodeid
        self._options = options
        path, lineno, _ = item.reportinfo()
        self._location = (str(path), (lineno or 0) + 1)  # where plugin warnings point
        self._artifact_counts: dict[str, int] = {}
        self._check_counts: dict[str, int] = {}  # per mode: keys the baseline entry of each check
        self._evidence = Evidence()
        self.reports: list[CheckReport] = []
        self.used = False

    @property
    def mode(self) -> str:
        """The conversion mode of this test (from the marker; ``trace`` without one)."""
        return self._options.mode

    @property
    def device(self) -> Any:
        """The ``torch.device`` every check of this run uses (``--ts-device``)."""
        return self._session.device.device

    def check(self, model: Any, inputs: Any = None, **options: Any) -> CheckReport:
        """Convert ``model``, compare it with eager on every input set, round-trip it, and
        return the report; raise ``CheckFailed`` (with ``.report``) at the first failure.

        ``options`` (mode, rtol, atol, roundtrip, inputs) override the marker's, which
        override the ini settings.
        """
        __tracebackhide__ = True
        self.used = True
        try:
            layer = parse_check_options(options, self._test_id)
        except UsageProblem as problem:
            raise problem.with_traceback(None) from None
        if inputs is not None:
            layer["inputs"] = inputs
        resolved = self._options.merged(layer)
        missing = {"onnx": onnx_missing_reason, "trace": torchscript_missing_reason,
                   "script": torchscript_missing_reason}.get(resolved.mode)  # fmt: skip
        reason = missing() if missing else None
        if reason:  # a mode this installation cannot run: a skip that says why, in the matrix
            skipped = CheckReport(
                self._test_id, resolved.mode, str(self.device), model_name(model), skipped=reason
            )
            self._session.reports.append(skipped)
            raise skip_at_test(reason)
        if resolved.mode == "onnx":
            resolved = resolved.merged(
                {
                    name: value
                    for name, value in ONNX_TOLERANCES.items()
                    if getattr(resolved, name) is None
                }
            )
        report = CheckReport(
            test_id=self._test_id,
            mode=resolved.mode,
            device=str(self.device),
            model=model_name(model),
        )
        self._check_counts[resolved.mode] = self._check_counts.get(resolved.mode, 0) + 1
        self.reports.append(report)
        self._session.reports.append(report)
        self._stage = "inputs"
        self._pending_warnings: list[tuple[str, type[Warning]]] = []
        try:
            self._warn_if_training(model, report)
            with deadline(resolved.timeout) as armed:
                if resolved.timeout is not None and not armed:  # said, never silently ignored
                    report.warnings.append(
                        RecordedWarning(
                            "TimeoutNotArmed",
                            f"timeout={resolved.timeout:g} was not armed: no SIGALRM here (a "
                            f"thread other than the main one, Windows, or pytest-timeout's own "
                            f"timer already running)",
                            "",
                            0,
                        )
                    )
                self._run(model, resolved, report)
        except CheckTimedOut:
            report.failed_stage = self._stage
            report.failure = (
                f"the check did not finish within timeout={resolved.timeout:g} s; it was in "
                f"its {self._stage} stage (raise timeout=, or use smaller input sets or "
                f"time_budget=)"
            )
            self._keep_evidence(report)
            raise CheckFailed(
                f"torchscript check of {report.model} failed at {self._stage} "
                f"(mode={report.mode!r}, device={report.device})\n{report.failure}",
                report,
            ) from None
        except UsageProblem as problem:
            report.failed_stage, report.failure = "inputs", str(problem)
            raise problem.with_traceback(None) from problem.__cause__
        except Stop as stop:
            report.failed_stage, report.failure = stop.stage, strip_ansi(stop.message)
            self._keep_evidence(report)
            header = (
                f"torchscript check of {report.model} failed at {stop.stage} "
                f"(mode={report.mode!r}, device={report.device})"
            )
            raise CheckFailed(f"{header}\n{report.failure}", report) from stop.__cause__
        except Warning:
            # A warning turned error by -W error: it is the user's to see, as raised.
            report.failed_stage = report.failed_stage or self._stage
            raise
        except Exception as error:  # any other stage error is a failed check, never an escape
            report.failed_stage = self._stage
            report.failure = unexpected_error_message(error, self._stage, report)
            self._keep_evidence(report)
            failure = CheckFailed(
                f"torchscript check of {report.model} failed at {self._stage} "
                f"(mode={report.mode!r}, device={report.device})\n{report.failure}",
                report,
            )
            failure.original = error  # the exception itself, for debugging
            raise failure from None
        except BaseException:
            # KeyboardInterrupt, pytest's own outcomes...: never report a pass.
            report.failed_stage = report.failed_stage or self._stage
            raise
        finally:
            # Reports keep figures; the modules and outputs a check needed go now, not when
            # the session ends (a zoo of models would otherwise pile up in memory).
            self._evidence = Evidence()
        # The plugin's own warnings come once the check is complete, so a suite that turns
        # them into errors still gets the whole check (round trip and timings included).
        for message, category in self._pending_warnings:
            try:
                warnings.warn_explicit(message, category, *self._location)
            except Warning:  # -W error: the complete check fails on it, and says why
                report.failed_stage, report.failure = "warning", message
                raise
        return report

    def _run(self, model: Any, options: Options, report: CheckReport) -> None:
        torch = import_torch()
        self._evidence = Evidence()
        _require_model(model, self._test_id, torch)
        input_sets = normalize_inputs(options.inputs, self._test_id)
        report.input_sets = [input_set.describe() for input_set in input_sets]
        recorder, trace_recorder = DecisionRecorder(), DecisionRecorder()
        self._stage = "eager"
        with self._evaluation(model, report):
            first = self._eager(model, input_sets[0], 0, recorder)
            self._require_deterministic(first, self._eager(model, input_sets[0], 0), options)
            example = input_sets[0]
            dynamic_shapes = options.dynamic_shapes
            if options.mode in EXPORTED_MODES and dynamic_shapes is None:
                dynamic_shapes = infer_dynamic_shapes(model, input_sets)
                example = input_sets[export_example(input_sets, dynamic_shapes)]
            self._stage = "conversion"
            args, kwargs = example.copy_to(self.device)
            # Under tracing, sizes are tensors too: a branch on a size is seen here.
            recording = (
                trace_recorder.recording(0) if options.mode == "trace" else contextlib.nullcontext()
            )
            try:
                with recording:
                    conversion = convert(
                        model,
                        options.mode,
                        args,
                        kwargs,
                        dynamic_shapes,
                        self.device,
                        self._session.settings.perf.threads,
                        options.onnx_options,
                    )
            except ConversionFailed as failure:
                self._evidence.full_error = failure.full_text
                raise Stop("conversion", str(failure)) from None
            report.conversion_seconds = conversion.seconds
            report.warnings.extend(conversion.warnings)
            self._evidence.artifact = conversion.artifact
            self._stage = "parity"
            eager = [first] + [
                self._eager(model, input_set, index, recorder)
                for index, input_set in enumerate(input_sets[1:], start=1)
            ]
            report.parity = self._parity_all(
                conversion.module,
                input_sets,
                eager,
                options,
                report.warnings,
                conversion.size_decisions if options.mode in EXPORTED_MODES else None,
            )
            self._stage = "control-flow"
            report.control_flow = self._control_flow(
                model, conversion, options.mode, input_sets, recorder, trace_recorder
            )
        self._judge_parity_and_control_flow(report, options, len(input_sets))
        reloaded = None
        if options.roundtrip:
            self._stage = "roundtrip"
            reloaded = self._roundtrip_all(conversion, input_sets, eager, options, report)
        if options.benchmark:
            self._stage = "timing"
            self._time_and_gate(model, conversion.module, reloaded, input_sets[0], options, report)

    def _warn_if_training(self, model: Any, report: CheckReport) -> None:
        """Warn, once per model class, when train mode would have changed the outputs."""
        __tracebackhide__ = True
        torch = import_torch()
        if not isinstance(model, torch.nn.Module):
            return
        modules = list(model.modules())
        report.was_training = any(module.training for module in modules)
        behaves_differently = modes_that_matter(modules) if report.was_training else []
        if behaves_differently and type(model) not in self._session.warned_train_mode:
            self._session.warned_train_mode.add(type(model))
            self._pending_warnings.append(
                (
                    f"{report.model} was in train mode, where its "
                    f"{', '.join(behaves_differently)} behave differently; pytest-torchscript "
                    f"checked it in eval mode, as it is deployed (call model.eval() in the test "
                    f"to silence this warning)",
                    TrainModeWarning,
                )
            )

    def _keep_evidence(self, report: CheckReport) -> None:
        """With --ts-artifacts, keep what the failing check knew (see ``evidence.py``)."""
        root = self._session.settings.artifact_root
        if root is not None:
            folder = artifacts.folder_for(root, self._test_id) / f"{report.mode}-failure"
            self._evidence.keep(folder, report)

    def convert(self, model: Any, example: Any) -> Any:
        """Convert ``model`` in this test's mode with ``example`` (an input set) and return the
        TorchScript module (mode="export": the ExportedProgram); raise ``CheckFailed`` with the
        converter's explanation."""
        __tracebackhide__ = True
        self.used = True
        input_set = normalize_inputs(example, self._test_id)[0]
        scratch = CheckReport(self._test_id, self.mode, str(self.device), model_name(model))
        with self._evaluation(model, scratch):
            args, kwargs = input_set.copy_to(self.device)
            try:
                return convert(model, self.mode, args, kwargs).artifact
            except ConversionFailed as failure:
                raise CheckFailed(str(failure)) from None

    def assert_parity(
        self, reference: Any, converted: Any, inputs: Any, rtol=None, atol=None
    ) -> list[ParityResult]:
        """Compare ``converted`` with ``reference`` on every input set; raise ``CheckFailed``
        saying where and by how much they differ."""
        __tracebackhide__ = True
        self.used = True
        options = self._options.merged({"rtol": rtol, "atol": atol})
        input_sets = normalize_inputs(inputs, self._test_id)
        torch = import_torch()
        if isinstance(converted, torch.export.ExportedProgram):
            converted = converted.module()
        scratch = CheckReport(self._test_id, self.mode, str(self.device), model_name(reference))
        try:
            with self._evaluation(reference, scratch):
                eager = [self._eager(reference, s, i) for i, s in enumerate(input_sets)]
                results = self._parity_all(converted, input_sets, eager, options, [])
        except Stop as stop:
            raise CheckFailed(stop.message) from stop.__cause__
        if not all(result.ok for result in results):
            raise CheckFailed(describe_mismatch(results, len(input_sets), "the converted module"))
        return results

    def roundtrip(self, converted: Any) -> Any:
        """Save ``converted`` (kept under ``--ts-artifacts`` when given) and load it back."""
        __tracebackhide__ = True
        self.used = True
        scratch = CheckReport(self._test_id, self.mode, str(self.device))
        try:
            path = self._save(converted, scratch)
        except Stop as stop:
            raise CheckFailed(stop.message) from None
        return artifacts.load(path, self.device, scratch.warnings)


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
    if isinstance(model, torch.nn.Module) or (
        callable(model) and not isinstance(model, (type, torch.Tensor))
    ):
        return
    raise UsageProblem(
        f"{where}: the model to check is {type(model).__name__} {short_repr(model)}; pass a "
        f"torch.nn.Module instance (or a function of tensors)"
    )


def skip_at_test(reason: str) -> BaseException:
    """A skip reported at the test's location rather than inside the plugin (pytest's own
    skip markers do the same; the keyword is not public, so fall back if it goes away)."""
    try:
        return pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:
        return pytest.skip.Exception(reason)
