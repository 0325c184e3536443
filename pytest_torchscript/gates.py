"""Perf gates with three outcomes: pass, regression, and inconclusive (too noisy to tell).

``max_slowdown``: the converted module may be at most this many times slower than eager in the
same run; the run's own interval decides.

``max_regression`` judges up to three figures against the committed baseline, each as a change
with a 95% interval:

- the converted/eager ratio (the conversion got slower, or faster, relative to eager);
- eager time / probe time and converted time / probe time (see ``probe.py``): the model itself
  got slower, in both forms or one, with the machine's own speed divided out.

Runs differ from each other by more than one run's interval shows, so a figure is a regression
only when its estimate is beyond the threshold *and* its interval excludes "no change"; a pass
needs the interval's upper end within the threshold; the rest is inconclusive, reported, and
failed only with ``--ts-perf-strict``. When the probe shows the machine was busy (see
``contention``), every interval is widened by that much, so a loaded machine reads as
inconclusive, never as a regression of unchanged code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .perfstats import Interval, ratio_of

PASS, REGRESSION, INCONCLUSIVE, MISSING = "pass", "regression", "inconclusive", "missing baseline"
INVALID = "invalid baseline"


@dataclass(frozen=True)
class GateResult:
    gate: str  # "max_slowdown" or "max_regression"
    outcome: str
    message: str
    not_judged: str | None = None  # what the gate could not judge, and why (never silent)

    def to_dict(self) -> dict:
        return {
            "gate": self.gate,
            "outcome": self.outcome,
            "message": self.message,
            "not_judged": self.not_judged,
        }


def max_slowdown_gate(ratio: Interval, limit: float) -> GateResult:
    """Both series come from the same run, so the interval alone decides."""
    figures = f"converted/eager = {ratio.describe()} (95% interval), max_slowdown={limit:g}"
    if ratio.low > limit:
        return GateResult("max_slowdown", REGRESSION, f"slower than allowed: {figures}")
    if ratio.high <= limit:
        return GateResult("max_slowdown", PASS, figures)
    return GateResult("max_slowdown", INCONCLUSIVE, f"too noisy to tell: {figures}")


@dataclass(frozen=True)
class Figure:
    """One figure judged against the baseline: its value now and then, and the change."""

    label: str  # "converted/eager ratio", "eager / probe", "trace / probe"
    now: Interval
    then: Interval
    change: Interval  # now / then, widened for contention

    def outcome(self, threshold: float) -> str:
        if self.change.median - 1 > threshold and self.change.low > 1.0:
            return REGRESSION
        if self.change.high - 1 > threshold:
            return INCONCLUSIVE
        return PASS

    def describe(self) -> str:
        unit = "x" if "ratio" in self.label else ""
        return (
            f"{self.label}: {self.now.describe(unit)} now vs {self.then.describe(unit)} in the "
            f"baseline: {percent(self.change)}"
        )


def figure(label: str, now: Interval, then: Interval, widen: float = 0.0) -> Figure:
    """``now`` against ``then``; ``widen`` (in log units) is added to both sides of the
    change's interval, for what the probe says about a busy machine."""
    change = ratio_of(now, then)
    if widen > 0:
        change = Interval(
            change.median, change.low * math.exp(-widen), change.high * math.exp(widen)
        )
    return Figure(label, now, then, change)


def regression_gate(
    ratio: Figure,
    eager: Figure | None,
    converted: Figure | None,
    threshold: float,
    mode: str = "converted",
    not_judged: str | None = None,
    busy: str | None = None,
) -> GateResult:
    """The ``max_regression`` verdict over the figures that could be judged.

    ``eager``/``converted`` are the probe-normalised times (None where the baseline cannot
    carry them, with ``not_judged`` saying why); ``busy`` says how the probe saw contention."""
    figures = [f for f in (ratio, eager, converted) if f is not None]
    outcomes = {f.label: f.outcome(threshold) for f in figures}
    details = "\n  ".join(
        [f.describe() for f in figures]
        + ([busy] if busy else [])
        + [f"max_regression={threshold:.0%}"]
    )
    if REGRESSION in outcomes.values():
        headline = _what_moved(ratio, eager, converted, threshold, mode)
        return GateResult(
            "max_regression", REGRESSION, f"{headline}\n  {details}", not_judged=not_judged
        )
    if INCONCLUSIVE in outcomes.values():
        why = busy or "an interval reaches past the threshold"
        return GateResult(
            "max_regression",
            INCONCLUSIVE,
            f"too noisy to tell: {why}\n  {details}",
            not_judged=not_judged,
        )
    return GateResult("max_regression", PASS, details, not_judged=not_judged)


def _what_moved(
    ratio: Figure, eager: Figure | None, converted: Figure | None, threshold: float, mode: str
) -> str:
    """One sentence: which form got slower, by how much, and whether the conversion did."""
    slower = {
        f.label: f for f in (ratio, eager, converted) if f and f.outcome(threshold) == REGRESSION
    }
    ratio_note = (
        f"the conversion itself is unchanged (converted/eager {percent(ratio.change)})"
        if ratio.label not in slower
        else f"and the conversion lost ground too (converted/eager {percent(ratio.change)})"
    )
    if eager and converted and eager.label in slower and converted.label in slower:
        both = _combined(eager.change, converted.change)
        return (
            f"the model got {both.median - 1:.0%} slower in eager and {mode} alike "
            f"(probe-normalised, 95% interval {both.low - 1:.0%}..{both.high - 1:.0%}); "
            f"{ratio_note}"
        )
    if eager and eager.label in slower:
        return (
            f"eager got {_amount(eager.change)} slower than in the baseline (probe-normalised); "
            f"{ratio_note}"
        )
    if converted and converted.label in slower:
        return (
            f"the {mode} module got {_amount(converted.change)} slower than in the baseline "
            f"(probe-normalised); "
            + (
                f"relative to eager {percent(ratio.change)}"
                if ratio.label in slower
                else f"eager moved {percent(eager.change)}"
                if eager
                else ""
            )
        )
    return (
        f"slower than the baseline: converted/eager ratio {ratio.now.describe()} now vs "
        f"{ratio.then.describe()} in the baseline: {percent(ratio.change)} change, "
        f"max_regression={threshold:.0%}"
    )


def _combined(first: Interval, second: Interval) -> Interval:
    """The geometric mean of two changes, with the wider of their intervals around it."""
    median = math.sqrt(first.median * second.median)
    below = max(math.log(first.median / first.low), math.log(second.median / second.low))
    above = max(math.log(first.high / first.median), math.log(second.high / second.median))
    return Interval(median, median * math.exp(-below), median * math.exp(above))


def _amount(change: Interval) -> str:
    return f"{change.median - 1:.0%} (95% interval {change.low - 1:.0%}..{change.high - 1:.0%})"


def percent(change: Interval) -> str:
    return f"{change.median - 1:+.1%} [{change.low - 1:+.1%}, {change.high - 1:+.1%}]"
