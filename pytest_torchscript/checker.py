"""The ``torchscript`` fixture object: runs a whole check, or its single steps, for one test.

A check goes eager (twice, to prove the model deterministic) -> convert -> parity on every
input set -> save/reload parity -> fresh-process parity, and stops at the first stage that
fails with a message written for the person reading the CI log. Every check leaves a
``CheckReport`` in the session, passed or failed, for the end-of-run summary.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from . import artifacts, baseline, perf
from .aoti import is_package as is_aoti_package
from .benchmark_bridge import publish_report
from .controlflow import (
    ControlFlowReport,
    analyse_coverage,
    analyse_script,
    analyse_trace,
    divergence_block,
)
from .convert import ConversionFailed, convert
from .cpp_runner import CppRunFailed, CppUnavailable
from .cpp_runner import run as run_in_cpp
from .deadline import CheckTimedOut, deadline
from .decisions import DecisionRecorder
from .errors import CheckFailed, TraceHazardWarning, TrainModeWarning, UsageProblem
from .evidence import Evidence
from .exporting import explain_rejected_input, export_example, infer_dynamic_shapes
from .fresh_process import FreshProcessError
from .graphs import first_difference, script_decisions, trace_steps
from .hazards import hazards_from, tracer_hint
from .inputs import InputSet, normalize_inputs, tensor_leaves
from .jit_warnings import (
    flat_tensors,
    import_torch,
    recording_warnings,
    torchscript_missing_reason,
)
from .onnx_mode import TOLERANCES as ONNX_TOLERANCES
from .onnx_mode import OnnxModule, flat_inputs
from .onnx_mode import missing_reason as onnx_missing_reason
from .options import EXPORTED_MODES, Options, parse_check_options
from .parity import ParityResult, UncomparableOutput, compare_outputs
from .perf import PerfReport
from .report import CheckReport, RoundTripResult, describe_mismatch
from .session import SessionState
from .text import first_lines, model_name, short_repr, strip_ansi
from .timing import TimingFailed
from .train_mode import modes_that_matter


class _Stop(Exception):
    """A stage failed; ``check`` turns this into a ``CheckFailed`` with the report."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class TorchScriptChecker:
    """Checks that models convert to TorchScript and behave like eager; see ``check``."""

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

    # -- the whole check ---------------------------------------------------------------------

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
            with deadline(resolved.timeout):
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
        except _Stop as stop:
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
                raise _Stop("conversion", str(failure)) from None
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

    # -- stages ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _evaluation(self, model: Any, report: CheckReport) -> Iterator[None]:
        """Eval mode, on the device, without autograd; the train/eval flags are restored."""
        torch = import_torch()
        modules = list(model.modules()) if isinstance(model, torch.nn.Module) else []
        flags = [(module, module.training) for module in modules]
        if modules:
            model.eval()
            model.to(self.device)
        try:
            with torch.no_grad():
                yield
        finally:
            for module, training in flags:
                module.training = training

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

    def _eager(
        self, model: Any, input_set: InputSet, index: int, recorder: DecisionRecorder | None = None
    ) -> tuple[Any, Any]:
        """Eager outputs and the inputs as the model left them (in-place writes included);
        with a ``recorder``, the run's data-dependent decisions are noted too."""
        args, kwargs = input_set.copy_to(self.device)
        recording = recorder.recording(index) if recorder else contextlib.nullcontext()
        try:
            with recording:
                output = model(*args, **kwargs)
        except Exception as error:
            raise _Stop(
                "eager",
                f"the model raised in eager mode on input set {index} {input_set.describe()}, "
                f"before any conversion: {type(error).__name__}: {error}",
            ) from error
        return output, (args, kwargs)

    def _require_deterministic(self, first, second, options: Options) -> None:
        result = self._compare(first[0], second[0], 0, options)
        if not result.ok:
            leaf = result.failures[0]
            raise _Stop(
                "determinism",
                f"the eager model is not deterministic: two eager runs on input set 0 differ at "
                f"{leaf.path} (max abs difference {leaf.max_abs:.4g}"
                f"{'; ' + leaf.problem if leaf.problem else ''}), so a conversion cannot be "
                f"judged against it. Remove the randomness from forward (torch.rand, dropout "
                f"applied with training=True, nondeterministic kernels) or seed it inside "
                f"forward.",
            )

    def _control_flow(
        self,
        model: Any,
        conversion: Any,
        mode: str,
        input_sets: list[InputSet],
        recorder: DecisionRecorder,
        trace_recorder: DecisionRecorder,
    ) -> ControlFlowReport:
        """Script: which arms eager exercised. Trace: also re-trace on every other input set,
        noting its decisions and its graph, to prove where another input leaves the path."""
        if mode == "script":
            return analyse_script(script_decisions(conversion.module), recorder.by_set)
        if mode in EXPORTED_MODES:  # export refuses data-dependent branches: coverage only
            return analyse_coverage(mode, recorder.by_set)
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
            args, kwargs = input_set.copy_to(self.device)
            try:
                with trace_recorder.recording(index):
                    retraced = convert(model, "trace", args, kwargs).module
            except ConversionFailed:
                continue  # parity on this set already judges a model that cannot be traced so
            difference = first_difference(example_steps, trace_steps(retraced))
            if difference is not None:
                differences[index] = difference
                self._evidence.retraced_graphs[index] = str(retraced.inlined_graph)
        return analyse_trace(recorder.by_set, trace_recorder.by_set, differences, hazards)

    def _judge_parity_and_control_flow(
        self, report: CheckReport, options: Options, total_sets: int
    ) -> None:
        """Parity first; then a proven divergence fails even where values happened to agree;
        then coverage against ``min_coverage``; a trace with only hazards passes with a warning."""
        __tracebackhide__ = True
        flow = report.control_flow
        divergences = divergence_block(flow)
        if not all(result.ok for result in report.parity):
            message = describe_mismatch(report.parity, total_sets, "the converted module")
            raise _Stop("parity", message + (divergences or tracer_hint(report.warnings)))
        if divergences:
            raise _Stop(
                "control-flow",
                "the outputs agree on these input sets, but the trace does not compute what "
                "eager computes for all of them:" + divergences,
            )
        if (
            options.min_coverage is not None
            and flow.coverage is not None
            and flow.coverage < options.min_coverage
        ):
            raise _Stop(
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
            self._pending_warnings.append(
                (
                    f"the trace of {report.model} turned tensors into Python values at "
                    + "; ".join(f"{h.location} ({h.kind})" for h in user_hazards[:6])
                    + ". Every input set agreed, so the check passed, but inputs that take other "
                    "paths may break the deployed trace; add such inputs, or use mode='script'",
                    TraceHazardWarning,
                )
            )

    def _parity_all(
        self, module, input_sets, eager, options, into, size_decisions=None
    ) -> list[ParityResult]:
        results = []
        for index, input_set in enumerate(input_sets):
            args, kwargs = input_set.copy_to(self.device)
            try:
                with recording_warnings(into):
                    output = module(*args, **kwargs)
            except Exception as error:
                if size_decisions is not None:
                    narrowed = explain_rejected_input(
                        error, index, input_set.describe(), size_decisions
                    )
                    if narrowed:
                        raise _Stop("conversion", narrowed) from None
                raise _Stop(
                    "parity",
                    f"the converted module raised on input set {index} {input_set.describe()}, "
                    f"where eager did not: {type(error).__name__}: "
                    f"{first_lines(str(error))}" + tracer_hint(into),
                ) from None
            result = self._compare(eager[index][0], output, index, options)
            if not result.ok:  # kept as evidence only where they differ; released otherwise
                self._evidence.outputs[index] = (eager[index][0], output)
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
                )
                result.leaves.extend(after.leaves)
            results.append(result)
        return results

    def _compare(self, expected, actual, index: int, options: Options) -> ParityResult:
        try:
            return compare_outputs(expected, actual, index, options.rtol, options.atol)
        except UncomparableOutput as error:
            raise _Stop("parity", f"input set {index}: {error}") from None

    def _roundtrip_all(self, conversion, input_sets, eager, options, report: CheckReport) -> Any:
        path = self._save(conversion.artifact, report)
        in_process = RoundTripResult("in-process")
        report.roundtrips.append(in_process)
        try:
            loaded = artifacts.load(path, self.device, report.warnings, like=conversion.module)
        except Exception as error:
            in_process.error = f"{type(error).__name__}: {first_lines(str(error))}"
            raise _Stop("roundtrip", f"{path} does not load back: {in_process.error}") from None
        outputs = []
        for index, input_set in enumerate(input_sets):
            args, kwargs = input_set.copy_to(self.device)
            try:
                with recording_warnings(report.warnings):
                    outputs.append(loaded(*args, **kwargs))
            except Exception as error:
                in_process.error = f"{type(error).__name__}: {first_lines(str(error))}"
                raise _Stop(
                    "roundtrip",
                    f"the reloaded {path.name} raised on input set {index} "
                    f"{input_set.describe()}, where the converted module did not: "
                    f"{in_process.error}",
                ) from None
        in_process.parity = [
            self._compare(eager[i][0], output, i, options) for i, output in enumerate(outputs)
        ]
        if not in_process.ok:
            raise _Stop(
                "roundtrip",
                describe_mismatch(in_process.parity, len(input_sets), f"the reloaded {path.name}"),
            )
        if options.fresh_process:
            self._fresh_process_parity(path, input_sets, eager, options, report, loaded)
            self._cpp_parity(path, input_sets, eager, options, report)
        return loaded

    def _cpp_parity(self, path, input_sets, eager, options, report: CheckReport) -> None:
        """The artifact in a C++ process with LibTorch alone, as a C++ service loads it."""
        setting = self._session.settings.cpp
        if setting == "off":
            return
        result = RoundTripResult("C++")
        report.roundtrips.append(result)
        package = path.suffix == ".pt2" and is_aoti_package(path)
        if path.suffix != ".pt" and not package:
            result.skipped = (
                f"the C++ round trip runs TorchScript (.pt) and AOTInductor (mode='aoti') "
                f"artifacts; a {path.suffix} file from mode={report.mode!r} is loaded by "
                f"another runtime"
            )
            return
        cpu_sets = [input_set.copy_to("cpu") for input_set in input_sets]
        expected = [output for output, _ in eager]
        if package:  # the loader takes and returns flat lists of tensors
            cpu_sets = [(tuple(flat_tensors((args, kwargs))), {}) for args, kwargs in cpu_sets]
            expected = [flat_tensors(output) for output in expected]
        try:
            built = self._session.cpp_runner(self.device.type)
        except CppUnavailable as missing:
            if setting == "require":
                raise _Stop("cpp", f"--ts-cpp=require, and {missing}") from None
            result.skipped = str(missing)
            return
        started = time.perf_counter()
        try:
            outputs, _ = run_in_cpp(
                built.path,
                path,
                cpu_sets,
                str(self.device),
                self._session.private_root() / "cpp",
                self._session.settings.cpp_timeout,
            )
        except CppRunFailed as error:
            result.error = str(error)
            raise _Stop(
                "cpp",
                f"{path} could not be loaded and run by LibTorch in a C++ process, as a C++ "
                f"service would:\n  " + str(error).replace("\n", "\n  "),
            ) from None
        result.seconds = time.perf_counter() - started
        result.parity = [
            self._compare(expected[i], output, i, options) for i, output in enumerate(outputs)
        ]
        if not result.ok:
            raise _Stop(
                "cpp",
                describe_mismatch(
                    result.parity, len(input_sets), f"{path.name} run by LibTorch in C++"
                ),
            )

    def _time_and_gate(self, model, converted, reloaded, example, options, report) -> None:
        """Time eager, converted and reloaded interleaved; publish to pytest-benchmark; gate."""
        if self._session.timing_off is not None:
            report.perf = PerfReport(note=self._session.timing_off)
            return
        series = {"eager": model, report.mode: converted}
        if reloaded is not None:
            series[f"{report.mode} reloaded"] = reloaded
        calls = {}
        for name, module in series.items():
            args, kwargs = example.copy_to(self.device)
            calls[name] = functools.partial(module, *args, **kwargs)
        key = baseline.entry_key(self._test_id, report.mode, str(self.device))
        if self._check_counts[report.mode] > 1:  # a second check() of this mode in one test
            key += f" | {self._check_counts[report.mode]}"
        settings = self._session.settings.perf
        try:
            with self._evaluation(model, CheckReport(self._test_id, report.mode, report.device)):
                with recording_warnings(report.warnings):
                    report.perf, new_entry = perf.run(
                        calls,
                        self.device,
                        options.time_budget,
                        settings,
                        self._session.baseline_entries,
                        key,
                        options.max_slowdown,
                        options.max_regression,
                        report.mode,
                    )
        except TimingFailed as failure:
            raise _Stop("timing", f"{failure}; the other checks of this run still count") from None
        if new_entry is not None:
            self._session.new_baseline_entries[key] = new_entry
        publish_report(self._item, report)
        failures = report.perf.failures(settings.strict)
        if failures:
            raise _Stop(
                "perf",
                "\n".join(f"{gate.gate}: {gate.outcome}: {gate.message}" for gate in failures),
            )

    def _fresh_process_parity(self, path, input_sets, eager, options, report, loaded) -> None:
        fresh = RoundTripResult("fresh process")
        report.roundtrips.append(fresh)
        cpu_sets = [input_set.copy_to("cpu") for input_set in input_sets]
        if isinstance(loaded, OnnxModule):  # the worker feeds flat tensors, by position
            cpu_sets = [(flat_inputs(loaded.parameters, *set_), {}) for set_ in cpu_sets]
        try:
            outputs, reply = self._session.fresh_process().run(path, cpu_sets, str(self.device))
        except FreshProcessError as error:
            fresh.error = str(error)
            hint = ""
            if "in pytree is not registered" in str(error):
                hint = (
                    "\nhint: the .pt2 stores its inputs or outputs as a Python class registered "
                    "as a pytree node (by a library or your code), which a deployment without "
                    "that code cannot load; return tuples or dicts of tensors (transformers: "
                    "pass return_dict=False to forward, e.g. in each input set "
                    "{'input_ids': ids, 'return_dict': False}; setting it in the config breaks "
                    "some models in transformers 5)"
                )
            if "Unknown builtin op" in str(error):
                hint = (
                    "\nhint: the artifact calls an operator that your Python code registers "
                    "(torch.library, or an extension loaded on import); a deployment must load "
                    "that library too (torch.ops.load_library) or the runtime will not find it"
                )
            raise _Stop(
                "fresh-process",
                f"{path} could not be loaded and run in a fresh Python process that never "
                f"imported your code:\n  " + first_lines(str(error)).replace("\n", "\n  ") + hint,
            ) from None
        if isinstance(loaded, OnnxModule):
            outputs = [loaded.rebuild(list(flat)) for flat in outputs]
        fresh.seconds = reply.get("seconds", 0.0)
        fresh.user_modules = reply.get("user_modules", [])
        fresh.process_id = reply.get("pid")
        fresh.parity = [
            self._compare(eager[i][0], output, i, options) for i, output in enumerate(outputs)
        ]
        if not fresh.ok:
            raise _Stop(
                "fresh-process",
                describe_mismatch(
                    fresh.parity, len(input_sets), f"{path.name} loaded in a fresh process"
                ),
            )

    def _keep_evidence(self, report: CheckReport) -> None:
        """With --ts-artifacts, keep what the failing check knew (see ``evidence.py``)."""
        root = self._session.settings.artifact_root
        if root is not None:
            folder = artifacts.folder_for(root, self._test_id) / f"{report.mode}-failure"
            self._evidence.keep(folder, report)

    def _save(self, module: Any, report: CheckReport):
        folder = artifacts.folder_for(self._session.private_root(), self._test_id)
        count = self._artifact_counts.get(report.mode, 0) + 1
        self._artifact_counts[report.mode] = count
        stem = report.mode if count == 1 else f"{report.mode}-{count}"
        published_root = self._session.settings.artifact_root
        try:
            path = artifacts.save(module, folder, stem, report.warnings)
            published = path
            if published_root is not None:
                folder = artifacts.folder_for(published_root, self._test_id)
                published = artifacts.publish(path, folder)
        except Exception as error:
            raise _Stop(
                "roundtrip",
                f"saving the converted module to {folder} failed: {type(error).__name__}: "
                f"{first_lines(str(error))}",
            ) from None
        report.artifact_path = str(published)
        report.artifact_bytes = path.stat().st_size
        return path

    # -- single steps, for tests that need only part of a check -----------------------------

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
        except _Stop as stop:
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
        except _Stop as stop:
            raise CheckFailed(stop.message) from None
        return artifacts.load(path, self.device, scratch.warnings)


def _acknowledged(hazard: Any, patterns: tuple[str, ...]) -> bool:
    """``known_hazards``: a pattern names a location by the end of its path, or a library."""
    location = hazard.location.replace("\\", "/")
    return any(
        location.endswith(pattern.replace("\\", "/")) or pattern == hazard.library
        for pattern in patterns
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
