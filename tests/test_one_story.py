"""One story per row: where a check's steady-state latencies and its interleaved rounds (or its
converted and reloaded forms of one graph) disagree beyond their intervals, the timings row
says so in words and no gate passes on those figures, but for a max_regression gate whose
baseline disagreed the same way (the model's own switching cost, compared like with like). Driven on the virtual machine of
test_perf.py with a switching cost injected: a call that follows another series' call pays
extra (a cache the other module evicted), which the interleaved rounds pay and the
consecutive steady-state calls do not, so the two figures disagree on any machine."""

from __future__ import annotations

import json

from conftest import expect_lines
from test_perf import VIRTUAL_MACHINE, WIDE_MODEL

SWITCHING = """
SWITCH = {switch!r}
last = [None]
_plain_costing = costing


def costing(role, call):
    timed = _plain_costing(role, call)

    def switching_call():  # the first call after another series' pays (reloaded too)
        if last[0] is not None and last[0] is not switching_call and role in SWITCH:
            extra = COST[role] * SWITCH[role]
            now[0] += extra
            ran[0] += extra
        last[0] = switching_call
        timed()

    return switching_call
"""

GATED = """
import pytest
import torch
from wide_model import Wide

@pytest.mark.torchscript(mode="script", inputs=torch.randn(8, 64), time_budget=0.5,
                         max_slowdown=1.5)
def test_wide():
    return Wide().eval()
"""


def _run(suite, pytester, switch: dict):
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(
        VIRTUAL_MACHINE.format(scale={}, seed=3, sliced=()) + SWITCHING.format(switch=switch)
    )
    result = suite(GATED, "--ts-report=report.json", timed=True)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    return result, check["perf"]


def test_latencies_and_rounds_that_disagree_say_so_and_the_gate_does_not_pass(suite, pytester):
    # converted pays 60% more after a switch (once per sample, the first of its calls): the
    # rounds read it at about 0.95x eager, the consecutive steady-state calls at 0.8x
    result, perf = _run(suite, pytester, {"converted": 0.6})
    result.assert_outcomes(passed=1)  # inconclusive is reported, not failed
    (gate,) = perf["gates"]
    assert gate["outcome"] == "inconclusive", gate
    assert gate["message"].startswith("too noisy to tell: the two figures of this row disagree")
    assert perf["disagreement"]
    expect_lines(
        result,
        [
            "  script*max_slowdown inconclusive  test_user.py::test_wide",
            "  gates that could not decide*",
            "    test_user.py::test_wide (script): max_slowdown: too noisy to tell: the two "
            "figures of this row disagree: the steady-state latencies put converted/eager at "
            "0.8* and the interleaved rounds at 0.9*, apart beyond both intervals*too noisy to "
            "tell which a deployment sees, so no gate passes on them*",
        ],
    )
    assert result.stdout.str().count("the two figures of this row disagree") == 1


def test_figures_that_agree_tell_one_story_and_the_gate_decides(suite, pytester):
    result, perf = _run(suite, pytester, {})
    result.assert_outcomes(passed=1)
    assert perf["disagreement"] is None
    assert [gate["outcome"] for gate in perf["gates"]] == ["pass"]
    assert "disagree" not in result.stdout.str()


GATED_AGAINST_A_BASELINE = """
import pytest
import torch
from wide_model import Wide

@pytest.mark.torchscript(mode="script", inputs=torch.randn(8, 64), time_budget=0.5)
def test_wide():
    return Wide().eval()
"""


def _against_baseline(suite, pytester, recorded_with: dict, gated_with: dict):
    """Record a baseline on the virtual machine with one switching cost, then gate with
    another: the gate's perf entry from the JSON report."""
    pytester.makepyfile(wide_model=WIDE_MODEL)
    for switch, flags in ((recorded_with, ["--ts-update-baseline"]), (gated_with, [])):
        pytester.makeconftest(
            VIRTUAL_MACHINE.format(scale={}, seed=3, sliced=()) + SWITCHING.format(switch=switch)
        )
        result = suite(
            GATED_AGAINST_A_BASELINE,
            "--ts-baseline=baseline.json",
            "--ts-report=report.json",
            *flags,
            timed=True,
        )
        result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    return result, check["perf"]


def test_a_disagreement_the_baseline_had_too_does_not_hold_back_its_gate(suite, pytester):
    # the switching cost is the model's own: the baseline's rounds and steady state disagreed
    # as much, and the gate compares each with its own, so an unchanged model passes
    result, perf = _against_baseline(suite, pytester, {"converted": 0.6}, {"converted": 0.6})
    assert perf["disagreement"]  # the row still says its two figures disagree
    (gate,) = perf["gates"]
    assert gate["gate"] == "max_regression" and gate["outcome"] == "pass", gate
    assert "as they did when the baseline was recorded" in gate["message"]
    expect_lines(result, ["  script*max_regression pass*test_user.py::test_wide"])


def test_a_disagreement_the_baseline_did_not_have_passes_no_gate(suite, pytester):
    result, perf = _against_baseline(suite, pytester, {}, {"converted": 0.6})
    assert perf["disagreement"]
    (gate,) = perf["gates"]
    assert gate["outcome"] == "inconclusive", gate
    assert "as they did when the baseline was recorded" not in gate["message"]
