"""How much do a real model's timings move between runs of the same code, and how often does
that alone fail the max_regression gate, with a baseline of one run, three or five?

A baseline is recorded in one pytest process and gated in a later one. Some models run at a
different speed from one run to the next with nothing changed, and the machine-speed probe
does not follow them: example_project's mobilenet_v3_small read 8-21% faster in one recording
process, and every later gate against that recording flagged a model-wide slowdown on a quiet
machine. This measures it on real models instead of the synthetic chain of
``gate_quality.py``:

1. ``--processes N`` fresh processes in turn each time every model exactly as a check does
   (``perf.run`` with ``--ts-update-baseline``: the plugin's timing, probe and entry), and
   ``--save F`` keeps their entries: a batch. Run it again later for another batch;
2. ``--judge A B C`` then makes every process the gate of baselines built from the others,
   judged by the plugin's own ``perf.against_baseline``: runs from the same batch (minutes
   apart), from other batches (the gate later than the baseline, as in CI), and one run from
   each other batch, each as one run or pooled as ``--ts-extend-baseline`` pools them. Nothing
   changed between the processes: every outcome that is not a pass is a false alarm or an
   inconclusive.

Run: .venv/bin/python benchmarks/between_processes.py [--processes 12] [--save F]
     .venv/bin/python benchmarks/between_processes.py --judge A.json [B.json ...]
(without --save, a run judges its own batch.) A judgement writes
benchmarks/results/between_processes.json (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results_file import write

THRESHOLD = 0.05  # max_regression's default
INPUT = (1, 3, 96, 96)  # example_project's first image


def models() -> dict:
    """name -> (mode, builder): the example project's vision models, and a plain MLP."""
    import torch
    import torchvision

    def vision(arch):
        return lambda: getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()

    def mlp():
        torch.manual_seed(0)
        layers = [torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU()) for _ in range(8)]
        return torch.nn.Sequential(*layers).eval()

    return {
        "mobilenet_v3_small": ("trace", vision("mobilenet_v3_small"), INPUT),
        "resnet18": ("trace", vision("resnet18"), INPUT),
        "mlp": ("trace", mlp, (8, 256)),
    }


def child() -> None:
    """One process: an entry per model, as ``--ts-update-baseline`` would write it."""
    import warnings

    warnings.simplefilter("ignore")
    import torch

    from pytest_torchscript.perf import run as perf

    entries = {}
    for name, (mode, build, shape) in models().items():
        model = build()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            traced = torch.jit.trace(model, (x,))
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            buffer.seek(0)
            reloaded = torch.jit.load(buffer)
            calls = {
                "eager": lambda model=model, x=x: model(x),
                mode: lambda traced=traced, x=x: traced(x),
                f"{mode} reloaded": lambda reloaded=reloaded, x=x: reloaded(x),
            }
            settings = perf.PerfSettings(Path("unused.json"), True, False, 1)
            _, entry = perf.run(
                calls, torch.device("cpu"), 2.0, settings, {}, name, None, THRESHOLD, mode
            )
        entries[name] = entry  # None when the machine was too busy to record it
    print(json.dumps(entries))


def judge(recordings: list[dict], now: dict, mode: str) -> str:
    """The gate's outcome for a process measuring ``now`` against a baseline entry made of
    ``recordings``, with the plugin's own code."""
    from pytest_torchscript.perf import baseline
    from pytest_torchscript.perf import run as perf
    from pytest_torchscript.perf.stats import Interval

    entry = recordings[0]
    if len(recordings) > 1:
        runs = [{name: run[name] for name in baseline.RECORDING_FIELDS} for run in recordings]
        entry = baseline.pooled(recordings[-1], runs)
    report = perf.PerfReport(
        ratio=Interval(**now["ratio"]),
        probe=Interval(**{k: now["probe"][k] for k in ("median", "low", "high")}),
        probe_spread=now["probe"]["spread"],
        normalised={role: Interval(**now["normalised"][role]) for role in ("eager", "converted")},
        interleaved={
            "eager": Interval(*[now["eager_median"]] * 3),
            mode: Interval(*[now["converted_median"]] * 3),
        },
        medians={
            "eager": Interval(*[now["latency"]["eager"]] * 3),
            mode: Interval(*[now["latency"]["converted"]] * 3),
        },
    )
    settings = perf.PerfSettings(Path("baseline.json"), False, False, 1)
    gate = perf.against_baseline(
        report,
        now["probe"]["components"],
        entry,
        now["fingerprint"],
        THRESHOLD,
        "key",
        settings,
        mode,
    )
    return gate.outcome


