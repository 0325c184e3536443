"""What a run leaves when it ends: the baseline, ``--ts-report`` and ``--ts-html`` files (each
written on its own, so one that fails never costs the others), the terminal section with its
notes, and on an xdist worker the checks and notes handed to the controller."""

from __future__ import annotations

from typing import Any

from . import html_page, json_file
from .terminal import (
    BoundedTerminal,
    write_matrix,
    write_model_table,
    write_regressions,
    write_summary,
    write_unvalidated_gates,
)


def write_baseline(state: Any) -> None:
    """``--ts-update-baseline``: this run's entries into the file; a failure is noted."""
    try:
        state.write_baseline()
    except OSError as error:
        state.write_failures.append(
            f"--ts-baseline={state.settings.perf.baseline_path}: {error.strerror or error}; "
            f"{len(state.new_baseline_entries)} new entries were not written"
        )


def write_reports(state: Any, exit_status: int, flags: dict[str, str]) -> None:
    """Write ``--ts-report`` and ``--ts-html``; a failure is noted for the summary.
    ``flags``: the report options as the user gave them, to name them in a failure."""
    checks = state.checks()
    settings = state.settings
    writers = (
        (
            settings.report_path,
            f"--ts-report={flags['report']}",
            lambda path: json_file.write(path, json_file.document(checks, exit_status, settings)),
        ),
        (
            settings.html_path,
            f"--ts-html={flags['html']}",
            lambda path: html_page.write(path, checks, settings),
        ),
    )
    for path, flag, write in writers:
        if path is not None:
            try:
                write(path)
            except OSError as error:  # the other outputs are still written
                state.write_failures.append(f"{flag}: {error.strerror or error}")


def worker_output(state: Any) -> dict[str, Any]:
    """What an xdist worker hands the controller (plain data: it crosses processes)."""
    return {
        "torchscript_checks": [report.to_dict() for report in state.reports],
        "torchscript_notes": {
            "device_skipped": state.device_skipped,
            "write_failures": state.write_failures,
            "cpp_notes": state.cpp_notes(),
        },
    }


def merge_worker_output(state: Any, output: dict[str, Any]) -> None:
    """On the controller: one worker's checks and notes, so one summary covers the run."""
    state.worker_checks.extend(output.get("torchscript_checks", []))
    notes = output.get("torchscript_notes", {})
    state.device_skipped = state.device_skipped or notes.get("device_skipped")
    state.write_failures.extend(notes.get("write_failures", []))
    state.worker_cpp_notes.extend(notes.get("cpp_notes", []))


def write_terminal(terminal: Any, state: Any, flags: dict[str, str]) -> None:
    """The ``torchscript`` section, the perf regressions, then one line per note."""
    terminal = BoundedTerminal(terminal)
    checks = state.checks()
    if checks:
        write_summary(terminal, checks, state.settings.perf.threads)
        write_matrix(terminal, checks)
        write_model_table(terminal, checks)
        write_regressions(terminal, checks)
        write_unvalidated_gates(terminal, checks)
    for option, label in ((flags["report"], "JSON"), (flags["html"], "HTML")):
        if option and checks and not any(option in failure for failure in state.write_failures):
            terminal.write_line(f"torchscript: {label} report written to {option}")
    for failure in state.write_failures:
        terminal.write_line(f"torchscript: could not write {failure}", red=True)
    for note in state.cpp_notes():
        terminal.write_line(f"torchscript: {note}")
    ungated = list(dict.fromkeys(state.regression_gates_without_baseline))
    if ungated:
        terminal.write_line(
            f"torchscript: max_regression is set for {len(ungated)} timed check(s) "
            f"({', '.join(ungated[:3])}{', ...' if len(ungated) > 3 else ''}), but this run "
            f"has no --ts-baseline, so no regression gate ran: record one with "
            f"--ts-baseline=perf-baseline.json --ts-update-baseline, then gate with "
            f"--ts-baseline=perf-baseline.json (docs/perf-gates.md: A CI perf gate, step by "
            f"step)",
            yellow=True,
        )
    if state.device_skipped:
        terminal.write_line(
            f"torchscript: marked tests were skipped: {state.device_skipped} "
            f"(--ts-require-device makes this an error)",
            yellow=True,
        )
    if state.settings.perf.update_baseline:
        path = state.settings.perf.baseline_path
        extend = state.settings.perf.extend_baseline
        if state.new_baseline_entries:
            count = len(state.new_baseline_entries)
            entries = "entry" if count == 1 else "entries"
            if extend:
                new, started_over = state.extension
                added = count - len(new) - len(started_over)
                terminal.write_line(
                    f"torchscript: added this run's timings to {added} of {count} baseline "
                    f"{entries} in {path}"
                )
                if new:
                    terminal.write_line(
                        f"torchscript: {len(new)} of them new to the file, recorded with this "
                        f"run's timings; --ts-extend-baseline in later runs adds runs to them"
                    )
                for key in started_over:
                    terminal.write_line(
                        f"torchscript: {key!r} started over with this run's timings: the entry "
                        f"before was invalid, lacked figures this version records, or was "
                        f"timed on another machine, torch, input set or number of calls per "
                        f"sample",
                        yellow=True,
                    )
            else:
                terminal.write_line(
                    f"torchscript: wrote {count} baseline {entries} to {path}, one run each: "
                    f"runs of unchanged code differ (some models by 10% and more between runs "
                    f"minutes apart), so add two or more runs later with --ts-extend-baseline "
                    f"and the gate allows for how much each model's runs differ"
                )
            for check in state.checks():
                advice = (check.get("perf") or {}).get("advice")
                if advice:
                    terminal.write_line(
                        f"torchscript: {check['test_id']} ({check['mode']}): {advice}", yellow=True
                    )
        else:
            why = _why_nothing_recorded(state)
            terminal.write_line(
                f"torchscript: {state.settings.perf.record_flag} wrote nothing to {path}: {why}",
                yellow=True,
            )


def _why_nothing_recorded(state: Any) -> str:
    """Why ``--ts-update-baseline`` wrote no entry: timing was off, no check ran at all (the run
    stopped before any did, or none was selected), none got as far as its timing, or every
    timing was too disturbed to record."""
    if state.timing_off:
        return f"no check was timed ({state.timing_off})"
    checks = state.checks()
    if not checks:
        return "no check ran"
    if not any(check.get("perf") for check in checks):
        return "no check got as far as its timing (the summary says why)"
    return "no check was timed cleanly enough to record (the summary says why)"
