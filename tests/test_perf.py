"""Timings and perf gates: pytest-benchmark integration, max_slowdown, baselines.

The slow model is slow deterministically: its converted form (scripted or traced) runs its
layers ten times where eager runs them once, so the converted/eager ratio is about 5 on any
machine (call overhead is the same for both), well clear of the max_slowdown=2 the tests
gate with. No test depends on how fast the machine is.
"""

import json
import re
import subprocess
import sys

import pytest
from conftest import assert_no_plugin_traceback, expect_lines

PERF_MODELS = """
import torch


class Fast(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())

    def forward(self, x):
        return self.layers(x)


class SlowOnceConverted(Fast):
    def forward(self, x):
        y = self.layers(x)
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            for _ in range(9):
                y = y + self.layers(y) * 0.0   # work the converted form does, same values
        return y


class FailsWhenTimed(Fast):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 3:  # the check's own calls pass; the timing loop's do not
            raise RuntimeError("device lost")
        return self.layers(x)
"""

TESTS = """
import pytest
import torch
from perf_models import Fast, SlowOnceConverted

X = torch.randn(8, 64)

@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3)
def test_fast():
    return Fast().eval()

@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3)
def test_slow():
    return SlowOnceConverted().eval()
"""


# Interruptions by other processes are not counted. A run on a machine too busy to time
# cleanly records no baseline entry, which is right for users and has tests of its own
# (VIRTUAL_MACHINE below); the tests that call this are about baseline files, not timings,
# and must record their entries on a loaded machine too.
NOT_COUNTING_INTERRUPTIONS = """
import pytest_torchscript.perf.timing as timing

timing.preemptions = lambda: 0
"""


def _recording_on_any_machine(pytester) -> None:
    pytester.makeconftest(NOT_COUNTING_INTERRUPTIONS)


@pytest.fixture
def perf_suite(suite, pytester):
    def run(source, *args, **kwargs):
        pytester.makepyfile(perf_models=PERF_MODELS)
        return suite(source, *args, timed=True, **kwargs)

    return run


def _write_baseline(path, ratios: dict[str, tuple[float, float, float]]):
    entries = {
        f"test_user.py::{name} | script | cpu": {
            "ratio": {"median": median, "low": low, "high": high},
            "eager_median": 1e-4,
            "converted_median": 1e-4 * median,
            "fingerprint": {"cpu": "another machine"},
        }
        for name, (median, low, high) in ratios.items()
    }
    path.write_text(
        json.dumps({"format": "pytest-torchscript-baseline", "version": 1, "entries": entries})
    )


def test_timings_are_pytest_benchmark_results_with_extra_info(perf_suite, pytester):
    result = perf_suite(TESTS, "--benchmark-json=bench.json", "-k", "fast")
    result.assert_outcomes(passed=1)
    # pytest-benchmark's own table stays out of the log unless asked for; its JSON has all.
    result.stdout.no_fnmatch_line("*benchmark 'test_user.py::test_fast'*")
    shown = perf_suite(TESTS, "--ts-benchmark-table", "-k", "fast")
    expect_lines(shown, ["*benchmark 'test_user.py::test_fast': 3 tests*"])
    expect_lines(
        result,
        [
            "timings (1 thread(s); latency per call in steady state; ratio = converted / eager "
            "over interleaved rounds, median and 95% interval):",
            "  mode*eager*converted*reloaded*ratio*gates*test",
            "  script*s*s*s*[*]*-*test_user.py::test_fast",
        ],
    )
    data = json.loads((pytester.path / "bench.json").read_text())
    names = [bench["fullname"] for bench in data["benchmarks"]]
    assert names == [
        "test_user.py::test_fast::eager",
        "test_user.py::test_fast::script",
        "test_user.py::test_fast::script reloaded",
    ]
    info = data["benchmarks"][1]["extra_info"]["torchscript"]
    assert (info["role"], info["mode"], info["device"], info["threads"]) == (
        "converted",
        "script",
        "cpu",
        1,
    )
    assert info["ratio_to_eager"]["low"] <= info["ratio_to_eager"]["median"]
    assert info["parity_max_abs"] == 0.0
    assert data["machine_info"]["pytest_torchscript"]["torch"].startswith("2.")
    # every series timed in every round, and at least the floor of 3 rounds however busy the
    # machine is (a quiet one fits dozens in 0.3 s; a loaded one, under -n 2, may fit fewer)
    (rounds,) = {bench["stats"]["rounds"] for bench in data["benchmarks"]}
    assert rounds >= 3


SLOW_TRACER = """
import sys
import time

import pytest

seen = []


def tracer(frame, event, arg):
    # Like coverage's tracer, only slower, and only in eager's forward: 2 ms a call.
    if event == "call" and frame.f_code.co_filename.endswith("perf_models.py"):
        seen.append(frame.f_code.co_name)
        time.sleep(0.002)


@pytest.fixture(autouse=True)
def traced():
    sys.settrace(tracer)
    yield
    restored = sys.gettrace() is tracer
    sys.settrace(None)
    with open("traced.txt", "w") as out:
        out.write(f"{seen.count('forward')} {restored}")
"""


def _fast_check_under(perf_suite, pytester, conftest: str) -> dict:
    """test_fast timed with ``conftest`` in place; its check as the JSON report has it."""
    pytester.makeconftest(conftest)
    result = perf_suite(TESTS, "--ts-report=report.json", "-k", "fast")
    result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    return check


def test_a_python_tracer_such_as_coverage_is_suspended_while_timing(perf_suite, pytester):
    # Under --cov, eager's Python frames run traced and a converted forward's do not: timed
    # traced, an unchanged model read 26% slower in eager against a baseline recorded without
    # it. The tracer here costs 2 ms a call, so timed under it the ratio would be near 0.
    check = _fast_check_under(perf_suite, pytester, SLOW_TRACER)
    timing = check["perf"]["timing"]
    assert timing["suspended_while_timing"] == ["trace function conftest.tracer"]
    assert check["perf"]["ratio"]["median"] > 0.2, check["perf"]["ratio"]
    forward_calls, restored = (pytester.path / "traced.txt").read_text().split()
    assert int(forward_calls) >= 2 and restored == "True"  # the check's own calls stay traced


