"""What does a context switch cost a timed sample? The evidence for ``timing.DISTURBED_SHARE``.

The timing leaves out a round whose sample the OS switched out (another process took the core),
and with one thread on a CPU it weighs each switch by what it cost: the sample's wall time minus
the timing thread's CPU time. This measures that cost on this machine: an MLP timed in short
samples (about 1.5 ms, the gates' usual) and long ones (about 20 ms, a resnet-sized call), for a
few seconds each, quiet, beside one busy loop (a noisy CI neighbour) and beside two (more
runnable work than cores). For every sample that saw an involuntary switch it prints the share
of the sample lost, in deciles.

On the 2-core machine this project is developed on (2026-12-01, 09:56): quiet, a switch cost
0.9-2.0% of a 1.4 ms sample and 0.03-0.6% of a 21 ms one (a kernel thread's 10-130 us); beside
one busy loop, 90% of switches about 10 us, the top decile a whole slice (22% of a 1.4 ms
sample, 3% of a 21 ms one); beside two, 27-74% (40% of short samples' switches cost nothing).
A 1% threshold keeps kernel-thread noise in long samples, leaves out every real slice, and is
as strict as counting every switch for the shortest samples.

Run: .venv/bin/python benchmarks/switch_cost.py [--seconds 8]
(keep the machine otherwise idle: the busy loops are its own)
Writes benchmarks/results/switch_cost.json (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

from results_file import write

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no getrusage
    raise SystemExit("switch_cost.py needs getrusage (Linux, macOS)") from None


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def lost_shares(calls_per_sample: int, seconds: float) -> tuple[float, int, list[float]]:
    """(sample seconds, samples taken, the lost share of each switched sample)."""
    import torch

    torch.set_num_threads(1)
    model = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(8)]).eval()
    x = torch.randn(32, 256)
    shares, taken = [], 0
    with torch.no_grad():
        for _ in range(20):
            model(x)
        started = time.perf_counter()
        end = started + seconds
        while time.perf_counter() < end:
            switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(calls_per_sample):
                model(x)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            taken += 1
            if resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw != switches:
                shares.append((wall - cpu) / wall)
    return (time.perf_counter() - started) / taken, taken, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per condition and length")
    options = parser.parse_args()
    print("condition        sample   switched/taken   lost share per switched sample (deciles)")
    rows = []
    for loops, label in ((0, "quiet"), (1, "one core busy"), (2, "both cores busy")):
        for calls in (4, 60):
            hogs = [
                multiprocessing.Process(target=busy, args=(options.seconds + 2,))
                for _ in range(loops)
            ]
            for hog in hogs:
                hog.start()
            time.sleep(0.3 if hogs else 0)
            sample, taken, shares = lost_shares(calls, options.seconds)
            for hog in hogs:
                hog.terminate()
                hog.join()
            deciles = statistics.quantiles(shares, n=10) if len(shares) > 2 else shares
            print(
                f"{label:16} {sample * 1e3:5.1f} ms  {len(shares):6} / {taken:<6}   "
                + " ".join(f"{share:.2%}" for share in deciles)
            )
            rows.append(
                {
                    "condition": label,
                    "sample ms": round(sample * 1e3, 2),
                    "samples switched": len(shares),
                    "samples taken": taken,
                    "lost share per switched sample, deciles (%)": [
                        round(share * 100, 2) for share in deciles
                    ],
                }
            )
    path = write(
        "switch_cost",
        "What an involuntary context switch cost a timed sample (wall time minus the timing "
        "thread's CPU time, as a share of the sample), quiet and beside busy loops; the "
        "evidence for timing.DISTURBED_SHARE (1%).",
        rows,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
