"""The converted graph against the baseline: every operator count that changed, per module path,
exact (no timing involved), beside the gate's verdict; max_graph_change makes a change a
failure; an unchanged graph says nothing; an entry recorded without a fingerprint is said once.
Baselines are recorded on test_perf.py's virtual machine, so a loaded machine cannot keep an
entry from being written; the graphs themselves are real conversions."""

from __future__ import annotations

import json

import pytest
from conftest import expect_lines
from test_perf import VIRTUAL_MACHINE

from pytest_torchscript.perf.graph_diff import changes, fusions_lost

NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(16, 16)
        self.extra = torch.nn.Sequential(torch.nn.Linear(16, 16){more})

    def forward(self, x):
        return self.extra({inner})
"""
BASE = {"more": "", "inner": "self.body(x).relu()"}
ADDED = {"more": ", torch.nn.Linear(16, 16)", "inner": "self.body(x).relu()"}
REMOVED = {"more": "", "inner": "self.body(x)"}
# the same arithmetic, with body's fused linear written out by hand: a matmul and an add
UNFUSED = {"more": "", "inner": "(x @ self.body.weight.t() + self.body.bias).relu()"}

TESTS = """
import pytest
import torch
from net import Net

@pytest.mark.torchscript(mode=["trace", "export"], inputs=torch.randn(4, 16), time_budget=0.3,
                         roundtrip=False{gate})
def test_net():
    return Net().eval()
"""


def _record_then_gate(suite, pytester, now: dict, gate: str = "", drop_graph: bool = False):
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    pytester.makepyfile(net=NET.format(**BASE))
    recorded = suite(TESTS.format(gate=""), "--ts-baseline=base.json", "--ts-update-baseline",
                     timed=True)  # fmt: skip
    recorded.assert_outcomes(passed=2)
    if drop_graph:  # as a baseline recorded before entries kept a fingerprint
        document = json.loads((pytester.path / "base.json").read_text())
        for entry in document["entries"].values():
            del entry["graph"]
        (pytester.path / "base.json").write_text(json.dumps(document))
    pytester.makepyfile(net=NET.format(**now))
    return suite(TESTS.format(gate=gate), "--ts-baseline=base.json", "--ts-report=report.json",
                 timed=True)  # fmt: skip


def _perf(pytester):
    return {
        check["mode"]: check["perf"]
        for check in json.loads((pytester.path / "report.json").read_text())["checks"]
    }


def test_an_op_added_to_a_submodule_is_named_there_in_every_mode(suite, pytester):
    result = _record_then_gate(suite, pytester, ADDED)
    result.assert_outcomes(passed=2)  # reported, not failed: no max_graph_change
    expect_lines(
        result,
        ["  test_user.py::test_net[trace] (trace): the converted graph changed since the "
         "baseline: extra.1: aten::linear 0 -> 1"],
    )  # fmt: skip
    perf = _perf(pytester)
    assert perf["trace"]["graph_changes"] == ["extra.1: aten::linear 0 -> 1"]
    assert perf["export"]["graph_changes"] == ["extra.1: aten::linear 0 -> 1"]


def test_a_removed_op_fails_under_max_graph_change(suite, pytester):
    result = _record_then_gate(suite, pytester, REMOVED, gate=", max_graph_change=0")
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "torchscript check of Net failed at perf (mode='trace', device=cpu)",
            "max_graph_change: regression: 1 operator count(s) of the converted graph changed "
            "since the baseline, max_graph_change=0",
            "  the model's own forward: aten::relu 1 -> 0",
        ],
    )
    assert _perf(pytester)["export"]["graph_changes"] == [
        "the model's own forward: aten::relu 1 -> 0"
    ]


def test_a_fusion_lost_is_named_with_its_parts(suite, pytester):
    result = _record_then_gate(suite, pytester, UNFUSED)
    result.assert_outcomes(passed=2)
    own = "the model's own forward"
    expect_lines(
        result,
        [f"  test_user.py::test_net[trace] (trace): the converted graph changed since the "
         f"baseline: {own}: aten::add 0 -> 1; {own}: aten::matmul 0 -> 1; {own}: aten::t 0 -> 1; "
         "body: aten::linear 1 -> 0",
         "    aten::linear 2 -> 1 while aten::matmul, aten::t, aten::add rose: a fused operator "
         "computed by its parts now (more kernels, intermediates written out)"],
    )  # fmt: skip
    perf = _perf(pytester)
    for mode in ("trace", "export"):
        (said,) = perf[mode]["fusions_lost"]
        assert said.startswith("aten::linear 2 -> 1 while aten::matmul"), (mode, said)
        assert "body: aten::linear 1 -> 0" in perf[mode]["graph_changes"]


def test_an_unchanged_graph_says_nothing(suite, pytester):
    result = _record_then_gate(suite, pytester, BASE, gate=", max_graph_change=0")
    result.assert_outcomes(passed=2)
    assert "converted graph changed" not in result.stdout.str()
    perf = _perf(pytester)
    assert perf["trace"]["graph_changes"] == [] and perf["trace"]["graph_note"] is None
    assert [g["outcome"] for g in perf["trace"]["gates"] if g["gate"] == "max_graph_change"] == [
        "pass"
    ]


def test_an_entry_recorded_without_a_fingerprint_is_said_once(suite, pytester):
    result = _record_then_gate(suite, pytester, ADDED, drop_graph=True)
    result.assert_outcomes(passed=2)
    expect_lines(
        result,
        ["  2 check(s): the baseline entry holds no graph fingerprint (recorded before "
         "baselines kept one): re-record it with --ts-update-baseline to compare the converted "
         "graph exactly"],
    )  # fmt: skip
    assert result.stdout.str().count("holds no graph fingerprint") == 1


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ({"": {"aten::relu": 1}}, {"": {"aten::relu": 1}}, []),
        ({"a": {"aten::linear": 1}}, {"a": {"aten::linear": 1}, "b": {"aten::add": 2}},
         ["b: aten::add 0 -> 2"]),
        ({"": {"aten::relu": 1, "aten::add": 1}}, {"": {"aten::add": 1}},
         ["the model's own forward: aten::relu 1 -> 0"]),
    ],
)  # fmt: skip
def test_changes_are_every_operator_count_that_differs(old, new, said):
    assert changes(old, new) == said
    assert fusions_lost(old, new) == []  # nothing fused was lost in these


def test_a_fused_operator_is_lost_only_where_its_parts_rose():
    fused = {"attn": {"aten::scaled_dot_product_attention": 2}}
    by_parts = {"attn": {"aten::matmul": 4, "aten::softmax": 2}}
    (said,) = fusions_lost(fused, by_parts)
    assert said.startswith(
        "aten::scaled_dot_product_attention 2 -> 0 while aten::softmax, aten::matmul rose"
    )
    assert fusions_lost(fused, {"attn": {}}) == []  # removed, not computed by parts
    assert fusions_lost(by_parts, fused) == []  # a fusion gained is no loss
