"""Merging what CI shards wrote: several ``--ts-report`` files into one report (JSON, HTML and
the terminal summary with the migration matrix, as if one run had produced them), and several
``--ts-baseline`` files into one baseline.

Reports: a check is identified by (test id, mode, device). When several files hold the same
check (a retried job, a shard run twice), the one from the newest report (its ``created``
time; on a tie, the file named last) is kept, and every such conflict is listed. Baselines:
every entry is kept; two files that disagree on one entry are an error naming both, unless
``--prefer FILE`` says which file wins.

No torch here: merging runs in a CI step that never installed it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO

from ..errors import UsageProblem
from ..files import refuse_foreign_file, write_text_atomically
from ..perf import baseline
from . import html_page, json_file
from .cells import matrix_row, summary_counts
from .model_table import model_table


@dataclass
class MergedReport:
    document: dict
    conflicts: list[str] = field(default_factory=list)


def read_report(path: Path) -> dict:
    """One ``--ts-report`` file, checked: a truncated or foreign file is named, not a
    traceback."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise UsageProblem(
            f"{path}: not complete JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"was the shard's job cut off while writing it? Re-run that shard"
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError, OSError) as error:
        raise UsageProblem(f"{path}: cannot read it as a report ({error})") from None
    if not isinstance(data, dict) or data.get("format") != json_file.FORMAT:
        raise UsageProblem(
            f'{path}: not a pytest-torchscript report (no "format": "{json_file.FORMAT}"); '
            f"pass files written by --ts-report"
        )
    if data.get("version") != json_file.VERSION:
        raise UsageProblem(
            f"{path}: report schema version {data.get('version')!r}, and this "
            f"pytest-torchscript reads version {json_file.VERSION}; re-run that shard with "
            f"this version"
        )
    checks = data.get("checks")
    if not isinstance(checks, list) or not all(
        isinstance(check, dict) and {"test_id", "mode", "device", "verdict"} <= set(check)
        for check in checks
    ):
        raise UsageProblem(f'{path}: "checks" is not a list of checks')
    return data


def merge_reports(paths: list[Path]) -> MergedReport:
    """One report from several; see the module docstring for the conflict rule."""
    documents = [(path, read_report(path)) for path in paths]
    # Newest report last, so its checks replace older ones; stable for equal times.
    ordered = sorted(
        enumerate(documents), key=lambda item: (item[1][1].get("created") or "", item[0])
    )
    kept: dict[tuple, dict] = {}
    sources: dict[tuple, list[str]] = {}
    for _, (path, document) in ordered:
        for check in document["checks"]:
            check = {
                **check,
                "shard": check.get("shard") or path.name,
                "machine": check.get("machine") or document.get("machine"),
                "torch": check.get("torch") or document.get("torch"),
                "threads": check.get("threads") or document.get("threads"),
            }
            key = _key(check)
            sources.setdefault(key, []).append(
                f"{path.name}: {check.get('verdict_text', check['verdict'])}"
            )
            kept[key] = check
    conflicts = [
        f"{test_id} ({mode}, {device}): {len(seen)} results "
        f"({'; '.join(seen)}); kept the last, from the newest report"
        for (test_id, mode, device, _), seen in sources.items()
        if len(seen) > 1
    ]
    # In the order of the files as given, then of the checks in each: shards read in order.
    order: dict[tuple, int] = {}
    for _, document in documents:
        for check in document["checks"]:
            key = _key({**check, "threads": check.get("threads") or document.get("threads")})
            order.setdefault(key, len(order))
    checks = sorted(kept.values(), key=lambda check: order[_key(check)])
    newest = max((document.get("created") or "" for _, document in documents), default="")
    devices = sorted({check["device"] for check in checks}) or ["cpu"]
    threads = sorted({document.get("threads") for _, document in documents} - {None})
    merged = {
        "format": json_file.FORMAT,
        "version": json_file.VERSION,
        "created": newest,
        "exit_status": max((int(d.get("exit_status") or 0) for _, d in documents), default=0),
        "torch": ", ".join(sorted({str(d.get("torch")) for _, d in documents})),
        "device": ", ".join(devices),
        "threads": threads[0] if len(threads) == 1 else threads,
        "merged_from": [str(path) for path in paths],
        "summary": summary_counts(checks),
        "models": model_table(checks, matrix_row).to_dict(),
        "checks": checks,
    }
    return MergedReport(merged, conflicts)


