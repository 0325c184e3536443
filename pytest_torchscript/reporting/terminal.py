"""The end-of-run ``torchscript`` terminal section, from the checks' report dicts.

It reads the same plain data as the JSON report (``CheckReport.to_dict()``), so a run under
xdist, whose checks happened on workers, prints the same summary as a serial run. Failures
come first; timings, control-flow findings, the migration matrix and perf regressions follow
only when there is something to say.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..check.report import INTERRUPTED
from ..modes import MODES
from ..perf.graph_diff import summary
from ..perf.run import VALIDATED_DEVICE_TYPES
from ..text import bounded
from .cells import (
    count_verdicts,
    coverage_cell,
    duration,
    figure,
    matrix_row,
    ordered,
    ratio_cell,
    roundtrip_cell,
    size,
    undecided_gates,
)
from .model_table import Cell, model_table

_COLUMNS = (
    "verdict",
    "mode",
    "device",
    "max abs",
    "max rel",
    "coverage",
    "round trip",
    "size",
    "convert",
)
_DEVICE = _COLUMNS.index("device")


def write_summary(terminal: Any, checks: list[dict], threads: int) -> None:
    checks = ordered(checks)
    rows = [_row(check) for check in checks]
    header = _COLUMNS
    devices = {check["device"] for check in checks}
    title = "torchscript"
    if len(devices) == 1:  # one device: say it once, and keep rows within 100 columns
        title += f" (device {devices.pop()})"
        header = header[:_DEVICE] + header[_DEVICE + 1 :]
        rows = [row[:_DEVICE] + row[_DEVICE + 1 :] for row in rows]
    terminal.write_sep("=", title)
    _table(
        terminal,
        header,
        rows,
        [check["test_id"] for check in checks],
        red=[check["verdict"] == "failed" for check in checks],
    )
    legend = _roundtrip_legend(checks)
    if legend:
        terminal.write_line(legend)
    for line in _roundtrip_skips(checks):
        terminal.write_line(line)
    findings = [(check, control_flow_lines(check)) for check in checks]
    findings = [(check, lines) for check, lines in findings if lines]
    if findings:
        terminal.write_line("control flow:")
        for check, lines in findings:
            terminal.write_line(f"  {check['test_id']} ({check['mode']}):")
            for text in lines:
                terminal.write_line(f"    {text}")
    _write_timings(terminal, checks, threads)
    text = f"{len(checks)} check(s): {count_verdicts(checks)}"
    warnings = sum(len(check["warnings"]) for check in checks)
    if warnings:
        text += (
            f"; {warnings} warning(s) raised by torch during the checks were recorded, not raised"
        )
    terminal.write_line(text)
    for check in checks:  # the check a Ctrl-C stopped: how far it got, beside its row
        if (check.get("skipped") or "").startswith(INTERRUPTED):
            terminal.write_line(f"  {check['test_id']} ({check['mode']}): {check['skipped']}")


class BoundedTerminal:
    """pytest's terminal reporter with every line of prose wrapped at ``text.WIDTH`` (the
    notes under the tables read as paragraphs in a CI log); a table's rows are written as they
    are (``write_row``), so their columns stay aligned."""

    def __init__(self, terminal: Any) -> None:
        self._terminal = terminal

    def write_line(self, text: str, **markup: Any) -> None:
        for line in bounded(text).split("\n"):
            self._terminal.write_line(line, **markup)

    def write_row(self, text: str, **markup: Any) -> None:
        self._terminal.write_line(text, **markup)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._terminal, name)


def _table(terminal, header, rows, tests, red=None, indent="", last="test") -> None:
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(len(header))]

    def line(cells, test):
        return indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + test

    write_row = getattr(terminal, "write_row", terminal.write_line)
    write_row(line(header, last))
    for index, (row, test) in enumerate(zip(rows, tests)):
        write_row(line(row, test), red=bool(red and red[index]))


def control_flow_lines(check: dict) -> list[str]:
    """What a reader should know about a check's control flow (and torch.compile's graph
    breaks and recompiles); empty when nothing."""
    flow = check.get("control_flow")
    if not flow:
        return []
    lines = compile_lines(check.get("compile"))
    lines += [f"diverges: {text}" for text in flow["divergence_lines"][:5]]
    lines += [f"never taken: {text}" for text in flow["unexercised"][:5]]
    user = [hazard for hazard in flow["hazards"] if hazard["in_user_code"]]
    if user:
        lines.append(
            "hazards in your code: "
            + ", ".join(f"{hazard['location']} {hazard['kind']}" for hazard in user[:5])
            + (f" (+{len(user) - 5} more)" if len(user) > 5 else "")
        )
    places, counts = Counter(), Counter()
    for hazard in flow["hazards"]:
        if not hazard["in_user_code"]:
            places[hazard["library"]] += 1
            counts[hazard["library"]] += hazard["count"]
    if places:
        lines.append(
            "hazards in libraries (not your code): "
            + ", ".join(f"{lib} {counts[lib]} at {places[lib]} place(s)" for lib in sorted(places))
        )
    return lines


def compile_lines(found: dict | None) -> list[str]:
    """mode="compile": graph breaks (the user's at their lines, libraries' counted) and
    recompiles, from the report's ``compile`` dict."""
    if not found:
        return []
    lines = []
    breaks = found["graph_breaks"]
    user = [item for item in breaks if item["in_user_code"]]
    if user:
        shown = "; ".join(f"{b['location']} {b['kind']}" for b in user[:4])
        more = f" (+{len(user) - 4} more)" if len(user) > 4 else ""
        lines.append(f"graph breaks in your code ({found['graphs']} graphs): {shown}{more}")
    libraries = Counter(item["library"] for item in breaks if not item["in_user_code"])
    if libraries:
        lines.append(
            "graph breaks in libraries (not your code): "
            + ", ".join(f"{name} {count}" for name, count in sorted(libraries.items()))
        )
    if not found["explained"]:
        lines.append(f"graph breaks not known: {found['not_explained']}")
    for item in found["recompiles"][:4]:
        lines.append(f"recompiled on input set {item['input_index']}: {item['words']}")
    if len(found["recompiles"]) > 4:
        lines.append(f"recompiled {len(found['recompiles']) - 4} more time(s)")
    warm = found.get("warm_seconds") or {}
    if warm and found.get("cache_kinds"):  # a backend that caches nothing: no cache to judge
        cold = found["compile_seconds"].get("0")
        held = ", ".join(f"{kind} {n}" for kind, n in sorted(found["cache_kinds"].items()))
        lines.append(
            f"compile cache ({held}): the first call took {duration(warm['0'])} in a fresh "
            f"process with it" + (f", {duration(cold)} cold here" if cold is not None else "")
        )
    return lines


