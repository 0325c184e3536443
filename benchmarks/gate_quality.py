"""How good is the max_regression gate on this machine? Measure it; do not assume it.

Each trial records a baseline of an unchanged model (as a user's --ts-update-baseline run
would) and then gates a candidate run against it, with the plugin's own timing and gate code.
The candidate is the same model, or the same model whose converted form does extra work worth
10%, 25% or 50% of its forward pass. Reported: how often the gate says regression,
inconclusive or pass. Targets: at most 1% false alarms on the unchanged model, at least 90%
detection of 10% and 99% of 25%, with at most 3 s of timing per model and mode.

Run: .venv/bin/python benchmarks/gate_quality.py [--trials-unchanged 100] [--trials 40]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from pytest_torchscript.gates import INCONCLUSIVE, PASS, REGRESSION, regression_gate
from pytest_torchscript.timing import measure

BLOCKS = 20


class Chain(torch.nn.Module):
    """BLOCKS identical blocks; the converted (scripted) form also runs ``extra`` small
    elementwise steps that leave the values unchanged, so its slowdown can be set finely."""

    def __init__(self, extra: int = 0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(96, 96), torch.nn.Tanh()) for _ in range(BLOCKS)
        )
        self.extra = extra

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        if torch.jit.is_scripting():
            for _ in range(self.extra):
                x = x + torch.tanh(x) * 0.0
        return x


def steps_for(slowdowns, x) -> dict[float, int]:
    """How many extra steps make the scripted model that much slower (measured: 2 x 4 s for
    the cost of a step, then 4 s per slowdown to correct for the cost not being linear)."""
    base = torch.jit.script(Chain(0).eval())
    probe = 100
    slowed = torch.jit.script(Chain(probe).eval())
    per_step = []
    for _ in range(2):
        calls = {"base": lambda: base(x), "slowed": lambda: slowed(x)}
        result = measure(calls, torch.device("cpu"), 4.0, threads=1)
        per_step.append((result.ratio("slowed", "base").median - 1) / probe)
    cost = sum(per_step) / len(per_step)
    steps = {slowdown: round(slowdown / cost) for slowdown in slowdowns}
    for slowdown, count in steps.items():  # the cost per step is not linear: measure, rescale
        if count:
            candidate = torch.jit.script(Chain(count).eval())
            calls = {"base": lambda: base(x), "slowed": lambda c=candidate: c(x)}
            actual = measure(calls, torch.device("cpu"), 4.0, threads=1).ratio("slowed", "base")
            steps[slowdown] = max(1, round(count * slowdown / (actual.median - 1)))
    return steps


def timed_ratio(eager, converted, x, budget):
    calls = {"eager": lambda: eager(x), "converted": lambda: converted(x)}
    return measure(calls, torch.device("cpu"), budget, threads=1).ratio("converted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-unchanged", type=int, default=100)
    parser.add_argument("--trials", type=int, default=40, help="trials per slowdown")
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per run")
    parser.add_argument("--threshold", type=float, default=0.05, help="max_regression")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    x = torch.randn(8, 96)
    eager = Chain().eval()
    conditions = [
        (0.0, args.trials_unchanged),
        (0.10, args.trials),
        (0.25, args.trials),
        (0.50, args.trials),
    ]
    print(
        f"torch {torch.__version__}; 1 thread; {args.budget:g} s of timing per run "
        f"(baseline run + candidate run per trial); max_regression={args.threshold:.0%}"
    )
    print(
        f"{'slowdown':>9} {'measured':>9} {'trials':>7} {'regression':>11} "
        f"{'inconclusive':>13} {'pass':>6}"
    )
    started = time.time()
    with torch.no_grad():
        steps = steps_for([slowdown for slowdown, _ in conditions], x)
        unchanged = torch.jit.script(Chain(0).eval())
        for slowdown, trials in conditions:
            candidate = torch.jit.script(Chain(steps[slowdown]).eval())
            counts = {REGRESSION: 0, INCONCLUSIVE: 0, PASS: 0}
            changes = []
            for _ in range(trials):
                then = timed_ratio(eager, unchanged, x, args.budget)
                now = timed_ratio(eager, candidate, x, args.budget)
                changes.append(now.median / then.median - 1)
                counts[regression_gate(now, then, args.threshold).outcome] += 1
            changes.sort()
            print(
                f"{slowdown:>9.0%} {changes[len(changes) // 2]:>+9.1%} {trials:>7} "
                f"{counts[REGRESSION] / trials:>11.1%} {counts[INCONCLUSIVE] / trials:>13.1%} "
                f"{counts[PASS] / trials:>6.1%}",
                flush=True,
            )
    print(f"({time.time() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
