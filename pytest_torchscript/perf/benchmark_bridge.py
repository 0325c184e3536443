"""Publishing timings as pytest-benchmark results, so its table, ``--benchmark-json``,
``--benchmark-autosave``/``--benchmark-compare`` and ``--benchmark-compare-fail`` see them.

pytest-benchmark has no public API for results measured elsewhere; its session (registered as
the plugin "pytest-benchmark") and ``Metadata`` rows are the stable integration points its own
fixture uses. Everything here degrades to "not published" if they are missing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest


def benchmark_session(config: pytest.Config) -> Any | None:
    """pytest-benchmark's session, which it registers as the plugin "pytest-benchmark"."""
    return config.pluginmanager.get_plugin("pytest-benchmark")


def timing_off_reason(config: pytest.Config) -> str | None:
    """Why pytest-benchmark says not to time anything in this run, or None."""
    session = benchmark_session(config)
    if session is None:
        return None
    if getattr(session, "skip", False):
        return "timing off: --benchmark-skip"
    xdist = os.environ.get("PYTEST_XDIST_WORKER") or config.getoption("dist", "no") != "no"
    if getattr(session, "disabled", False):
        if xdist:
            return "timing off under xdist (pytest-benchmark disables itself; run without -n)"
        return "timing off: --benchmark-disable"
    return None


def timing_blocked(config: pytest.Config) -> str | None:
    """Why this run will time nothing, read from the command line alone (pytest-benchmark
    sets its session up after this plugin configures), with the fix."""
    if config.getoption("dist", "no") != "no":
        return (
            "under xdist (-n) timings are off (pytest-benchmark disables itself, and parallel "
            "workers would disturb each other's timings); run the perf job serially: add "
            "-p no:xdist (or -n 0)"
        )
    if config.pluginmanager.hasplugin("benchmark"):
        if config.getoption("benchmark_skip", False):
            return "--benchmark-skip turns timing off; drop it from the perf job"
        if config.getoption("benchmark_disable", False):
            return "--benchmark-disable turns timing off; drop it from the perf job"
    return None


_NOT_A_BENCHMARK = "Skipping non-benchmark"  # the reason pytest-benchmark's skip mark gives


def run_under_benchmark_only(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--benchmark-only`` pytest-benchmark skips every test that does not request its
    ``benchmark`` fixture, ours included, although a check times its model: a perf job run
    with it would gate nothing. Take that skip mark off our tests again."""
    if not items or not config.getoption("benchmark_only", False):
        return
    for item in items:
        item.own_markers[:] = [
            mark
            for mark in item.own_markers
            if not (
                mark.name == "skip"
                and str(mark.kwargs.get("reason", "")).startswith(_NOT_A_BENCHMARK)
            )
        ]


@dataclass
class _Series:
    """What pytest-benchmark's ``Metadata`` reads from its fixture."""

    name: str
    fullname: str
    group: str
    param: str | None
    params: dict | None
    extra_info: dict = field(default_factory=dict)
    cprofile_stats: Any = None
    has_error: bool = False


def publish(
    config: pytest.Config,
    item: pytest.Item,
    label: str,
    samples: list[float],
    loops: int,
    options: dict,
    extra_info: dict,
) -> None:
    """Add one series (``label``: eager, trace, trace reloaded...) to pytest-benchmark."""
    session = benchmark_session(config)
    if session is None:
        return
    from pytest_benchmark.stats import Metadata

    callspec = getattr(item, "callspec", None)
    series = _Series(
        name=f"{item.name}::{label}",
        fullname=f"{item.nodeid}::{label}",
        group=item.nodeid,
        param=callspec.id if callspec else None,
        params=dict(callspec.params) if callspec else None,
        extra_info=extra_info,
    )
    metadata = Metadata(series, iterations=loops, options=options)
    for per_call in samples:
        metadata.update(per_call * loops)
    session.benchmarks.append(metadata)


class BenchmarkHooks:
    """Registered only when pytest-benchmark is active.

    Adds torch, CUDA, GPU and the timing thread count to its machine info (torch is read only
    if a check already imported it), and keeps our rows out of its terminal table unless
    ``--ts-benchmark-table`` asks for them: the torchscript section already shows them, and
    a CI log of a zoo would otherwise open with hundreds of 200-column lines. Its JSON,
    autosave and compare features see every row either way (they run before the table)."""

    def __init__(self, threads: int, show_table: bool) -> None:
        self.threads = threads
        self.show_table = show_table

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        session = benchmark_session(terminalreporter.config)
        groups = getattr(session, "groups", None)
        if self.show_table or not groups:
            return
        kept = []
        for name, rows in groups:
            rows = [row for row in rows if "torchscript" not in (row.get("extra_info") or {})]
            if rows:
                kept.append((name, rows))
        session.groups = kept

    @pytest.hookimpl
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict):
        torch = sys.modules.get("torch")
        if torch is None:
            return
        info = {"torch": torch.__version__, "cuda": torch.version.cuda, "threads": self.threads}
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
        machine_info["pytest_torchscript"] = info


def publish_report(item: pytest.Item, report: Any) -> None:
    """Publish every timed series of a check (eager, converted, reloaded), each with the
    check's mode, device, ratio, parity figures and gates in ``extra_info``."""
    from .probe import is_probe
    from .timing import WARMUP_CALLS

    timing = report.perf.timing
    for name, samples in timing.samples.items():
        if is_probe(name):  # the machine-speed probe is not a result of the user's model
            continue
        role = "eager" if name == "eager" else "converted" if name == report.mode else "reloaded"
        ratio = None if role == "eager" else timing.ratio(name)
        publish(
            item.config,
            item,
            name,
            samples,
            timing.loops[name],
            {
                "timer": "perf_counter",
                "warmup": WARMUP_CALLS,
                "min_rounds": timing.rounds,
                "max_time": timing.seconds_spent,
                "disable_gc": False,
            },
            {
                "torchscript": {
                    "role": role,
                    "mode": report.mode,
                    "device": report.device,
                    "threads": timing.threads,
                    "ratio_to_eager": ratio.to_dict() if ratio else None,
                    # The stats above are interleaved samples (comparable run to run); this is
                    # the per-call time on consecutive calls, as torch's Timer measures it.
                    "steady_latency": timing.latency(name).to_dict(),
                    "parity_max_abs": report.max_abs,
                    "parity_max_rel": report.max_rel,
                    "peak_memory_bytes": timing.peak_memory.get(name),
                    "probe_normalised": (
                        report.perf.normalised[role].to_dict()
                        if role in report.perf.normalised
                        else None
                    ),
                    "gates": [gate.to_dict() for gate in report.perf.gates],
                }
            },
        )
