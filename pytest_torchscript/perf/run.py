"""The timing stage of a check: measure (with the machine-speed probe when a baseline is in
use), gate, and build the baseline entry; publishing to pytest-benchmark is the caller's."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..config.settings import PerfSettings
from . import baseline, graph_diff, profile
from .gates import (
    INCONCLUSIVE,
    INVALID,
    MISSING,
    PASS,
    REGRESSION,
    STALE,
    GateResult,
    max_slowdown_gate,
)
from .probe import COMPONENTS, reference_workloads, series_name
from .stats import Interval, disagreement, median_interval
from .timing import MIN_ROUNDS, WARMUP_SHARE, TimingResult, TooSlowToTime, measure
from .verdicts import against_baseline, one_story, ratio_verdict, spread

# Device types on which benchmarks/gate_quality.py has measured max_regression against the
# issue's bar (false alarms, detection of 10/25/50% slowdowns). On the first GPU run (an H100)
# the gate was inconclusive on 3 of 6 unchanged gates and passed a model-wide 50% slowdown, so
# elsewhere every run says its gates are advisory (reporting.terminal), never silently trusted.
VALIDATED_DEVICE_TYPES = ("cpu",)


@dataclass
class PerfReport:
    """Timings of one check and what the gates made of them."""

    note: str | None = None  # why nothing was timed, when nothing was
    timing: TimingResult | None = None
    # converted/eager over paired interleaved rounds: shown, gated, kept in the baseline
    ratio: Interval | None = None
    reloaded_ratio: Interval | None = None
    latency_ratio: Interval | None = None  # converted/eager of the steady-state latencies
    # The model's series only: steady-state latency per call, what a reader quotes...
    medians: dict[str, Interval] = field(default_factory=dict)
    # ...and the interleaved medians the gates and the baseline use (see timing.py).
    interleaved: dict[str, Interval] = field(default_factory=dict)
    probe: Interval | None = None  # the machine-speed probe's per-call time
    probe_spread: float = 0.0  # the relative spread of its rounds (contention shows here)
    normalised: dict[str, Interval] = field(default_factory=dict)  # "eager"/"converted" / probe
    # Why the absolute figures cannot be judged in this run, when the machine was too busy to
    # time the model and the probe cleanly (see ``too_busy``).
    too_busy: str | None = None
    ratio_too_busy: str | None = None  # the same for the ratio, from eager and converted alone
    gates: list[GateResult] = field(default_factory=list)
    baseline_key: str | None = None
    # With --ts-update-baseline: the entry was recorded from too few rounds for a gate to
    # decide with, and the budget that would fit enough (set in ``run``).
    advice: str | None = None
    # Where the row's figures tell two stories (``disagreement``), in words; None when not.
    disagreement: str | None = None
    # The converted graph's operator counts that changed since the baseline entry (exact), and
    # why none could be compared (an entry recorded without a fingerprint).
    graph_changes: list[str] = field(default_factory=list)
    fusions_lost: list[str] = field(default_factory=list)  # graph_diff.fusions_lost
    graph_note: str | None = None
    # where the time went: each operator whose share of a module's time moved against the
    # baseline entry's profile (profiled only where a gate did not pass), or why not told
    time_went: list[str] = field(default_factory=list)
    profile_note: str | None = None

    def failures(self, strict: bool) -> list[GateResult]:
        bad = (
            {REGRESSION, INCONCLUSIVE, MISSING, STALE, INVALID} if strict else {REGRESSION, INVALID}
        )
        return [gate for gate in self.gates if gate.outcome in bad]

    @property
    def verdict(self) -> str:
        outcomes = {gate.outcome for gate in self.gates}
        for outcome in (INVALID, REGRESSION, INCONCLUSIVE, STALE, MISSING, PASS):
            if outcome in outcomes:
                return outcome
        return "timed" if self.timing else (self.note or "-")

    def to_dict(self) -> dict:
        return {
            "note": self.note,
            "verdict": self.verdict,
            "ratio": self.ratio.to_dict() if self.ratio else None,
            "reloaded_ratio": self.reloaded_ratio.to_dict() if self.reloaded_ratio else None,
            "latency_ratio": self.latency_ratio.to_dict() if self.latency_ratio else None,
            "medians": {name: interval.to_dict() for name, interval in self.medians.items()},
            "interleaved_medians": {
                name: interval.to_dict() for name, interval in self.interleaved.items()
            },
            "probe": self.probe.to_dict() if self.probe else None,
            "normalised": {name: value.to_dict() for name, value in self.normalised.items()},
            "gates": [gate.to_dict() for gate in self.gates],
            "baseline_key": self.baseline_key,
            "advice": self.advice,
            "disagreement": self.disagreement,
            "graph_changes": self.graph_changes,
            "fusions_lost": self.fusions_lost,
            "graph_note": self.graph_note,
            "time_went": self.time_went,
            "profile_note": self.profile_note,
            "timing": self.timing.to_dict() if self.timing else None,
        }


def _not_timed(
    slow: TooSlowToTime,
    budget_s: float,
    settings: PerfSettings,
    key: str,
    max_slowdown: float | None,
) -> PerfReport:
    """A model too slow for the budget: nothing timed, said in the note, and every gate asked
    for is inconclusive with that reason (failed under --ts-perf-strict), never a pass."""
    note = (
        f"not timed: one {slow.name} call takes {slow.call_s:.2f} s, so even the fewest "
        f"rounds would take about {slow.needed_s:.0f} s against time_budget={budget_s:g} s; "
        f"raise time_budget= to at least {math.ceil(slow.needed_s)} to time this model"
    )
    report = PerfReport(note=note, baseline_key=key)
    if max_slowdown is not None:
        report.gates.append(GateResult("max_slowdown", INCONCLUSIVE, note))
    if settings.baseline_path is not None and not settings.update_baseline:
        report.gates.append(GateResult("max_regression", INCONCLUSIVE, note))
    return report


def run(
    calls: dict[str, Callable[[], Any]],
    device: Any,
    budget_s: float,
    settings: PerfSettings,
    baseline_entries: dict[str, Any],
    key: str,
    max_slowdown: float | None,
    max_regression: float,
    mode: str = "converted",
    timed_input: str | None = None,
    graph: dict | None = None,
    max_graph_change: int | None = None,
    profiled: bool = True,
) -> tuple[PerfReport, dict | None]:
    """Time ``calls`` (eager first, converted second, reloaded third if present) and gate.
    ``timed_input`` describes the input set the calls run on: a baseline entry recorded on
    another compares with nothing here. ``profiled``: whether the converted module runs in
    torch, where torch.profiler can split its time by operator. Returns the report and, with
    --ts-update-baseline, the new baseline entry."""
    names = list(calls)
    fingerprint = baseline.fingerprint(device, settings.threads)
    loops = None
    if settings.baseline_path is not None:  # absolute times are judged: measure the machine
        calls = {**calls, **reference_workloads(device)}
        entry = baseline_entries.get(key)
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            loops = entry.get("loops")  # the same calls per sample as the baseline's
    try:
        timing = measure(calls, device, budget_s, settings.threads, loops, tuple(names))
    except TooSlowToTime as slow:
        return _not_timed(slow, budget_s, settings, key, max_slowdown), None
    report = PerfReport(timing=timing, baseline_key=key)
    report.medians = {name: timing.latency(name) for name in names}
    report.interleaved = {name: timing.median(name) for name in names}
    report.ratio = timing.ratio(names[1], names[0])
    report.latency_ratio = timing.latency_ratio(names[1], names[0])
    if len(names) > 2:
        report.reloaded_ratio = timing.ratio(names[2], names[0])
    probe = probe_totals(timing)
    if probe:
        components = [series_name(c) for c in COMPONENTS if series_name(c) in timing.samples]
        steady_probe = [probe[i] for i in timing.undisturbed(*components)]
        report.probe = median_interval(steady_probe)
        report.probe_spread = spread(steady_probe)
        report.normalised = {
            role: median_interval(
                [timing.samples[name][i] / probe[i] for i in timing.undisturbed(name, *components)]
            )
            for role, name in (("eager", names[0]), ("converted", names[1]))
        }
        report.too_busy = too_busy(timing, [*names[:2], *components], "absolute times")
    report.ratio_too_busy = too_busy(timing, names[:2], "the converted/eager ratio")
    if max_slowdown is not None:
        report.gates.append(
            ratio_verdict(
                max_slowdown_gate(report.ratio, max_slowdown),
                report.ratio.median,
                report.ratio_too_busy,
            )
        )
    new_entry = None
    unclean = report.ratio_too_busy or report.too_busy
    if settings.update_baseline and unclean:
        # Every later gate would compare with it: an entry timed through other processes'
        # slices is not written (an entry recorded before stays as it was), and that is said.
        unrecorded = f"baseline entry not recorded: {unclean}; record it again on a quieter machine"
        report.gates.append(
            GateResult("max_regression", INCONCLUSIVE, unrecorded, not_judged=unrecorded)
        )
    elif settings.update_baseline:
        new_entry = {
            "ratio": report.ratio.to_dict(),
            "eager_median": report.interleaved[names[0]].median,
            "converted_median": report.interleaved[names[1]].median,
            "normalised": {name: value.to_dict() for name, value in report.normalised.items()},
            "probe": {
                **report.probe.to_dict(),
                "spread": report.probe_spread,
                "components": component_medians(timing),
            },
            "rounds": timing.rounds,
            "loops": timing.loops,
            "fingerprint": fingerprint,
            # steady-state latencies: the gate's second instrument (gates.SteadyChanges)
            "latency": {
                "eager": report.medians[names[0]].median,
                "converted": report.medians[names[1]].median,
            },
        }
        if timed_input is not None:
            new_entry["timed_input"] = timed_input
        if graph is not None:  # what the converted module computes: compared exactly later
            new_entry["graph"] = graph
        new_entry["profile"], failed = profiles(
            calls, names, device, budget_s, profiled, settings.threads
        )
        if failed:
            report.profile_note = f"no operator profile recorded with this entry: {failed}"
        if timing.coarse:
            report.advice = (
                f"baseline entry recorded from only {timing.rounds} rounds in "
                f"time_budget={budget_s:g} s, {_too_few(timing)}: its gates will be too wide to "
                f"decide; give the test time_budget={_enough_budget(timing, budget_s)} (marker, "
                f"or ts_time_budget in ini) and record it again"
            )
    elif settings.baseline_path is not None:
        report.gates.append(
            against_baseline(
                report,
                component_medians(timing),
                baseline_entries.get(key),
                fingerprint,
                max_regression,
                key,
                settings,
                mode,
                timed_input,
            )
        )
    entry = baseline_entries.get(key) if settings.baseline_path is not None else None
    if entry is not None and not settings.update_baseline:
        compare_graphs(report, entry, graph, max_graph_change)
        if any(gate.outcome in (REGRESSION, INCONCLUSIVE) for gate in report.gates):
            explain_time(
                report, entry, profiles(calls, names, device, budget_s, profiled, settings.threads)
            )
    report.gates = [
        explain_coarse(explain_busy(gate, timing), timing, budget_s, entry) for gate in report.gates
    ]
    tell_one_story(report, entry)
    return report, new_entry


def tell_one_story(report: PerfReport, entry: dict | None) -> None:
    """Say where the row's figures tell two stories (``stats.disagreement``), and pass no gate
    on them, unless it is a max_regression gate whose baseline ``entry`` had the same two
    (``verdicts.one_story``)."""
    report.disagreement = disagreement(report.latency_ratio, report.ratio, report.reloaded_ratio)
    if report.disagreement is not None:
        report.gates = one_story(
            report.gates,
            report.disagreement,
            report.latency_ratio,
            report.ratio,
            report.reloaded_ratio,
            entry,
        )


def profiles(
    calls: dict[str, Callable[[], Any]],
    names: list[str],
    device: Any,
    budget_s: float,
    profiled: bool,
    threads: int,
) -> tuple[dict[str, Any] | None, str | None]:
    """Eager's and the converted module's time split by operator (``profile.operator_shares``;
    None for a converted module another runtime runs: onnxruntime, TVM), or None and why where
    the profiler itself failed: a profile explains a verdict, it never decides or fails one."""
    try:
        # eager's call is the model bound to its inputs (perf/stage.py): its submodules then
        # place each operator
        eager, by_module = profile.operator_shares(
            calls[names[0]], device, budget_s, threads, getattr(calls[names[0]], "func", None)
        )
        converted = (
            profile.operator_shares(calls[names[1]], device, budget_s, threads)[0]
            if profiled
            else None
        )
        shares = {"eager": eager, "converted": converted}
        if by_module is not None:
            shares[profile.EAGER_BY_MODULE] = by_module
        return shares, None
    except Exception as error:  # noqa: BLE001 - said in the report, the check goes on
        return None, f"torch.profiler failed ({type(error).__name__}: {error})"


def explain_time(report: PerfReport, entry: dict, now: tuple[dict | None, str | None]) -> None:
    """Where the time went, beside every gate that did not pass: the operators whose share of
    each module's time moved since the baseline entry was recorded."""
    shares, failed = now
    if failed:
        report.profile_note = f"where the time went cannot be told: {failed}"
        return
    report.time_went, report.profile_note = profile.where_the_time_went(
        entry.get("profile"), shares
    )
    if not report.time_went:
        return
    said = "where the time went (each operator's share of the module's time, baseline -> now): "
    said += "; ".join(report.time_went)
    report.gates = [
        replace(gate, message=f"{gate.message}\n  {said}")
        if gate.outcome in (REGRESSION, INCONCLUSIVE)
        else gate
        for gate in report.gates
    ]


