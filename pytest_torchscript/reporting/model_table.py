"""The per-model latency table: one row per model, eager's latency and each mode's verdict,
latency and ratio to eager, per device, with the fastest passing form marked. It is the table
the articles this project started from end with (BERT and ResNet, eager against TorchScript,
CPU and GPU), for the user's own models: which path is fastest on which device.

Built from the checks' report dicts, so a run, an xdist run and ``pytest-torchscript merge`` of
a CPU job's report and a GPU job's give the same table (devices side by side). Where one
device was timed with different thread counts (two CPU reports with other ``--ts-threads``),
each count is a column group of its own. Latencies are the checks' steady-state medians per
call; a model's eager latency is the median of its checks' eager figures on that device. Each
mode's ratio is its latency over the eager latency of its own check (timed in the same window,
so a machine that was busier during one check does not bias it); where that check's eager
figure is far from the row's, the cell says so, so the row's figures never tell two stories
without saying why.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from ..modes import MODES
from .cells import duration

EAGER = "eager"
# A check's own eager latency this far from the row's (a factor) is said in its cell: its ratio
# then disagrees with the row's latencies, and the reader is told which window it came from.
APART = 1.25


@dataclass
class Cell:
    verdict: str  # "pass", "FAIL parity", "skipped", "xfail", ...
    latency: float | None = None  # seconds per call, steady state
    ratio: float | None = None  # latency / the eager latency of the same check
    fastest: bool = False
    own_eager: float | None = None  # that check's eager latency, where far from the row's

    def text(self) -> str:
        if self.latency is None:
            return self.verdict
        ratio = "" if self.ratio is None else f" {self.ratio:.2f}x"
        apart = f" (eager {duration(self.own_eager)} in its check)" if self.own_eager else ""
        return f"{duration(self.latency)}{ratio}{' *' if self.fastest else ''}{apart}"

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "latency": self.latency,
            "ratio": self.ratio,
            "fastest": self.fastest,
            "own_eager": self.own_eager,
        }


@dataclass
class ModelTable:
    devices: list[str] = field(default_factory=list)  # in order of appearance
    modes: list[str] = field(default_factory=list)  # eager first, then MODES' order
    # (model, device) -> mode -> cell: a model's devices on rows of their own, side by side
    rows: dict[tuple[str, str], dict[str, Cell]] = field(default_factory=dict)
    not_timed: str | None = None  # why no latency is shown, said once

    @property
    def timed(self) -> bool:
        return any(cell.latency is not None for row in self.rows.values() for cell in row.values())

    def worth_showing(self) -> bool:
        """Timed, and more than the per-check timings table already says: several modes of
        one model, or several devices."""
        several_modes = any(
            len({mode for mode in row if mode != EAGER}) > 1 for row in self.rows.values()
        )
        return bool(self.rows) and (several_modes or len(self.devices) > 1) and (
            self.timed or self.not_timed is not None
        )

    def to_dict(self) -> dict:
        return {
            "devices": self.devices,
            "modes": self.modes,
            "not_timed": self.not_timed,
            "rows": [
                {
                    "model": model,
                    "device": device,
                    "cells": {mode: cell.to_dict() for mode, cell in row.items()},
                }
                for (model, device), row in self.rows.items()
            ],
        }


# as the migration matrix words them: an expected failure is still a failure of that form
_VERDICTS = {"passed": "pass", "xpassed": "pass", "skipped": "skipped"}


def device_label(check: dict, several_threads: set[str]) -> str:
    device = check["device"]
    if device not in several_threads:
        return device
    threads = check.get("threads")
    return f"{device} ({threads} thread{'s' if threads != 1 else ''})"


def model_table(checks: list[dict], row_of) -> ModelTable:
    """The table of ``checks``; ``row_of(check)`` names the model a check is about (the
    migration matrix's rows)."""
    threads: dict[str, set] = {}
    for check in checks:
        threads.setdefault(check["device"], set()).add(check.get("threads"))
    several = {device for device, counts in threads.items() if len(counts) > 1}
    table = ModelTable()
    eager: dict[tuple[str, str], list[float]] = {}
    latencies: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}  # (form, its eager)
    notes = set()
    for check in checks:
        device = device_label(check, several)
        key = (row_of(check), device)
        if device not in table.devices:
            table.devices.append(device)
        cells = table.rows.setdefault(key, {})
        verdict = _VERDICTS.get(check["verdict"], f"FAIL {check.get('failed_stage')}")
        previous = cells.get(check["mode"])
        if previous is not None and previous.verdict != "pass":
            continue  # a model checked twice in a mode: the worse verdict stands
        cells[check["mode"]] = Cell(verdict)
        perf = check.get("perf") or {}
        medians = perf.get("medians") or {}
        if medians and check["verdict"] in ("passed", "xpassed"):
            figures = [interval["median"] for interval in medians.values()]
            eager.setdefault(key, []).append(figures[0])
            latencies.setdefault(key, {})[check["mode"]] = (figures[1], figures[0])
        elif perf.get("note") and not medians:
            notes.add(perf["note"])
    for key, figures in eager.items():
        reference = statistics.median(figures)
        cells = table.rows[key]
        cells[EAGER] = Cell("pass", reference)
        for mode, (latency, own) in latencies.get(key, {}).items():
            cells[mode].latency = latency
            cells[mode].ratio = latency / own if own else None
            if own and reference and abs(math.log(own / reference)) > math.log(APART):
                cells[mode].own_eager = own
        timed = [cell for cell in cells.values() if cell.latency is not None]
        if timed:
            min(timed, key=lambda cell: cell.latency).fastest = True
    models = list(dict.fromkeys(model for model, _ in table.rows))
    table.rows = dict(  # a model's devices side by side, in the order they first appeared
        sorted(
            table.rows.items(),
            key=lambda item: (models.index(item[0][0]), table.devices.index(item[0][1])),
        )
    )
    used = {mode for row in table.rows.values() for mode in row}
    table.modes = ([EAGER] if EAGER in used else []) + [m for m in MODES if m in used]
    if not table.timed:
        table.not_timed = "; ".join(sorted(notes)) or None
    return table