def _key(check: dict) -> tuple:
    """What one check is: a test, its mode and device, and the threads it was timed with (two
    CPU jobs with other --ts-threads measured different things, like two devices)."""
    return (check["test_id"], check["mode"], check["device"], check.get("threads"))



class _Terminal:
    """The two calls the summary writers make, on a plain stream."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write_line(self, text: str, **_markup: Any) -> None:
        self.stream.write(text + "\n")

    def write_sep(self, sep: str, title: str, **_markup: Any) -> None:
        self.stream.write(f" {title} ".center(80, sep) + "\n")


def print_summary(merged: MergedReport, stream: TextIO) -> None:
    from .terminal import write_matrix, write_model_table, write_regressions, write_summary

    checks = merged.document["checks"]
    terminal = _Terminal(stream)
    threads = merged.document["threads"]
    if checks:
        write_summary(terminal, checks, threads if isinstance(threads, int) else 1)
        write_matrix(terminal, checks)
        write_model_table(terminal, checks)
        write_regressions(terminal, checks)
    for conflict in merged.conflicts:
        terminal.write_line(f"conflict: {conflict}")


def merge_baselines(paths: list[Path], prefer: Path | None) -> dict[str, Any]:
    """Every entry of every file; a key two files disagree on needs ``prefer``."""
    entries: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        if not path.exists():
            raise UsageProblem(f"{path}: no such file")
        for key, entry in baseline.load(path).items():
            if isinstance(entry, baseline.InvalidEntry):
                raise UsageProblem(f"{path}: entry {key!r} {entry.problem}; fix or re-record it")
            if key in entries and entries[key] != entry:
                if prefer is None:
                    raise UsageProblem(
                        f"{origin[key]} and {path} disagree on the entry {key!r}; pass "
                        f"--prefer FILE to say which file's entries win"
                    )
                if path.resolve() != prefer.resolve():
                    continue
            entries[key] = entry
            origin[key] = path
    return entries


def main(argv: list[str] | None = None, stream: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-torchscript", description="Tools for pytest-torchscript's outputs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reports = commands.add_parser(
        "merge", help="merge --ts-report JSON files of several shards into one report"
    )
    reports.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    reports.add_argument("--json", type=Path, help="write the merged JSON report here")
    reports.add_argument("--html", type=Path, help="write the merged HTML report here")
    baselines = commands.add_parser(
        "merge-baselines", help="merge --ts-baseline files of several perf shards"
    )
    baselines.add_argument("baselines", nargs="+", type=Path, metavar="BASELINE.json")
    baselines.add_argument("--out", type=Path, required=True, help="the merged baseline")
    baselines.add_argument("--prefer", type=Path, help="on a disagreement, keep this file's entry")
    args = parser.parse_args(argv)
    try:
        outputs = (
            [(args.json, "--json", json_file.OWN_FILE), (args.html, "--html", html_page.OWN_FILE)]
            if args.command == "merge"
            else [(args.out, "--out", baseline.OWN_FILE)]
        )
        for path, flag, kind in outputs:
            if path is not None:
                refuse_foreign_file(path, f"{flag} {path}", kind)
        if args.command == "merge":
            merged = merge_reports(args.reports)
            print_summary(merged, stream)
            if args.json:
                json_file.write(args.json, merged.document)
                stream.write(f"torchscript: JSON report written to {args.json}\n")
            if args.html:
                settings = SimpleNamespace(
                    device=merged.document["device"],
                    perf=SimpleNamespace(threads=merged.document["threads"]),
                )
                html_page.write(args.html, merged.document["checks"], settings)
                stream.write(f"torchscript: HTML report written to {args.html}\n")
            return 1 if merged.document["exit_status"] else 0
        entries = merge_baselines(args.baselines, args.prefer)
        document = {
            "format": baseline.FORMAT,
            "version": baseline.VERSION,
            "entries": dict(sorted(entries.items())),
        }
        write_text_atomically(args.out, json.dumps(document, indent=2) + "\n")
        stream.write(f"torchscript: {len(entries)} baseline entries written to {args.out}\n")
        return 0
    except (UsageProblem, OSError) as problem:
        sys.stderr.write(f"pytest-torchscript: error: {problem}\n")
        return 2
