"""What the plugin costs against the test a careful user writes by hand, on real models.

The same torchvision classifiers (weights=None), trace mode, two input sets each, timing off:
- plugin, with the defaults users get: ``@pytest.mark.torchscript(inputs=[...])`` returning the
  model (control flow, reload, fresh process, the C++ round trip in the session's runner);
- plugin with ``--ts-cpp=off``;
- by hand: trace, compare with eager on both sets, save, load, compare again.
Each is a pytest session in its own process, run interleaved (A B C A B C ...), so the
machine's drift hits all; reported: median wall time of each and the ratios to by hand (median
of the interleaved pairs). Resident memory after each model is recorded: its growth per model.
Then a suite of 30 small checks with and without the C++ round trip, interleaved: what the C++
round trip costs per check. The C++ runner is built (or found in its cache) by an untimed
warm-up session first. Writes benchmarks/results/suite_overhead.json.

Run: .venv/bin/python benchmarks/suite_overhead.py [--repeats 3]
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


SMALL = """
import pytest
import torch

class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(64, 256), torch.nn.Linear(256, 10)

    def forward(self, x):
        return self.b(self.a(x).relu())

@pytest.mark.parametrize("n", range(30))
@pytest.mark.torchscript(inputs=[torch.randn(4, 64), torch.randn(8, 64)])
def test_small(n):
    torch.manual_seed(n)
    return MLP().eval()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configurations = (
        ("plugin (defaults)", "test_plugin.py", []),
        ("by hand", "test_by_hand.py", []),
        ("plugin --ts-cpp=off", "test_plugin.py", ["--ts-cpp=off"]),
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "test_plugin.py").write_text(PLUGIN.format(models=MODELS))
        (root / "test_by_hand.py").write_text(BY_HAND.format(models=MODELS))
        (root / "test_small.py").write_text(SMALL)
        (root / "conftest.py").write_text(RSS)
        session(root, "test_small.py", ["-k", "test_small and 0]"])  # builds the C++ runner
        times: dict[str, list[float]] = {label: [] for label, _, _ in configurations}
        growth: dict[str, list[float]] = {label: [] for label, _, _ in configurations}
        small: dict[str, list[float]] = {"with C++": [], "without C++": []}
        for _ in range(args.repeats):
            for label, name, flags in configurations:
                times[label].append(session(root, name, flags))
                sizes = json.loads((root / "rss.json").read_text())
                growth[label].append((sizes[-1] - sizes[2]) / (len(sizes) - 3) / 1e6)
            for label, flags in (("with C++", []), ("without C++", ["--ts-cpp=off"])):
                small[label].append(session(root, "test_small.py", flags))
    hand = times["by hand"]
    rows = []
    for label, _, _ in configurations:
        ratios = sorted(t / h for t, h in zip(times[label], hand))
        rows.append(
            {
                "session": label,
                "median_s": statistics.median(times[label]),
                "ratio_to_by_hand": statistics.median(ratios),
                "ratios_per_pair": ratios,
                "rss_growth_per_model_mb": statistics.median(growth[label]),
            }
        )
    per_check = [(w - wo) / 30 for w, wo in zip(small["with C++"], small["without C++"])]
    summary = (
        f"{len(MODELS)} torchvision models, trace, 2 input sets, timing off, {args.repeats} "
        f"interleaved repeats: the plugin with its defaults costs "
        f"{rows[0]['ratio_to_by_hand']:.2f}x the hand-written test, with --ts-cpp=off "
        f"{rows[2]['ratio_to_by_hand']:.2f}x. 30 small checks: the C++ round trip costs "
        f"{statistics.median(per_check):+.3f} s per check (median of pairs; "
        f"{', '.join(f'{v:+.3f}' for v in sorted(per_check))})."
    )
    print(summary)
    for row in rows:
        print(row)
    write("suite_overhead", summary, rows)


if __name__ == "__main__":
    main()