def compare_graphs(
    report: PerfReport, entry: Any, graph: dict | None, max_graph_change: int | None
) -> None:
    """The converted graph against the baseline entry's: every operator count that changed
    (exact, no noise), said beside the gate's verdict and in a regression's message, and a
    ``max_graph_change`` gate where the user set one."""
    if not isinstance(entry, dict) or graph is None:
        return
    recorded = entry.get("graph")
    if not graph_diff.valid(recorded):
        report.graph_note = graph_diff.NO_FINGERPRINT
        if max_graph_change is not None:
            report.gates.append(GateResult("max_graph_change", INCONCLUSIVE, report.graph_note))
        return
    report.graph_changes = graph_diff.changes(recorded, graph)
    report.fusions_lost = graph_diff.fusions_lost(recorded, graph)
    if report.graph_changes:
        said = "the converted graph changed since the baseline: " + graph_diff.summary(
            report.graph_changes, 8
        )
        said += "".join(f"\n  {line}" for line in report.fusions_lost)
        report.gates = [
            replace(gate, message=f"{gate.message}\n  {said}")
            if gate.outcome in (REGRESSION, INCONCLUSIVE)
            else gate
            for gate in report.gates
        ]
    if max_graph_change is not None:
        count = len(report.graph_changes)
        report.gates.append(
            GateResult(
                "max_graph_change",
                REGRESSION if count > max_graph_change else PASS,
                f"{count} operator count(s) of the converted graph changed since the baseline, "
                f"max_graph_change={max_graph_change}"
                + ("".join(f"\n  {line}" for line in report.graph_changes[:12])),
            )
        )


