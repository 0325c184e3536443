"""``--ts-html=PATH.html``: one self-contained page for CI artifact upload.

Nothing is fetched: the page is HTML with inline CSS, SVG and a few lines of inline script (to
sort and filter the checks table; without it the table still reads), so it opens from a CI
artifact with no network. It shows the checks table (with links to each check's artifacts),
eager vs converted latency per model and mode, for failing parity checks the distribution
of their errors, and why each perf gate that could not decide did not.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from ..check.parity import HISTOGRAM_DECADES
from ..files import OwnFile, write_text_atomically
from .cells import (
    count_verdicts,
    coverage_cell,
    duration,
    matrix_row,
    number,
    ordered,
    ratio_cell,
    roundtrip_cell,
    undecided_gates,
)
from .model_table import EAGER, device_label, model_table

TITLE = "pytest-torchscript report"
OWN_FILE = OwnFile("HTML report", f"<title>{TITLE}</title>".encode(), "report.html")
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2430; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 3px 6px; border-bottom: 1px solid #e3e6ea; text-align: left;
  white-space: nowrap; }
td.test { white-space: normal; overflow-wrap: anywhere; max-width: 380px; }
td.model { white-space: normal; min-width: 200px; }
th { background: #f4f6f8; cursor: pointer; user-select: none; }
#filter { margin: 4px 0 8px; padding: 4px 8px; width: 320px; }
.xfailed, .xpassed { color: #8a6d00; }
.failed { color: #b42318; font-weight: 600; } .passed { color: #067647; }
.skipped { color: #8a6d00; }
pre { background: #f7f7f8; padding: 8px; white-space: pre-wrap; max-width: 1100px; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2430; }
"""
_SERIES_COLOURS = ("#98a2b3", "#2e90fa", "#84caff")  # eager, converted, reloaded


def write(path: Path, checks: list[dict], settings: Any) -> None:
    write_text_atomically(path, render(checks, settings))


def render(checks: list[dict], settings: Any) -> str:
    checks = ordered(checks)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{TITLE}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{TITLE}</h1>",
        f"<p>{len(checks)} checks: {html.escape(count_verdicts(checks))} &middot; "
        f"device {html.escape(settings.device)} &middot; "
        f"{settings.perf.threads} timing thread(s)</p>",
        _checks_table(checks, getattr(settings, "html_path", None)),
        _models(checks),
        _latency_chart(checks),
        _parity_errors(checks),
        _undecided(checks),
        _graph_changes(checks),
        _failures(checks),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


# Sort any table.sortable by a column (click its header, again to reverse) and filter the checks
# by text: inline, no network, and the tables read the same without it.
_SCRIPT = """
const checks = document.getElementById('checks');
document.getElementById('filter').addEventListener('input', (event) => {
  const text = event.target.value.toLowerCase();
  for (const row of checks.tBodies[0].rows) {
    row.hidden = text && !row.textContent.toLowerCase().includes(text);
  }
});
for (const table of document.querySelectorAll('table.sortable')) {
  table.tHead.addEventListener('click', (event) => {
    const column = event.target.closest('th')?.cellIndex;
    if (column === undefined) return;
    const rows = Array.from(table.tBodies[0].rows);
    const up = table.dataset.sorted !== String(column);
    const key = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent;
    rows.sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      const order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return up ? order : -order;
    });
    table.dataset.sorted = up ? String(column) : '';
    rows.forEach((row) => table.tBodies[0].appendChild(row));
  });
}
"""


