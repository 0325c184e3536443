"""What the C++ round trip costs: the first build of the runner (into an empty cache), a
cached lookup, and the round trip per check (a process start, the LibTorch load, the input
sets), on a small MLP and on resnet18.

A process per check is what the round trip cost before the session's runner served every
check; ``benchmarks/suite_overhead.py`` measures what it costs a suite now (+0.03 s a check).

Run: .venv/bin/python benchmarks/cpp_roundtrip_cost.py
Writes benchmarks/results/cpp_roundtrip_cost.json (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torchvision
from results_file import machine, write

from pytest_torchscript.deploy import cpp_runner


def main() -> None:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PYTEST_TORCHSCRIPT_CACHE"] = str(Path(folder, "cache"))
        started = time.perf_counter()
        built = cpp_runner.runner("cpu")
        first = time.perf_counter() - started
        started = time.perf_counter()
        cpp_runner.runner("cpu")
        cached = time.perf_counter() - started
        print(
            f"torch {torch.__version__}; runner: first build {first:.1f} s, cached {cached:.3f} s"
        )
        rows = [
            {"step": "first build of the runner (empty cache)", "seconds": round(first, 2)},
            {"step": "cached lookup of the runner", "seconds": round(cached, 4)},
        ]
        cases = {
            "mlp": (
                torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()).eval(),
                [torch.randn(8, 64), torch.randn(2, 64)],
            ),
            "resnet18 1x3x64x64": (
                torchvision.models.resnet18(weights=None).eval(),
                [torch.randn(1, 3, 64, 64), torch.randn(2, 3, 64, 64)],
            ),
        }
        for name, (model, inputs) in cases.items():
            path = Path(folder, f"{name.split()[0]}.pt")
            with torch.no_grad():
                torch.jit.save(torch.jit.trace(model, inputs[0]), str(path))
            times = []
            for _ in range(5):
                started = time.perf_counter()
                cpp_runner.run(built.path, path, [((x,), {}) for x in inputs], "cpu", Path(folder))
                times.append(time.perf_counter() - started)
            print(
                f"{name}: C++ round trip per check {statistics.median(times):.2f} s "
                f"(median of 5, 2 input sets)"
            )
            rows.append(
                {
                    "step": f"{name}: a runner process per check (median of 5, 2 input sets)",
                    "seconds": round(statistics.median(times), 3),
                }
            )
    compiler = os.environ.get("CXX", "c++")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    path = write(
        "cpp_roundtrip_cost",
        "What the C++ round trip's runner costs to build and what a process per check costs "
        "(a process start, the LibTorch load, two input sets); with one runner per session, "
        "as checks run now, see suite_overhead.",
        rows,
        machine=machine(compiler=(version.stdout.splitlines() or [compiler])[0]),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