PROFILED = """
import cProfile

import pytest


@pytest.fixture(autouse=True)
def profiled():
    profile = cProfile.Profile()  # a C-level hook: sys.getprofile() is not a function
    profile.enable()
    yield
    profile.disable()
"""


def test_a_profiler_that_cannot_be_put_back_is_left_running_not_broken(perf_suite, pytester):
    # Restored through sys.setprofile, cProfile's profiler raised "'Profile' object is not
    # callable" in every later call: the check failed at timing. It is left running, and the
    # report says the timings include it.
    timing = _fast_check_under(perf_suite, pytester, PROFILED)["perf"]["timing"]
    assert timing["suspended_while_timing"] == []
    assert timing["left_running_while_timing"] == ["profile function cProfile.Profile"]


# The clock of the timing advances by each call's cost: 1 ms, and 5 ms for a converted
# SlowOnceConverted (the five times its real work). On a loaded machine the real rounds of a
# 0.3 s budget were interrupted in 8 of 15, and the ratio's interval (1.9 to 7.0) could not
# tell 5x from 2x: the gate said inconclusive, rightly, and a test of what it decides with
# clear figures must not depend on the machine being quiet.
FIXED_COSTS = """
import pytest_torchscript.perf.run as perf
import pytest_torchscript.perf.timing as timing

now = [0.0]
timing.clock = lambda: now[0]
timing.cpu_time = lambda: now[0]
timing.preemptions = lambda: 0
real_measure = perf.measure


def costing(call):
    module = getattr(call, "func", None)
    converted = hasattr(module, "original_name")  # a TorchScript module, reloaded or not
    slow = converted and module.original_name == "SlowOnceConverted"

    def timed_call():
        call()
        now[0] += 5e-3 if slow else 1e-3

    return timed_call


def fixed_measure(calls, *args, **kwargs):
    return real_measure({name: costing(call) for name, call in calls.items()}, *args, **kwargs)


perf.measure = fixed_measure
"""


def test_max_slowdown_fails_a_converted_module_slower_than_allowed(perf_suite, pytester):
    pytester.makeconftest(FIXED_COSTS)
    result = perf_suite(TESTS.replace("time_budget=0.3)", "time_budget=0.3, max_slowdown=2.0)"))
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of SlowOnceConverted failed at perf (mode='script', device=cpu)",
            "max_slowdown: regression: slower than allowed: converted/eager = *x [*, *] (95% "
            "interval), max_slowdown=2",
        ],
    )
    expect_lines(
        result,
        [
            "*= torchscript performance regressions =*",
            "test_user.py::test_slow (script): max_slowdown regression",
        ],
    )


def test_max_regression_asked_for_in_a_run_without_a_baseline_says_no_gate_ran(perf_suite):
    source = TESTS.replace(
        "def test_fast():", "def test_fast():  # the default max_regression: nothing to say"
    ).replace(
        '@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3)\ndef test_slow',
        '@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3, '
        "max_regression=0.1)\ndef test_slow",
    )
    assert "max_regression=0.1" in source
    result = perf_suite(source)
    result.assert_outcomes(passed=2)
    expect_lines(
        result,
        [
            "torchscript: max_regression is set for 1 timed check(s) (test_user.py::test_slow), "
            "but this run has no --ts-baseline, so no regression gate ran: record one with "
            "--ts-baseline=perf-baseline.json --ts-update-baseline, then gate with *"
        ],
    )


def test_baseline_gate_pass_regression_inconclusive_and_missing(perf_suite, pytester):
    # Timed on the virtual machine, every converted module 2.4x eager (0.8 x 3): the verdicts
    # below come from the baselines, not from how busy this machine is.
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={"converted": 3.0}, seed=1, sliced=()))
    _write_baseline(
        pytester.path / "baseline.json",
        {
            "test_fast": (5.0, 4.9, 5.1),  # converted was 5x eager: now it is far better
            "test_slow": (0.9, 0.89, 0.91),  # converted was faster than eager: now ~3x slower
            "test_noisy": (1.0, 0.2, 9.0),  # a baseline too noisy to judge anything against
        },
    )
    result = perf_suite(
        TESTS
        + """
@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3)
def test_noisy():
    return Fast().eval()

@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3)
def test_new():
    return Fast().eval()
""",
        "--ts-baseline=baseline.json",
    )
    result.assert_outcomes(passed=3, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of SlowOnceConverted failed at perf (mode='script', device=cpu)",
            "max_regression: regression: slower than the baseline: converted/eager ratio * now "
            "vs 0.900x [0.890, 0.910] in the baseline: +*] change, max_regression=5%",
        ],
    )
    expect_lines(
        result,
        [
            "*script*max_regression regression*test_user.py::test_slow",
            "*script*max_regression pass*test_user.py::test_fast",
            "*script*max_regression inconclusive*test_user.py::test_noisy",
            "*script*max_regression missing baseline*test_user.py::test_new",
        ],
    )


def test_perf_strict_fails_inconclusive_and_missing_with_how_to(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    _write_baseline(pytester.path / "baseline.json", {"test_fast": (1.0, 0.2, 9.0)})
    result = perf_suite(TESTS, "--ts-baseline=baseline.json", "--ts-perf-strict", "-k", "fast")
    result.assert_outcomes(failed=1)
    expect_lines(result, ["max_regression: inconclusive: too noisy to tell: *"])
    result = perf_suite(TESTS, "--ts-baseline=other.json", "--ts-perf-strict", "-k", "fast")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "max_regression: missing baseline: no baseline entry 'test_user.py::test_fast | "
            "script | cpu' in */other.json; record it with pytest --ts-baseline=*/other.json "
            "--ts-update-baseline",
        ],
    )


