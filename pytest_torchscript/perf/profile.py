"""Where the time went: each module's time split by operator (torch.profiler's self time per
operator, as shares of the module's whole time), recorded with the baseline entry and compared
when a gate does not pass, so a regression says which operators took the extra time. In eager,
each operator is also placed under the submodule that called it (``aten::mm under extra.1``):
the converted form runs its submodules inside one graph, so its operators are model-wide, and
the graph diff names their module paths exactly.

Shares, not times: a uniformly slower machine (or a uniformly slower model) changes no share,
and what changed is what grew. Profiling costs a few calls under the profiler (at most
``SHARE_OF_BUDGET`` of the time budget): once when a baseline entry is recorded, and again only
where a gate said regression or inconclusive."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
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


MODULE_RANGE = "pytest-torchscript module: "  # names the profiler range of a submodule's call
EAGER_BY_MODULE = "eager by module"  # the profile's key for eager's shares per submodule

_warmed: list[bool] = []  # whether this process has started the profiler once


@contextlib.contextmanager
def module_ranges(module: Any) -> Iterator[None]:
    """Each submodule's calls inside a profiler range named by its path (forward hooks and
    ``torch.profiler.record_function``), so an operator's time is placed under the innermost
    submodule that called it. Only a Python ``nn.Module`` has hooks that run: anything else
    (a ScriptModule, a plain function) is profiled model-wide, and a scripted submodule's
    operators count for the module that holds it."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        yield
        return
    open_ranges: list[Any] = []
    handles = []

    def leave(*_: Any) -> None:
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    for path, submodule in module.named_modules():
        # a scripted submodule takes no hooks and runs as one graph: its operators count for
        # the module around it
        if not path or isinstance(submodule, torch.jit.ScriptModule):
            continue

        def enter(*_: Any, path: str = path) -> None:
            opened = torch.profiler.record_function(MODULE_RANGE + path)
            opened.__enter__()
            open_ranges.append(opened)

        handles += [
            submodule.register_forward_pre_hook(enter),
            submodule.register_forward_hook(leave),
        ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        while open_ranges:  # a call that raised midway
            leave()


def operator_shares(
    call: Callable[[], Any],
    device: Any,
    budget_s: float,
    threads: int = 1,
    module: Any = None,
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """The module's self time per operator, as shares of its total: the median over
    ``SESSIONS`` profiles (a disturbance of one, such as page faults on freshly mapped memory
    landing on one operator, does not decide), operators under ``SHOWN_SHARE`` summed as
    "other"; None where the profiler saw no operator time (a module another runtime runs).

    With ``module`` (the eager model ``call`` runs) the same time is also split by operator and
    submodule (``aten::mm under extra.1``), the second of the pair; None without. Both levels
    are kept: a slowdown spread over twenty convolutions moves each one's share by a point, and
    their operator's by twenty."""
    torch = import_torch()
    from torch.profiler import ProfilerActivity, profile

    cuda = getattr(device, "type", "cpu") == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # as the module was timed: shares depend on threads
    sessions = []
    window = budget_s * SHARE_OF_BUDGET / SESSIONS
    try:
        with torch.no_grad(), module_ranges(module):
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
        return None, None
    by_operator = [_summed_by_operator(times) for times in sessions]
    # kept even where no operator ran in a submodule (all in the model's own forward): that
    # too says where an operator's time grew, against a baseline whose model had submodules
    return _median_shares(by_operator), _median_shares(sessions) if module is not None else None


def _summed_by_operator(times: dict[str, float]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for name, spent in times.items():
        operator = name.split(" under ")[0]
        summed[operator] = summed.get(operator, 0.0) + spent
    return summed


def _median_shares(sessions: list[dict[str, float]]) -> dict[str, float]:
    """Each name's median share of its session's time; those under ``SHOWN_SHARE`` as "other"."""
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
    """Self time per operator (its own, not its callees'), under the innermost submodule range
    that holds it (``aten::mm under extra.1``); memory records, markers and the submodule ranges
    themselves left out; and how many operator calls the profile holds."""
    totals: dict[str, float] = {}
    events = profiler.events()
    for event in events:
        if event.name.startswith(("[", "ProfilerStep", MODULE_RANGE)):
            continue
        spent = float(event.self_cpu_time_total)
        if cuda:
            spent += float(getattr(event, "self_device_time_total", 0.0) or 0.0)
        if spent <= 0:
            continue
        key = event.name
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith(MODULE_RANGE):
            parent = parent.cpu_parent
        if parent is not None:
            key += " under " + parent.name.removeprefix(MODULE_RANGE)
        totals[key] = totals.get(key, 0.0) + spent
    return totals, len(events)


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


def _valid_shares(shares: Any) -> bool:
    """A role's recorded profile: None (not profiled) or operator -> share of its time."""
    return shares is None or (
        isinstance(shares, dict)
        and all(
            isinstance(value, (int, float)) and not isinstance(value, bool)
            for value in shares.values()
        )
    )


def _placed(recorded: dict, now: dict) -> dict[str, str]:
    """For each operator, the submodule whose share of it grew most (`` (under extra.1: 0% ->
    79%)``), from eager's shares per submodule; empty where either profile lacks them."""
    before, after = recorded.get(EAGER_BY_MODULE), now.get(EAGER_BY_MODULE)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return {}
    best: dict[str, tuple[float, str]] = {}
    for name in (set(before) | set(after)) - {"other"}:
        operator, _, path = name.partition(" under ")
        grew = after.get(name, 0.0) - before.get(name, 0.0)
        if grew > best.get(operator, (0.0, ""))[0]:
            where = path or "the model's own forward"
            said = f" ({where}: {before.get(name, 0.0):.0%} -> {after.get(name, 0.0):.0%})"
            best[operator] = (grew, said)
    return {operator: said for operator, (_, said) in best.items()}


def where_the_time_went(recorded: Any, now: dict[str, dict | None]) -> tuple[list[str], str | None]:
    """Lines naming the operators whose share of each module's time moved against the
    baseline's profile, and a note where that cannot be told (no profile recorded, or the
    module runs in another runtime)."""
    if not isinstance(recorded, dict):
        return [], (
            "the baseline entry has no operator profile (recorded before they were kept): "
            "record it again with --ts-update-baseline to see where the time went"
        )
    if not all(_valid_shares(shares) for shares in recorded.values()):
        return [], (
            "the baseline entry's operator profile is not shares by operator (edited by hand?): "
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
            placed = _placed(recorded, now) if role == "eager" else {}
            lines.append(
                f"{role}: "
                + ", ".join(
                    f"{name} {old:.0%} -> {new:.0%}{placed.get(name, '')}"
                    for name, old, new in changes
                )
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
