"""What a regression's explanation costs: recording a baseline (which now keeps the converted
graph's fingerprint and profiles eager, by operator and submodule, and the converted module)
and a passing gate (which compares fingerprints and profiles nothing), against the same runs
with both turned off, as the plugin was before them.

Four torchvision classifiers (weights=None, 64x64) in trace, the default time budget, the C++
round trip off (it is the same in both arms). Each session is a pytest process of its own: the
arm "off" gets a conftest that makes ``profile.operator_shares`` and the check's fingerprint
return nothing, as the plugin did before baselines kept either. Arms alternate (off, on, on,
off, ...) so the machine's drift hits both. Recorded: the median wall time of each arm and
their ratio, for recording and for gating.
Writes benchmarks/results/profile_cost.json.

Run: .venv/bin/python benchmarks/profile_cost.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write

TESTS = """
import pytest
import torch
import torchvision

@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "squeezenet1_0",
                                  "shufflenet_v2_x0_5"])
@pytest.mark.torchscript(mode="trace", inputs=torch.randn(2, 3, 64, 64), roundtrip=False)
def test_model(name):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()
"""
OFF = """
import pytest_torchscript.check.pipeline as pipeline
import pytest_torchscript.perf.profile as profile
profile.operator_shares = lambda *args, **kwargs: (None, None)
pipeline._fingerprint = lambda *args, **kwargs: None
"""


def session(folder: Path, arm: str, *args: str) -> float:
    (folder / "conftest.py").write_text(OFF if arm == "off" else "")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ts-cpp=off",
               f"--ts-baseline=baseline-{arm}.json", *args, "test_models.py"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, dict[str, list[float]]] = {
        "record": {"off": [], "on": []},
        "gate": {"off": [], "on": []},
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "test_models.py").write_text(TESTS)
        for pair in range(args.pairs):
            order = ("off", "on") if pair % 2 == 0 else ("on", "off")
            for arm in order:
                seconds["record"][arm].append(session(folder, arm, "--ts-update-baseline"))
            for arm in order:
                seconds["gate"][arm].append(session(folder, arm))
            print(json.dumps({"pair": pair, **seconds}), flush=True)

    rows = []
    for step, arms in seconds.items():
        off, on = statistics.median(arms["off"]), statistics.median(arms["on"])
        rows.append({"step": step, "off s": off, "on s": on, "ratio": on / off})
    write(
        "profile_cost",
        "4 torchvision models in trace, default time budget, C++ off; median wall time of a "
        "pytest session per arm, 'off' without graph fingerprints and profiles (the plugin "
        "before them): recording a baseline fingerprints and profiles both forms, a passing "
        "gate compares fingerprints and profiles nothing",
        rows,
        sessions=seconds,
    )
    for row in rows:
        print(f"{row['step']}: {row['ratio']:.3f}x")


if __name__ == "__main__":
    main()