def _write_timings(terminal: Any, checks: list[dict], threads: int) -> None:
    timed = [check for check in checks if check.get("perf") and check["perf"]["medians"]]
    if not timed:
        notes = {check["perf"]["note"] for check in checks if check.get("perf")}
        for note in sorted(note for note in notes if note):
            terminal.write_line(f"timings: {note}")
        return
    terminal.write_line(
        f"timings ({threads} thread(s); latency per call in steady state; ratio = converted / "
        f"eager over interleaved rounds, median and 95% interval):"
    )
    rows = []
    for check in timed:
        perf = check["perf"]
        medians = [interval["median"] for interval in perf["medians"].values()]
        rows.append(
            (
                check["mode"],
                duration(medians[0]),
                duration(medians[1]),
                duration(medians[2]) if len(medians) > 2 else "-",
                ratio_cell(perf),
                ", ".join(f"{g['gate']} {g['outcome']}" for g in perf["gates"]) or "-",
            )
        )
    header = ("mode", "eager", "converted", "reloaded", "ratio", "gates")
    _table(terminal, header, rows, [check["test_id"] for check in timed], indent="  ")
    unjudged: dict[str, int] = {}  # never a silent partial pass: say what a gate left out
    for check in timed:
        for gate in check["perf"]["gates"]:
            if gate.get("not_judged"):
                unjudged[gate["not_judged"]] = unjudged.get(gate["not_judged"], 0) + 1
    for reason, count in unjudged.items():
        terminal.write_line(f"  {count} check(s): {reason}")
    notes: dict[str, int] = {}
    for check in timed:  # what changed in the converted graph since the baseline (exact)
        changed = check["perf"].get("graph_changes") or []
        if changed:
            terminal.write_line(
                f"  {check['test_id']} ({check['mode']}): the converted graph changed since the "
                f"baseline: {summary(changed, 6)}"
            )
            for line in check["perf"].get("fusions_lost") or []:
                terminal.write_line(f"    {line}")
        for note in (check["perf"].get("graph_note"), check["perf"].get("profile_note")):
            if note:
                notes[note] = notes.get(note, 0) + 1
    for note, count in notes.items():
        terminal.write_line(f"  {count} check(s): {note}")
    for check in timed:  # a row whose figures tell two stories says so (once: a gate may)
        said = check["perf"].get("disagreement")
        if said and not any(said in gate["message"] for gate in check["perf"]["gates"]):
            terminal.write_line(f"  {check['test_id']} ({check['mode']}): {said}")
    _write_undecided(terminal, timed)
    for check in checks:  # a check left untimed among timed ones says why
        perf = check.get("perf")
        if perf and not perf["medians"] and perf["note"]:
            terminal.write_line(f"  {check['test_id']}: {perf['note']}")


