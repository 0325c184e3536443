"""Timing eager, converted and reloaded modules fairly on a shared, noisy machine.

The series run in the same process, interleaved round by round (A B C, B C A, C A B, ...), so
drift in the machine's speed hits all of them; the figure that matters is the paired per-round
ratio, whose median gets a distribution-free interval. Warm-up runs first, long enough for the
TorchScript profiling executor to specialise the graph. On CUDA every timed block is
synchronised so kernels are counted, not launches, and peak memory is recorded.

The rounds are the gates' instrument, not the latency a reader should quote: after another
series ran (or anything else, a pause or a busy loop), a module runs slower for its next few to
tens of milliseconds (measured on this project's 2-core machine with mobilenet_v3_small: the
first call 20-50% slower, the next ten still 5-15%), so interleaved samples of every series
carry that switch cost alike. Their ratios and their comparison with a baseline timed the same
way are sound; their absolute values read high. So each series also gets a steady-state
latency, timed on consecutive calls as ``torch.utils.benchmark.Timer`` does, in two windows
(right after its warm-up, and after the rounds; the faster counts, so a transient in one window
is not read as the module's speed); ``benchmarks/timing_accuracy.py`` compares it with Timer,
and that is what reports show.

The budget is a budget: each series gets its own loop count (a sample of a fast module holds
several calls, a slow module's holds one), warm-up stops early for slow modules, and the number
of rounds is what fits in what is left. When fewer rounds fit than a 95% interval needs, the
result says it is coarse. The steady-state latencies come on top (each window a fifth of the
budget at most, the first up to half again while a module is still settling), so the rounds
keep their precision.

A round during which the OS switched the process out (another process wanted the core: a
neighbouring test, a compiler, a CI job on the same runner) measured the neighbour, not the
module: its sample is inflated by whole scheduler slices, milliseconds against a sample of
about two. Such rounds are counted (``getrusage``'s involuntary context switches; on a CPU with
one thread, only where the switch cost the sample more than DISTURBED_SHARE of it, by the
thread's own CPU time: on a quiet machine, a kernel thread's few microseconds interrupted a
third of a 67 ms model's samples, and resnet50 could never record a baseline) and left out
of every median and ratio, and replaced by further rounds while the whole timing stays within
CEILING budgets (under 3 s for the default 2 s: a busy machine costs precision, never an
open-ended wait); only where too few undisturbed rounds remain are all of them used, and the
intervals say how noisy that was.

A Python tracer (coverage under ``--cov``, a debugger) is suspended while timing: it slows
every Python frame of an eager forward and hardly any of a converted one, so a suite gated
with ``--cov`` against a baseline recorded without it read an unchanged MLP as 26% slower in
eager (and the conversion 21% faster). The timings measure the model; the model's lines are
still covered by the check's other calls (eager runs, parity). A C-level hook that cannot be
put back exactly (cProfile's) is left running (``python_tracers_suspended``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    import resource  # POSIX only
except ImportError:  # pragma: no cover - Windows
    resource = None

from ..check.jit_warnings import import_torch
from . import cpu_memory
from .python_tracers import python_tracers_suspended
from .stats import Interval, median_interval, ratio_of

WARMUP_CALLS = 6  # the profiling executor specialises after 1-2 runs; a margin for bailouts
WARMUP_MIN_S = 0.05  # a model's warm-up lasts at least this long (within its share), so one
# that ran nothing for a while (the check's conversion, round trips) has settled
MIN_WARMUP_CALLS = 2  # a slow module gets at least the runs that specialise its graph
WARMUP_SHARE = 0.3  # of the budget, at most, spent warming up slow modules
MIN_ROUNDS = 9  # fewer rounds give no 95% interval: the estimate is then coarse
FLOOR_ROUNDS = 3  # taken even when the budget is spent: one sample per series says little
MAX_ROUNDS = 400
TARGET_SAMPLE_S = 0.002  # below this, timer resolution and call overhead dominate
STEADY_S = 0.08  # per series and window (two of them): consecutive calls timed for its latency
# (the later half counts)
STEADY_SHARE = 0.2  # of the budget, for one window of the steady-state latencies together (on
# top of it: the rounds keep the whole budget)
STEADY_GROUP_S = 0.0005  # calls are timed in groups at least this long
STEADY_EXTENSIONS = 3  # half-windows added at most while the module is still settling
STEADY_STILL_FALLING = 0.98  # the last quarter this much faster than the one before: settling
STEADY_MIN_CALLS = 4  # a slower module's latency is its interleaved median (switching is
# then a small part of a call)

# The whole timing (warm-up, steady-state windows, rounds, preempted rounds replaced) ends
# within this many budgets wherever the fewest rounds fit (2.8 s for the default 2 s; the last
# round and the windows after the rounds may overrun it a little: 3 s at most measured). The
# budget is what a user plans CI time with; a busy machine may cost some of the replacement
# rounds, never an open-ended wait (gate_quality.py --replay-ceiling measures what it costs).
CEILING = 1.4
# A model is not timed when even the fewest rounds (each series' warm-up and FLOOR_ROUNDS)
# would take more than this many budgets: a 30 s forward would otherwise spend minutes.
FLOOR_OVERRUN = 5


def process_preemptions() -> int:
    """How often the OS has switched this process's threads out involuntarily (another
    process wanted the core); 0 where it does not say (no ``resource`` module)."""
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


# The clock every timed block reads, the count that says a block was interrupted, and the
# time this thread ran (what an interruption cost is the rest). Tests replace them to make the
# machine look slower, faster or busy deterministically; nothing else should.
clock: Callable[[], float] = time.perf_counter
preemptions: Callable[[], int] = process_preemptions
cpu_time: Callable[[], float] = time.thread_time

# A sample switched out for less than this share of it is not disturbed: on a quiet machine a
# kernel thread takes the core for 5-40 us now and then, which a 67 ms resnet50 call (caught
# in a third of its samples) does not notice; another process's scheduler slice (1-4 ms) is
# 1.5% or more of a sample up to 67 ms, and of all shorter ones.
DISTURBED_SHARE = 0.01


@dataclass
class TimingResult:
    """Per-call seconds of each series, round by round, and what they were taken under."""

    samples: dict[str, list[float]]
    loops: dict[str, int]
    rounds: int
    threads: int
    device: str
    seconds_spent: float
    # Bytes per series: CUDA's max allocated; on a CPU (Linux), how far resident memory rose
    # above what it was before the series' first call (``cpu_memory.py``).
    peak_memory: dict[str, int] = field(default_factory=dict)
    steady: dict[str, Interval] = field(default_factory=dict)  # per-call, consecutive calls
    # Per series, the per-call medians of its two steady-state windows (after warm-up, after
    # the rounds): how far they differ is how far the module's own speed moved meanwhile.
    steady_windows: dict[str, list[float]] = field(default_factory=dict)
    # Per series, the rounds whose sample was taken while the process was switched out.
    preempted: dict[str, list[int]] = field(default_factory=dict)
    # When each round ended, in seconds since timing began: where the time went, and what a
    # shorter budget would have kept (benchmarks/gate_quality.py --replay-ceiling).
    round_ends: list[float] = field(default_factory=list)
    # Seconds spent warming up, in the steady-state windows before and after the rounds, and
    # in the rounds: what the budget went on.
    phases: dict[str, float] = field(default_factory=dict)
    # The Python tracers and profilers suspended while timing, and those that could not be
    # (``python_tracers_suspended``): the timings include the latter's cost.
    suspended: list[str] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)

    @property
    def coarse(self) -> bool:
        """Too few rounds fitted in the budget for a 95% interval."""
        return self.rounds < MIN_ROUNDS

    @property
    def disturbed_rounds(self) -> int:
        """Rounds in which any series was preempted."""
        return len({index for rounds in self.preempted.values() for index in rounds})

    def clean_rounds(self, *names: str) -> int:
        """How many rounds ran with none of ``names`` preempted."""
        left_out = {index for name in names for index in self.preempted.get(name, ())}
        return self.rounds - len(left_out)

    def undisturbed(self, *names: str) -> list[int]:
        """The rounds in which none of ``names`` was preempted, or every round where fewer
        than MIN_ROUNDS were undisturbed (the machine was too busy to leave any out)."""
        left_out = {index for name in names for index in self.preempted.get(name, ())}
        kept = [index for index in range(self.rounds) if index not in left_out]
        return kept if len(kept) >= MIN_ROUNDS else list(range(self.rounds))

    def median(self, name: str) -> Interval:
        return median_interval([self.samples[name][i] for i in self.undisturbed(name)])

    def latency(self, name: str) -> Interval:
        """Per-call time in steady state (consecutive calls, as Timer measures), or the
        interleaved median where the series was too slow to time apart."""
        return self.steady.get(name) or self.median(name)

    def latency_ratio(self, name: str, reference: str = "eager") -> Interval:
        """``name`` / ``reference`` in steady state (what a deployment serving one model
        sees), its interval combining both latencies' intervals."""
        return ratio_of(self.latency(name), self.latency(reference))

    def ratio(self, name: str, reference: str = "eager") -> Interval:
        """``name`` / ``reference``, paired round by round."""
        mine, theirs = self.samples[name], self.samples[reference]
        return median_interval([mine[i] / theirs[i] for i in self.undisturbed(name, reference)])

    def to_dict(self) -> dict:
        return {
            "loops": next(iter(self.loops.values()), 1),  # the reference's, as in version 1
            "loops_per_series": self.loops,
            "rounds": self.rounds,
            "coarse": self.coarse,
            "threads": self.threads,
            "device": self.device,
            "seconds_spent": self.seconds_spent,
            "peak_memory": self.peak_memory,
            "preempted": self.preempted,
            "round_ends": self.round_ends,
            "phases": self.phases,
            "suspended_while_timing": self.suspended,
            "left_running_while_timing": self.left_running,
            "medians": {name: self.latency(name).to_dict() for name in self.samples},
            "steady_windows": self.steady_windows,
            "interleaved_medians": {name: self.median(name).to_dict() for name in self.samples},
            "samples": self.samples,
        }