def test_update_baseline_writes_entries_and_keeps_the_others(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    _write_baseline(pytester.path / "baseline.json", {"test_elsewhere": (1.0, 0.9, 1.1)})
    result = perf_suite(TESTS, "--ts-baseline=baseline.json", "--ts-update-baseline")
    result.assert_outcomes(passed=2)
    expect_lines(
        result,
        [
            "torchscript: wrote 2 baseline entries to */baseline.json, one run each: runs of "
            "unchanged code differ * add two or more runs later with --ts-extend-baseline *"
        ],
    )
    entries = json.loads((pytester.path / "baseline.json").read_text())["entries"]
    assert sorted(entries) == [
        "test_user.py::test_elsewhere | script | cpu",
        "test_user.py::test_fast | script | cpu",
        "test_user.py::test_slow | script | cpu",
    ]
    slow = entries["test_user.py::test_slow | script | cpu"]
    assert slow["ratio"]["median"] > 2  # the converted form does 4x the work
    assert slow["fingerprint"]["threads"] == 1 and slow["fingerprint"]["device"] == "cpu"
    # The recorded baseline gates the next run. The threshold is wide because this test runs
    # beside others on a busy machine: it checks that the entries are found and compared,
    # not how quiet the machine is (benchmarks/gate_quality.py measures that).
    again = perf_suite(TESTS, "--ts-baseline=baseline.json", "--ts-max-regression=1.0")
    again.assert_outcomes(passed=2)
    for test in ("test_fast", "test_slow"):
        (row,) = [
            line
            for line in again.stdout.lines
            if "max_regression" in line and line.endswith(f"test_user.py::{test}")
        ]
        # pass, or inconclusive when a busy machine shifts absolute times; never a regression
        assert "max_regression pass" in row or "max_regression inconclusive" in row, row


def test_two_processes_updating_one_baseline_keep_each_others_entries(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    pytester.makepyfile(perf_models=PERF_MODELS, test_user=TESTS)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--ts-baseline=shared.json",
        "--ts-update-baseline",
        "--ts-cpp=off",
    ]
    logs = [pytester.path / f"{name}.log" for name in ("test_fast", "test_slow")]
    workers = []
    for log in logs:
        with open(log, "w") as output:
            workers.append(
                subprocess.Popen([*command, "-k", log.stem], cwd=pytester.path, stdout=output)
            )
    assert [worker.wait(timeout=300) for worker in workers] == [0, 0], [
        log.read_text() for log in logs
    ]
    entries = json.loads((pytester.path / "shared.json").read_text())["entries"]
    assert len(entries) == 2, sorted(entries)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "*shared.json: not valid JSON (line 1, column 2: *); fix it or delete it*"),
        (
            '{"format": "pytest-torchscript-baseline", "version": 7, "entries": {}}',
            "*shared.json: written in baseline format version 7, and this pytest-torchscript "
            "reads versions 1 and 2; it was written by a newer pytest-torchscript: upgrade "
            "this one to gate against it (it is left as it is: --ts-update-baseline does not "
            "overwrite it)",
        ),
        (
            '{"format": "pytest-torchscript-baseline", "version": 0, "entries": {}}',
            "*shared.json: written in baseline format version 0, and this pytest-torchscript "
            "reads versions 1 and 2; delete it and re-create it with --ts-update-baseline*",
        ),
        (b'{"format": "\xff"}', "*shared.json: not UTF-8 text (byte 12); fix it or delete it*"),
        ("[" * 100_000 + "]" * 100_000, "*shared.json: unreadable JSON (*); fix it or delete it*"),
        ("1" * 5000, "*shared.json: unreadable JSON (*); fix it or delete it*"),
    ],
    ids=["not-json", "newer-version", "older-version", "not-utf8", "deep-nesting", "huge-integer"],
)
def test_corrupt_baseline_is_a_usage_error_naming_file_and_entry(
    perf_suite, pytester, content, expected
):
    if isinstance(content, bytes):
        (pytester.path / "shared.json").write_bytes(content)
    else:
        (pytester.path / "shared.json").write_text(content)
    result = perf_suite(TESTS, "--ts-baseline=shared.json")
    result.stderr.fnmatch_lines(["ERROR: --ts-baseline " + expected])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_no_plugin_traceback(result)
    # a file the plugin cannot read is never overwritten by recording either
    before = (pytester.path / "shared.json").read_bytes()
    recording = perf_suite(TESTS, "--ts-baseline=shared.json", "--ts-update-baseline")
    assert recording.ret == pytest.ExitCode.USAGE_ERROR
    assert (pytester.path / "shared.json").read_bytes() == before


def test_a_bad_baseline_entry_fails_its_own_check_only(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    good = {"median": 1.0, "low": 0.9, "high": 1.1}
    entries = {
        "test_user.py::test_fast | script | cpu": {"ratio": {"median": 1, "low": 2, "high": 3}},
        "test_user.py::test_slow | script | cpu": {
            "ratio": {**good, "extra": 1},  # a mistyped field inside an interval
            "eager_median": 1e-4,
            "converted_median": 1e-4,
            "fingerprint": {},
        },
        "test_user.py::test_other | script | cpu": {
            "ratio": good,
            "eager_median": 1e-4,
            "converted_median": 1e-4,
            "fingerprint": {"cpu": "another machine"},
        },
    }
    (pytester.path / "shared.json").write_text(
        json.dumps({"format": "pytest-torchscript-baseline", "version": 1, "entries": entries})
    )
    result = perf_suite(
        TESTS.replace("time_budget=0.3)", "time_budget=0.3, max_regression=1.0)")
        + """
@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3, max_regression=1.0)
def test_other():
    return Fast().eval()
""",
        "--ts-baseline=shared.json",
    )
    result.assert_outcomes(passed=1, failed=2)
    expect_lines(
        result,
        [
            "max_regression: invalid baseline: --ts-baseline */shared.json: entry "
            "'test_user.py::test_fast | script | cpu' has a ratio interval that does not contain "
            "its median; fix the entry or re-record it with --ts-update-baseline",
        ],
    )
    expect_lines(
        result,
        [
            "*entry 'test_user.py::test_slow | script | cpu' has ratio fields ['extra', 'high', "
            "'low', 'median'], expected exactly ['median', 'low', 'high']*"
        ],
    )
    assert_no_plugin_traceback(result)
    # An update replaces the bad entries of the tests it ran and keeps the others as they were.
    again = perf_suite(TESTS, "--ts-baseline=shared.json", "--ts-update-baseline")
    again.assert_outcomes(passed=2)
    entries = json.loads((pytester.path / "shared.json").read_text())["entries"]
    assert entries["test_user.py::test_fast | script | cpu"]["probe"]["median"] > 0
    assert entries["test_user.py::test_other | script | cpu"]["fingerprint"] == {
        "cpu": "another machine"
    }


def test_update_baseline_needs_a_path(perf_suite):
    result = perf_suite(TESTS, "--ts-update-baseline")
    result.stderr.fnmatch_lines(["ERROR: --ts-update-baseline needs --ts-baseline=PATH*"])


def test_a_timing_that_cannot_be_taken_fails_that_test_only(perf_suite):
    result = perf_suite(
        TESTS
        + """
from perf_models import FailsWhenTimed

@pytest.mark.torchscript(mode="script", inputs=X, time_budget=0.3, roundtrip=False)
def test_fails_when_timed():
    return FailsWhenTimed().eval()
"""
    )
    result.assert_outcomes(passed=2, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of FailsWhenTimed failed at timing (mode='script', device=cpu)",
            "timing eager failed: RuntimeError: device lost; the other checks of this run still "
            "count",
        ],
    )


