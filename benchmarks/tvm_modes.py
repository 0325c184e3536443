"""mode="tvm" on real models: the verdict, the build time, parity and latency against eager.

The same eight torchvision classifiers (weights=None, 64x64) and two transformers models (small
configs) as benchmarks/compile_modes.py, each with two input sets (batch 1 and 2, so one build
must serve both batch sizes), checked by ``@pytest.mark.torchscript(mode="tvm", inputs=[...])``
with the defaults (untuned ``llvm`` build, the .so reloaded here and in a fresh process, timing
on: one thread, the default time budget), one pytest session per model in its own process.
Recorded per model: the verdict, the build seconds (export, TVM import, tvm.compile: the
convert column), the largest absolute error and that error over the largest eager output (what
the mode's tolerances must allow), eager's and TVM's steady-state latency and their ratio, the
library's size and the session's wall time. Writes benchmarks/results/tvm_modes.json.

Run: .venv/bin/python benchmarks/tvm_modes.py [--models resnet18,bert]
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

from results_file import machine, write

sys.path.insert(0, str(Path(__file__).parent))
from compile_modes import COMMON, TEXT, VISION  # noqa: E402 - the same models and inputs

PLUGIN = (
    COMMON
    + """
@pytest.mark.torchscript(mode="tvm", inputs=inputs)
def test_model():
    return build()
"""
)


def output_scale(name: str) -> float:
    """The largest eager output over both input sets, in this process (eager only)."""
    import torch

    namespace: dict = {}
    exec(COMMON.format(name=name), namespace)
    model = namespace["build"]()
    largest = 0.0
    with torch.no_grad():
        for input_set in namespace["inputs"]():
            output = model(**input_set) if isinstance(input_set, dict) else model(input_set)
            for leaf in torch.utils._pytree.tree_leaves(output):
                if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
                    largest = max(largest, float(leaf.abs().max()))
    return largest or 1.0


def check(name: str) -> tuple[dict, str]:
    """The model's row, and the end of the session's output where it did not pass."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "test_model.py").write_text(PLUGIN.format(name=name))
        report = folder / "report.json"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   f"--ts-report={report}", "test_model.py"]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - started
        checks = json.loads(report.read_text())["checks"] if report.exists() else []
    found = checks[0] if checks else {}
    medians = (found.get("perf") or {}).get("medians") or {}
    eager = (medians.get("eager") or {}).get("median")
    converted = (medians.get("tvm") or {}).get("median")
    max_abs = found.get("max_abs")
    scale = output_scale(name)
    failure = "" if found.get("verdict") == "passed" else done.stdout[-1500:]
    return {
        "model": name,
        "verdict": found.get("verdict_text", "no report"),
        "build_s": found.get("conversion_seconds"),
        "max_abs": max_abs,
        "max_abs_over_scale": max_abs / scale if max_abs is not None else None,
        "eager_ms": eager * 1e3 if eager else None,
        "tvm_ms": converted * 1e3 if converted else None,
        "tvm_over_eager": converted / eager if eager and converted else None,
        "roundtrips": [
            f"{rt['where']}: " + ("skip" if rt.get("skipped") else "ok" if rt.get("ok") else "FAIL")
            for rt in found.get("roundtrips", [])
        ],
        "size_bytes": found.get("artifact_bytes"),
        "session_s": wall,
    }, failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(VISION + TEXT))
    args = parser.parse_args()
    rows, failures = [], {}
    for name in args.models.split(","):
        row, failure = check(name)
        rows.append(row)
        if failure:
            failures[name] = failure
        print(json.dumps(row), flush=True)
    import tvm

    passed = [row for row in rows if row["verdict"] == "passed"]
    ratios = [row["tvm_over_eager"] for row in passed if row["tvm_over_eager"]]
    summary = (
        f"{len(passed)} of {len(rows)} models pass with the defaults"
        + (
            f"; build median {statistics.median(r['build_s'] for r in passed):.1f} s; "
            f"largest error {max(r['max_abs'] for r in passed):.2g} absolute, "
            f"{max(r['max_abs_over_scale'] for r in passed):.2g} of the output's scale"
            if passed
            else ""
        )
        + (
            f"; untuned TVM against eager (one thread): median {statistics.median(ratios):.2f}x"
            if ratios
            else ""
        )
    )
    path = write(
        "tvm_modes",
        summary,
        rows,
        failures=failures,
        machine=machine(**{"apache-tvm": tvm.__version__}),
    )
    print(f"{summary}; written to {path}")


if __name__ == "__main__":
    main()