def combinations(pool: list, count: int, limit: int = 300) -> list[list]:
    """Every ``count`` of ``pool``, or ``limit`` of them drawn at random (seeded) if more."""
    if math.comb(len(pool), count) <= limit:
        return [list(chosen) for chosen in itertools.combinations(pool, count)]
    draw = random.Random(len(pool) * 1000 + count)
    return [draw.sample(pool, count) for _ in range(limit)]


def summarise(batches: list[list[dict]]) -> tuple[list[dict], list[str]]:
    """Per model: how far its figures spread, and the gate's outcomes for baselines of one and
    of three runs: from the same batch of processes (minutes apart), from another batch (the
    gate run later, as CI runs it), and one run from each other batch (recorded over time).
    Printed, and returned as rows of outcomes and the lines of spread."""
    rows: list[dict] = []
    spreads: list[str] = []
    for name, (mode, _, _) in models().items():
        found = [[run[name] for run in batch if run.get(name)] for batch in batches]
        everything = [entry for batch in found for entry in batch]
        for role in ("eager", "converted"):
            values = [entry["normalised"][role]["median"] for entry in everything]
            center = statistics.median(values)
            moved = [value / center - 1 for value in values]
            medians = [
                statistics.median(entry["normalised"][role]["median"] for entry in batch) / center
                - 1
                for batch in found
            ]
            spreads.append(
                f"{name} {role if role == 'eager' else mode} / probe across {len(values)} "
                f"processes: {min(moved):+.1%} .. {max(moved):+.1%} from their median, "
                f"sd {statistics.stdev(values) / center:.1%}; batch medians "
                + " ".join(f"{value:+.1%}" for value in medians)
            )
            print(spreads[-1])
        conditions = {"same batch": [], "another batch": [], "one run from each other batch": []}
        for index, batch in enumerate(found):
            others = [entry for other, runs in enumerate(found) if other != index for entry in runs]
            for j, now in enumerate(batch):
                same = batch[:j] + batch[j + 1 :]
                for count in (1, 3, 5):
                    conditions["same batch"] += [
                        (count, chosen, now) for chosen in combinations(same, count)
                    ]
                    conditions["another batch"] += [
                        (count, chosen, now) for chosen in combinations(others, count)
                    ]
                spread = [runs for other, runs in enumerate(found) if other != index]
                if len(spread) >= 2:
                    conditions["one run from each other batch"] += [
                        (len(spread), list(chosen), now) for chosen in itertools.product(*spread)
                    ]
        for condition, cases in conditions.items():
            for count in sorted({count for count, _, _ in cases}):
                tally: dict[str, int] = {}
                for _, chosen, now in (case for case in cases if case[0] == count):
                    outcome = judge(chosen, now, mode)
                    tally[outcome] = tally.get(outcome, 0) + 1
                total = sum(tally.values())
                shares = ", ".join(
                    f"{outcome} {n / total:.1%}" for outcome, n in sorted(tally.items())
                )
                print(f"  {condition}, baseline of {count} run(s): {total} gates: {shares}")
                rows.append(
                    {
                        "model": f"{name} ({mode})",
                        "baseline from": condition,
                        "runs in the baseline": count,
                        "gates": total,
                        **{
                            outcome: f"{tally.get(outcome, 0) / total:.1%}"
                            for outcome in ("pass", "inconclusive", "regression")
                        },
                    }
                )
    return rows, spreads


def judged(batches: list[list[dict]]) -> None:
    """Summarise ``batches`` and keep the judgement as this benchmark's latest results."""
    rows, spreads = summarise(batches)
    sizes = " + ".join(str(len(batch)) for batch in batches)
    path = write(
        "between_processes",
        f"Unchanged models timed in {sizes} fresh processes ({len(batches)} batch(es), "
        f"run at different times), each process gated against baselines built from the others "
        f"with the plugin's own code (max_regression={THRESHOLD:.0%}): every outcome but a "
        f"pass is a false alarm or an inconclusive.",
        rows,
        spread=spreads,
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=12)
    parser.add_argument("--save", help="keep every process's entries in this JSON file")
    parser.add_argument(
        "--judge", nargs="+", help="judge --save'd files (together) again, with today's gate code"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.judge:
        judged([json.loads(Path(path).read_text()) for path in args.judge])
        return
    runs = []
    with tempfile.TemporaryDirectory() as workdir:
        for index in range(args.processes):
            output = subprocess.run(
                [sys.executable, __file__, "--child"],
                cwd=workdir,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
            print(f"process {index + 1}/{args.processes} done", file=sys.stderr)
    if args.save:
        Path(args.save).write_text(json.dumps(runs))
    judged([runs])


if __name__ == "__main__":
    main()