class TimingFailed(Exception):
    """A timed call raised; the message names the series."""


class TooSlowToTime(Exception):
    """One call of ``name`` takes ``call_s``: the fewest rounds would take ``needed_s``, many
    times the budget, so nothing is timed."""

    def __init__(self, name: str, call_s: float, needed_s: float) -> None:
        super().__init__(name, call_s, needed_s)
        self.name, self.call_s, self.needed_s = name, call_s, needed_s


def measure(
    calls: dict[str, Callable[[], Any]],
    device: Any,
    budget_s: float,
    threads: int,
    loops: dict[str, int] | None = None,
    latency_of: tuple[str, ...] | None = None,
) -> TimingResult:
    """Time each of ``calls`` (no arguments; the first is the reference) within ``budget_s``.

    ``loops`` fixes the calls per sample of the series it names (a baseline's): what a call
    costs depends a little on how many run back to back (the first after another series
    refills caches), so runs compared with each other must use the same counts. ``latency_of``
    names the series whose steady-state latency is timed (default: all)."""
    torch = import_torch()
    is_cuda = getattr(device, "type", str(device)).startswith("cuda")
    synchronize = (lambda: torch.cuda.synchronize(device)) if is_cuda else (lambda: None)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = clock()
    names = list(calls)
    try:
        # no_grad, not inference_mode: a reloaded TorchScript module whose graph was profiled
        # outside inference mode raises "Inference tensors cannot be saved for backward".
        # The Python tracers off too (coverage's under --cov): they slow eager's Python frames
        # and hardly any of a converted module's.
        with torch.no_grad(), python_tracers_suspended() as (suspended, left_running):
            single, peak_memory, steady = {}, {}, {}
            apart_spent = 0.0
            timed_apart = [name for name in names if latency_of is None or name in latency_of]
            window = min(STEADY_S, budget_s * STEADY_SHARE / max(len(timed_apart), 1))
            # One call tells whether timing can fit at all (the model ran several times in
            # the check already, so this call is warm).
            first = _timed(names[0], calls[names[0]], 1, synchronize)
            needed = len(timed_apart) * (MIN_WARMUP_CALLS + FLOOR_ROUNDS) * first
            if needed > FLOOR_OVERRUN * budget_s:
                raise TooSlowToTime(names[0], first, needed)
            for name in names:
                if is_cuda:
                    torch.cuda.reset_peak_memory_stats(device)
                resident = None if is_cuda else cpu_memory.start()
                apart = name in timed_apart
                single[name] = _warm_up(
                    name,
                    calls[name],
                    synchronize,
                    budget_s * WARMUP_SHARE / len(names),
                    WARMUP_MIN_S if apart else 0.0,
                )
                # Right after its own warm-up, while the series runs undisturbed; not counted
                # in the budget of the rounds, which the gates' precision depends on.
                if apart:
                    began = clock()
                    found = _steady(name, calls[name], single[name], synchronize, window)
                    apart_spent += clock() - began
                    if found is not None:
                        steady[name] = found
                if is_cuda:
                    peak_memory[name] = int(torch.cuda.max_memory_allocated(device))
                elif (rise := cpu_memory.rise_since(resident)) is not None:
                    peak_memory[name] = rise
            fixed = loops or {}
            loops = {
                name: fixed.get(name) or max(1, math.ceil(TARGET_SAMPLE_S / max(seconds, 1e-9)))
                for name, seconds in single.items()
            }
            per_round = sum(loops[name] * single[name] for name in names)
            remaining = budget_s - (clock() - started - apart_spent)
            planned = int(min(MAX_ROUNDS, max(FLOOR_ROUNDS, remaining / max(per_round, 1e-9))))
            deadline = started + apart_spent + budget_s  # also when the machine slows down
            # Preempted rounds are replaced until the ceiling, less what the steady-state
            # windows after the rounds will take (as long as the ones before them did).
            late_deadline = started + CEILING * budget_s - apart_spent
            rounds_began = clock()
            samples, preempted, ends = take_rounds(
                calls,
                loops,
                synchronize,
                planned,
                min(deadline, late_deadline),
                late_deadline,
                # With one thread on a CPU, the thread's own CPU time is all the work: the
                # rest of a sample is what a switch cost. A GPU's synchronisation waits, and
                # other intra-op threads can be the ones switched out: any switch counts.
                weigh_switches=threads == 1 and getattr(device, "type", str(device)) == "cpu",
            )
            rounds_ended = clock()
            # A second window after the rounds. A transient can slow one whole window (a
            # traced BERT's read 40% above its rounds and above its reloaded twin's, and the
            # gate took it for a regression); it does not slow two windows a second apart,
            # while a slower module is slower in both. The faster window counts.
            windows = {name: [found.median] for name, found in steady.items()}
            for name in list(steady):
                again = _steady(name, calls[name], single[name], synchronize, window, settle=False)
                if again is not None:
                    windows[name].append(again.median)
                    if again.median < steady[name].median:
                        steady[name] = again
    finally:
        torch.set_num_threads(previous_threads)
    ended = clock()
    return TimingResult(
        samples=samples,
        loops=loops,
        rounds=len(samples[names[0]]),
        threads=threads,
        device=str(device),
        seconds_spent=ended - started,
        peak_memory=peak_memory,
        steady=steady,
        steady_windows=windows,
        preempted=preempted,
        round_ends=[end - started for end in ends],
        phases={
            "warm_up": rounds_began - started - apart_spent,
            "steady_before": apart_spent,
            "rounds": rounds_ended - rounds_began,
            "steady_after": ended - rounds_ended,
        },
        suspended=suspended,
        left_running=left_running,
    )


