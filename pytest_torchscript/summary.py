"""The end-of-run ``torchscript`` terminal section: one row per check, failures first, then
what control-flow analysis found (divergences, unexercised arms, hazards) for the checks that
have something to say."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .report import CheckReport

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


def write_summary(terminal: Any, reports: list[CheckReport]) -> None:
    ordered = sorted(reports, key=lambda report: report.passed)  # stable: failures first
    rows = [_row(report) for report in ordered]
    widths = [max(len(row[i]) for row in [*rows, _COLUMNS]) for i in range(len(_COLUMNS))]
    terminal.write_sep("=", "torchscript")

    def line(cells: tuple[str, ...], test: str) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + "  " + test

    terminal.write_line(line(_COLUMNS, "test"))
    for report, row in zip(ordered, rows):
        terminal.write_line(line(row, report.test_id), red=not report.passed)
    findings = [(report, control_flow_lines(report)) for report in ordered]
    findings = [(report, lines) for report, lines in findings if lines]
    if findings:
        terminal.write_line("control flow:")
        for report, lines in findings:
            terminal.write_line(f"  {report.test_id} ({report.mode}):")
            for text in lines:
                terminal.write_line(f"    {text}")
    failed = sum(not report.passed for report in reports)
    warnings = sum(len(report.warnings) for report in reports)
    counts = f"{len(reports)} check(s): {len(reports) - failed} passed, {failed} failed"
    if warnings:
        counts += f"; {warnings} warning(s) raised by torch during the checks were recorded, not raised"
    terminal.write_line(counts)


def control_flow_lines(report: CheckReport) -> list[str]:
    """What a reader should know about a check's control flow; empty when nothing."""
    flow = report.control_flow
    if flow is None:
        return []
    lines = [f"diverges: {divergence.describe()}" for divergence in flow.divergences[:5]]
    lines += [f"never taken: {text}" for text in flow.unexercised_lines()[:5]]
    user = [hazard for hazard in flow.hazards if hazard.in_user_code]
    if user:
        lines.append(
            "hazards in your code: "
            + ", ".join(f"{hazard.location} {hazard.kind}" for hazard in user[:5])
            + (f" (+{len(user) - 5} more)" if len(user) > 5 else "")
        )
    places = Counter(hazard.library for hazard in flow.hazards if not hazard.in_user_code)
    if places:
        counts = Counter()
        for hazard in flow.hazards:
            if not hazard.in_user_code:
                counts[hazard.library] += hazard.count
        lines.append(
            "hazards in libraries (not your code): "
            + ", ".join(
                f"{library} {counts[library]} at {places[library]} place(s)"
                for library in sorted(places)
            )
        )
    return lines


def _row(report: CheckReport) -> tuple[str, ...]:
    return (
        report.verdict,
        report.mode,
        report.device,
        _figure(report.max_abs),
        _figure(report.max_rel),
        _coverage(report),
        _roundtrip(report),
        _size(report.artifact_bytes),
        "-" if report.conversion_seconds is None else f"{report.conversion_seconds:.2f} s",
    )


def _coverage(report: CheckReport) -> str:
    flow = report.control_flow
    if flow is None:
        return "-"
    if flow.coverage is None:
        return "none"
    return f"{flow.coverage:.0%} {flow.arms_exercised}/{flow.arms_total}"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _roundtrip(report: CheckReport) -> str:
    if not report.roundtrips:
        return "-"
    return ", ".join(
        f"{'fresh' if result.where == 'fresh process' else 'reload'} "
        f"{'ok' if result.ok else 'FAIL'}"
        for result in report.roundtrips
    )


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
