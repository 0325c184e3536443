"""What the plugin costs against the test a careful user writes by hand, on real models.

The same torchvision classifiers (weights=None), trace mode, two input sets each, timing off:
- plugin: ``@pytest.mark.torchscript(inputs=[...])`` returning the model (default options:
  control flow, reload, fresh process and, with --cpp, the C++ round trip);
- by hand: trace, compare with eager on both sets, save, load, compare again.
Each is a pytest session in its own process, run interleaved (A B A B ...), so the machine's
drift hits both; reported: median wall time of each and their ratio. Resident memory after
each model is recorded in both sessions: its growth per model.

Run: .venv/bin/python benchmarks/suite_overhead.py [--repeats 3] [--cpp]
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

MODELS = [
    "resnet18", "mobilenet_v3_small", "squeezenet1_0", "shufflenet_v2_x0_5",
    "regnet_y_400mf", "mnasnet0_5", "efficientnet_b0", "resnet34",
]  # fmt: skip

COMMON = """
import pytest
import torch
import torchvision

MODELS = {models!r}

def inputs():
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(1, 3, 64, 64, generator=generator),
            torch.randn(2, 3, 64, 64, generator=generator)]

def build(name):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()
"""

PLUGIN = (
    COMMON
    + """
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.torchscript(inputs=inputs)
def test_model(name):
    return build(name)
"""
)

BY_HAND = (
    COMMON
    + """
@pytest.mark.parametrize("name", MODELS)
def test_model(name, tmp_path):
    model = build(name)
    sets = inputs()
    with torch.no_grad():
        traced = torch.jit.trace(model, sets[0])
        for x in sets:
            torch.testing.assert_close(traced(x), model(x))
        path = tmp_path / "model.pt"
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))
        for x in sets:
            torch.testing.assert_close(loaded(x), model(x))
"""
)

RSS = """
import json, os

SIZES = []

def pytest_runtest_teardown(item, nextitem):
    with open("/proc/self/statm") as statm:
        SIZES.append(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))

def pytest_sessionfinish(session):
    with open("rss.json", "w") as out:
        json.dump(SIZES, out)
"""


def session(folder: Path, name: str, extra: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
         "--benchmark-disable", name, *extra],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-2000:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpp", action="store_true", help="include the C++ round trip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "test_plugin.py").write_text(PLUGIN.format(models=MODELS))
        (root / "test_by_hand.py").write_text(BY_HAND.format(models=MODELS))
        (root / "conftest.py").write_text(RSS)
        extra = [] if args.cpp else ["--ts-cpp=off"]
        times: dict[str, list[float]] = {"plugin": [], "by hand": []}
        growth: dict[str, list[float]] = {"plugin": [], "by hand": []}
        for _ in range(args.repeats):
            for label, name, flags in (
                ("plugin", "test_plugin.py", extra),
                ("by hand", "test_by_hand.py", []),
            ):
                times[label].append(session(root, name, flags))
                sizes = json.loads((root / "rss.json").read_text())
                growth[label].append((sizes[-1] - sizes[2]) / (len(sizes) - 3) / 1e6)
    plugin, by_hand = (statistics.median(times[k]) for k in ("plugin", "by hand"))
    ratios = sorted(p / h for p, h in zip(times["plugin"], times["by hand"]))
    print(
        f"{len(MODELS)} torchvision models, trace, 2 input sets, timing off, "
        f"{'with' if args.cpp else 'without'} the C++ round trip; {args.repeats} interleaved pairs"
    )
    print(
        f"plugin {plugin:.1f} s, by hand {by_hand:.1f} s (medians): ratio {plugin / by_hand:.2f} "
        f"(per pair {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        "resident memory growth per model after the first 3 (eight different models: allocator "
        f"caches grow too): plugin {statistics.median(growth['plugin']):+.1f} MB, by hand "
        f"{statistics.median(growth['by hand']):+.1f} MB"
    )


if __name__ == "__main__":
    main()