@pytest.mark.parametrize(
    "option, note",
    [
        ("--benchmark-disable", "timings: timing off: --benchmark-disable"),
        ("--benchmark-skip", "timings: timing off: --benchmark-skip"),
    ],
)
def test_benchmark_disable_and_skip_turn_timing_off_but_checks_still_run(perf_suite, option, note):
    result = perf_suite(
        TESTS.replace("time_budget=0.3)", "time_budget=0.3, max_slowdown=2.0)"), option
    )
    result.assert_outcomes(passed=2)  # max_slowdown cannot fail what was not timed
    expect_lines(result, [note])
    result.stdout.no_fnmatch_line("*benchmark 'test_user.py*")


def test_benchmark_only_runs_and_times_the_checks_and_skips_the_rest(perf_suite):
    """A perf job run with --benchmark-only must time the checks, not skip them as
    pytest-benchmark skips every test without its own fixture."""
    result = perf_suite(
        TESTS + "\ndef test_unit():\n    pass\n", "--benchmark-only", "-k", "fast or unit", "-rs"
    )
    result.assert_outcomes(passed=1, skipped=1)
    expect_lines(result, ["*script *us*us*[*]*test_user.py::test_fast"])
    expect_lines(result, ["SKIPPED*Skipping non-benchmark (--benchmark-only active)*"])


WIDE_MODEL = """
import os
import torch


class Wide(torch.nn.Module):
    \"\"\"A model whose every form repeats its layers TS_TEST_REPEAT times: a change that
    makes the whole model slower, eager and converted alike.\"\"\"

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh())
        self.repeat = int(os.environ.get("TS_TEST_REPEAT", "1"))

    def forward(self, x):
        for _ in range(self.repeat):
            x = self.layers(x)
        return x
"""

WIDE_TESTS = """
import pytest
import torch
from wide_model import Wide

@pytest.mark.torchscript(mode="script", inputs=torch.randn(8, 64), time_budget=0.5)
def test_wide():
    return Wide().eval()
"""

# A machine in virtual time: every timed call of a series advances the clock by a fixed cost
# (that series' COST times its SCALE, with seeded jitter per call and a per-process drift per
# series, as memory layout gives), while the real call still runs. Each process draws its own
# noise from SEED, so the baseline and the gate differ as two real processes do, but the
# outcome is the same on every machine, loaded or quiet: the tests below judge the gate, not
# the machine they run on. The probe is timed through the same seam as the model.
VIRTUAL_MACHINE = """
import random

import pytest_torchscript.perf.run as perf
import pytest_torchscript.perf.timing as timing

COST = {{"eager": 1e-3, "converted": 8e-4, "probe:compute": 3e-4, "probe:memory": 2e-4,
        "probe:overhead": 1e-4}}
SCALE = {scale!r}
# Roles whose every call another process interrupts for a 4 ms scheduler slice (counted, as
# the kernel counts involuntary switches): long calls on a machine with more work than cores.
SLICED = {sliced!r}
noise = random.Random({seed})
drift = {{role: noise.lognormvariate(0, 0.01) for role in COST}}
now = [0.0]
ran = [0.0]  # this thread's CPU time: the calls' own cost, not the slices taken from them
switches = [0]
timing.clock = lambda: now[0]
timing.cpu_time = lambda: ran[0]
timing.preemptions = lambda: switches[0]
real_measure = perf.measure


def costing(role, call):
    cost = COST[role] * SCALE.get(role, 1.0) * drift[role]

    def timed_call():
        call()
        spent = cost * noise.lognormvariate(0, 0.02)
        now[0] += spent
        ran[0] += spent
        if role in SLICED:
            now[0] += 0.004
            switches[0] += 1

    return timed_call


def virtual_measure(calls, *args, **kwargs):
    names = list(calls)
    roles = {{name: name if name.startswith("probe:") else
             "eager" if name == names[0] else "converted" for name in names}}
    costed = {{name: costing(roles[name], call) for name, call in calls.items()}}
    return real_measure(costed, *args, **kwargs)


perf.measure = virtual_measure
"""

PROBE_SERIES = ("probe:compute", "probe:memory", "probe:overhead")


def _scaled(machine: float = 1.0, eager: float = 1.0, converted: float = 1.0, **probe) -> dict:
    """SCALE for VIRTUAL_MACHINE: ``machine`` slows everything; ``eager``/``converted`` the
    model's forms; ``memory=1.4`` one probe component (a neighbour thrashing the cache)."""
    scale = {"eager": machine * eager, "converted": machine * converted}
    for series in PROBE_SERIES:
        scale[series] = machine * probe.get(series.split(":")[1], 1.0)
    return scale


def _gate_on_virtual_machine(perf_suite, pytester, scale: dict, sliced: tuple = ()):
    """Record a baseline on the virtual machine, then gate in another process on it with
    ``scale`` applied (and the calls of ``sliced`` roles interrupted); returns the gate's
    result and its max_regression gate."""
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline").assert_outcomes(
        passed=1
    )
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale=scale, seed=2, sliced=sliced))
    result = perf_suite(
        WIDE_TESTS, "--ts-baseline=base.json", "--ts-report=report.json", "--ts-html=report.html"
    )
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    (gate,) = [gate for gate in check["perf"]["gates"] if gate["gate"] == "max_regression"]
    return result, gate


