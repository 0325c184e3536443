"""Are the plugin's timings right? Compare them with torch.utils.benchmark.

For each model, the modules a check times (eager, freshly converted, reloaded) are timed by the
plugin's timing stage exactly as a check with a baseline times them (``timing.measure``, with
the machine-speed probe's components interleaved in the same rounds), and independently by
``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=1)`` on one thread.
Reported per series: the latency the plugin reports (steady state, consecutive calls), the
interleaved median the gates use, Timer's median, and the ratios to Timer; and the
converted/eager ratio both ways. The issue's bar: the reported latency within 5% of Timer.
Each model is measured ``--repeats`` times (fresh measurements, same process). Timer runs
before and after the plugin in each repeat: the plugin is compared with the mean of the two,
and "Timer drift" (after / before) is how far the reference itself moved meanwhile, the floor
under any comparison with it.

On a GPU (``--device cuda``) both sides synchronise: the plugin around every timed block,
Timer by itself; the models then run at batch 8 on 224x224 images, so kernels, not launches,
take most of a call.

A small MLP (64-256-10, batch 4: calls of about 10 us) is measured beside the torchvision
models: its figures are where a fixed cost per call (Python, the TorchScript interpreter)
weighs most.

Run: .venv/bin/python benchmarks/timing_accuracy.py [--repeats 3] [--device cuda]
Writes benchmarks/results/timing_accuracy.json (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import statistics
import warnings

import torch
import torch.utils.benchmark as benchmark
import torchvision
from results_file import write

from pytest_torchscript.perf.probe import reference_workloads
from pytest_torchscript.perf.timing import measure


def mlp(weights=None):
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def modules(model, example):
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    return {"eager": model, "trace": traced, "trace reloaded": torch.jit.load(buffer)}


def timer_medians(series: dict, example) -> dict[str, float]:
    return {
        label: benchmark.Timer("module(x)", globals={"module": module, "x": example}, num_threads=1)
        .blocked_autorange(min_run_time=1)
        .median
        for label, module in series.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="where the models run (cpu, cuda)")
    arguments = parser.parse_args()
    repeats = arguments.repeats
    device = torch.device(arguments.device)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    batch, side = (8, 224) if device.type == "cuda" else (1, None)
    cases = [
        ("resnet18", torchvision.models.resnet18, (batch, 3, side or 64, side or 64)),
        (
            "mobilenet_v3_small",
            torchvision.models.mobilenet_v3_small,
            (batch, 3, side or 96, side or 96),
        ),
        ("squeezenet1_0", torchvision.models.squeezenet1_0, (batch, 3, side or 64, side or 64)),
        ("mlp 64-256-10", mlp, (4 if device.type == "cpu" else batch, 64)),
    ]
    print(
        f"torch {torch.__version__}; {device}; 1 thread; plugin: measure(budget=2 s) with the "
        f"probe; Timer: blocked_autorange(min_run_time=1); {repeats} repeats"
    )
    print(
        f"{'model':<30} {'series':<15} {'reported':>9} {'Timer':>9} {'rep/Timer':>10} "
        f"{'interleaved/Timer':>18} {'Timer drift':>12}"
    )
    within, drift_within, total = 0, 0, 0
    summary = []
    rows = []
    for name, build, shape in cases:
        name = f"{name} {'x'.join(map(str, shape))}"
        model = build(weights=None).eval().to(device)
        example = torch.randn(*shape).to(device)
        series = modules(model, example)
        calls = {label: (lambda m=m, x=example: m(x)) for label, m in series.items()}
        calls.update(reference_workloads(device))
        ratios: dict[str, list[float]] = {label: [] for label in series}
        drifts: dict[str, list[float]] = {label: [] for label in series}
        timers: dict[str, list[float]] = {label: [] for label in series}
        for _ in range(repeats):
            with torch.no_grad():
                before = timer_medians(series, example)
                ours = measure(calls, device, 2.0, 1, latency_of=tuple(series))
                after = timer_medians(series, example)
            timer = {label: (before[label] + after[label]) / 2 for label in series}
            for label in series:
                reported = ours.latency(label).median
                interleaved = ours.median(label).median
                ratios[label].append(reported / timer[label])
                timers[label].append(timer[label])
                drifts[label].append(after[label] / before[label])
                print(
                    f"{name:<30} {label:<15} {reported * 1e3:>7.2f}ms {timer[label] * 1e3:>7.2f}ms "
                    f"{reported / timer[label]:>10.3f} {interleaved / timer[label]:>18.3f} "
                    f"{after[label] / before[label]:>12.3f}",
                    flush=True,
                )
            print(
                f"{name:<30} {'trace/eager':<15} interleaved (shown, gated) "
                f"{ours.ratio('trace').median:.3f}, of the latencies "
                f"{ours.latency_ratio('trace').median:.3f}, Timer's "
                f"{timer['trace'] / timer['eager']:.3f}",
                flush=True,
            )
        for label in series:
            total += len(ratios[label])
            within += sum(abs(r - 1) <= 0.05 for r in ratios[label])
            drift_within += sum(abs(d - 1) <= 0.05 for d in drifts[label])
            rows.append(
                {
                    "model": name,
                    "series": label,
                    "Timer median us": round(statistics.median(timers[label]) * 1e6, 2),
                    "median reported / Timer": statistics.median(ratios[label]),
                    "range": f"{min(ratios[label]):.3f}..{max(ratios[label]):.3f}",
                    "Timer drift range": f"{min(drifts[label]):.3f}..{max(drifts[label]):.3f}",
                }
            )
            summary.append(
                f"{name:<30} {label:<15} {statistics.median(ratios[label]):>12.3f} "
                f"{min(ratios[label]):>7.3f}..{max(ratios[label]):<7.3f} "
                f"{min(drifts[label]):>7.3f}..{max(drifts[label]):<7.3f}"
            )
    print()
    print(
        f"{'model':<30} {'series':<15} {'median rep/Timer':>12} {'rep/Timer range':>16} "
        f"{'Timer drift range':>18}"
    )
    print("\n".join(summary))
    print(
        f"reported within 5% of Timer: {within} of {total}; "
        f"Timer within 5% of itself (after vs before): {drift_within} of {total}"
    )
    path = write(
        "timing_accuracy",
        f"the latency a check reports (steady state) against torch.utils.benchmark.Timer's "
        f"(blocked_autorange, min_run_time=1, the mean of a run before and after the plugin's), "
        f"one thread, {device}, {repeats} fresh measurements per model; 'Timer drift' is "
        f"Timer after / before, how far the reference itself moved. Reported within 5% of Timer: "
        f"{within} of {total}; Timer within 5% of itself: {drift_within} of {total}",
        rows,
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
