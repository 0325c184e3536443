"""The pieces every view of the checks shares, so the terminal summary, the JSON file and the
HTML page never disagree: the order of checks, verdict counts, and how each cell and number is
written."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..check.report import VERDICTS


def ordered(checks: list[dict]) -> list[dict]:
    """Failures first, then skips, then passes; otherwise in the order they ran."""
    return sorted(checks, key=lambda check: VERDICTS.index(check["verdict"]))


def count_verdicts(checks: list[dict]) -> str:
    """``3 passed, 1 failed, 2 xfailed``: passed and failed always, the others when present."""
    counts = Counter(check["verdict"] for check in checks)
    shown = [
        v
        for v in ("passed", "failed", "xfailed", "xpassed", "skipped")
        if counts[v] or v in ("passed", "failed")
    ]
    return ", ".join(f"{counts[verdict]} {verdict}" for verdict in shown)


_UNDECIDED = ("inconclusive", "stale baseline", "invalid baseline")


def undecided_gates(check: dict) -> list[dict]:
    """The perf gates of a check that did not fail which could not decide (inconclusive, or an
    entry that compares with nothing), with a reason of their own to show. A failed check's
    gates are in its failure already, and an entry not recorded (its message is the whole of
    ``not_judged``) is counted once for all the checks it applies to."""
    if check["verdict"] == "failed" or not check.get("perf"):
        return []
    return [
        gate
        for gate in check["perf"]["gates"]
        if gate["outcome"] in _UNDECIDED
        and gate["message"]
        and gate["message"] != gate.get("not_judged")
    ]


def summary_counts(checks: list[dict]) -> dict[str, int]:
    """Every verdict with its count (the JSON report's ``summary``)."""
    return {verdict: sum(check["verdict"] == verdict for check in checks) for verdict in VERDICTS}


def coverage_cell(check: dict) -> str:
    """The coverage column, in the terminal and the HTML report alike."""
    flow = check.get("control_flow")
    if not flow:
        return "-"
    if flow["coverage"] is None:
        return "no branches"
    return f"{flow['coverage']:.0%} {flow['arms_exercised']}/{flow['arms_total']}"


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def roundtrip_cell(check: dict) -> str:
    """``ok ok``: reloaded in process, then in a fresh process; ``ok`` alone: in process only."""
    if not check["roundtrips"]:
        return "-"
    return " ".join(
        "skip" if rt.get("skipped") else "ok" if rt["ok"] else "FAIL" for rt in check["roundtrips"]
    )


def size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def number(value: Any) -> str:
    """A figure in a table cell: three significant digits, "-" where there is none."""
    return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def ratio_cell(perf: dict) -> str:
    """converted / eager over paired interleaved rounds, with its 95% interval: the figure the
    gates judge (drift on a busy machine hits both series of a pair alike)."""
    ratio = perf.get("ratio")
    if not ratio:
        return "-"
    return f"{ratio['median']:.3f} [{ratio['low']:.3f}, {ratio['high']:.3f}]"


def matrix_row(check: dict) -> str:
    """Which model a check is about: its class in its test file, and the test's parameters
    but the mode. A zoo parametrized by name (resnet18 and resnet50 are both ``ResNet``) gets
    a row per model, and the modes of one model share a row, whether the plugin parametrized
    them (``test_zoo[trace-resnet18]``), the user did, or separate tests check them."""
    test_file, _, test = check["test_id"].partition("::")
    params = ""
    if test.endswith("]") and "[" in test:
        ids = test[test.index("[") + 1 : -1].split("-")
        if check["mode"] in ids:
            ids.remove(check["mode"])  # one id among the test's, wherever it stands
        params = "-".join(ids)
    return f"{check['model']}{f'[{params}]' if params else ''} ({test_file})"