@pytest.mark.parametrize(
    "machine",
    [1.0, 2.5, 0.5],
    ids=["same-machine", "slower-machine", "faster-machine"],
)
def test_an_unchanged_model_passes_on_a_machine_uniformly_slower_or_faster(
    perf_suite, pytester, machine
):
    result, gate = _gate_on_virtual_machine(perf_suite, pytester, _scaled(machine))
    result.assert_outcomes(passed=1)
    assert gate["outcome"] == "pass", gate["message"]


def test_a_busy_neighbour_is_inconclusive_never_a_regression(perf_suite, pytester):
    # Another process thrashes the shared cache: streaming slows 40%, compute 5%, and the
    # model, which streams more than the probe does, 30% in both forms: +14% probe-normalised.
    # Which share of that is the model cannot be told, so the gate must not say regression.
    scale = _scaled(eager=1.3, converted=1.3, compute=1.05, memory=1.4)
    result, gate = _gate_on_virtual_machine(perf_suite, pytester, scale)
    result.assert_outcomes(passed=1)
    assert gate["outcome"] == "inconclusive", gate["message"]
    assert "the machine is not in the state it was in for the baseline" in gate["message"]
    assert re.search(r"memory \+(3[5-9]|4[0-5])%", gate["message"]), gate["message"]
    # The log says why, not only the JSON report: run it again, or on a quieter machine.
    expect_lines(
        result,
        [
            "  gates that could not decide (reported, not failed; --ts-perf-strict fails them;*",
            "    test_user.py::test_wide (script): max_regression: too noisy to tell: the machine "
            "is not in the state it was in for the baseline: *memory +*",
        ],
    )
    page = (pytester.path / "report.html").read_text()
    assert "<h2>Perf gates that could not decide</h2>" in page
    assert "eager / probe:" in page.split("could not decide")[1]  # the whole message


def test_a_probe_component_moving_alone_does_not_hide_a_model_wide_slowdown(perf_suite, pytester):
    # The memory stream alone reads 15% slower in the gating process (as it does between
    # processes of an idle VM): read against all three components, the model's 13% slowdown
    # would read 8%, inside the widening that unevenness earns; read against the middle one,
    # it is caught, and the gate says how it read the probe.
    scale = _scaled(eager=1.13, converted=1.13, memory=1.15)
    result, gate = _gate_on_virtual_machine(perf_suite, pytester, scale)
    result.assert_outcomes(failed=1)
    assert gate["outcome"] == "regression", gate["message"]
    assert gate["message"].startswith("the model got 1"), gate["message"]
    assert re.search(
        r"probe-normalised times are read against the probe's middle component "
        r"\((compute|overhead) [+-]\d\.\d%; its components moved compute [+-]\d%, "
        r"memory \+1[4-6]%, overhead [+-]\d%\), not all three",
        gate["message"],
    ), gate["message"]


def test_a_probe_component_moving_alone_does_not_hide_a_slower_conversion(perf_suite, pytester):
    # The memory stream alone reads 22% slower (as between processes of an idle VM) while the
    # converted module got 12% slower. The probe-normalised times are widened by the whole
    # unevenness; the ratio, whose two forms run the same kernels, only by a quarter of it,
    # so the slower conversion is still caught (widened by all of it, it was inconclusive).
    scale = _scaled(converted=1.12, memory=1.22)
    result, gate = _gate_on_virtual_machine(perf_suite, pytester, scale)
    result.assert_outcomes(failed=1)
    assert gate["outcome"] == "regression", gate["message"]
    assert gate["message"].startswith("slower than the baseline: converted/eager"), gate["message"]
    assert re.search(
        r"so the probe-normalised intervals were widened by (9|1\d)% below the change and "
        r"[0-2]% above it \(.*\), the ratio's by [1-4]%",
        gate["message"],
    ), gate["message"]


def test_a_model_interrupted_in_every_round_is_inconclusive_not_a_regression(perf_suite, pytester):
    # More runnable work than cores: the model's calls are interrupted in every round, the
    # probe's short ones are not, so the model reads slower against the probe with nothing
    # changed (resnet18 beside pytest -n 2 read +17% to +44%), and the slice added to eager
    # and converted alike pulls their ratio towards 1 (here +20%).
    result, gate = _gate_on_virtual_machine(
        perf_suite, pytester, _scaled(), sliced=("eager", "converted")
    )
    result.assert_outcomes(passed=1)
    assert gate["outcome"] == "inconclusive", gate["message"]
    assert gate["message"].startswith(
        "too noisy to tell: the converted/eager ratio not judged: the machine was too busy to "
        "time them cleanly (only 0 of "
    ), gate["message"]
    # The slices pull the measured ratio towards 1; a converted module measured slower than
    # eager even so was slower still, and that regression stands on this machine too.
    pytester.makeconftest(
        VIRTUAL_MACHINE.format(scale=_scaled(converted=6.0), seed=3, sliced=("eager", "converted"))
    )
    slower = perf_suite(WIDE_TESTS, "--ts-baseline=base.json")
    slower.assert_outcomes(failed=1)
    expect_lines(
        slower, ["max_regression: regression: slower than the baseline: converted/eager *"]
    )
    expect_lines(
        slower, ["  1 check(s): absolute times not judged: the machine was too busy to time them *"]
    )


def test_a_machine_busy_in_every_round_costs_precision_not_an_open_ended_wait(perf_suite, pytester):
    # Every round is preempted, so every round could be replaced for as long as that is
    # allowed. The whole timing (warm-up, steady-state windows, rounds) still ends within
    # CEILING budgets (1.4: 0.7 s of virtual time for time_budget=0.5; it took 1.1 s when
    # replacing could go on for a whole budget more), plus the last round at most.
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=2, sliced=("eager", "converted")))
    result = perf_suite(WIDE_TESTS, "--ts-report=report.json")
    result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    timing = check["perf"]["timing"]
    assert len(timing["preempted"]["eager"]) == timing["rounds"] >= 3  # all preempted
    assert 0.5 < timing["seconds_spent"] <= 1.4 * 0.5 + 0.02, timing["phases"]
    assert sum(timing["phases"].values()) == pytest.approx(timing["seconds_spent"])


