"""The per-model latency table: a row per model (and device), eager and every mode with its
verdict, latency and ratio to eager, the fastest passing form marked; in the terminal, the JSON
report and the HTML page; merged across two reports standing in for two devices (two CPU runs
with other --ts-threads); empty latency cells with the reason once when timing is off; a failed
mode's verdict with no latency. The table logic itself is unit-tested on injected checks."""

from __future__ import annotations

import json
import re
import sys

from conftest import expect_lines

from pytest_torchscript.reporting.cells import matrix_row
from pytest_torchscript.reporting.model_table import model_table

SUITE = """
import pytest
import torch
from models import Affine, Branchy

@pytest.mark.torchscript(mode=["trace", "script", "export"], time_budget=0.3,
                         inputs=[torch.randn(3, 4), torch.randn(5, 4)])
def test_affine():
    return Affine().eval()

@pytest.mark.torchscript(mode=["trace", "script", "export"], time_budget=0.3,
                         inputs=[torch.ones(2, 3), -torch.ones(2, 3)])
def test_branchy():
    return Branchy()
"""
_LATENCY = r"\d[\d.]* [mun]?s"


def _table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("latency per model"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        rows.append(line)
    return rows


def test_two_models_in_three_modes_give_a_row_each_everywhere(suite, pytester):
    result = suite(SUITE, "--ts-report=report.json", "--ts-html=report.html", timed=True)
    result.assert_outcomes(passed=4, failed=2)
    expect_lines(
        result,
        [
            "latency per model (steady-state median per call, and its ratio to eager's in the "
            "same check; * the fastest passing form; device cpu):",
            "  eager*trace*script*export*model",
        ],
    )
    header, affine, branchy = _table(result.stdout.str())
    assert affine.rstrip().endswith("Affine (test_user.py)")
    assert re.match(rf"  {_LATENCY}(?: \*)? +{_LATENCY} \d\.\d\dx", affine), affine
    assert affine.count("*") == 1  # the fastest passing form, once per row
    # a failed mode: its verdict and no latency; the passing ones still timed
    assert "FAIL parity" in branchy and "FAIL conversion" in branchy
    assert len(re.findall(_LATENCY, branchy)) == 2  # eager and script
    models = json.loads((pytester.path / "report.json").read_text())["models"]
    assert models["modes"] == ["eager", "trace", "script", "export"]
    rows = {row["model"]: row["cells"] for row in models["rows"]}
    affine_cells = rows["Affine (test_user.py)"]
    assert all(cell["latency"] > 0 for cell in affine_cells.values())
    assert sum(cell["fastest"] for cell in affine_cells.values()) == 1
    trace = rows["Branchy (test_user.py)"]["trace"]
    assert trace == {**trace, "verdict": "FAIL parity", "latency": None, "ratio": None}
    page = (pytester.path / "report.html").read_text()
    assert "<h2>Models: verdict and latency per mode</h2>" in page
    assert "<table id='models' class='sortable'>" in page and "&#9733;" in page
    assert "<td class='failed' data-sort='FAIL parity'>FAIL parity</td>" in page


def test_two_reports_merge_into_one_table_with_both_devices(suite, pytester):
    """Two CPU runs with other --ts-threads stand in for a CPU job and a GPU job: the same
    checks, measured differently, side by side (and not a conflict)."""
    source = SUITE.split("@pytest.mark")[0] + "@pytest.mark" + SUITE.split("@pytest.mark")[1]
    first = suite(source, "--ts-report=one.json", timed=True)
    first.assert_outcomes(passed=3)
    second = suite(source, "--ts-report=two.json", "--ts-threads=2", timed=True)
    second.assert_outcomes(passed=3)
    merged = pytester.run(
        sys.executable, "-m", "pytest_torchscript", "merge", "one.json", "two.json", "--json",
        "m.json",
    )  # fmt: skip
    assert merged.ret == 0, merged.stdout.str()
    expect_lines(
        merged,
        [
            "latency per model (steady-state median per call, and its ratio to eager's in the "
            "same check; * the fastest passing form):",
            "  device*eager*trace*script*export*model",
            "  cpu (1 thread)*Affine (test_user.py)",
            "  cpu (2 threads)*Affine (test_user.py)",
        ],
    )
    assert "conflict" not in merged.stdout.str()
    document = json.loads((pytester.path / "m.json").read_text())
    assert document["models"]["devices"] == ["cpu (1 thread)", "cpu (2 threads)"]
    assert len(document["checks"]) == 6


def test_timing_off_leaves_the_latencies_out_with_the_reason_once(suite, pytester):
    result = suite(SUITE, "--ts-report=report.json", "--ts-html=report.html")
    expect_lines(result, ["latency per model: not measured (timing off: --benchmark-disable)"])
    assert result.stdout.str().count("not measured") == 1
    models = json.loads((pytester.path / "report.json").read_text())["models"]
    assert models["not_timed"] == "timing off: --benchmark-disable"
    cells = [cell for row in models["rows"] for cell in row["cells"].values()]
    assert cells and all(cell["latency"] is None for cell in cells)
    assert "eager" not in models["modes"]  # no column of zeros or dashes for what never ran
    page = (pytester.path / "report.html").read_text()
    assert "Latencies not measured: timing off: --benchmark-disable." in page


def _check(model, mode, verdict="passed", eager=None, converted=None, threads=1, stage=None):
    perf = None
    if eager is not None:
        perf = {"medians": {"eager": {"median": eager}, mode: {"median": converted}}, "note": None}
    return {
        "test_id": f"tests/test_zoo.py::test_{model}[{mode}]",
        "model": model,
        "mode": mode,
        "device": "cpu",
        "threads": threads,
        "verdict": verdict,
        "failed_stage": stage,
        "perf": perf,
    }


def test_ratios_come_from_each_check_and_a_far_eager_is_said():
    checks = [
        _check("Net", "trace", eager=10e-3, converted=8e-3),
        _check("Net", "script", eager=10.4e-3, converted=9e-3),
        # timed while the machine was busy: eager 40 ms in this check, not ~10 ms
        _check("Net", "export", eager=40e-3, converted=44e-3),
        _check("Net", "onnx", verdict="failed", stage="parity"),
    ]
    table = model_table(checks, matrix_row)
    cells = table.rows[("Net (tests/test_zoo.py)", "cpu")]
    assert cells["eager"].latency == 10.4e-3  # the median of the checks' eager figures
    assert round(cells["trace"].ratio, 3) == 0.8 and cells["trace"].fastest
    assert round(cells["export"].ratio, 3) == 1.1  # 44 / 40, not 44 / 10.4
    assert cells["export"].text() == "44 ms 1.10x (eager 40 ms in its check)"
    assert cells["onnx"].text() == "FAIL parity" and cells["onnx"].latency is None
    assert sum(cell.fastest for cell in cells.values()) == 1


def test_a_model_checked_twice_in_a_mode_shows_its_worse_verdict():
    checks = [
        _check("Net", "trace", verdict="failed", stage="parity"),
        _check("Net", "trace", eager=1e-3, converted=1e-3),
        _check("Net", "script", eager=1e-3, converted=2e-3),
    ]
    cells = model_table(checks, matrix_row).rows[("Net (tests/test_zoo.py)", "cpu")]
    assert cells["trace"].verdict == "FAIL parity" and cells["trace"].latency is None
