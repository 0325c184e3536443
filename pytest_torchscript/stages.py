"""The stages of a check before its round trips: eager (twice, to prove the model
deterministic), parity on every input set, control flow (coverage, divergences, hazards) and
the timing stage. A failing stage raises ``Stop`` with its name.

The stages are mixins of ``TorchScriptChecker`` (``checker.py``), which holds the state they
share: the session, the test, the device, the evidence a failing check keeps.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from . import baseline, perf
from .benchmark_bridge import publish_report
from .controlflow import (
    ControlFlowReport,
    analyse_coverage,
    analyse_script,
    analyse_trace,
    divergence_block,
)
from .convert import ConversionFailed, convert
from .decisions import DecisionRecorder
from .errors import TraceHazardWarning
from .exporting import explain_rejected_input
from .graphs import first_difference, script_decisions, trace_steps
from .hazards import hazards_from, tracer_hint
from .inputs import InputSet, tensor_leaves
from .jit_warnings import (
    import_torch,
    recording_warnings,
)
from .options import EXPORTED_MODES, Options
from .parity import ParityResult, UncomparableOutput, compare_outputs
from .perf import PerfReport
from .report import CheckReport, describe_mismatch
from .text import first_lines
from .timing import TimingFailed


class Stop(Exception):
    """A stage failed; ``TorchScriptChecker.check`` turns this into a ``CheckFailed`` with the
    report, naming the stage."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class CheckStages:
    """Eager, determinism, parity and control flow (see the module docstring)."""

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
            raise Stop(
                "eager",
                f"the model raised in eager mode on input set {index} {input_set.describe()}, "
                f"before any conversion: {type(error).__name__}: {error}",
            ) from error
        return output, (args, kwargs)

    def _require_deterministic(self, first, second, options: Options) -> None:
        result = self._compare(first[0], second[0], 0, options)
        if not result.ok:
            leaf = result.failures[0]
            raise Stop(
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
            raise Stop("parity", message + (divergences or tracer_hint(report.warnings)))
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
                        raise Stop("conversion", narrowed) from None
                raise Stop(
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
            raise Stop("parity", f"input set {index}: {error}") from None


class TimingStage:
    """Eager, converted and reloaded timed interleaved, published, gated."""

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
            raise Stop("timing", f"{failure}; the other checks of this run still count") from None
        if new_entry is not None:
            self._session.new_baseline_entries[key] = new_entry
        publish_report(self._item, report)
        failures = report.perf.failures(settings.strict)
        if failures:
            raise Stop(
                "perf",
                "\n".join(f"{gate.gate}: {gate.outcome}: {gate.message}" for gate in failures),
            )


def _acknowledged(hazard: Any, patterns: tuple[str, ...]) -> bool:
    """``known_hazards``: a pattern names a location by the end of its path, or a library."""
    location = hazard.location.replace("\\", "/")
    return any(
        location.endswith(pattern.replace("\\", "/")) or pattern == hazard.library
        for pattern in patterns
    )
