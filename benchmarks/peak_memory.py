"""Peak memory of one check against the same steps written by hand, on a model whose output
has 50M elements (200 MB): what a check keeps alive beyond what the steps need shows here.

Three pytest sessions, each in its own process, report their peak resident memory (VmHWM):
a session that only builds the model and input (the floor: torch, pytest, weights), the
plugin's check (trace mode, timing off, the default round trips), and the hand-written
steps (eager, trace, compare, save, load, compare). Reported: each peak above the floor, and
the ratio plugin / by hand. Linux only (reads /proc/self/status).

Run: .venv/bin/python benchmarks/peak_memory.py
Writes benchmarks/results/peak_memory.json (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from results_file import write

COMMON = """
import pytest
import torch

class Big(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return (x * self.scale).repeat(1, 50)   # 1M inputs -> 50M outputs (200 MB)

def example():
    return torch.randn(1000, 1000, generator=torch.Generator().manual_seed(0))
"""

FLOOR = (
    COMMON
    + """
def test_floor():
    Big().eval(), example()
"""
)

PLUGIN = (
    COMMON
    + """
@pytest.mark.torchscript(inputs=example)
def test_plugin():
    return Big().eval()
"""
)

BY_HAND = (
    COMMON
    + """
def test_by_hand(tmp_path):
    model, x = Big().eval(), example()
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(x), expected)
        torch.jit.save(traced, str(tmp_path / "big.pt"))
        loaded = torch.jit.load(str(tmp_path / "big.pt"))
        torch.testing.assert_close(loaded(x), expected)
"""
)

PEAK = """
import json

def pytest_sessionfinish(session):
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    with open("peak.json", "w") as out:
        json.dump(peak * 1024, out)
"""


def peak(folder: Path, name: str) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
         "--benchmark-disable", "--ts-cpp=off", name],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:])
    return json.loads((folder / "peak.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, source in (("floor", FLOOR), ("plugin", PLUGIN), ("by_hand", BY_HAND)):
            (root / f"test_{name}.py").write_text(source)
        (root / "conftest.py").write_text(PEAK)
        peaks = {name: peak(root, f"test_{name}.py") for name in ("floor", "plugin", "by_hand")}
    above = {name: (peaks[name] - peaks["floor"]) / 1e6 for name in ("plugin", "by_hand")}
    summary = (
        f"peak resident memory above the floor ({peaks['floor'] / 1e6:.0f} MB): plugin "
        f"{above['plugin']:.0f} MB, by hand {above['by_hand']:.0f} MB: ratio "
        f"{above['plugin'] / above['by_hand']:.2f} (model output 200 MB; the C++ round trip, in "
        f"its own process, is off)"
    )
    print(summary)
    rows = [{"session": name, "MB above the floor": above[name]} for name in above]
    write("peak_memory", summary, rows, peaks_bytes=peaks)


if __name__ == "__main__":
    main()
