"""How good is the max_regression gate on this machine? Measure it; do not assume it.

Each trial is what a user's CI does: one process records a baseline of the unchanged model
(``--ts-update-baseline``), and a later, separate process gates candidates against it, with
the plugin's own timing, probe and gate code (``perf.run``, the code a check runs):

- the unchanged model (several times per trial: false alarms must be rare);
- the same model whose *converted* form does extra work worth 10%, 25% and 50% of its forward
  (the conversion got slower; the converted/eager ratio shows it);
- the same model doing extra work in *eager and converted* alike, each form 10%, 25% or 50%
  slower (a model-wide slowdown: only the probe-normalised absolute times show it). The steps
  are calibrated per form: the same steps cost a scripted chain another share of its time
  than an eager one (here a 10% eager slowdown made the scripted form 15% slower), and on a GPU
  the TorchScript fuser merges them (the first H100 run's "50%" moved the scripted form 24%).

With ``--load``, half of the trials gate while another process keeps one core busy (a noisy
CI neighbour); with ``--oversubscribed`` a third of them gate while two processes keep both
cores busy (more runnable work than cores, as under ``pytest -n 2`` beside a compiler: the
gating process is switched out every few milliseconds). The baseline is always recorded on
the quiet machine, as a user records it.
Reported: how often the gate says regression, inconclusive or pass, per condition.

Targets (issue 10): at most 1% false alarms on the unchanged model, quiet or loaded; at least
90% detection of 10%, 99% of 25%, 100% of 50%; at most 3 s of timing per model and mode.

Run: .venv/bin/python benchmarks/gate_quality.py [--trials 30] [--budget 2] [--device cuda]
     [--load | --load-only] [--oversubscribed] [--baseline-runs 3] [--record-gates FILE]
Writes benchmarks/results/gate_quality.json (docs/benchmarks.md); a replay writes nothing.

``--baseline-runs N`` records each trial's baseline as the README's CI recipe does: one run
(``--ts-update-baseline``) and N-1 more added to it (``--ts-extend-baseline``), each in its own
process, so the gate allows for what this model's runs differ by. The default is one run: the
harshest case, a baseline a user recorded once.

``--record-gates FILE`` keeps what every gate was given (each run's measurements, the probe's
components and the baseline entry, before anything was widened); ``--replay FILE`` judges
those same measurements again with the gate code as it is now (``perf.against_baseline``:
how the probe is read, the allowances, the rules) and prints the outcome table, so a change
is compared with the old code on identical data instead of on another day's noise. Files
recorded before 2026-12-01 hold only the gate's figures, already widened; they replay the
rules alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write

BLOCKS = 20
SLOWDOWNS = (0.10, 0.25, 0.50)
UNCHANGED_PER_TRIAL = 3
MAX_STEPS = 20_000  # a form whose steps cost almost nothing (a GPU fuser) stays scriptable
DEVICE = "cpu"  # --device; set in each process from its arguments


def key() -> str:
    return f"chain | script | {DEVICE}"


def build(eager_steps: int, converted_steps: int):
    """BLOCKS identical blocks, then elementwise steps that leave the values unchanged:
    ``eager_steps`` of them in eager, ``converted_steps`` in the scripted form. A step is one
    op, 0.5-0.7% of either form's time here (a 10% slowdown took 14-15 eager and 19-21 scripted
    steps), so a calibrated 10% is within a step of it; a step of three ops was 5% of the
    scripted chain, and its "10%" could be anything from +7.5% to +12.5%."""
    import torch

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.blocks = torch.nn.ModuleList(
                torch.nn.Sequential(torch.nn.Linear(96, 96), torch.nn.Tanh()) for _ in range(BLOCKS)
            )
            self.eager_steps = eager_steps
            self.converted_steps = converted_steps

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            steps = self.converted_steps if torch.jit.is_scripting() else self.eager_steps
            for _ in range(steps):
                x = torch.clamp(x, -2.0, 2.0)  # one op: tanh's output is within it
            return x

    return Chain().eval().to(DEVICE)


def time_and_gate(
    eager_steps: int,
    converted_steps: int,
    budget: float,
    path: Path,
    record: bool,
    extend: bool = False,
):
    """One check's timing stage on the chain: eager, scripted, reloaded (and the probe)."""
    import io

    import torch

    from pytest_torchscript.perf import run as perf

    eager = build(eager_steps, converted_steps)
    scripted = torch.jit.script(eager)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    reloaded = torch.jit.load(buffer)
    x = torch.randn(8, 96, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    calls = {
        "eager": lambda: eager(x),
        "script": lambda: scripted(x),
        "script reloaded": lambda: reloaded(x),
    }
    settings = perf.PerfSettings(path, record, False, 1)
    # Gating, and adding a run to the baseline, read it (the same calls per sample as it has).
    entries = json.loads(path.read_text()) if extend or not record else {}
    with torch.no_grad():
        report, entry = perf.run(
            calls, torch.device(DEVICE), budget, settings, entries, key(), None, 0.05, "script"
        )
    return report, entry


def child(args) -> None:
    """One process: record the baseline, or gate every candidate against it."""
    import warnings

    warnings.simplefilter("ignore")
    path = Path(args.baseline)
    if args.role in ("record", "extend"):
        extend = args.role == "extend"
        _, entry = time_and_gate(0, 0, args.budget, path, record=True, extend=extend)
        if extend:  # what --ts-extend-baseline does to the entry
            from pytest_torchscript.perf import baseline

            entry = baseline.extended(json.loads(path.read_text())[key()], entry) or entry
        path.write_text(json.dumps({key(): entry}))
        return
    steps = json.loads(args.steps)
    candidates = [("unchanged", 0, 0)] * UNCHANGED_PER_TRIAL
    candidates += [(f"converted {s:.0%}", 0, steps["converted"][f"{s}"]) for s in SLOWDOWNS]
    candidates += [
        (f"model-wide {s:.0%}", steps["eager"][f"{s}"], steps["converted"][f"{s}"])
        for s in SLOWDOWNS
    ]
    from pytest_torchscript.perf import run as perf

    given: list[dict] = []
    judge = perf.against_baseline

    def recording_gate(*arguments, **keywords):  # what the gate was given, for --replay
        given.append(baseline_inputs(*arguments, **keywords))
        return judge(*arguments, **keywords)

    perf.against_baseline = recording_gate
    results = []
    for name, eager_steps, converted_steps in candidates:
        given.clear()
        report, _ = time_and_gate(eager_steps, converted_steps, args.budget, path, record=False)
        gate = report.gates[0]
        results.append(
            {
                "condition": name,
                "outcome": gate.outcome,
                "seconds": report.timing.seconds_spent,
                "preempted": report.timing.disturbed_rounds / max(report.timing.rounds, 1),
                "changes": _changes(report, path),
                "message": gate.message,
                "baseline_inputs": given[0] if given else None,
                "budget": args.budget,
                "timing": timing_record(report.timing),
            }
        )
    print(json.dumps(results))


def timing_record(timing) -> dict:
    """Everything ``perf.run`` reads of a ``TimingResult``, round by round, with when each
    round ended: ``--replay-ceiling`` cuts it where a shorter timing would have stopped."""
    return {
        "samples": timing.samples,
        "loops": timing.loops,
        "threads": timing.threads,
        "device": timing.device,
        "seconds_spent": timing.seconds_spent,
        "steady": {name: value.to_dict() for name, value in timing.steady.items()},
        "steady_windows": timing.steady_windows,
        "preempted": timing.preempted,
        "round_ends": timing.round_ends,
        "phases": timing.phases,
    }


def cut_at_ceiling(record: dict, budget: float, ceiling: float):
    """The ``TimingResult`` a timing capped at ``ceiling`` budgets would have returned: the
    rounds that began before the cap less the time the steady-state windows after them take
    (as long as the ones before, the reserve ``timing.measure`` keeps), FLOOR_ROUNDS at least."""
    from pytest_torchscript.perf import timing
    from pytest_torchscript.perf.stats import Interval

    phases, ends = record["phases"], record["round_ends"]
    cap = ceiling * budget - phases["steady_before"]
    began = phases["warm_up"] + phases["steady_before"]
    starts = [began, *ends[:-1]]
    kept = max(timing.FLOOR_ROUNDS, sum(1 for start in starts if start < cap))
    kept = min(kept, len(ends))
    samples = {name: values[:kept] for name, values in record["samples"].items()}
    preempted = {
        name: [i for i in rounds if i < kept] for name, rounds in record["preempted"].items()
    }
    return timing.TimingResult(
        samples=samples,
        loops=record["loops"],
        rounds=kept,
        threads=record["threads"],
        device=record["device"],
        seconds_spent=ends[kept - 1] + phases["steady_after"],
        steady={name: Interval(**value) for name, value in record["steady"].items()},
        steady_windows=record["steady_windows"],
        preempted=preempted,
        round_ends=ends[:kept],
        phases=phases,
    )


def replay_ceiling(result: dict, ceiling: float):
    """``perf.run`` on a recorded timing cut at ``ceiling`` budgets: (gate, seconds)."""
    import torch

    from pytest_torchscript.perf import run as perf
    from pytest_torchscript.perf.probe import is_probe

    given = result["baseline_inputs"]
    cut = cut_at_ceiling(result["timing"], result["budget"], ceiling)
    names = [name for name in cut.samples if not is_probe(name)]
    measure = perf.measure
    perf.measure = lambda *arguments, **keywords: cut
    try:
        settings = perf.PerfSettings(Path(given["baseline_path"]), False, False, 1)
        report, _ = perf.run(
            {name: None for name in names},
            torch.device(cut.device),
            result["budget"],
            settings,
            {given["key"]: given["entry"]},
            given["key"],
            None,
            given["threshold"],
            given["mode"],
            given["timed_input"],
        )
    finally:
        perf.measure = measure
    return report.gates[0], cut.seconds_spent


GATE_ARGUMENTS = (
    "ratio",
    "eager",
    "converted",
    "threshold",
    "mode",
    "not_judged",
    "busy",
    "raw_converted",
    "steady",
)
BASELINE_ARGUMENTS = (
    "report",
    "components_now",
    "entry",
    "fingerprint",
    "threshold",
    "key",
    "settings",
    "mode",
    "timed_input",
)
# What ``perf.against_baseline`` reads of a report: the measurements, not the timing itself.
REPORT_FIELDS = (
    "ratio",
    "latency_ratio",  # and reloaded_ratio: what ``perf.tell_one_story`` reads
    "reloaded_ratio",
    "medians",
    "interleaved",
    "probe",
    "probe_spread",
    "normalised",
    "too_busy",
    "ratio_too_busy",
)


def baseline_inputs(*arguments, **keywords) -> dict:
    """``perf.against_baseline``'s arguments as JSON-ready data: every measurement the gate
    judges, before the probe's view of the machine widened or corrected any of them, so a
    change to how the probe is read can be judged on identical runs (``--replay``)."""
    given = dict(zip(BASELINE_ARGUMENTS, arguments), **keywords)
    report = given.pop("report")
    settings = given.pop("settings")
    given["baseline_path"] = str(settings.baseline_path)

    def plain(value):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        if isinstance(value, dict):
            return {name: plain(item) for name, item in value.items()}
        return value

    given["report"] = {name: plain(getattr(report, name)) for name in REPORT_FIELDS}
    return given


def replay_gate(given: dict):
    """Judge recorded gate inputs again with today's ``gates.regression_gate`` and today's
    allowances for what runs differ by (this benchmark's baselines are one run each, so each
    figure's allowance is the default of ``perf``)."""
    from pytest_torchscript.perf import gates, verdicts
    from pytest_torchscript.perf.stats import Interval

    def figure(data):
        if data is None:
            return None
        intervals = {k: Interval(**data[k]) for k in ("now", "then", "change")}
        ratio = "ratio" in data["label"]
        allowance = verdicts.BETWEEN_PROCESSES if ratio else verdicts.BETWEEN_RUNS
        return gates.Figure(data["label"], allowance=allowance, **intervals)

    arguments = dict(given)
    for name in ("ratio", "eager", "converted"):
        arguments[name] = figure(given.get(name))
    if given.get("raw_converted") is not None:
        arguments["raw_converted"] = Interval(**given["raw_converted"])
    if given.get("steady") is not None:
        arguments["steady"] = gates.SteadyChanges(**given["steady"])
    return gates.regression_gate(**arguments)


def replay_baseline(given: dict):
    """Judge recorded measurements again with today's ``perf.against_baseline``: the probe's
    reading of the machine, the allowances, the gate's rules and the one-story rule as they are
    now."""
    from pytest_torchscript.perf import run as perf
    from pytest_torchscript.perf.stats import Interval

    def interval(data):
        return Interval(**data) if data is not None else None

    measured = given["report"]
    report = perf.PerfReport(
        ratio=interval(measured["ratio"]),
        latency_ratio=interval(measured.get("latency_ratio")),
        reloaded_ratio=interval(measured.get("reloaded_ratio")),
        medians={name: interval(value) for name, value in measured["medians"].items()},
        interleaved={name: interval(value) for name, value in measured["interleaved"].items()},
        probe=interval(measured["probe"]),
        probe_spread=measured["probe_spread"],
        normalised={name: interval(value) for name, value in measured["normalised"].items()},
        too_busy=measured["too_busy"],
        ratio_too_busy=measured["ratio_too_busy"],
    )
    settings = perf.PerfSettings(Path(given["baseline_path"]), False, False, 1)
    report.gates = [
        perf.against_baseline(
            report,
            given["components_now"],
            given["entry"],
            given["fingerprint"],
            given["threshold"],
            given["key"],
            settings,
            given["mode"],
            given["timed_input"],
        )
    ]
    perf.tell_one_story(report, given["entry"])  # as ``perf.run`` does after the gates
    return report.gates[0]


def replay(path: Path, ceiling: float | None = None) -> None:
    """Print the outcome table of recorded gates judged by the gate code as it is now, and
    every gate whose outcome changed; with ``ceiling``, each timing cut where a timing capped
    at that many budgets would have stopped (recorded with their rounds' clock only)."""
    tally: dict[tuple[str, str], dict[str, int]] = {}
    spent: dict[str, list[float]] = {}
    for result in json.loads(path.read_text()):
        if ceiling is not None:
            if result.get("timing") is None:
                continue
            gate, seconds = replay_ceiling(result, ceiling)
            spent.setdefault(result["machine"], []).append(seconds)
        elif result.get("baseline_inputs") is not None:
            gate = replay_baseline(result["baseline_inputs"])
        elif result.get("gate_inputs") is not None:  # recorded before baseline_inputs were
            gate = replay_gate(result["gate_inputs"])
        else:
            continue
        if gate.outcome != result["outcome"]:
            print(
                f"{result['outcome']} -> {gate.outcome} ({result['machine']}, "
                f"{result['condition']}): {gate.message}"
            )
        counts = tally.setdefault((result["machine"], result["condition"]), {})
        counts[gate.outcome] = counts.get(gate.outcome, 0) + 1
    print_outcomes(tally)
    for machine, seconds in spent.items():
        seconds.sort()
        print(
            f"timing per check ({machine}): median {seconds[len(seconds) // 2]:.2f} s, "
            f"max {seconds[-1]:.2f} s"
        )


def _changes(report, path: Path) -> dict[str, float]:
    """Each gated figure now / in the baseline (medians), for the noise table."""
    from pytest_torchscript.perf import verdicts

    entry = json.loads(path.read_text())[key()]
    return {
        "ratio": report.ratio.median / entry["ratio"]["median"] - 1,
        "eager": report.normalised["eager"].median / entry["normalised"]["eager"]["median"] - 1,
        "converted": report.normalised["converted"].median
        / entry["normalised"]["converted"]["median"]
        - 1,
        "steady": verdicts.steady_changes(report, entry, True).ratio - 1,
    }


def calibrate(budget: float) -> dict[str, dict[str, int]]:
    """Extra steps that make each form, eager and scripted, 10/25/50% slower: measured
    interleaved in this process (cost per step, then a correction per slowdown). A
    converted-only slowdown adds the scripted form's steps; a model-wide one adds both."""
    import torch

    from pytest_torchscript.perf.timing import measure

    x = torch.randn(8, 96).to(DEVICE)
    steps: dict[str, dict[str, int]] = {}
    for form_name in ("eager", "converted"):

        def form(extra, form_name=form_name):
            if form_name == "eager":
                return build(extra, 0)
            return torch.jit.script(build(0, extra))

        def slowdown(extra, form=form):
            base, slowed = form(0), form(extra)
            calls = {"base": lambda: base(x), "slowed": lambda: slowed(x)}
            with torch.no_grad():
                result = measure(calls, torch.device(DEVICE), 3.0, threads=1)
            return result.ratio("slowed", "base").median - 1

        per_step = slowdown(100) / 100
        if per_step <= 0:  # e.g. a GPU whose launches hide the steps' kernels
            raise SystemExit(
                f"calibration: 100 extra steps did not slow the {form_name} form on {DEVICE} "
                f"({per_step * 100:+.1%}); this benchmark's slowdowns cannot be made there"
            )
        steps[form_name] = {}
        for target in SLOWDOWNS:
            count = min(MAX_STEPS, max(1, round(target / per_step)))
            measured = slowdown(count)
            if measured > 0:
                count = min(MAX_STEPS, max(1, round(count * target / measured)))
            steps[form_name][f"{target}"] = count
    return steps


def hog(stop) -> None:
    """A noisy neighbour: keeps one core busy until told to stop."""
    value = 0
    while not stop.is_set():
        for _ in range(10_000):
            value = (value * 31 + 7) % 1_000_003


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="trials per machine condition")
    parser.add_argument("--budget", type=float, default=2.0, help="time_budget per check")
    parser.add_argument("--load", action="store_true", help="also gate beside a CPU hog")
    parser.add_argument("--load-only", action="store_true", help="gate beside a CPU hog only")
    parser.add_argument(
        "--oversubscribed", action="store_true", help="also gate beside two CPU hogs"
    )
    parser.add_argument("--record-gates", help="write what every gate was given to this file")
    parser.add_argument("--replay", help="judge a --record-gates file again, with today's gate")
    parser.add_argument(
        "--replay-ceiling",
        type=float,
        help="with --replay: cut each recorded timing where one capped at this many budgets "
        "would have stopped, and gate what is left",
    )
    parser.add_argument(
        "--baseline-runs",
        type=int,
        default=1,
        help="runs per baseline entry, each in its own process (the README's recipe: 3)",
    )
    parser.add_argument("--role", choices=["record", "extend", "gate"], help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help="where the model runs (cpu, cuda)")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    parser.add_argument("--steps", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.role:
        child(args)
        return
    if args.replay:
        replay(Path(args.replay), args.replay_ceiling)
        return
    import warnings

    import torch

    warnings.simplefilter("ignore")
    started = time.time()
    steps = calibrate(args.budget)
    print(
        f"torch {torch.__version__}; {DEVICE}; 1 thread; time_budget={args.budget:g} s per check "
        f"(probe included); baseline of {args.baseline_runs} run(s), each in its own process, "
        f"gated in a later one; max_regression=5%"
    )
    print(f"extra steps per slowdown (calibrated): {steps}", flush=True)
    machines = ["quiet"] + (["one core busy"] if args.load else [])
    if args.load_only:
        machines = ["one core busy"]
    if args.oversubscribed:
        machines.append("both cores busy")
    hogs = {"quiet": 0, "one core busy": 1, "both cores busy": 2}
    tally: dict[tuple[str, str], dict[str, int]] = {}
    spread: dict[tuple[str, str], list[dict[str, float]]] = {}
    spent: dict[str, list[float]] = {}
    preempted: dict[str, list[float]] = {}
    vetoed: dict[tuple[str, str], int] = {}
    recorded: list[dict] = []
    script = [sys.executable, os.path.abspath(__file__)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baseline.json"
        for trial in range(args.trials * len(machines)):
            machine = machines[trial % len(machines)]
            base = [*script, "--baseline", str(path), "--budget", str(args.budget)]
            base += ["--device", DEVICE]
            subprocess.run([*base, "--role", "record"], check=True)
            for _ in range(args.baseline_runs - 1):
                subprocess.run([*base, "--role", "extend"], check=True)
            stop = multiprocessing.Event()
            neighbours = [
                multiprocessing.Process(target=hog, args=(stop,)) for _ in range(hogs[machine])
            ]
            for neighbour in neighbours:
                neighbour.start()
            try:
                output = subprocess.run(
                    [*base, "--role", "gate", "--steps", json.dumps(steps)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            finally:
                stop.set()
                for neighbour in neighbours:
                    neighbour.join()
            for result in json.loads(output.strip().splitlines()[-1]):
                recorded.append({"machine": machine, **result})
                spread.setdefault((machine, result["condition"]), []).append(result["changes"])
                counts = tally.setdefault((machine, result["condition"]), {})
                counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
                spent.setdefault(machine, []).append(result["seconds"])
                preempted.setdefault(machine, []).append(result["preempted"])
                if result["condition"] == "unchanged" and result["outcome"] != "pass":
                    print(f"{result['outcome']} ({machine}): {result['message']}", flush=True)
                elif result["condition"] != "unchanged" and result["outcome"] != "regression":
                    print(
                        f"missed, {result['outcome']} ({machine}, {result['condition']}): "
                        f"{result['message']}",
                        flush=True,
                    )
                if "instruments disagree" in result["message"]:  # the steady-state check
                    vetoed[(machine, result["condition"])] = (
                        vetoed.get((machine, result["condition"]), 0) + 1
                    )
    if args.record_gates:
        Path(args.record_gates).write_text(json.dumps(recorded))
    print_outcomes(tally)
    print(
        "turned inconclusive by the steady-state latencies (gates.SteadyChanges): "
        + (", ".join(f"{m} {c}: {n}" for (m, c), n in vetoed.items()) or "none")
    )
    print("measured change per figure (median [min, max] over the gates), now vs baseline:")
    print(
        f"{'machine':<15} {'condition':<16} {'ratio':>22} {'eager/probe':>22} "
        f"{'conv/probe':>22} {'steady ratio':>22}"
    )
    for (machine, condition), rows in spread.items():
        cells = []
        for figure in ("ratio", "eager", "converted", "steady"):
            values = sorted(row[figure] for row in rows)
            cells.append(f"{values[len(values) // 2]:+.1%} [{values[0]:+.1%}, {values[-1]:+.1%}]")
        print(f"{machine:<15} {condition:<16} " + " ".join(f"{c:>22}" for c in cells))
    for machine, seconds in spent.items():
        seconds.sort()
        print(
            f"timing per check ({machine}): median {seconds[len(seconds) // 2]:.2f} s, "
            f"max {seconds[-1]:.2f} s"
        )
    for machine, shares in preempted.items():
        shares.sort()
        print(
            f"rounds preempted ({machine}): median {shares[len(shares) // 2]:.0%}, "
            f"max {shares[-1]:.0%} (left out and replaced)"
        )
    print(f"({time.time() - started:.0f} s in all)")
    write(
        "gate_quality",
        f"{args.trials} trials per machine condition: a baseline recorded on the quiet machine "
        f"({args.baseline_runs} run(s)), gated in a later process, time_budget={args.budget:g} s, "
        "max_regression=5%; targets: at most 1% false alarms on the unchanged model, at least "
        "90% of 10% slowdowns caught, 99% of 25%, 100% of 50%. "
        + "; ".join(
            f"timing per check ({machine}): median {statistics.median(seconds):.2f} s, "
            f"max {max(seconds):.2f} s"
            for machine, seconds in spent.items()
        )
        + f"; {time.time() - started:.0f} s in all",
        outcome_rows(tally, spread),
        steady_vetoes={f"{m}, {c}": n for (m, c), n in vetoed.items()},
    )


def outcome_rows(
    tally: dict[tuple[str, str], dict[str, int]],
    spread: dict[tuple[str, str], list[dict[str, float]]],
) -> list[dict]:
    """A row per machine and condition: the verdicts' shares, and what each figure measured
    (median [min, max] over the gates, now against the baseline)."""
    rows = []
    for (machine, condition), counts in tally.items():
        total = sum(counts.values())
        row = {"machine": machine, "condition": condition, "gates": total}
        for outcome in ("regression", "inconclusive", "pass"):
            row[outcome] = f"{counts.get(outcome, 0) / total:.1%}"
        for figure, label in (("ratio", "ratio"), ("eager", "eager/probe"),
                              ("converted", "conv/probe"), ("steady", "steady ratio")):  # fmt: skip
            values = sorted(gate[figure] for gate in spread[(machine, condition)])
            row[label] = f"{values[len(values) // 2]:+.1%} [{values[0]:+.1%}, {values[-1]:+.1%}]"
        rows.append(row)
    return rows


def print_outcomes(tally: dict[tuple[str, str], dict[str, int]]) -> None:
    print(
        f"{'machine':<15} {'condition':<16} {'gates':>6} {'regression':>11} "
        f"{'inconclusive':>13} {'pass':>6}"
    )
    for (machine, condition), counts in tally.items():
        total = sum(counts.values())
        print(
            f"{machine:<15} {condition:<16} {total:>6} "
            f"{counts.get('regression', 0) / total:>11.1%} "
            f"{counts.get('inconclusive', 0) / total:>13.1%} "
            f"{counts.get('pass', 0) / total:>6.1%}"
        )


if __name__ == "__main__":
    main()