def too_busy(timing: TimingResult, series: list[str], what: str) -> str | None:
    """Why ``what`` (figures from ``series``) cannot be judged in this run, or None when it can.

    A preempted sample holds another process's scheduler slices, and a long sample is
    preempted far more often than a short one: on a machine with more runnable work than
    cores, resnet18's 10 ms calls were preempted in 29-33 of 36 rounds and the probe's in 3-17.
    Where too few rounds were clean, all of them are used, and the model read 17-44% slower
    against the probe with nothing changed (example_project beside ``pytest -n 2``); a slice
    added to eager and converted alike also pulls their ratio towards 1. Such figures are not
    judged: the gate says inconclusive, with this reason."""
    clean = timing.clean_rounds(*series)
    if clean >= MIN_ROUNDS or clean == timing.rounds:  # enough, or few but none interrupted
        return None
    return (
        f"{what} not judged: the machine was too busy to time them cleanly (only {clean} of "
        f"{timing.rounds} rounds ran without another process taking the core, and a long call "
        f"is interrupted more often than a short one); run the gate on a quieter machine"
    )


def explain_busy(gate: GateResult, timing: TimingResult) -> GateResult:
    """An inconclusive gate on a machine that kept switching the check out says so: the fix
    is a quieter runner or a longer time_budget, not a looser threshold."""
    disturbed = timing.disturbed_rounds
    if gate.outcome != INCONCLUSIVE or not disturbed:
        return gate
    return replace(
        gate,
        message=f"{gate.message}; {disturbed} of {timing.rounds} rounds were interrupted by "
        f"other processes on this machine (run it on a quieter one or raise time_budget)",
    )


