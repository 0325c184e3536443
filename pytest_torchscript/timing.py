"""Timing eager, converted and reloaded modules fairly on a shared, noisy machine.

The three run in the same process, interleaved round by round (A B C, B C A, C A B, ...), so
drift in the machine's speed hits all of them; the figure that matters is the converted/eager
ratio of each round, whose median gets a distribution-free interval. Warm-up runs first, long
enough for the TorchScript profiling executor to specialise the graph. On CUDA every timed
block is synchronised so kernels are counted, not launches, and peak memory is recorded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .jit_warnings import import_torch
from .perfstats import Interval, median_interval

WARMUP_CALLS = 6  # the profiling executor specialises after 1-2 runs; a margin for bailouts
MIN_ROUNDS = 9  # fewer rounds give no useful 95% interval
MAX_ROUNDS = 400
TARGET_SAMPLE_S = 0.002  # below this, timer resolution and call overhead dominate


@dataclass
class TimingResult:
    """Per-call seconds of each series, round by round, and what they were taken under."""

    samples: dict[str, list[float]]
    loops: int
    rounds: int
    threads: int
    device: str
    seconds_spent: float
    peak_memory: dict[str, int] = field(default_factory=dict)

    def median(self, name: str) -> Interval:
        return median_interval(self.samples[name])

    def ratio(self, name: str, reference: str = "eager") -> Interval:
        """``name`` / ``reference``, paired round by round."""
        pairs = zip(self.samples[name], self.samples[reference])
        return median_interval([mine / theirs for mine, theirs in pairs])

    def to_dict(self) -> dict:
        return {
            "loops": self.loops,
            "rounds": self.rounds,
            "threads": self.threads,
            "device": self.device,
            "seconds_spent": self.seconds_spent,
            "peak_memory": self.peak_memory,
            "medians": {name: self.median(name).to_dict() for name in self.samples},
            "samples": self.samples,
        }


class TimingFailed(Exception):
    """A timed call raised; the message names the series."""


def measure(
    calls: dict[str, Callable[[], Any]], device: Any, budget_s: float, threads: int
) -> TimingResult:
    """Time each of ``calls`` (no arguments; the first is the reference) within ``budget_s``."""
    torch = import_torch()
    is_cuda = getattr(device, "type", str(device)).startswith("cuda")
    synchronize = (lambda: torch.cuda.synchronize(device)) if is_cuda else (lambda: None)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        # no_grad, not inference_mode: a reloaded TorchScript module whose graph was profiled
        # outside inference mode raises "Inference tensors cannot be saved for backward".
        with torch.no_grad():
            peak_memory = _warm_up(calls, synchronize, torch, device if is_cuda else None)
            single = {name: _timed(name, call, 1, synchronize) for name, call in calls.items()}
            loops = max(1, math.ceil(TARGET_SAMPLE_S / max(min(single.values()), 1e-9)))
            per_round = loops * sum(single.values())
            remaining = budget_s - (time.perf_counter() - started)
            rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, remaining / max(per_round, 1e-9))))
            samples: dict[str, list[float]] = {name: [] for name in calls}
            names = list(calls)
            for round_index in range(rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    samples[name].append(_timed(name, calls[name], loops, synchronize) / loops)
    finally:
        torch.set_num_threads(previous_threads)
    return TimingResult(
        samples=samples,
        loops=loops,
        rounds=rounds,
        threads=threads,
        device=str(device),
        seconds_spent=time.perf_counter() - started,
        peak_memory=peak_memory,
    )


def _warm_up(calls, synchronize, torch, cuda_device) -> dict[str, int]:
    peaks = {}
    for name, call in calls.items():
        if cuda_device is not None:
            torch.cuda.reset_peak_memory_stats(cuda_device)
        _timed(name, call, WARMUP_CALLS, synchronize)
        if cuda_device is not None:
            peaks[name] = int(torch.cuda.max_memory_allocated(cuda_device))
    return peaks


def _timed(
    name: str, call: Callable[[], Any], loops: int, synchronize: Callable[[], None]
) -> float:
    try:
        synchronize()
        started = time.perf_counter()
        for _ in range(loops):
            call()
        synchronize()
    except Exception as error:
        raise TimingFailed(f"timing {name} failed: {type(error).__name__}: {error}") from error
    return time.perf_counter() - started
