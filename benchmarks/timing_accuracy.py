"""Are the plugin's timings right? Compare its medians with torch.utils.benchmark.

For each model and mode, the module a check times (eager, freshly converted, reloaded) is
timed by the plugin's own timing stage (``timing.measure``, interleaved rounds) and,
independently, by ``torch.utils.benchmark.Timer(...).blocked_autorange()`` on one thread,
interleaved per series (plugin, Timer, plugin, Timer). Reported: each median and the ratio
plugin / Timer; the issue's bar is agreement within 5%.

Run: .venv/bin/python benchmarks/timing_accuracy.py
"""

from __future__ import annotations

import io
import warnings

import torch
import torch.utils.benchmark as benchmark
import torchvision

from pytest_torchscript.timing import measure


def modules(name: str, model, example):
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    return {"eager": model, "trace": traced, "trace reloaded": torch.jit.load(buffer)}


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    cases = [
        (
            "resnet18 1x3x64x64",
            torchvision.models.resnet18(weights=None).eval(),
            torch.randn(1, 3, 64, 64),
        ),
        (
            "mobilenet_v3_small 1x3x96x96",
            torchvision.models.mobilenet_v3_small(weights=None).eval(),
            torch.randn(1, 3, 96, 96),
        ),
    ]
    print(
        f"torch {torch.__version__}; 1 thread; plugin: measure(budget=2 s); Timer: "
        f"blocked_autorange(min_run_time=1)"
    )
    print(f"{'model':<30} {'series':<16} {'plugin':>10} {'Timer':>10} {'plugin/Timer':>13}")
    for name, model, example in cases:
        series = modules(name, model, example)
        calls = {label: (lambda m=m, x=example: m(x)) for label, m in series.items()}
        with torch.no_grad():
            ours = measure(calls, torch.device("cpu"), 2.0, threads=1)
            for label, module in series.items():
                timer = benchmark.Timer(
                    "module(x)", globals={"module": module, "x": example}, num_threads=1
                )
                theirs = timer.blocked_autorange(min_run_time=1).median
                mine = ours.median(label).median
                print(
                    f"{name:<30} {label:<16} {mine * 1e3:>8.2f}ms {theirs * 1e3:>8.2f}ms "
                    f"{mine / theirs:>13.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