def explain_coarse(
    gate: GateResult, timing: TimingResult, budget_s: float, entry: Any
) -> GateResult:
    """An inconclusive gate of a model too slow for many rounds in its budget says what budget
    would fit enough. resnet50 (67 ms a call) fitted 5 rounds in the default 2 s, whose 95%
    interval is their whole range: a model-wide 17% slowdown read "too noisy to tell"; with
    time_budget=6 (21 rounds) the same slowdown was a regression with a 15%..19% interval.
    A baseline entry recorded from that few rounds is as wide, so it says to re-record it."""
    if gate.outcome != INCONCLUSIVE or timing.rounds == 0 or gate.message == gate.not_judged:
        return gate
    recorded = entry.get("rounds") if isinstance(entry, dict) else None
    coarse_then = (
        gate.gate == "max_regression" and isinstance(recorded, int) and recorded < MIN_ROUNDS
    )
    if not (timing.coarse or coarse_then):
        return gate
    fitted = []
    if timing.coarse:
        fitted.append(f"only {timing.rounds} rounds fitted in time_budget={budget_s:g} s")
    if coarse_then:
        fitted.append(f"the baseline entry was recorded from {recorded}")
    return replace(
        gate,
        message=f"{gate.message}\n  {' and '.join(fitted)}, {_too_few(timing)}: give the test "
        f"time_budget={_enough_budget(timing, budget_s)} (marker, or ts_time_budget in ini)"
        + (" and re-record its baseline entry with it" if coarse_then else ""),
    )


