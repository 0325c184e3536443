"""What recording data-dependent decisions costs an eager forward pass.

pytest-torchscript wraps a few Tensor methods (__bool__, __int__, item...) while the eager
model runs for parity. This script times eager forward passes with and without that
recording, interleaved (A B A B ...) so machine drift hits both, and prints the ratio of
medians with a bootstrap 95% interval. Run: .venv/bin/python benchmarks/controlflow_overhead.py
Writes benchmarks/results/controlflow_overhead.json (docs/benchmarks.md).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import warnings

import torch
import torchvision
from results_file import write
from transformers import BertConfig, BertModel

from pytest_torchscript.check.decisions import DecisionRecorder

ROUNDS = 60


class Branchy(torch.nn.Module):
    """For contrast: 32 data-dependent decisions per forward pass."""

    def forward(self, x):
        for row in range(32):
            if x[row].sum() > 0:
                x = x + 1
        return x


def models():
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=1000,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
        )
    ).eval()
    ids = torch.randint(0, 1000, (4, 32))
    return [
        (
            "mlp (no decisions)",
            torch.nn.Sequential(
                torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)
            ).eval(),
            (torch.randn(16, 64),),
            {},
        ),
        (
            "resnet18 64x64 (no decisions)",
            torchvision.models.resnet18(weights=None).eval(),
            (torch.randn(1, 3, 64, 64),),
            {},
        ),
        ("bert 2 layers (no decisions)", bert, (), {"input_ids": ids}),
        ("branchy (32 decisions)", Branchy(), (torch.randn(32, 8),), {}),
    ]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(model, args, kwargs) -> tuple[float, float, float]:
    recorder = DecisionRecorder()

    def plain():
        model(*args, **kwargs)

    def recorded():
        with recorder.recording(0):
            model(*args, **kwargs)

    for _ in range(5):
        plain(), recorded()
    base, with_recording = [], []
    for _ in range(ROUNDS):
        base.append(timed(plain))
        with_recording.append(timed(recorded))
        recorder.by_set.clear()
    ratio = statistics.median(with_recording) / statistics.median(base)
    rng = random.Random(0)
    boots = sorted(
        statistics.median(rng.choices(with_recording, k=ROUNDS))
        / statistics.median(rng.choices(base, k=ROUNDS))
        for _ in range(1000)
    )
    added = statistics.median(with_recording) - statistics.median(base)
    return ratio, boots[25], boots[974], statistics.median(base), added


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {ROUNDS} interleaved rounds per model")
    print(f"{'model':32} {'eager median':>13} {'added per call':>15} {'ratio [95% CI]':>24}")
    rows = []
    with torch.no_grad():
        for name, model, args, kwargs in models():
            ratio, low, high, base, added = measure(model, args, kwargs)
            print(
                f"{name:32} {base * 1e3:10.3f} ms {added * 1e6:12.1f} us "
                f"{ratio:9.3f} [{low:.3f}, {high:.3f}]"
            )
            rows.append({"model": name, "eager median ms": base * 1e3,
                         "added per call us": added * 1e6, "ratio": ratio,
                         "95% interval": f"[{low:.3f}, {high:.3f}]"})  # fmt: skip
    sys.stdout.flush()
    write(
        "controlflow_overhead",
        f"what recording data-dependent decisions adds to an eager forward pass: {ROUNDS} "
        "interleaved rounds per model, one thread, ratio of medians with a bootstrap interval",
        rows,
    )


if __name__ == "__main__":
    main()
