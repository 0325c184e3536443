"""The timing stage of a check: measure, publish to pytest-benchmark, gate, record baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import baseline
from .gates import (
    INCONCLUSIVE,
    MISSING,
    PASS,
    REGRESSION,
    GateResult,
    max_slowdown_gate,
    regression_gate,
)
from .perfstats import Interval
from .timing import TimingResult, measure


@dataclass
class PerfReport:
    """Timings of one check and what the gates made of them."""

    note: str | None = None  # why nothing was timed, when nothing was
    timing: TimingResult | None = None
    ratio: Interval | None = None
    reloaded_ratio: Interval | None = None
    medians: dict[str, Interval] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    baseline_key: str | None = None

    def failures(self, strict: bool) -> list[GateResult]:
        bad = {REGRESSION, INCONCLUSIVE, MISSING} if strict else {REGRESSION}
        return [gate for gate in self.gates if gate.outcome in bad]

    @property
    def verdict(self) -> str:
        outcomes = {gate.outcome for gate in self.gates}
        for outcome in (REGRESSION, INCONCLUSIVE, MISSING, PASS):
            if outcome in outcomes:
                return outcome
        return "timed" if self.timing else (self.note or "-")

    def to_dict(self) -> dict:
        return {
            "note": self.note,
            "verdict": self.verdict,
            "ratio": self.ratio.to_dict() if self.ratio else None,
            "reloaded_ratio": self.reloaded_ratio.to_dict() if self.reloaded_ratio else None,
            "medians": {name: interval.to_dict() for name, interval in self.medians.items()},
            "gates": [gate.to_dict() for gate in self.gates],
            "baseline_key": self.baseline_key,
            "timing": self.timing.to_dict() if self.timing else None,
        }


@dataclass(frozen=True)
class PerfSettings:
    """Run-wide perf settings (command line > ini)."""

    baseline_path: Any = None  # Path
    update_baseline: bool = False
    strict: bool = False
    threads: int = 1


def run(
    calls: dict[str, Callable[[], Any]],
    device: Any,
    budget_s: float,
    settings: PerfSettings,
    baseline_entries: dict[str, dict],
    key: str,
    max_slowdown: float | None,
    max_regression: float,
) -> tuple[PerfReport, dict | None]:
    """Time ``calls`` (eager first, converted second, reloaded third if present) and gate.
    Returns the report and, with --ts-update-baseline, the new baseline entry."""
    timing = measure(calls, device, budget_s, settings.threads)
    names = list(calls)
    report = PerfReport(timing=timing, baseline_key=key)
    report.medians = {name: timing.median(name) for name in names}
    report.ratio = timing.ratio(names[1], names[0])
    if len(names) > 2:
        report.reloaded_ratio = timing.ratio(names[2], names[0])
    if max_slowdown is not None:
        report.gates.append(max_slowdown_gate(report.ratio, max_slowdown))
    fingerprint = baseline.fingerprint(device, settings.threads)
    new_entry = None
    if settings.update_baseline:
        new_entry = {
            "ratio": report.ratio.to_dict(),
            "eager_median": report.medians[names[0]].median,
            "converted_median": report.medians[names[1]].median,
            "spread": {name: interval.to_dict() for name, interval in report.medians.items()},
            "rounds": timing.rounds,
            "fingerprint": fingerprint,
        }
    elif settings.baseline_path is not None:
        report.gates.append(
            _against_baseline(
                report, names, baseline_entries.get(key), fingerprint, max_regression, key, settings
            )
        )
    return report, new_entry


def _against_baseline(report, names, entry, fingerprint, threshold, key, settings) -> GateResult:
    if entry is None:
        return GateResult(
            "max_regression",
            MISSING,
            f"no baseline entry {key!r} in {settings.baseline_path}; record it with "
            f"pytest --ts-baseline={settings.baseline_path} --ts-update-baseline",
        )
    then = Interval(**entry["ratio"])
    absolute = None
    if entry["fingerprint"] == fingerprint and "spread" in entry:
        spread = entry["spread"]
        try:
            absolute = (
                report.medians[names[1]],
                Interval(**spread[names[1]]),
                report.medians[names[0]],
                Interval(**spread[names[0]]),
            )
        except (KeyError, TypeError):
            absolute = None
    return regression_gate(report.ratio, then, threshold, absolute)