def _per_round(timing: TimingResult) -> float:
    return timing.phases.get("rounds", 0.0) / max(timing.rounds, 1)


def _too_few(timing: TimingResult) -> str:
    return (
        f"and a 95% interval needs {MIN_ROUNDS} or more (a round of this model takes "
        f"{_per_round(timing) * 1e3:.0f} ms)"
    )


def _enough_budget(timing: TimingResult, budget_s: float) -> int:
    """Whole seconds that fit twice the fewest rounds giving an interval, after the warm-up's
    share of the budget; more than ``budget_s`` in any case."""
    needed = 2 * MIN_ROUNDS * _per_round(timing) / (1 - WARMUP_SHARE)
    return max(math.floor(budget_s) + 1, math.ceil(needed))


def probe_totals(timing: TimingResult) -> list[float]:
    """The probe's time per round ([] without a probe): the geometric mean of its components'
    times, so each kind of work weighs the same whatever it costs in seconds (a sum would be
    the memory stream's time alone)."""
    parts = [timing.samples[series_name(c)] for c in COMPONENTS if series_name(c) in timing.samples]
    if not parts:
        return []
    return [math.exp(sum(map(math.log, values)) / len(values)) for values in zip(*parts)]


def component_medians(timing: TimingResult) -> dict[str, float]:
    return {
        component: timing.median(series_name(component)).median
        for component in COMPONENTS
        if series_name(component) in timing.samples
    }
