"""Statistics for timings on noisy machines: medians and distribution-free intervals.

Timings are skewed and have outliers (another process wakes up), so nothing here assumes a
normal distribution: the interval of a median comes from order statistics (the binomial
argument), which holds for any distribution of independent samples.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A median and its confidence interval."""

    median: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {"median": self.median, "low": self.low, "high": self.high}

    def describe(self, unit: str = "x") -> str:
        return f"{self.median:.3f}{unit} [{self.low:.3f}, {self.high:.3f}]"


def median_interval(samples: list[float], confidence: float = 0.95) -> Interval:
    """The median of ``samples`` with a distribution-free ``confidence`` interval.

    With fewer than 6 samples no 95% interval exists; the full range is returned instead.
    """
    ordered = sorted(samples)
    count = len(ordered)
    if count == 0:
        raise ValueError("no samples")
    median = statistics.median(ordered)
    rank = _lower_rank(count, (1 - confidence) / 2)
    if rank is None:
        return Interval(median, ordered[0], ordered[-1])
    return Interval(median, ordered[rank], ordered[count - 1 - rank])


def _lower_rank(count: int, tail: float) -> int | None:
    """The largest 0-based rank k with P(Binomial(count, 1/2) <= k) <= tail."""
    cumulative = 0.0
    best = None
    for k in range(count):
        cumulative += math.comb(count, k) / 2.0**count
        if cumulative > tail:
            break
        best = k
    return best


def ratio_of(numerator: Interval, denominator: Interval) -> Interval:
    """``numerator / denominator`` with both intervals' widths combined in log space (as
    independent errors), used to compare a ratio measured now with a baseline's."""
    center = math.log(numerator.median / denominator.median)
    below = math.hypot(
        math.log(numerator.median / numerator.low), math.log(denominator.high / denominator.median)
    )
    above = math.hypot(
        math.log(numerator.high / numerator.median), math.log(denominator.median / denominator.low)
    )
    return Interval(math.exp(center), math.exp(center - below), math.exp(center + above))