def test_a_baseline_is_not_recorded_from_a_run_too_busy_to_time_cleanly(perf_suite, pytester):
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline").assert_outcomes(
        passed=1
    )
    recorded = (pytester.path / "base.json").read_text()
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=2, sliced=("eager", "converted")))
    result = perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline")
    result.assert_outcomes(passed=1)
    expect_lines(
        result,
        [
            "  1 check(s): baseline entry not recorded: the converted/eager ratio not judged: "
            "the machine was too busy to time them cleanly*; record it again on a quieter "
            "machine",
            "torchscript: --ts-update-baseline wrote nothing to *base.json: no check was timed "
            "cleanly enough to record (the summary says why)",
        ],
    )
    assert (pytester.path / "base.json").read_text() == recorded  # the entry before stays
    assert_no_plugin_traceback(result)


def test_a_baseline_recorded_from_too_few_rounds_says_which_budget_fits_enough(
    perf_suite, pytester
):
    # A model of 100 ms a call (virtual) leaves room for 3 rounds in time_budget=0.5 s: an
    # entry whose intervals are as wide as its rounds are apart, so its gates cannot decide.
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(
        VIRTUAL_MACHINE.format(scale=_scaled(eager=100, converted=100), seed=1, sliced=())
    )
    result = perf_suite(
        WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline", "--ts-report=report.json"
    )
    result.assert_outcomes(passed=1)
    expect_lines(
        result,
        [
            "torchscript: wrote 1 baseline entry to *base.json*",
            "torchscript: test_user.py::test_wide (script): baseline entry recorded from only 3 "
            "rounds in time_budget=0.5 s, and a 95% interval needs 9 or more (a round of this "
            "model takes * ms): its gates will be too wide to decide; give the test "
            "time_budget=* (marker, or ts_time_budget in ini) and record it again",
        ],
    )
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    suggested = int(re.search(r"time_budget=(\d+) ", check["perf"]["advice"]).group(1))
    per_round = check["perf"]["timing"]["phases"]["rounds"] / 3
    assert suggested * 0.7 >= 18 * per_round  # twice the rounds an interval needs, after warm-up


BROKEN_BEFORE_TIMING = """
import pytest
import torch


class Broken(torch.nn.Module):
    def forward(self, x):
        raise ValueError("no weights loaded")


@pytest.mark.torchscript(mode="script", inputs=torch.randn(2, 3))
def test_broken():
    return Broken().eval()
"""


def test_a_baseline_that_records_nothing_says_why_without_blaming_the_machine(perf_suite):
    result = perf_suite(BROKEN_BEFORE_TIMING, "--ts-baseline=base.json", "--ts-update-baseline")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript: --ts-update-baseline wrote nothing to *base.json: no check got as far "
            "as its timing (the summary says why)"
        ],
    )
    nothing_ran = perf_suite(
        BROKEN_BEFORE_TIMING, "--ts-baseline=base.json", "--ts-update-baseline", "-k", "nothing"
    )
    expect_lines(
        nothing_ran,
        ["torchscript: --ts-update-baseline wrote nothing to *base.json: no check ran"],
    )
    assert_no_plugin_traceback(nothing_ran)


def test_runs_added_to_a_baseline_keep_one_unlucky_run_from_failing_every_gate(
    perf_suite, pytester
):
    # mobilenet_v3_small ran 8-21% faster in one recording process, and every later gate of
    # the same code against that recording flagged a model-wide slowdown. Here the model runs
    # 13% faster in the process that records the baseline.
    pytester.makepyfile(wide_model=WIDE_MODEL)
    key = "test_user.py::test_wide | script | cpu"

    def run(scale: dict, seed: int, *args: str) -> pytest.RunResult:
        pytester.makeconftest(VIRTUAL_MACHINE.format(scale=scale, seed=seed, sliced=()))
        return perf_suite(WIDE_TESTS, "--ts-baseline=base.json", *args)

    run(_scaled(eager=0.87, converted=0.87), 1, "--ts-update-baseline").assert_outcomes(passed=1)
    alone = run({}, 4)
    alone.assert_outcomes(failed=1)
    expect_lines(
        alone,
        [
            "max_regression: regression: the model got 1?% slower in eager and script alike *",
            "  the baseline entry holds one run's timings, and runs of unchanged code differ *",
            "*add runs to it with --ts-extend-baseline, and the gate allows for how much this "
            "model's runs differ",
        ],
    )
    added = run({}, 2, "--ts-extend-baseline")
    added.assert_outcomes(passed=1)
    expect_lines(added, ["torchscript: added this run's timings to 1 of 1 baseline entry in *"])
    run({}, 3, "--ts-extend-baseline").assert_outcomes(passed=1)
    entry = json.loads((pytester.path / "base.json").read_text())["entries"][key]
    runs = [run["normalised"]["eager"]["median"] for run in entry["recordings"]]
    assert len(runs) == 3 and entry["normalised"]["eager"]["median"] == sorted(runs)[1]
    # The same run as before, judged by the median now: no regression; and no pass either,
    # since runs 13% apart cannot show a model within max_regression=5%, which it says
    again = run({}, 4)
    again.assert_outcomes(passed=1)
    expect_lines(
        again,
        [
            "*test_user.py::test_wide (script): max_regression: too noisy to tell: the "
            "baseline's 3 runs of unchanged code lie too far apart for max_regression=5% *",
        ],
    )
    # Runs 13% apart: a later run may differ by twice that, and a slowdown beyond it is one.
    slower = run(_scaled(eager=1.8, converted=1.8), 4)
    slower.assert_outcomes(failed=1)
    expect_lines(slower, ["max_regression: regression: the model got *% slower in eager and *"])
    assert "--ts-extend-baseline" not in slower.stdout.str()
    # An entry from another machine takes no runs: this run's timings start it over, said.
    document = json.loads((pytester.path / "base.json").read_text())
    document["entries"][key]["fingerprint"]["cpu"] = "Another CPU 9000"
    (pytester.path / "base.json").write_text(json.dumps(document))
    moved = run({}, 5, "--ts-extend-baseline")
    moved.assert_outcomes(passed=1)
    expect_lines(
        moved,
        [
            "torchscript: added this run's timings to 0 of 1 baseline entry in *base.json",
            f"torchscript: {key!r} started over with this run's timings: the entry before was "
            "invalid, lacked figures this version records, or was timed on another machine, "
            "torch, input set or number of calls per sample",
        ],
    )
    assert "recordings" not in json.loads((pytester.path / "base.json").read_text())["entries"][key]
    assert_no_plugin_traceback(moved)
    # Extending a file that does not hold the entry yet records it, said once, not as a
    # warning per entry: that is how a baseline can be started with --ts-extend-baseline.
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=6, sliced=()))
    fresh = perf_suite(WIDE_TESTS, "--ts-baseline=fresh.json", "--ts-extend-baseline")
    fresh.assert_outcomes(passed=1)
    expect_lines(
        fresh,
        [
            "torchscript: added this run's timings to 0 of 1 baseline entry in *fresh.json",
            "torchscript: 1 of them new to the file, recorded with this run's timings; "
            "--ts-extend-baseline in later runs adds runs to them",
        ],
    )
    assert "started over" not in fresh.stdout.str()
    assert key in json.loads((pytester.path / "fresh.json").read_text())["entries"]