def _write_undecided(terminal: Any, timed: list[dict]) -> None:
    """Why each gate of a passing check could not decide, in the log where CI readers look: a
    bare "inconclusive" in the table would send them to the JSON report to learn whether to run
    it again, raise time_budget or add runs to the baseline. The headline says which; the
    figures stay in the reports."""
    lines = [
        f"    {check['test_id']} ({check['mode']}): {gate['gate']}: "
        f"{gate['message'].splitlines()[0].strip()}"
        for check in timed
        for gate in undecided_gates(check)
    ]
    if lines:
        terminal.write_line(
            "  gates that could not decide (reported, not failed; --ts-perf-strict fails them; "
            "every figure is in --ts-report):"
        )
        for line in lines:
            terminal.write_line(line)


_LOCATED = re.compile(r"^\S+\.py:\d+: ")
_RANK = {"pass": 0, "skipped": 1}  # any FAIL ranks above both


def write_matrix(terminal: Any, checks: list[dict]) -> None:
    """The migration matrix: per model, a verdict per mode, so a reader sees which models are
    ready to leave TorchScript, even when the modes of one model are checked by several tests
    (a known failure under xfail, say). Where one model has several checks in a mode, the
    worst verdict shows. Only when some model has several modes."""
    rows: dict[str, dict[str, str]] = {}
    for check in checks:
        verdicts = rows.setdefault(matrix_row(check), {})
        verdict = {"skipped": "skipped", "passed": "pass", "xpassed": "pass"}.get(
            check["verdict"], f"FAIL {check['failed_stage']}"
        )
        previous = verdicts.get(check["mode"])
        if previous is None or _RANK.get(verdict, 2) > _RANK.get(previous, 2):
            verdicts[check["mode"]] = verdict
    if not any(len(verdicts) > 1 for verdicts in rows.values()):
        return
    modes = [mode for mode in MODES if any(mode in verdicts for verdicts in rows.values())]
    terminal.write_line("migration matrix (per model: a verdict for each mode):")
    _table(
        terminal,
        tuple(modes),
        [tuple(v.get(m, "-") for m in modes) for v in rows.values()],
        list(rows),
        indent="  ",
        last="model",
    )
    for check in checks:
        if check["verdict"] in ("failed", "xfailed") and check["failure"]:
            failure = check["failure"].removeprefix(f"{check['test_id']}: ")  # said already
            terminal.write_line(f"  {check['test_id']}: {_one_line(failure)}")
    for reason in sorted({check["skipped"] for check in checks if check.get("skipped")}):
        terminal.write_line(f"  skipped: {reason}")


def write_model_table(terminal: Any, checks: list[dict]) -> None:
    """The per-model latency table (``model_table.py``): eager and every mode, per device, the
    fastest passing form marked. Only where it says more than the timings above: several modes
    of a model, or several devices. Without timings, one line says why there are none."""
    table = model_table(checks, matrix_row)
    if not table.worth_showing():
        return
    if not table.timed:
        terminal.write_line(f"latency per model: not measured ({table.not_timed})")
        return
    several = len(table.devices) > 1
    where = "" if several else f"; device {table.devices[0]}"
    terminal.write_line(
        f"latency per model (steady-state median per call, and its ratio to eager's in the "
        f"same check; * the fastest passing form{where}):"
    )
    header = (("device",) if several else ()) + tuple(table.modes)
    rows = [
        ((device,) if several else ())
        + tuple(row.get(mode, Cell("-")).text() for mode in table.modes)
        for (_, device), row in table.rows.items()
    ]
    models = [model for model, _ in table.rows]
    _table(terminal, header, rows, models, indent="  ", last="model")


