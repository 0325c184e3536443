"""Where a regression's time went: the baseline entry keeps each module's time split by
operator (torch.profiler's shares; eager's also by submodule), and a gate that does not pass
names the operators whose share grew, and in eager the submodule where it grew. The verdicts come from test_perf.py's virtual machine (deterministic on a loaded
machine); the profiles are real, of a model whose time is one matrix product (so a busy machine,
which slows memory-bound operators most, cannot move its shares far) and whose change is large
enough to show on any machine:
an added chain of products by the identity (exact, so parity holds), model-wide or in the traced
form only."""

from __future__ import annotations

import json

from conftest import assert_no_plugin_traceback, expect_lines
from test_perf import VIRTUAL_MACHINE, _scaled

from pytest_torchscript.perf.profile import moved, where_the_time_went

NET = """
import torch


class Products(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("eye", torch.eye(256))  # products by it change no value

    def forward(self, y):
        if {heavy}:
            for _ in range(4):
                y = torch.mm(y, self.eye)
        return y


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(256, 256)
        self.extra = Products()

    def forward(self, x):
        return self.extra(self.body(x).relu())
"""
UNCHANGED = {"heavy": "False"}
MODEL_WIDE = {"heavy": "True"}
TRACED_ONLY = {"heavy": "torch.jit.is_tracing()"}

TESTS = """
import pytest
import torch
from net import Net

@pytest.mark.torchscript(mode="trace", inputs=torch.randn(256, 256), time_budget=0.5,
                         roundtrip=False)
def test_net():
    return Net().eval()
"""


def _record_then_gate(suite, pytester, now: dict, scale: dict, drop_profile: bool = False):
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    pytester.makepyfile(net=NET.format(**UNCHANGED))
    suite(TESTS, "--ts-baseline=base.json", "--ts-update-baseline", timed=True).assert_outcomes(
        passed=1
    )
    document = json.loads((pytester.path / "base.json").read_text())
    (entry,) = document["entries"].values()
    if drop_profile:  # as a baseline recorded before entries kept a profile
        del entry["profile"]
        (pytester.path / "base.json").write_text(json.dumps(document))
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale=scale, seed=2, sliced=()))
    pytester.makepyfile(net=NET.format(**now))
    result = suite(TESTS, "--ts-baseline=base.json", "--ts-report=report.json", timed=True)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    return result, entry, check["perf"]


def test_the_baseline_entry_keeps_each_modules_time_by_operator(suite, pytester):
    _, entry, perf = _record_then_gate(suite, pytester, UNCHANGED, _scaled())
    profile = entry["profile"]
    assert set(profile) == {"eager", "converted", "eager by module"}
    for role in ("eager", "converted"):
        assert "aten::addmm" in profile[role] and abs(sum(profile[role].values()) - 1) < 0.01
    assert "aten::addmm under body" in profile["eager by module"]  # eager's submodules named
    assert perf["time_went"] == [] and perf["profile_note"] is None  # passed: not profiled


def test_an_op_added_model_wide_is_named_in_both_forms(suite, pytester):
    result, _, perf = _record_then_gate(
        suite, pytester, MODEL_WIDE, _scaled(eager=3.0, converted=3.0)
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "max_regression: regression: the model got *% slower in eager and trace alike*",
            "  where the time went (each operator's share of the module's time, baseline -> "
            "now): converted: *aten::mm 0% -> *%*; eager: *aten::mm 0% -> *% (extra: 0% -> *%)*",
        ],
    )
    converted, eager = perf["time_went"]
    assert converted.startswith("converted: ") and "aten::mm 0% -> " in converted
    assert eager.startswith("eager: ") and "aten::mm 0% -> " in eager
    assert "(extra: 0% -> " in eager  # the submodule that holds the added products
    assert_no_plugin_traceback(result)


def test_an_op_added_in_the_converted_form_only_is_named_there(suite, pytester):
    result, _, perf = _record_then_gate(suite, pytester, TRACED_ONLY, _scaled(converted=3.0))
    result.assert_outcomes(failed=1)
    assert perf["time_went"][0].startswith("converted: ")
    assert "aten::mm 0% -> " in perf["time_went"][0]
    assert "aten::mm" not in " ".join(perf["time_went"][1:])  # eager has none
    expect_lines(result, ["  where the time went *converted: aten::mm 0% -> *"])


def test_a_baseline_without_a_profile_says_how_to_get_one(suite, pytester):
    result, _, perf = _record_then_gate(
        suite, pytester, MODEL_WIDE, _scaled(eager=3.0, converted=3.0), drop_profile=True
    )
    result.assert_outcomes(failed=1)
    assert "record it again with --ts-update-baseline" in perf["profile_note"]
    expect_lines(result, ["  1 check(s): the baseline entry has no operator profile*"])


