"""How long does `pytest-torchscript merge` take on a zoo's worth of shard reports?

Synthetic reports shaped like real ones (each check with parity leaves, round trips, control
flow and timings) are split into shards and merged, JSON and HTML written, summary printed to
a null stream. No torch is imported. Target (issue 14): a 1,000-check set under a second.

Run: .venv/bin/python benchmarks/merge_speed.py [--checks 1000] [--shards 8]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from results_file import write

from pytest_torchscript.reporting import merge


def check(index: int) -> dict:
    leaf = {
        "path": "output",
        "ok": True,
        "problem": None,
        "numel": 4000,
        "mismatched": 0,
        "max_abs": 1e-7,
        "max_rel": 1e-6,
        "worst_index": None,
        "worst_expected": None,
        "worst_actual": None,
        "rtol": 1.3e-6,
        "atol": 1e-5,
        "needed_atol": 0,
        "needed_rtol": 0,
        "nan_mismatches": 0,
        "error_histogram": None,
    }
    parity = [
        {"input_index": i, "ok": True, "max_abs": 1e-7, "max_rel": 1e-6, "leaves": [leaf]}
        for i in range(2)
    ]
    interval = {"median": 1e-3, "low": 9e-4, "high": 1.1e-3}
    return {
        "test_id": f"tests/test_zoo.py::test_model[{index:04d}]", "mode": "trace",
        "device": "cpu", "model": f"Model{index % 30}", "verdict": "passed",
        "verdict_text": "passed", "skipped": None, "failed_stage": None, "failure": None,
        "input_sets": ["(float32[1, 3, 64, 64])", "(float32[4, 3, 64, 64])"],
        "max_abs": 1e-7, "max_rel": 1e-6, "parity": parity,
        "roundtrips": [{"where": w, "ok": True, "skipped": None, "error": None, "seconds": 0.1,
                        "user_modules": [], "process_id": 1, "parity": parity}
                       for w in ("in-process", "fresh process")],
        "artifact_path": f"/tmp/a/{index}/trace.pt", "artifact_bytes": 1_000_000,
        "conversion_seconds": 0.2, "was_training": False, "control_flow": None,
        "perf": {"note": None, "verdict": "timed", "ratio": interval, "reloaded_ratio": interval,
                 "medians": {"eager": interval, "trace": interval, "trace reloaded": interval},
                 "probe": None, "normalised": {}, "gates": [], "baseline_key": None,
                 "timing": None},
        "warnings": [],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for shard in range(args.shards):
            checks = [check(i) for i in range(shard, args.checks, args.shards)]
            path = Path(folder, f"shard{shard}.json")
            path.write_text(json.dumps({
                "format": "pytest-torchscript-report", "version": 1,
                "created": "2026-11-22T00:00:00+00:00", "exit_status": 0, "torch": "2.14.1",
                "device": "cpu", "threads": 1, "summary": {}, "checks": checks,
            }))  # fmt: skip
            paths.append(path)
        size = sum(path.stat().st_size for path in paths)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            code = merge.main(
                [
                    "merge", *map(str, paths), "--json", str(Path(folder, "merged.json")),
                    "--html", str(Path(folder, "merged.html")),
                ],
                stream=io.StringIO(),
            )  # fmt: skip
            times.append(time.perf_counter() - started)
            assert code == 0
    summary = (
        f"{args.checks} checks in {args.shards} shards ({size / 1e6:.1f} MB of JSON): merge, "
        f"summary, JSON and HTML in {statistics.median(times):.2f} s "
        f"(median of {args.repeats}; min {min(times):.2f} s)"
    )
    print(summary)
    row = {"checks": args.checks, "shards": args.shards, "JSON MB": size / 1e6,
           "median s": statistics.median(times), "min s": min(times)}  # fmt: skip
    write("merge_speed", summary, [row], times=times)


if __name__ == "__main__":
    main()
