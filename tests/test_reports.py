"""Reports people read: the JSON and HTML reports, and one merged summary under xdist."""

import json

import pytest
from conftest import expect_lines

SUITE = """
import pytest
import torch
from models import Affine, Branchy

@pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.ones(2, 4), -torch.ones(2, 4)])
def test_branchy():
    return Branchy()

@pytest.mark.parametrize("batch", [1, 3])
def test_affine(torchscript, batch):
    torchscript.check(Affine().eval(), torch.randn(batch, 4))
"""


def _summary_rows(result) -> list[tuple[str, str, str]]:
    """(verdict, mode, test) of each row of the torchscript summary table, in printed order;
    the figures (times, sizes) vary between runs and are left out."""
    rows = []
    for line in result.stdout.lines:
        words = line.split()
        if words and words[0] in ("passed", "failed") and "::" in words[-1]:
            stage = words[1] if words[1].startswith("(") else ""
            rows.append((f"{words[0]} {stage}".strip(), words[2 if stage else 1], words[-1]))
    return rows


@pytest.mark.parametrize("workers", ["0", "2"])
def test_xdist_gives_the_same_summary_and_report_as_a_serial_run(suite, pytester, workers):
    result = suite(
        SUITE,
        "-n",
        workers,
        "--ts-report=report.json",
        "-W",
        "ignore::pytest_torchscript.TrainModeWarning",
    )
    result.assert_outcomes(passed=3, failed=1)
    rows = _summary_rows(result)
    assert rows[0] == ("failed (parity)", "trace", "test_user.py::test_branchy[trace]")
    assert sorted(rows[1:]) == [  # workers finish in any order; failures always come first
        ("passed", "script", "test_user.py::test_branchy[script]"),
        ("passed", "trace", "test_user.py::test_affine[1]"),
        ("passed", "trace", "test_user.py::test_affine[3]"),
    ]
    report = json.loads((pytester.path / "report.json").read_text())
    assert (report["format"], report["version"]) == ("pytest-torchscript-report", 1)
    assert report["summary"] == {
        "passed": 3,
        "failed": 1,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
    }
    ids = sorted((check["test_id"], check["mode"], check["verdict"]) for check in report["checks"])
    assert ids == [
        ("test_user.py::test_affine[1]", "trace", "passed"),
        ("test_user.py::test_affine[3]", "trace", "passed"),
        ("test_user.py::test_branchy[script]", "script", "passed"),
        ("test_user.py::test_branchy[trace]", "trace", "failed"),
    ]
    expect_lines(
        result,
        ["4 check(s): 3 passed, 1 failed*", "torchscript: JSON report written to report.json"],
    )
    failed = next(c for c in report["checks"] if c["verdict"] == "failed")
    assert failed["failed_stage"] == "parity"
    assert failed["control_flow"]["divergences"][0]["message"].startswith(
        "the trace recorded the True arm (input set 0)"
    )
    assert failed["parity"][1]["leaves"][0]["error_histogram"][12] == 8  # errors of 1..10


def test_json_report_is_written_when_the_run_is_interrupted(suite, pytester):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        def test_checked(torchscript):
            torchscript.check(Affine().eval(), torch.randn(2, 4))

        def test_interrupt():
            raise KeyboardInterrupt
        """,
        "--ts-report=out/report.json",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["exit_status"] == 2 and report["summary"]["passed"] == 1


def test_a_check_stopped_by_ctrl_c_says_how_far_it_got_and_is_not_a_failure(suite, pytester):
    result = suite(
        """
        import torch

        class Interrupted(torch.nn.Module):
            def forward(self, x):
                if x.shape[0] == 3:  # as if Ctrl-C came while eager ran input set 1
                    raise KeyboardInterrupt
                return x * 2

        def test_interrupted(torchscript):
            torchscript.check(Interrupted(), [torch.ones(2, 4), torch.ones(3, 4)])
        """,
        "--ts-report=report.json",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    expect_lines(
        result,
        [
            "1 check(s): 0 passed, 0 failed, 1 skipped",
            "  test_user.py::test_interrupted (trace): interrupted (KeyboardInterrupt) in its "
            "eager stage",
        ],
    )
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert check["verdict"] == "skipped" and check["failed_stage"] is None


def test_html_report_is_self_contained_with_table_chart_and_error_distribution(suite, pytester):
    result = suite(
        SUITE.replace(
            '@pytest.mark.parametrize("batch", [1, 3])', '@pytest.mark.parametrize("batch", [1])'
        )
        + """
@pytest.mark.torchscript(mode="script", inputs=torch.randn(4, 4), time_budget=0.2)
def test_timed():
    return Affine().eval()
""",
        "--ts-html=reports/report.html",
        "-W",
        "ignore::pytest_torchscript.TrainModeWarning",
        timed=True,
    )
    page = (pytester.path / "reports" / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    for needle in (
        "<h2>Checks</h2>",
        "test_user.py::test_branchy[trace]",
        "<h2>Latency: eager vs converted",
        "<rect",
        "test_user.py::test_timed",
        "<h2>Parity errors of failing checks",
        "<h2>Failures</h2>",
    ):
        assert needle in page, needle
    for remote in ("http://", "https://", "<script src", "<link", "@import"):
        assert remote not in page, remote  # opens offline from a CI artifact
    assert "<input id='filter'" in page and "table.tHead.addEventListener('click'" in page
    assert "width: 100%" in page and "overflow-x: auto" not in page  # fits, no side scroll
    expect_lines(result, ["torchscript: HTML report written to reports/report.html"])


def test_a_retried_test_is_counted_by_its_last_attempt_as_pytest_counts_it(suite, pytester):
    """pytest-rerunfailures runs a failed test again; each attempt used to add its checks,
    so one flaky test read as several failures in the summary, the JSON and the matrix."""
    result = suite(
        """
        import pytest
        import torch
        from pathlib import Path
        from models import Affine, Branchy

        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), -torch.ones(2, 4)])
        def test_always_fails():
            return Branchy()

        def test_passes_the_second_time(torchscript):
            attempt = Path("attempts")
            attempt.write_text(attempt.read_text() + "x" if attempt.exists() else "x")
            sign = -1 if attempt.read_text() == "x" else 1  # a frozen branch, then none
            torchscript.check(Branchy(), [torch.ones(2, 4), sign * torch.ones(2, 4)])
        """,
        "--reruns=2",
        "--ts-report=report.json",
    )
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (1, 1, 3)
    expect_lines(result, ["2 check(s): 1 passed, 1 failed*"])
    checks = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert sorted((check["test_id"], check["verdict"]) for check in checks) == [
        ("test_user.py::test_always_fails", "failed"),
        ("test_user.py::test_passes_the_second_time", "passed"),
    ]