def _checks_table(checks: list[dict], html_path: Path | None = None) -> str:
    rows = []
    threads: dict[str, set] = {}
    for check in checks:
        threads.setdefault(check["device"], set()).add(check.get("threads"))
    several = {device for device, counts in threads.items() if len(counts) > 1}
    for check in checks:
        perf = check.get("perf") or {}
        medians = list((perf.get("medians") or {}).values())
        cells = [
            f"<td class='{check['verdict']}'>{html.escape(check['verdict_text'])}</td>",
            f"<td class='test'>{html.escape(check['test_id'])}"
            f"{_artifacts_link(check, html_path)}</td>",
            _cell(check["mode"]),
            _cell(device_label(check, several)),
            _cell(number(check["max_abs"])),
            _cell(number(check["max_rel"])),
            _cell(coverage_cell(check)),
            _cell(roundtrip_cell(check)),
            _cell(duration(medians[0]["median"]) if medians else "-"),
            _cell(duration(medians[1]["median"]) if len(medians) > 1 else "-"),
            _cell(ratio_cell(perf) if medians else perf.get("note") or "-"),
            _cell(", ".join(f"{g['gate']}: {g['outcome']}" for g in perf.get("gates", [])) or "-"),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(
        f"<th>{name}</th>"
        for name in (
            "verdict",
            "test",
            "mode",
            "device",
            "max abs",
            "max rel",
            "coverage",
            "round trip",
            "eager",
            "converted",
            "converted / eager",
            "gates",
        )
    )
    return (
        "<h2>Checks</h2><input id='filter' type='search' placeholder='filter: test, mode, "
        "verdict...' aria-label='filter the checks'>"
        f"<table id='checks' class='sortable'><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


_CELL_CLASSES = {"pass": "passed", "skipped": "skipped"}


def _models(checks: list[dict]) -> str:
    """The migration matrix and the per-model latency table in one: a row per model, per
    device and mode its verdict (coloured as in the checks table) and, where timed, its
    latency and ratio to eager, the fastest passing form starred, and a bar per form."""
    table = model_table(checks, matrix_row)
    if not table.rows:
        return ""
    several = len(table.devices) > 1
    header = "<th>model</th>" + ("<th>device</th>" if several else "") + "".join(
        f"<th>{html.escape(mode)}</th>" for mode in table.modes
    )
    if table.timed:
        header += "<th>latency per call</th>"
    body = []
    for (model, device), row in table.rows.items():
        cells = [f"<td class='model'>{html.escape(model)}</td>"]
        if several:
            cells.append(_cell(device))
        for mode in table.modes:
            cell = row.get(mode)
            if cell is None:
                cells.append("<td data-sort=''>-</td>")
                continue
            css = _CELL_CLASSES.get(cell.verdict, "failed")
            sort = f"{cell.latency:.9f}" if cell.latency is not None else cell.verdict
            text = html.escape(cell.text()).replace(" *", " &#9733;")  # the fastest: a star
            title = " title='the fastest passing form'" if cell.fastest else ""
            cells.append(f"<td class='{css}' data-sort='{sort}'{title}>{text}</td>")
        if table.timed:
            cells.append(f"<td>{_model_bars(row)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = (
        f"<p>Latencies not measured: {html.escape(table.not_timed)}.</p>"
        if not table.timed and table.not_timed
        else "<p>Steady-state median per call, and its ratio to eager's in the same check; "
        "&#9733; the fastest passing form. Click a header to sort.</p>"
        if table.timed
        else ""
    )
    return (
        "<h2>Models: verdict and latency per mode</h2>"
        + note
        + f"<table id='models' class='sortable'><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _model_bars(row: dict) -> str:
    """A small bar per timed form of one model (eager grey), scaled to the row's slowest."""
    timed = [(mode, cell) for mode, cell in row.items() if cell.latency is not None]
    if not timed:
        return "-"
    longest = max(cell.latency for _, cell in timed) or 1.0
    bar_height, width = 11, 140
    parts = [f"<svg width='{width + 150}' height='{bar_height * len(timed) + 2}' role='img' "
             "aria-label='latency per form'>"]  # fmt: skip
    for index, (mode, cell) in enumerate(sorted(timed, key=lambda item: item[1].latency)):
        length = max(1.0, width * cell.latency / longest)
        colour = _SERIES_COLOURS[0] if mode == EAGER else _SERIES_COLOURS[1]
        y = index * bar_height
        label = html.escape(f"{mode} {duration(cell.latency)}")
        parts.append(
            f"<rect x='0' y='{y}' width='{length:.1f}' height='{bar_height - 2}' "
            f"fill='{colour}'><title>{label}</title></rect>"
            f"<text x='{length + 4:.1f}' y='{y + bar_height - 2}' font-size='10'>{label}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _artifacts_link(check: dict, html_path: Path | None) -> str:
    """A link to the folder holding the check's artifact, relative to the page when both sit
    in one tree (a CI artifact upload keeps it working)."""
    artifact = check.get("artifact_path")
    if not artifact:
        return ""
    folder = Path(artifact).parent
    target = folder.as_uri()
    if html_path is not None:
        try:
            target = os.path.relpath(folder, Path(html_path).parent)
        except ValueError:  # another drive (Windows)
            pass
    return f" <a href='{html.escape(target)}'>artifacts</a>"


def _latency_chart(checks: list[dict]) -> str:
    timed = [c for c in checks if c.get("perf") and c["perf"].get("medians")]
    if not timed:
        return "<h2>Latency</h2><p>No check was timed in this run.</p>"
    label_width, bar_width, row_height = 420, 420, 16
    series_count = max(len(c["perf"]["medians"]) for c in timed)
    group_height = row_height * series_count + 12
    height = group_height * len(timed) + 10
    svg = [
        f"<svg width='{label_width + bar_width + 260}' height='{height}' role='img' "
        "aria-label='eager vs converted latency'>"
    ]
    for index, check in enumerate(timed):
        top = index * group_height + 5
        medians = list(check["perf"]["medians"].items())
        longest = max(interval["median"] for _, interval in medians) or 1.0
        label = f"{check['test_id']} ({check['mode']})"
        svg.append(f"<text x='0' y='{top + row_height}'>{html.escape(_clip(label, 60))}</text>")
        for position, (name, interval) in enumerate(medians):
            y = top + position * row_height
            width = max(1.0, bar_width * interval["median"] / longest)
            colour = _SERIES_COLOURS[min(position, 2)]
            svg.append(
                f"<rect x='{label_width}' y='{y}' width='{width:.1f}' height='"
                f"{row_height - 3}' fill='{colour}'><title>{html.escape(name)}: "
                f"{duration(interval['median'])}</title></rect>"
            )
            svg.append(
                f"<text x='{label_width + width + 6:.1f}' y='{y + row_height - 5}'>"
                f"{html.escape(name)} {duration(interval['median'])}</text>"
            )
    svg.append("</svg>")
    legend = "".join(
        f"<span style='background:{colour}'></span>{name}"
        for colour, name in zip(_SERIES_COLOURS, ("eager", "converted", "reloaded"))
    )
    return (
        "<h2>Latency: eager vs converted (median per call)</h2>"
        f"<p class='legend'>{legend}</p>" + "".join(svg)
    )


def _parity_errors(checks: list[dict]) -> str:
    blocks = []
    low, high = HISTOGRAM_DECADES
    for check in checks:
        for result in check["parity"]:
            for leaf in result["leaves"]:
                histogram = leaf.get("error_histogram")
                if not histogram:
                    continue
                blocks.append(
                    f"<h3>{html.escape(check['test_id'])} ({check['mode']}), input set "
                    f"{result['input_index']}, {html.escape(leaf['path'])}</h3>"
                    f"<p>{leaf['mismatched']} of {leaf['numel']} elements beyond rtol="
                    f"{leaf['rtol']:g}, atol={leaf['atol']:g}; max abs error "
                    f"{number(leaf['max_abs'])}</p>" + _histogram_svg(histogram, low)
                )
    if not blocks:
        return ""
    return "<h2>Parity errors of failing checks (absolute error per element)</h2>" + "".join(blocks)


def _histogram_svg(counts: list[int], low: int) -> str:
    width, height, bar = 620, 150, 34
    top = max(counts) or 1
    parts = [
        f"<svg width='{width}' height='{height + 30}' role='img' aria-label='error histogram'>"
    ]
    for index, count in enumerate(counts):
        bar_height = (height - 20) * count / top
        x = 10 + index * (bar + 2)
        parts.append(
            f"<rect x='{x}' y='{height - bar_height:.1f}' width='{bar}' "
            f"height='{bar_height:.1f}' fill='#f04438'><title>{count} elements"
            f"</title></rect>"
        )
        if count:
            parts.append(f"<text x='{x + 2}' y='{height - bar_height - 3:.1f}'>{count}</text>")
        if index % 2 == 0:  # every other decade: the labels are wider than the bars
            parts.append(f"<text x='{x}' y='{height + 16}'>1e{low + index}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _undecided(checks: list[dict]) -> str:
    """Every perf gate of a passing check that could not decide, with its whole message (why,
    and each figure, baseline vs now); failed checks' gates are under Failures."""
    items = "".join(
        f"<h3>{html.escape(check['test_id'])} ({check['mode']}): {html.escape(gate['gate'])} "
        f"{html.escape(gate['outcome'])}</h3><pre>{html.escape(gate['message'])}</pre>"
        for check in checks
        for gate in undecided_gates(check)
    )
    return "<h2>Perf gates that could not decide</h2>" + items if items else ""


def _graph_changes(checks: list[dict]) -> str:
    """Every operator count of a converted graph that changed since the baseline entry, and
    where a gate that did not pass found the time went."""
    sections = []
    for key, title in (
        ("graph_changes", "Converted graphs that changed since the baseline"),
        ("time_went", "Where the time went (each operator's share of the module's time)"),
    ):
        items = "".join(
            f"<h3>{html.escape(check['test_id'])} ({check['mode']})</h3><pre>"
            + html.escape("\n".join(check["perf"][key] + _reading(check["perf"], key)))
            + "</pre>"
            for check in checks
            if (check.get("perf") or {}).get(key)
        )
        if items:
            sections.append(f"<h2>{html.escape(title)}</h2>{items}")
    return "".join(sections)


def _reading(perf: dict, key: str) -> list[str]:
    """What the changed counts mean, where the plugin can tell (a fused operator lost)."""
    return perf.get("fusions_lost") or [] if key == "graph_changes" else []


def _failures(checks: list[dict]) -> str:
    failed = [c for c in checks if c["verdict"] == "failed" and c["failure"]]
    if not failed:
        return ""
    items = "".join(
        f"<h3>{html.escape(c['test_id'])} ({c['mode']}): {html.escape(c['failed_stage'])}</h3>"
        f"<pre>{html.escape(c['failure'])}</pre>"
        for c in failed
    )
    return "<h2>Failures</h2>" + items


def _cell(text: Any) -> str:
    return f"<td>{html.escape(str(text))}</td>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]
