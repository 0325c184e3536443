"""The timing stage of a check: eager, converted and reloaded timed interleaved (``run.py``),
published to pytest-benchmark, recorded for ``--ts-update-baseline`` and gated; a failed gate
stops the check at "perf"."""

from __future__ import annotations

import functools
from typing import Any

from ..check.inputs import InputSet
from ..check.jit_warnings import recording_warnings
from ..check.stages import Stop, evaluation
from . import baseline
from . import run as perf
from .benchmark_bridge import publish_report
from .run import PerfReport
from .timing import TimingFailed


def time_and_gate(ctx: Any, model: Any, converted: Any, reloaded: Any, example: InputSet) -> None:
    """Time eager, converted and reloaded (when the round trip ran) on ``example``."""
    report, options, session = ctx.report, ctx.options, ctx.session
    if session.timing_off is not None:
        report.perf = PerfReport(note=session.timing_off)
        return
    series = {"eager": model, report.mode: converted}
    if reloaded is not None:
        series[f"{report.mode} reloaded"] = reloaded
    calls = {}
    for name, module in series.items():
        args, kwargs = example.copy_to(ctx.device)
        # a runtime of its own (TVM) is timed on its own tensors, made once, outside the
        # timed region, as a deployment that keeps its data there calls it
        prepared = getattr(module, "timed_call", None) if name != "eager" else None
        calls[name] = (
            prepared(*args, **kwargs) if prepared else functools.partial(module, *args, **kwargs)
        )
    key = baseline.entry_key(ctx.test_id, report.mode, str(ctx.device))
    if ctx.check_number > 1:  # a second check() of this mode in one test has its own entry
        key += f" | {ctx.check_number}"
    settings = session.settings.perf
    try:
        with evaluation(model, ctx.device), recording_warnings(report.warnings):
            report.perf, new_entry = perf.run(
                calls,
                ctx.device,
                options.time_budget,
                settings,
                session.baseline_entries,
                key,
                options.max_slowdown,
                options.max_regression,
                report.mode,
                example.describe(),
                report.graph,
                options.max_graph_change,
                ctx.backend.runs_in_torch,
            )
    except TimingFailed as failure:
        raise Stop("timing", f"{failure}; the other checks of this run still count") from None
    if new_entry is not None:
        session.new_baseline_entries[key] = new_entry
    if settings.baseline_path is None and "max_regression" in options.explicit:
        session.regression_gates_without_baseline.append(ctx.test_id)
    if report.perf.timing is not None:  # a model too slow for the budget was not timed
        publish_report(ctx.item, report)
    failures = report.perf.failures(settings.strict)
    if failures:
        raise Stop(
            "perf",
            "\n".join(f"{gate.gate}: {gate.outcome}: {gate.message}" for gate in failures),
        )