def test_extend_and_update_baseline_are_one_or_the_other(perf_suite):
    both = perf_suite(TESTS, "--ts-baseline=b.json", "--ts-update-baseline", "--ts-extend-baseline")
    assert both.ret == pytest.ExitCode.USAGE_ERROR
    both.stderr.fnmatch_lines(["*--ts-update-baseline replaces each entry * pass one of them*"])
    alone = perf_suite(TESTS, "--ts-extend-baseline")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["*--ts-extend-baseline needs --ts-baseline=PATH*"])


@pytest.mark.parametrize(
    "slowdown, headline",
    [
        (
            {"eager": 1.3, "converted": 1.3},
            "the model got 3?% slower in eager and script alike (probe-normalised, 95% "
            "interval *); the conversion itself is unchanged (converted/eager *)",
        ),
        (
            {"converted": 1.3},
            "slower than the baseline: converted/eager ratio *x * now vs *x * in the baseline: "
            "+*] change, max_regression=5%; eager moved * (probe-normalised), so the "
            "conversion made it slower",
        ),
        (
            # eager drifted (1% here, and this virtual machine's per-process drift adds about
            # 3% in the gate's process, as Python-heavy eager code moves between processes)
            # while the scripted module got 6.5% slower: the ratio moves under 5%, what ships
            # about 8%
            {"eager": 1.01, "converted": 1.065},
            "the script module got ?% slower (probe-normalised, 95% interval *, steady state "
            "+*%); eager moved * (probe-normalised)*; the converted/eager ratio moved +*",
        ),
    ],
    ids=["model-wide", "converted-only", "deployed-only"],
)
def test_a_slowdown_on_a_slower_machine_is_a_regression_naming_what_moved(
    perf_suite, pytester, slowdown, headline
):
    # The gate runs on a machine 1.8x slower than the baseline's, and the model got slower on
    # top: normalising by the probe must take the machine out and leave the model.
    result, gate = _gate_on_virtual_machine(perf_suite, pytester, _scaled(1.8, **slowdown))
    result.assert_outcomes(failed=1)
    assert gate["outcome"] == "regression", gate["message"]
    expect_lines(result, [f"max_regression: regression: {headline}"])
    assert_no_plugin_traceback(result)


def test_a_model_wide_slowdown_is_a_regression_with_the_figures_that_moved(perf_suite, pytester):
    # Timed on the virtual machine, so a loaded machine (every real round interrupted under
    # -n 2 with the suite) cannot turn the verdict into "too busy to tell".
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    recorded = perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline")
    recorded.assert_outcomes(passed=1)
    entry = json.loads((pytester.path / "base.json").read_text())["entries"][
        "test_user.py::test_wide | script | cpu"
    ]
    assert entry["probe"]["median"] > 0 and entry["normalised"]["eager"]["median"] > 0
    # Six times the work, in eager and script alike.
    scale = _scaled(eager=6.0, converted=6.0)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale=scale, seed=2, sliced=()))
    result = perf_suite(WIDE_TESTS, "--ts-baseline=base.json")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Wide failed at perf (mode='script', device=cpu)",
            "max_regression: regression: the model got *% slower in eager and script alike "
            "(probe-normalised, 95% interval *%..*%); the conversion itself is unchanged "
            "(converted/eager *)",
            "  converted/eager ratio: *x [*] now vs *x [*] in the baseline: *",
            "  eager / probe: * now vs * in the baseline: +*",
            "  script / probe: * now vs * in the baseline: +*",
        ],
    )
    assert_no_plugin_traceback(result)


def test_a_baseline_from_another_machine_judges_the_ratio_and_says_what_it_left_out(
    perf_suite, pytester
):
    # Timed on the virtual machine: a verdict from the ratio alone must not depend on how
    # busy this machine is (under -n 2 with the suite, its rounds can all be interrupted).
    pytester.makepyfile(wide_model=WIDE_MODEL)
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=1, sliced=()))
    perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline").assert_outcomes(
        passed=1
    )
    pytester.makeconftest(VIRTUAL_MACHINE.format(scale={}, seed=2, sliced=()))
    document = json.loads((pytester.path / "base.json").read_text())
    for entry in document["entries"].values():
        entry["fingerprint"]["cpu"] = "Another CPU 9000"
        entry["ratio"] = {"median": 0.5, "low": 0.49, "high": 0.51}  # script was 2x faster then
        entry["latency"]["converted"] = entry["latency"]["eager"] * 0.5  # by both instruments
    (pytester.path / "base.json").write_text(json.dumps(document))
    result = perf_suite(WIDE_TESTS, "--ts-baseline=base.json")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        ["max_regression: regression: slower than the baseline: converted/eager ratio *"],
    )
    expect_lines(
        result,
        [
            "  1 check(s): absolute times not judged: the baseline was recorded with cpu "
            "'Another CPU 9000' (now *); only the converted/eager ratio carries across machines"
        ],
    )


