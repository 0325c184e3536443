"""What does installing the plugin cost a suite that never uses it?

A project adds pytest-torchscript for a few model tests; every other test run (a suite without
a torchscript marker or fixture) must not pay for it. This times a suite of trivial tests
(no markers) in fresh pytest processes with the plugin loaded and with ``-p no:torchscript``,
interleaved (A B A B ...), and reports the medians and their difference, and whether torch was
imported by the end of the run with the plugin loaded (it must not be: ``import torch`` alone
costs about 2 s).

Run: .venv/bin/python benchmarks/unmarked_suite_cost.py [--pairs 10] [--tests 50]
Writes benchmarks/results/unmarked_suite_cost.json (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write

CONFTEST = """
import sys

def pytest_sessionfinish(session):
    print("\\ntorch imported:", "torch" in sys.modules)
"""


def run(folder: Path, *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the suite failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--tests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "conftest.py").write_text(CONFTEST)
        (folder / "test_plain.py").write_text(
            "".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n\n" for i in range(args.tests))
        )
        run(folder)  # warm the file system caches and bytecode for both
        loaded, without, imported = [], [], set()
        for _ in range(args.pairs):
            seconds, output = run(folder)
            loaded.append(seconds)
            imported.add("torch imported: True" in output)
            without.append(run(folder, "-p", "no:torchscript")[0])
    plugin, plain = statistics.median(loaded), statistics.median(without)
    differences = sorted(a - b for a, b in zip(loaded, without))
    print(f"{args.tests} unmarked tests, {args.pairs} interleaved pairs of fresh pytest processes")
    print(f"with the plugin:     median {plugin:.3f} s")
    print(f"-p no:torchscript:   median {plain:.3f} s")
    print(
        f"difference per pair: median {statistics.median(differences) * 1000:+.0f} ms "
        f"(range {differences[0] * 1000:+.0f} to {differences[-1] * 1000:+.0f} ms)"
    )
    print(f"torch imported with the plugin loaded: {'yes' if True in imported else 'no'}")
    write(
        "unmarked_suite_cost",
        f"{args.tests} unmarked tests in fresh pytest processes, {args.pairs} interleaved pairs: "
        f"the plugin installed costs a median {statistics.median(differences) * 1000:+.0f} ms "
        f"a run (range {differences[0] * 1000:+.0f} to {differences[-1] * 1000:+.0f} ms)",
        [
            {"arm": "with the plugin", "median s": plugin,
             "torch imported": True in imported},
            {"arm": "-p no:torchscript", "median s": plain, "torch imported": None},
        ],
        pairs=[{"plugin s": a, "without s": b} for a, b in zip(loaded, without)],
    )  # fmt: skip


if __name__ == "__main__":
    main()