def take_rounds(
    calls: dict[str, Callable[[], Any]],
    loops: dict[str, int],
    synchronize: Callable[[], None],
    planned: int,
    deadline: float,
    late_deadline: float,
    weigh_switches: bool = False,
) -> tuple[dict[str, list[float]], dict[str, list[int]], list[float]]:
    """Interleaved rounds: per-call seconds of each series, the rounds in which the process
    was switched out while a series' sample ran (``preemptions``; with ``weigh_switches``,
    only where the switch cost more than DISTURBED_SHARE of the sample, by ``cpu_time``), and
    when each round ended (``clock``).

    ``planned`` rounds are taken, fewer if ``deadline`` passes first (never fewer than
    FLOOR_ROUNDS). Rounds that were preempted do not count towards the plan while
    ``late_deadline`` allows: on a machine busy with other work they are replaced, so the
    gates still get the rounds they need undisturbed."""
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    preempted: dict[str, list[int]] = {name: [] for name in names}
    ends: list[float] = []
    done = clean = 0
    while done < MAX_ROUNDS:
        now = clock()
        if done >= FLOOR_ROUNDS and (
            clean >= planned or now >= late_deadline or (now >= deadline and clean == done)
        ):
            break
        shift = done % len(names)
        disturbed = False
        for name in names[shift:] + names[:shift]:
            switched, ran = preemptions(), cpu_time()
            elapsed = _timed(name, calls[name], loops[name], synchronize)
            if preemptions() != switched and (
                not weigh_switches or _cost_of_switch(elapsed, cpu_time() - ran) > DISTURBED_SHARE
            ):
                preempted[name].append(done)
                disturbed = True
            samples[name].append(elapsed / loops[name])
        done += 1
        clean += not disturbed
        ends.append(clock())
    return samples, preempted, ends


