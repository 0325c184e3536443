"""Perf gates with three outcomes: pass, regression, and inconclusive (too noisy to tell).

``max_slowdown``: the converted module may be at most this many times slower than eager in the
same run; the run's own interval decides. ``max_regression``: the converted/eager ratio may
grow by at most this fraction over the committed baseline. Runs differ from each other by more
than one run's interval shows (measured: ~1% on an idle machine), so a regression needs the
estimate beyond the threshold *and* an interval that excludes "no change"; a pass needs the
interval's upper end within the threshold; the rest is inconclusive, reported, and failed only
with ``--ts-perf-strict``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .perfstats import Interval, ratio_of

PASS, REGRESSION, INCONCLUSIVE, MISSING = "pass", "regression", "inconclusive", "missing baseline"


@dataclass(frozen=True)
class GateResult:
    gate: str  # "max_slowdown" or "max_regression"
    outcome: str
    message: str

    def to_dict(self) -> dict:
        return {"gate": self.gate, "outcome": self.outcome, "message": self.message}


def max_slowdown_gate(ratio: Interval, limit: float) -> GateResult:
    """Both series come from the same run, so the interval alone decides."""
    figures = f"converted/eager = {ratio.describe()} (95% interval), max_slowdown={limit:g}"
    if ratio.low > limit:
        return GateResult("max_slowdown", REGRESSION, f"slower than allowed: {figures}")
    if ratio.high <= limit:
        return GateResult("max_slowdown", PASS, figures)
    return GateResult("max_slowdown", INCONCLUSIVE, f"too noisy to tell: {figures}")


def regression_gate(
    now: Interval,
    baseline: Interval,
    threshold: float,
    absolute: tuple[Interval, Interval, Interval, Interval] | None = None,
) -> GateResult:
    """``now``/``baseline``: converted/eager ratios. ``absolute``, when the machine fingerprints
    match: (converted now, converted baseline, eager now, eager baseline) medians."""
    change = ratio_of(now, baseline)
    figures = (
        f"converted/eager ratio {now.describe()} now vs {baseline.describe()} in the baseline: "
        f"{_percent(change)} change, max_regression={threshold:.0%}"
    )
    if change.median - 1 > threshold and change.low > 1.0:
        return GateResult("max_regression", REGRESSION, f"slower than the baseline: {figures}")
    if change.high - 1 > threshold:
        return GateResult("max_regression", INCONCLUSIVE, f"too noisy to tell: {figures}")
    if absolute is not None:
        converted = ratio_of(absolute[0], absolute[1])
        eager = ratio_of(absolute[2], absolute[3])
        if converted.median - 1 > threshold and converted.low > 1.0:
            return GateResult(
                "max_regression",
                INCONCLUSIVE,
                f"the ratio to eager held ({figures}), but on the same machine type the "
                f"converted module took {_percent(converted)} longer than in the baseline and "
                f"eager {_percent(eager)}: the machine was slower, or the model changed in both "
                f"forms",
            )
    return GateResult("max_regression", PASS, figures)


def _percent(change: Interval) -> str:
    return f"{change.median - 1:+.1%} [{change.low - 1:+.1%}, {change.high - 1:+.1%}]"
