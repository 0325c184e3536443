"""The end-of-run ``torchscript`` terminal section: one row per check, failures first, then
what control-flow analysis found (divergences, unexercised arms, hazards) for the checks that
have something to say."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .options import MODES
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


def write_summary(terminal: Any, reports: list[CheckReport], settings: Any) -> None:
    """``settings``: the run's ``Settings`` (threads) for the timings section."""
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
    _write_timings(terminal, ordered, settings)
    failed = sum(not report.passed for report in reports)
    skipped = sum(bool(report.skipped) for report in reports)
    passed = len(reports) - failed - skipped
    counts = f"{len(reports)} check(s): {passed} passed, {failed} failed"
    if skipped:
        counts += f", {skipped} skipped"
    warnings = sum(len(report.warnings) for report in reports)
    if warnings:
        counts += f"; {warnings} warning(s) raised by torch during the checks were recorded, not raised"
    terminal.write_line(counts)


def _write_timings(terminal: Any, reports: list[CheckReport], settings: Any) -> None:
    timed = [report for report in reports if report.perf is not None and report.perf.timing]
    if not timed:
        notes = {report.perf.note for report in reports if report.perf and report.perf.note}
        for note in sorted(notes):
            terminal.write_line(f"timings: {note}")
        return
    terminal.write_line(
        f"timings ({settings.perf.threads} thread(s), interleaved rounds; ratio = converted / "
        f"eager, median and 95% interval):"
    )
    header = ("mode", "eager", "converted", "reloaded", "ratio", "gates")
    rows = []
    for report in timed:
        perf = report.perf
        medians = list(perf.medians.values())
        rows.append(
            (
                report.mode,
                _duration(medians[0].median),
                _duration(medians[1].median),
                _duration(medians[2].median) if len(medians) > 2 else "-",
                perf.ratio.describe(""),
                ", ".join(f"{g.gate} {g.outcome}" for g in perf.gates) or "-",
            )
        )
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(len(header))]
    for cells, test in [(header, "test"), *zip(rows, (r.test_id for r in timed))]:
        terminal.write_line(
            "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + test
        )


def write_matrix(terminal: Any, reports: list[CheckReport]) -> None:
    """The migration matrix: per model (test without its mode), a verdict per mode, so a
    reader sees which models are ready to leave TorchScript. Only when a test checked several
    modes."""
    rows: dict[str, dict[str, str]] = {}
    for report in reports:
        verdicts = rows.setdefault(_without_mode(report.test_id, report.mode), {})
        if report.skipped:
            verdicts[report.mode] = "skipped"
        elif report.passed:
            verdicts[report.mode] = "pass"
        else:
            verdicts[report.mode] = f"FAIL {report.failed_stage}"
    if not any(len(verdicts) > 1 for verdicts in rows.values()):
        return
    modes = [mode for mode in MODES if any(mode in verdicts for verdicts in rows.values())]
    widths = [max(len(mode), *(len(v.get(mode, "-")) for v in rows.values())) for mode in modes]
    terminal.write_line("migration matrix (per model: a verdict for each mode):")
    terminal.write_line("  " + "  ".join(m.ljust(w) for m, w in zip(modes, widths)) + "  test")
    for test, verdicts in rows.items():
        cells = [verdicts.get(mode, "-").ljust(width) for mode, width in zip(modes, widths)]
        terminal.write_line("  " + "  ".join(cells) + "  " + test)
    for report in reports:
        if not report.passed and report.failure:
            terminal.write_line(f"  {report.test_id}: {_one_line(report.failure)}")
    reasons = sorted({r.skipped for r in reports if r.skipped})
    for reason in reasons:
        terminal.write_line(f"  skipped: {reason}")


def _one_line(failure: str) -> str:
    """The converter's headline and, when there is one, the user's line it points at."""
    lines = [line.strip() for line in failure.splitlines() if line.strip()]
    located = next((line for line in lines if line.startswith("at ")), None)
    text = lines[0] + (f" ({located})" if located else "")
    return text if len(text) <= 160 else text[:157] + "..."


def _without_mode(test_id: str, mode: str) -> str:
    """``test_x[1-trace]`` -> ``test_x[1]``; ``test_x[trace]`` -> ``test_x``."""
    if not test_id.endswith("]") or "[" not in test_id:
        return test_id
    base, _, params = test_id[:-1].partition("[")
    parts = params.split("-")
    if mode in parts:
        parts.remove(mode)
    return f"{base}[{'-'.join(parts)}]" if parts else base


def write_regressions(terminal: Any, reports: list[CheckReport]) -> None:
    """The last thing a CI log shows before pytest's short summary: every failed perf gate."""
    failed = [report for report in reports if report.failed_stage == "perf" and report.perf]
    if not failed:
        return
    terminal.write_sep("=", "torchscript performance regressions", red=True)
    for report in failed:
        for gate in report.perf.gates:
            if gate.outcome != "pass":
                terminal.write_line(f"{report.test_id} ({report.mode}): {gate.gate} {gate.outcome}")
                terminal.write_line(f"    {gate.message}")


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


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
