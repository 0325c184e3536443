"""The end-of-run ``torchscript`` terminal section: one row per check, failures first."""

from __future__ import annotations

from typing import Any

from .report import CheckReport

_COLUMNS = ("verdict", "mode", "device", "max abs", "max rel", "round trip", "size", "convert")


def summary_rows(reports: list[CheckReport]) -> list[tuple[str, ...]]:
    ordered = sorted(reports, key=lambda report: report.passed)  # stable: failures first
    return [_row(report) for report in ordered]


def write_summary(terminal: Any, reports: list[CheckReport]) -> None:
    rows = summary_rows(reports)
    widths = [max(len(row[i]) for row in rows + [_COLUMNS]) for i in range(len(_COLUMNS))]
    terminal.write_sep("=", "torchscript")

    def line(cells: tuple[str, ...], test: str) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + "  " + test

    terminal.write_line(line(_COLUMNS, "test"))
    ordered = sorted(reports, key=lambda report: report.passed)
    for report, row in zip(ordered, rows):
        terminal.write_line(line(row, report.test_id), red=not report.passed)
    failed = sum(not report.passed for report in reports)
    warnings = sum(len(report.warnings) for report in reports)
    counts = f"{len(reports)} check(s): {len(reports) - failed} passed, {failed} failed"
    if warnings:
        counts += f"; {warnings} warning(s) raised by torch during the checks were recorded, not raised"
    terminal.write_line(counts)


def _row(report: CheckReport) -> tuple[str, ...]:
    return (
        report.verdict,
        report.mode,
        report.device,
        _figure(report.max_abs),
        _figure(report.max_rel),
        _roundtrip(report),
        _size(report.artifact_bytes),
        "-" if report.conversion_seconds is None else f"{report.conversion_seconds:.2f} s",
    )


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
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