def test_only_shares_that_moved_are_named_largest_first():
    before = {"aten::addmm": 0.7, "aten::relu": 0.25, "other": 0.05}
    after = {"aten::addmm": 0.3, "aten::mm": 0.6, "aten::relu": 0.08, "other": 0.02}
    assert moved(before, after) == [("aten::mm", 0.0, 0.6), ("aten::addmm", 0.7, 0.3)]
    assert moved(before, {"aten::addmm": 0.78, "aten::relu": 0.15, "other": 0.07}) == []
    # shares that only shrank (a busy machine slowing memory-bound operators) name nothing
    assert moved(before, {"aten::addmm": 0.5, "aten::relu": 0.3, "aten::copy_": 0.1,
                          "other": 0.1}) == []  # fmt: skip
    lines, note = where_the_time_went({"converted": before, "eager": before},
                                      {"converted": after, "eager": None})  # fmt: skip
    assert lines == ["converted: aten::mm 0% -> 60%, aten::addmm 70% -> 30%"]
    assert note is None
    assert where_the_time_went(None, {"converted": after})[1].startswith(
        "the baseline entry has no operator profile"
    )
    # an unchanged model on a slower machine: no share grew, and the note says so
    same = {"converted": before, "eager": before}
    lines, note = where_the_time_went(same, same)
    assert lines == [] and note.startswith("no operator's share of the time grew by 15% or more")



SCRIPTED_PART = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(256, 256)
        self.head = torch.jit.script(torch.nn.Linear(256, 256))  # takes no hooks

    def forward(self, x):
        return self.head(self.body(x).relu())
"""


def test_a_scripted_submodule_counts_for_the_module_around_it(suite, pytester):
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    pytester.makepyfile(net=SCRIPTED_PART)
    result = suite(TESTS, "--ts-baseline=base.json", "--ts-update-baseline",
                   "--ts-report=report.json", timed=True)  # fmt: skip
    result.assert_outcomes(passed=1)
    (entry,) = json.loads((pytester.path / "base.json").read_text())["entries"].values()
    assert "aten::addmm under body" in entry["profile"]["eager by module"]
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert check["perf"]["profile_note"] is None  # profiled, not "torch.profiler failed"


def test_eager_names_the_submodule_where_an_operator_grew():
    # F.linear in body, then written out by hand in the model's own forward
    recorded = {"eager": {"aten::addmm": 0.9, "other": 0.1},
                "eager by module": {"aten::addmm under body": 0.9, "other": 0.1}}
    now = {"eager": {"aten::mm": 0.6, "aten::add": 0.3, "other": 0.1},
           "eager by module": {"aten::mm": 0.6, "aten::add": 0.3, "other": 0.1}}  # fmt: skip
    lines, _ = where_the_time_went(recorded, now)
    assert lines == [
        "eager: aten::mm 0% -> 60% (the model's own forward: 0% -> 60%), aten::add 0% -> 30% "
        "(the model's own forward: 0% -> 30%), aten::addmm 90% -> 0%"
    ]
    grown_in_extra = {"aten::mm under extra": 0.6, "aten::addmm under body": 0.3}
    lines, _ = where_the_time_went(recorded, {**now, "eager by module": grown_in_extra})
    assert lines[0].startswith("eager: aten::mm 0% -> 60% (extra: 0% -> 60%)")
    # a baseline recorded without shares per submodule: operators alone, as before
    lines, _ = where_the_time_went({"eager": recorded["eager"]}, now)
    assert lines[0].startswith("eager: aten::mm 0% -> 60%, aten::add")
    # a hand-edited profile is said, not a traceback from inside the plugin
    edited = {**recorded, "eager by module": {"aten::addmm under body": "most"}}
    lines, note = where_the_time_went(edited, now)
    assert lines == [] and note.startswith("the baseline entry's operator profile is not shares")


BROKEN_PROFILER = """
import torch.profiler


class Broken:
    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        raise RuntimeError("Kineto is not available in this build")

    def __exit__(self, *exc):
        return False


torch.profiler.profile = Broken
"""


def test_a_profiler_that_fails_never_fails_the_check_and_is_said(suite, pytester):
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()) + BROKEN_PROFILER)
    pytester.makepyfile(net=NET.format(**UNCHANGED))
    recorded = suite(TESTS, "--ts-baseline=base.json", "--ts-update-baseline",
                     "--ts-report=report.json", timed=True)  # fmt: skip
    recorded.assert_outcomes(passed=1)  # the entry is recorded, without a profile
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert check["perf"]["profile_note"] == (
        "no operator profile recorded with this entry: torch.profiler failed (RuntimeError: "
        "Kineto is not available in this build)"
    )
    (entry,) = json.loads((pytester.path / "base.json").read_text())["entries"].values()
    assert entry["profile"] is None
    pytester.makeconftest(
        VIRTUAL_MACHINE.format(scale=_scaled(converted=3.0), seed=2, sliced=()) + BROKEN_PROFILER
    )
    result = suite(TESTS, "--ts-baseline=base.json", timed=True)
    result.assert_outcomes(failed=1)  # the regression itself, as without the profiler
    expect_lines(result, ["max_regression: regression: *",
                          "  1 check(s): where the time went cannot be told: torch.profiler "
                          "failed (RuntimeError: Kineto is not available in this build)"])  # fmt: skip
    assert_no_plugin_traceback(result)