def _cost_of_switch(elapsed: float, ran: float) -> float:
    """The share of a sample its thread spent switched out: wall time it did not run. A thread
    cannot run longer than the wall clock; where the CPU clock says it did by more than the
    reads between the two clocks (a coarse thread clock), it cannot weigh the switch, and the
    switch counts whole."""
    if elapsed <= 0 or ran > elapsed * (1 + DISTURBED_SHARE):
        return 1.0
    return (elapsed - ran) / elapsed


def _warm_up(
    name: str,
    call: Callable[[], Any],
    synchronize: Callable[[], None],
    share_s: float,
    min_s: float = 0.0,
) -> float:
    """Run ``call`` until warm; return the fastest warm single call, in seconds."""
    spent, fastest, index = 0.0, math.inf, 0
    while True:
        seconds = _timed(name, call, 1, synchronize)
        spent += seconds
        if index >= 1:  # the first call compiles, allocates, fills caches: not a timing
            fastest = min(fastest, seconds)
        index += 1
        if index >= MIN_WARMUP_CALLS and spent > share_s:
            break
        if index >= WARMUP_CALLS and spent >= min_s:
            break
    return fastest


def _steady(
    name: str,
    call: Callable[[], Any],
    single: float,
    synchronize: Callable[[], None],
    window_s: float,
    settle: bool = True,
) -> Interval | None:
    """Per-call time over ``window_s`` of consecutive calls; the earlier half is discarded
    (the module is still settling after the previous series), and with ``settle`` the window
    is extended while it still is. None for a module too slow to time apart in the window."""
    if single * STEADY_MIN_CALLS > window_s:
        return None
    group = max(1, math.ceil(STEADY_GROUP_S / max(single, 1e-9)))
    count = max(8, int(window_s / max(single * group, 1e-9)))
    per_call = [_timed(name, call, group, synchronize) / group for _ in range(count)]
    for _ in range(STEADY_EXTENSIONS if settle else 0):
        # Still settling (a heavy disturbance before, such as converting the model, lasts
        # longer): the last quarter clearly faster than the quarter before it. Go on.
        quarter = len(per_call) // 4
        last, before = per_call[-quarter:], per_call[-2 * quarter : -quarter]
        if statistics.median(last) > STEADY_STILL_FALLING * statistics.median(before):
            break
        per_call += [_timed(name, call, group, synchronize) / group for _ in range(count // 2)]
    return median_interval(per_call[len(per_call) // 2 :])


def _timed(
    name: str, call: Callable[[], Any], loops: int, synchronize: Callable[[], None]
) -> float:
    try:
        synchronize()
        started = clock()
        for _ in range(loops):
            call()
        synchronize()
    except Exception as error:
        raise TimingFailed(f"timing {name} failed: {type(error).__name__}: {error}") from error
    return clock() - started