def write_unvalidated_gates(terminal: Any, checks: list[dict]) -> None:
    """A run that gated on a device the gate has not been measured on says so once: its passes
    there are not yet evidence (``perf.VALIDATED_DEVICE_TYPES``)."""
    devices = sorted(
        {
            check["device"]
            for check in checks
            if check.get("perf")
            and any(gate["gate"] == "max_regression" for gate in check["perf"]["gates"])
            and check["device"].split(":")[0] not in VALIDATED_DEVICE_TYPES
        }
    )
    if devices:
        terminal.write_line(
            f"torchscript: max_regression has not yet been validated on {', '.join(devices)} "
            f"(benchmarks/gate_quality.py measures it on CPUs; its first GPU run passed a "
            f"model-wide 50% slowdown): read its passes there as advisory",
            yellow=True,
        )


def write_regressions(terminal: Any, checks: list[dict]) -> None:
    """The last thing a CI log shows before pytest's short summary: every failed perf gate."""
    failed = [
        c
        for c in checks
        if c["failed_stage"] == "perf" and c.get("perf") and c["verdict"] == "failed"
    ]  # an expected one (xfail, pytest.raises) is in the table, not a red regression
    if not failed:
        return
    terminal.write_sep("=", "torchscript performance regressions", red=True)
    for check in failed:
        for gate in check["perf"]["gates"]:
            if gate["outcome"] != "pass":
                terminal.write_line(
                    f"{check['test_id']} ({check['mode']}): {gate['gate']} {gate['outcome']}"
                )
                for line in gate["message"].splitlines():
                    terminal.write_line(f"    {line.strip()}")


def _one_line(failure: str) -> str:
    """The failure's headline and, when there is one, the user's line it points at (a
    converter's "at file:line", or a divergence or unexercised arm named at its line)."""
    lines = [line.strip() for line in failure.splitlines() if line.strip()]
    located = next(
        (line for line in lines[1:] if line.startswith("at ") or _LOCATED.match(line)), None
    )
    text = lines[0] + (f" ({located})" if located else "")
    return text if len(text) <= 160 else text[:157] + "..."


def _row(check: dict) -> tuple[str, ...]:
    return (
        check["verdict_text"],
        check["mode"],
        check["device"],
        figure(check["max_abs"]),
        figure(check["max_rel"]),
        coverage_cell(check),
        roundtrip_cell(check),
        size(check["artifact_bytes"]),
        "-" if check["conversion_seconds"] is None else f"{check['conversion_seconds']:.2f} s",
    )


_PLACES = {
    "in-process": "in this process",
    "fresh process": "in a fresh process",
    "C++": "in a C++ (LibTorch) process",
}


def _roundtrip_skips(checks: list[dict]) -> list[str]:
    """Why a round trip says ``skip`` where the reason is about the model (operators of a
    library the C++ runner lacks), once per reason; an artifact format no C++ loader takes
    is the column's documented meaning, and a missing toolchain is said once at the end."""
    tests: dict[tuple[str, str], list[str]] = {}  # (places, reason) -> test ids
    for check in checks:
        places: dict[str, list[str]] = {}  # one line per reason, naming each place it held
        for roundtrip in check["roundtrips"]:
            if roundtrip.get("skipped") and roundtrip.get("skip_kind") in (
                "operators",
                "model",
                "torch",
            ):
                where = _PLACES.get(roundtrip["where"], roundtrip["where"])
                places.setdefault(roundtrip["skipped"], []).append(where)
        for reason, wheres in places.items():
            tests.setdefault((" and ".join(wheres), reason), []).append(check["test_id"])
    return [
        f"  skipped {where} ({names[0] if len(names) == 1 else f'{len(names)} checks'}): {reason}"
        for (where, reason), names in tests.items()
    ]


def _roundtrip_legend(checks: list[dict]) -> str | None:
    """What the round-trip column's words stand for, as far as these checks ran them."""
    orders = {tuple(rt["where"] for rt in check["roundtrips"]) for check in checks}
    orders.discard(())
    if not orders:
        return None
    longest = max(orders, key=len)
    places = [_PLACES.get(where, where) for where in longest]
    text = "(round trip: reload " + ", then ".join(places)
    if len(orders) > 1:
        text += "; fewer where a check asked for less"
    return text + ")"
