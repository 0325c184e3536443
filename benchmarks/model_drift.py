"""Is the between-run drift of a model's speed in the model itself, and does intra-op threading
cause it?

``between_processes.py`` found mobilenet_v3_small's probe-normalised time wandering by about
+-9% over tens of minutes on this 2-core machine while resnet18, an MLP and the probe held
within 1-3%. Those figures come from the plugin's interleaved rounds, whose samples carry the
cost of switching between series. This takes the plugin out of it: each sample is a fresh
process that times mobilenet_v3_small and resnet18 (eager and traced) and the probe's three
components with ``torch.utils.benchmark.Timer.blocked_autorange`` on consecutive calls, once
with two intra-op threads and once with one, plus a chain of small two-thread elementwise ops
(the fork/join cost a many-small-ops model pays). If the drift were a threading effect, the
one-thread figures would hold still; if it were the plugin's switching, Timer would not see it.

Run: .venv/bin/python benchmarks/model_drift.py --samples 90 --pause 6 --save drift.jsonl
     .venv/bin/python benchmarks/model_drift.py --summarise drift.jsonl
(a sample takes about 15 s; keep the machine otherwise idle: samples whose probe ran 10%
slower than its median are reported apart and left out.) Writes
benchmarks/results/model_drift.json (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from results_file import write

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mobilenet_v3_small", "resnet18")
INPUT = (1, 3, 96, 96)  # example_project's first image


def sample() -> dict:
    """One process's steady-state latencies (seconds per call), keyed ``threads:series``."""
    import warnings

    warnings.simplefilter("ignore")
    import torch
    import torchvision
    from torch.utils.benchmark import Timer

    sys.path.insert(0, str(ROOT))
    from pytest_torchscript.perf import probe

    x = torch.randn(*INPUT, generator=torch.Generator().manual_seed(0))
    built = {}
    for arch in MODELS:
        model = getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()
        with torch.no_grad():
            built[arch] = (model, torch.jit.trace(model, (x,)))
    a, b = torch.randn(1 << 16), torch.randn(1 << 16)

    def small_ops():
        y = a
        for _ in range(20):
            y = torch.add(y, b)
        return y

    result = {"time": time.time()}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        calls = {"small ops": small_ops}
        for arch, (model, traced) in built.items():
            calls[f"{arch} eager"] = lambda model=model: model(x)
            calls[f"{arch} trace"] = lambda traced=traced: traced(x)
        calls.update(probe.reference_workloads(torch.device("cpu")))
        with torch.no_grad():
            for name, call in calls.items():
                for _ in range(5):
                    call()
                timer = Timer("call()", globals={"call": call}, num_threads=threads)
                result[f"{threads}:{name}"] = timer.blocked_autorange(min_run_time=0.4).median
    return result


def probe_total(row: dict, threads: int) -> float:
    return sum(row[f"{threads}:probe:{part}"] for part in ("compute", "memory", "overhead"))


def summarise(rows: list[dict]) -> None:
    """How far each figure spreads over the samples, and over blocks of ten (a few minutes);
    printed, and kept as this benchmark's latest results."""
    usual = statistics.median(probe_total(row, 2) for row in rows)
    quiet = [row for row in rows if probe_total(row, 2) < 1.1 * usual]
    print(f"{len(quiet)} of {len(rows)} samples with the probe within 10% of its median")
    figures = {"probe (2 threads)": lambda row: probe_total(row, 2)}
    for threads in (2, 1):
        for arch in MODELS:
            for form in ("eager", "trace"):
                figures[f"{arch} {form} / probe ({threads} thread(s))"] = (
                    lambda row, t=threads, s=f"{arch} {form}": row[f"{t}:{s}"] / probe_total(row, t)
                )
        figures[f"mobilenet_v3_small trace / eager ({threads} thread(s))"] = partial(
            _trace_over_eager, threads=threads
        )
    figures["small ops (2 threads)"] = lambda row: row["2:small ops"]
    values = {name: [read(row) for row in quiet] for name, read in figures.items()}
    table = []
    for name, series in values.items():
        center = statistics.median(series)
        blocks = [
            statistics.median(series[i : i + 10]) / center - 1 for i in range(0, len(series), 10)
        ]
        print(
            f"{name}: sd {statistics.stdev(series) / center:.1%}, range "
            f"{min(series) / center - 1:+.1%}..{max(series) / center - 1:+.1%}; medians of ten "
            + " ".join(f"{value:+.1%}" for value in blocks)
        )
        table.append(
            {
                "figure": name,
                "sd": f"{statistics.stdev(series) / center:.1%}",
                "range around the median": f"{min(series) / center - 1:+.1%} .. "
                f"{max(series) / center - 1:+.1%}",
                "medians of ten samples": " ".join(f"{value:+.1%}" for value in blocks),
            }
        )
    two, one = (values[f"mobilenet_v3_small eager / probe ({t} thread(s))"] for t in (2, 1))
    correlation = _correlation(two, one)
    print(f"correlation of mobilenet eager / probe, two threads vs one: {correlation:.2f}")
    path = write(
        "model_drift",
        f"Steady-state latencies (torch.utils.benchmark.Timer) of {len(rows)} fresh processes "
        f"in turn, {len(quiet)} of them with the probe within 10% of its median (the others "
        f"left out): how far each figure wanders between processes. Correlation of "
        f"mobilenet_v3_small eager / probe with two threads and with one: {correlation:.2f}.",
        table,
    )
    print(f"wrote {path}")


def _trace_over_eager(row: dict, threads: int) -> float:
    return row[f"{threads}:mobilenet_v3_small trace"] / row[f"{threads}:mobilenet_v3_small eager"]


def _correlation(first: list[float], second: list[float]) -> float:
    mean_first, mean_second = statistics.mean(first), statistics.mean(second)
    covariance = sum((a - mean_first) * (b - mean_second) for a, b in zip(first, second))
    scale = math.sqrt(
        sum((a - mean_first) ** 2 for a in first) * sum((b - mean_second) ** 2 for b in second)
    )
    return covariance / scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=90)
    parser.add_argument("--pause", type=float, default=6.0, help="seconds between samples")
    parser.add_argument("--save", help="append every sample to this JSON-lines file")
    parser.add_argument("--summarise", help="summarise a --save'd file")
    parser.add_argument("--sample", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        print(json.dumps(sample()))
        return
    if args.summarise:
        lines = Path(args.summarise).read_text().splitlines()
        summarise([json.loads(line) for line in lines if line.strip()])
        return
    rows = []
    for index in range(args.samples):
        output = subprocess.run(
            [sys.executable, __file__, "--sample"], check=True, capture_output=True, text=True
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        if args.save:
            with open(args.save, "a") as file:
                file.write(json.dumps(rows[-1]) + "\n")
        print(f"sample {index + 1}/{args.samples}", file=sys.stderr)
        time.sleep(args.pause)
    summarise(rows)


if __name__ == "__main__":
    main()
