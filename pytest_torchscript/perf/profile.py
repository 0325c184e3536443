"""Where the time went: each module's time split by operator (torch.profiler's self time per
operator, as shares of the module's whole time), recorded with the baseline entry and compared
when a gate does not pass, so a regression says which operators took the extra time.

Shares, not times: a uniformly slower machine (or a uniformly slower model) changes no share,
and what changed is what grew. Profiling costs a few calls under the profiler (at most
``SHARE_OF_BUDGET`` of the time budget): once when a baseline entry is recorded, and again only
where a gate said regression or inconclusive."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from ..check.jit_warnings import import_torch

SHARE_OF_BUDGET = 0.03  # of the check's time_budget, at most, per profiled module (three sessions)
# Reading a profile back costs about 30-100 us per operator call it holds (shufflenet makes
# ~1,000 in one forward): at 25 calls a session that made recording a baseline 1.33x slower
# (benchmarks/profile_cost.py). So a session holds about this many operator calls: one call of
# a large model, dozens of a small one (whose single call is too short to split reliably).
EVENTS_PER_SESSION = 400
MAX_CALLS = 50
SESSIONS = 3
SHOWN_SHARE = 0.01  # operators below 1% of the time are summed into "other"
# A share that moved less than this (of the module's time) is not named: one Linear+ReLU
# profiled six times in one quiet process, one thread, read aten::addmm at 77-91% and
# aten::clamp_min at 2.6-13%; an added operator that costs what a regression gate catches
# moves shares by tens of points (aten::mm 0% -> 79% in tests/test_where_time_went.py).
MOVED = 0.15
NAMED = 3  # operators named per module


_warmed: list[bool] = []  # whether this process has started the profiler once


def operator_shares(
    call: Callable[[], Any], device: Any, budget_s: float, threads: int = 1
) -> dict[str, float] | None:
    """The module's self time per operator, as shares of its total: the median over
    ``SESSIONS`` profiles (a disturbance of one, such as page faults on freshly mapped memory
    landing on one operator, does not decide), operators under ``SHOWN_SHARE`` summed as
    "other"; None where the profiler saw no operator time (a module another runtime runs)."""
    torch = import_torch()
    from torch.profiler import ProfilerActivity, profile

    cuda = getattr(device, "type", "cpu") == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # as the module was timed: shares depend on threads
    sessions = []
    window = budget_s * SHARE_OF_BUDGET / SESSIONS
    try:
        with torch.no_grad():
            if not _warmed:  # the profiler's first start in a process, discarded: it
                with profile(activities=activities):  # distorted the first profile (aten::t 5%)
                    call()
                _warmed.append(True)
            calls = 1  # the first session tells how many operator calls one call makes
            for _ in range(SESSIONS):
                started, made = time.perf_counter(), 0
                with profile(activities=activities) as profiler:
                    while made < calls and (made == 0 or time.perf_counter() - started < window):
                        call()
                        made += 1
                    if cuda:
                        torch.cuda.synchronize()
                times, events = _self_times(profiler, cuda)
                sessions.append(times)
                calls = max(1, min(MAX_CALLS, EVENTS_PER_SESSION * made // max(events, 1)))
    finally:
        torch.set_num_threads(previous_threads)
    if not all(sum(times.values()) > 0 for times in sessions):
        return None
    names = {name for times in sessions for name in times}
    shares = {
        name: statistics.median(times.get(name, 0.0) / sum(times.values()) for times in sessions)
        for name in names
    }
    kept = {name: round(share, 4) for name, share in shares.items() if share >= SHOWN_SHARE}
    other = 1.0 - sum(shares[name] for name in kept)
    if other > 0:
        kept["other"] = round(other, 4)
    return dict(sorted(kept.items(), key=lambda item: -item[1]))


def _self_times(profiler: Any, cuda: bool) -> tuple[dict[str, float], int]:
    """Self time per operator (its own, not its callees'), memory records and markers left
    out; and how many operator calls the profile holds."""
    totals: dict[str, float] = {}
    averages = profiler.key_averages()
    for event in averages:
        if event.key.startswith(("[", "ProfilerStep")):
            continue
        spent = float(event.self_cpu_time_total)
        if cuda:
            spent += float(getattr(event, "self_device_time_total", 0.0) or 0.0)
        if spent > 0:
            totals[event.key] = totals.get(event.key, 0.0) + spent
    return totals, sum(event.count for event in averages)


def moved(before: dict[str, float], after: dict[str, float]) -> list[tuple[str, float, float]]:
    """The operators that took the extra time: those whose share grew by at least ``MOVED``,
    largest first, then (as what made room for them) the one whose share shrank most. Only
    shares that shrank say nothing: a busy machine moved an unchanged model's shares by 23
    points that way (memory-bound operators slowed, aten::addmm 90% -> 67%) with nothing
    grown in their place that one operator could explain."""
    names = (set(before) | set(after)) - {"other"}
    delta = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in names}
    grew = sorted((name for name in names if delta[name] >= MOVED), key=lambda n: -delta[n])
    if not grew:
        return []
    shrank = sorted((name for name in names if delta[name] <= -MOVED), key=lambda n: delta[n])
    return [
        (name, before.get(name, 0.0), after.get(name, 0.0)) for name in grew[:NAMED] + shrank[:1]
    ]


def where_the_time_went(recorded: Any, now: dict[str, dict | None]) -> tuple[list[str], str | None]:
    """Lines naming the operators whose share of each module's time moved against the
    baseline's profile, and a note where that cannot be told (no profile recorded, or the
    module runs in another runtime)."""
    if not isinstance(recorded, dict):
        return [], (
            "the baseline entry has no operator profile (recorded before they were kept): "
            "record it again with --ts-update-baseline to see where the time went"
        )
    lines = []
    steady = []
    for role in ("converted", "eager"):
        before, after = recorded.get(role), now.get(role)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        changes = moved(before, after)
        if changes:
            lines.append(
                f"{role}: "
                + ", ".join(f"{name} {old:.0%} -> {new:.0%}" for name, old, new in changes)
            )
        else:
            steady.append(role)
    if steady and not lines:
        return [], (
            f"no operator's share of the time grew by {MOVED:.0%} or more since the baseline: "
            "the extra time is spread over the model (a slower machine, other threads, another "
            "input), or too small for a profile to place"
        )
    if steady:
        lines.append(f"{' and '.join(steady)}: no operator's share grew")
    return lines, None
