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


# How far apart two figures of one check must be to tell two stories. Both say "faster" or
# both "slower" and within 15% of each other: one story told twice (tvm on a small conv net
# read 0.368x steady and 0.349x interleaved, intervals of +-0.5% apart, on a quiet machine;
# calling it a contradiction made every such gate inconclusive). On opposite sides of eager,
# 5% apart is already two stories.
TWO_STORIES = 0.15
OPPOSITE_STORIES = 0.05


def stories_apart(first: Interval, second: Interval) -> bool:
    """Whether two ratios tell two stories: their intervals exclude each other and their
    medians differ by more than ``TWO_STORIES``, or by ``OPPOSITE_STORIES`` on opposite sides
    of eager (one faster, one slower)."""
    separate = first.high < second.low or second.high < first.low
    apart = abs(math.log(first.median / second.median))
    opposite = (first.median < 1) != (second.median < 1)
    margin = OPPOSITE_STORIES if opposite else TWO_STORIES
    return separate and apart > math.log1p(margin)


def disagreement(
    steady: Interval | None, rounds: Interval | None, reloaded: Interval | None = None
) -> str | None:
    """Where one check's figures tell two stories, the sentence that says so; else None.

    The steady-state latencies (consecutive calls, what a reader quotes) and the interleaved
    rounds (what the gates judge) time the same two modules; where their converted/eager
    ratios disagree beyond both intervals, the machine changed between the two, or switching
    from one module to the other costs one of them more (a cache the other evicts), and which
    figure a deployment sees cannot be told from this run. Converted and reloaded run the same
    graph: apart beyond their intervals, one of them was timed while the machine was busy."""
    if steady is None or rounds is None:
        return None
    if stories_apart(steady, rounds):
        return (
            f"the two figures of this row disagree: the steady-state latencies put "
            f"converted/eager at {steady.describe()} and the interleaved rounds at "
            f"{rounds.describe()}, apart beyond both intervals (the machine changed while "
            f"timing, or switching between the modules costs one of them more); too noisy to "
            f"tell which a deployment sees, so no gate passes on them: time it again on a "
            f"quieter machine or with a longer time_budget"
        )
    if reloaded is not None and stories_apart(reloaded, rounds):
        return (
            f"converted and reloaded run the same graph but read {rounds.describe()} and "
            f"{reloaded.describe()} against eager, apart beyond both intervals: one of them "
            f"was timed while the machine was busier; too noisy to tell, so no gate passes on "
            f"them"
        )
    return None