def test_a_baseline_timed_on_another_input_set_is_stale_not_a_regression(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    # The test's first input set (the one timed) grew from batch 8 to 64: every figure moves
    # with the shape, so comparing them would call a test edit a model regression.
    pytester.makepyfile(wide_model=WIDE_MODEL)
    perf_suite(WIDE_TESTS, "--ts-baseline=base.json", "--ts-update-baseline").assert_outcomes(
        passed=1
    )
    entry = json.loads((pytester.path / "base.json").read_text())["entries"][
        "test_user.py::test_wide | script | cpu"
    ]
    assert entry["timed_input"] == "(float32[8, 64])"
    bigger = WIDE_TESTS.replace("torch.randn(8, 64)", "torch.randn(64, 64)")
    result = perf_suite(bigger, "--ts-baseline=base.json")
    result.assert_outcomes(passed=1)  # listed, never silently passed; fails under strict
    expect_lines(
        result,
        [
            "*script*max_regression stale baseline*test_user.py::test_wide",
            "    test_user.py::test_wide (script): max_regression: baseline entry *timed input "
            "set (float32?8, 64?), and this run times (float32?64, 64?)*",
        ],
    )
    assert "max_regression regression" not in result.stdout.str()
    assert "performance regressions" not in result.stdout.str()
    result = perf_suite(bigger, "--ts-baseline=base.json", "--ts-perf-strict")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "max_regression: stale baseline: baseline entry 'test_user.py::test_wide | script | "
            "cpu' in * timed input set (float32[8, 64]), and this run times (float32[64, 64]) "
            "(the test's first input set changed): nothing compares; re-record it with *"
        ],
    )


def test_a_format_1_baseline_is_judged_by_its_ratio_and_says_to_re_record(perf_suite, pytester):
    _write_baseline(pytester.path / "baseline.json", {"test_fast": (1.0, 0.2, 9.0)})
    document = json.loads((pytester.path / "baseline.json").read_text())
    (entry,) = document["entries"].values()
    entry["fingerprint"] = {}  # matching or not, a format 1 entry has no probe to normalise by
    (pytester.path / "baseline.json").write_text(json.dumps(document))
    result = perf_suite(TESTS, "--ts-baseline=baseline.json", "-k", "fast")
    result.assert_outcomes(passed=1)
    expect_lines(
        result,
        [
            "  1 check(s): absolute times not judged: the baseline entry predates the "
            "machine-speed probe (format 1); re-record it with --ts-update-baseline"
        ],
    )


def test_two_checks_of_one_mode_in_one_test_have_their_own_baseline_entries(perf_suite, pytester):
    _recording_on_any_machine(pytester)
    source = """
import torch
from perf_models import Fast, SlowOnceConverted

X = torch.randn(8, 64)

def test_two(torchscript):
    torchscript.check(Fast().eval(), X, mode="script", roundtrip=False, time_budget=0.3)
    torchscript.check(SlowOnceConverted().eval(), X, mode="script", roundtrip=False,
                      time_budget=0.3)
"""
    perf_suite(source, "--ts-baseline=b.json", "--ts-update-baseline").assert_outcomes(passed=1)
    entries = json.loads((pytester.path / "b.json").read_text())["entries"]
    assert sorted(entries) == [
        "test_user.py::test_two | script | cpu",
        "test_user.py::test_two | script | cpu | 2",
    ]
    # Each check has its own entry: the second (4x the converted work) records a higher
    # ratio. Only the order is asserted, so a loaded machine cannot fail it.
    slow = entries["test_user.py::test_two | script | cpu | 2"]["ratio"]["median"]
    assert slow > entries["test_user.py::test_two | script | cpu"]["ratio"]["median"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_cpu_peak_memory_of_each_series_is_in_the_report(perf_suite, pytester):
    source = """
import pytest
import torch

class Workspace(torch.nn.Module):
    # 48 MiB of scratch per call (above glibc's mmap threshold: it is returned on free), so
    # every series' first call raises resident memory by at least that much. Made from the
    # input: a constant the JIT would fold into the graph once.
    def forward(self, x):
        scratch = x.repeat(3 * 1024 * 1024)
        return x + scratch[-4:]

@pytest.mark.torchscript(mode="trace", inputs=torch.randn(4), time_budget=0.3,
                         roundtrip=False)
def test_workspace():
    return Workspace()
"""
    result = perf_suite(source, "--ts-report=report.json")
    result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    peak = check["perf"]["timing"]["peak_memory"]
    assert set(peak) >= {"eager", "trace"}
    assert all(peak[name] >= 40 * 1024 * 1024 for name in ("eager", "trace")), peak


def test_a_model_too_slow_for_the_budget_is_not_timed_and_its_gate_not_passed(perf_suite, pytester):
    """A forward that takes longer than the budget can hold (here 0.3 s against 0.2 s: even
    the fewest rounds would take about 4.5 s) is not timed for minutes: the check says so,
    and a gate it asked for is inconclusive with that reason, failed under strict."""
    source = """
        import time
        import pytest
        import torch
        from perf_models import Fast

        class Sleepy(Fast):
            def forward(self, x):
                time.sleep(0.3)  # eager only: a traced module does not replay Python
                return self.layers(x)

        X = torch.randn(8, 64)

        @pytest.mark.torchscript(mode="trace", inputs=X, time_budget=0.2, max_slowdown=2.0)
        def test_sleepy():
            return Sleepy().eval()

        @pytest.mark.torchscript(mode="trace", inputs=X, time_budget=0.2)
        def test_fast():
            return Fast().eval()
        """
    note = (
        "not timed: one eager call takes 0.3* s, so even the fewest rounds would take about "
        "* s against time_budget=0.2 s; raise time_budget= to at least * to time this model"
    )
    result = perf_suite(source, "--ts-report=report.json", "--ts-html=report.html")
    result.assert_outcomes(passed=2)
    checks = json.loads((pytester.path / "report.json").read_text())["checks"]
    sleepy = next(check for check in checks if check["test_id"].endswith("test_sleepy"))
    assert sleepy["perf"]["note"].startswith("not timed: one eager call takes")
    assert [gate["outcome"] for gate in sleepy["perf"]["gates"]] == ["inconclusive"]
    assert "not timed: one eager call takes" in (pytester.path / "report.html").read_text()
    expect_lines(
        result,
        [
            "  trace*s*s*s*[*]*-*test_user.py::test_fast",
            f"  test_user.py::test_sleepy: {note}",
        ],
    )
    strict = perf_suite(source, "--ts-perf-strict")
    strict.assert_outcomes(passed=1, failed=1)
    expect_lines(
        strict,
        [
            "torchscript check of Sleepy failed at perf (mode='trace', device=cpu)",
            f"max_slowdown: inconclusive: {note}",
        ],
    )
    assert_no_plugin_traceback(strict)
