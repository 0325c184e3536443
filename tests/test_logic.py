"""The plugin's torch-free logic, tested in process: option parsing and layering, the mode
registry, statistics, the perf gates on injected intervals, baseline validation and migration,
and how reports write their cells. Each runs in milliseconds; the behaviour of the same logic
inside a pytest run is covered by the pytester suites beside this file."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_torchscript.config.marks import options_for_test
from pytest_torchscript.config.options import Options, parse_check_options, parse_marker
from pytest_torchscript.config.settings import PerfSettings
from pytest_torchscript.deploy import fresh_process
from pytest_torchscript.errors import UsageProblem
from pytest_torchscript.modes import ALL_MODES, BACKENDS, MODES, backend, backend_for_artifact
from pytest_torchscript.perf import baseline, gates, timing, verdicts
from pytest_torchscript.perf import run as perf
from pytest_torchscript.perf.gates import GateResult
from pytest_torchscript.perf.stats import Interval, disagreement, median_interval, ratio_of
from pytest_torchscript.reporting.cells import (
    count_verdicts,
    coverage_cell,
    duration,
    ordered,
    roundtrip_cell,
    size,
    summary_counts,
    undecided_gates,
)


def mark(*args, **kwargs):
    return SimpleNamespace(args=args, kwargs=kwargs)


# Options: one table, layered ini < marker < check() keywords < mode defaults


def test_a_bad_option_names_the_test_the_option_and_what_it_accepts():
    with pytest.raises(UsageProblem) as raised:
        parse_marker([mark(rtol=-1.0)], "tests/test_m.py::test_x")
    message = str(raised.value)
    assert message.startswith("tests/test_m.py::test_x: @pytest.mark.torchscript: option rtol=")
    assert "rtol accepts" in message


def test_inputs_naming_a_fixture_say_how_to_check_with_its_value():
    with pytest.raises(UsageProblem) as raised:
        parse_marker([mark(inputs="batch")], "t")
    assert "a marker cannot take a fixture's value" in str(raised.value)
    assert "call torchscript.check(model, batch)" in str(raised.value)
    with pytest.raises(UsageProblem) as raised:  # not a name: no fixture to point at
        parse_marker([mark(inputs="1, 2")], "t")
    assert "'1, 2' is not an input set)" in str(raised.value)


def test_max_regression_above_one_is_refused_with_both_readings_spelled_out():
    with pytest.raises(UsageProblem) as raised:
        parse_marker([mark(max_regression=1.5)], "t")
    assert "1.5 would allow 150% slower, 2.5 times the baseline's time" in str(raised.value)
    assert "if you meant 1.5 times the baseline's time, give 0.5" in str(raised.value)
    assert parse_marker([mark(max_regression=1)], "t") == {"max_regression": 1.0}


def test_an_unknown_option_lists_the_accepted_ones():
    with pytest.raises(UsageProblem, match="unknown option 'rtoll'; accepted options: mode"):
        parse_marker([mark(rtoll=1e-3)], "t")
    # check() is not offered the marker's xfail= and skip=, which it refuses
    with pytest.raises(UsageProblem) as raised:
        parse_check_options({"rtoll": 1e-3}, "t")
    assert "accepted options: mode" in str(raised.value)
    assert "xfail" not in str(raised.value) and "skip" not in str(raised.value)


def test_the_closest_mark_wins_option_by_option():
    function_mark = mark("script", rtol=1e-3)
    module_mark = mark(mode="trace", atol=1e-4, rtol=0.5)
    merged = parse_marker([function_mark, module_mark], "t")
    assert merged == {"mode": "script", "rtol": 1e-3, "atol": 1e-4}


def test_check_keywords_override_the_marker_which_overrides_ini():
    ini = {"rtol": 0.1, "atol": 0.2, "time_budget": 1.0}
    node = SimpleNamespace(
        nodeid="t",
        iter_markers=lambda name: [mark(mode="export", rtol=0.01)],
        iter_markers_with_node=lambda name: [(SimpleNamespace(nodeid="t"), None)],
    )
    options = options_for_test(node, ini, MODES)
    assert (options.mode, options.rtol, options.atol, options.time_budget) == (
        "export",
        0.01,
        0.2,
        1.0,
    )
    checked = options.merged(parse_check_options({"rtol": 0.001}, "t"))
    assert (checked.rtol, checked.atol) == (0.001, 0.2)


def test_two_marks_on_one_test_are_refused_not_dropped():
    here = SimpleNamespace(nodeid="t")
    node = SimpleNamespace(
        nodeid="t",
        iter_markers=lambda name: [mark("trace"), mark("script")],
        iter_markers_with_node=lambda name: [(here, None), (here, None)],
    )
    with pytest.raises(UsageProblem, match="applied 2 times to t; merge them into one mark"):
        options_for_test(node, {}, MODES)


def test_check_takes_one_mode_and_no_xfail():
    with pytest.raises(UsageProblem, match="takes one mode"):
        parse_check_options({"mode": ["trace", "script"]}, "t")
    with pytest.raises(UsageProblem, match="does not take xfail="):
        parse_check_options({"xfail": {"trace": "why"}}, "t")


# The mode registry


def test_the_modes_are_the_registry_and_every_backend_says_what_it_does():
    assert MODES == tuple(BACKENDS) == (
        "trace", "script", "export", "onnx", "aoti", "compile", "tvm"
    )  # fmt: skip
    for name in MODES:
        chosen = backend(name)
        assert chosen.name == name
        assert chosen.suffix in (".pt", ".pt2", ".onnx", ".cache", ".so")
        assert chosen.control_flow in ("trace", "script", "coverage")
        assert chosen.fresh_loader in ("torchscript", "exported", "aoti", "onnx", "compile", "tvm")
        assert chosen.cpp_inputs in ("structured", "flat", None)
    assert [name for name in MODES if backend(name).exported] == ["export", "onnx", "aoti", "tvm"]
    # what mode="all" checks by default: every mode but compile and tvm, named to be checked
    assert ALL_MODES == ("trace", "script", "export", "onnx", "aoti")
    assert backend("onnx").tolerances == {"rtol": 1e-3, "atol": 1e-4}


def test_an_artifact_of_an_unknown_kind_is_treated_as_torchscript():
    from pytest_torchscript.modes.aoti import AotiPackage

    assert backend_for_artifact(AotiPackage(path=None, program=None)).name == "aoti"
    type_named_like_onnx = type("ONNXProgram", (), {})
    assert backend_for_artifact(type_named_like_onnx()).name == "onnx"


def test_importing_the_plugin_and_its_registry_imports_no_torch():
    code = (
        "import sys, pytest_torchscript.plugin, pytest_torchscript.modes, "
        "pytest_torchscript.reporting.merge; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# Statistics


def test_a_median_interval_covers_the_median_and_widens_with_fewer_samples():
    many = median_interval([float(value) for value in range(1, 101)])
    few = median_interval([float(value) for value in range(1, 11)])
    assert many.low < many.median == 50.5 < many.high
    assert few.low == 2.0 and few.high == 9.0  # ranks 1 and 8 of 10 at 95%
    assert median_interval([1.0, 2.0, 3.0]) == Interval(2.0, 1.0, 3.0)  # too few: the range


def test_a_ratio_of_intervals_combines_their_widths():
    then = Interval(1.0, 0.99, 1.01)
    now = Interval(1.2, 1.18, 1.22)
    change = ratio_of(now, then)
    assert change.median == pytest.approx(1.2)
    assert change.low < 1.2 * 0.99 / 1.0 and change.high > 1.2 * 1.01 / 1.0 - 0.01


# The gates, on injected intervals


def narrow(value: float) -> Interval:
    return Interval(value, value * 0.99, value * 1.01)


def test_max_slowdown_passes_fails_and_says_when_it_cannot_tell():
    assert gates.max_slowdown_gate(narrow(1.1), 1.5).outcome == gates.PASS
    assert gates.max_slowdown_gate(narrow(2.0), 1.5).outcome == gates.REGRESSION
    wide = Interval(1.5, 1.2, 1.9)
    assert gates.max_slowdown_gate(wide, 1.5).outcome == gates.INCONCLUSIVE


def test_a_converted_only_slowdown_fails_the_ratio_figure():
    ratio = gates.figure("converted/eager ratio", narrow(1.3), narrow(1.0))
    result = gates.regression_gate(ratio, None, None, 0.10, "trace")
    assert result.outcome == gates.REGRESSION
    assert "+30.0% [+28.2%, +31.9%]" in result.message


def test_a_model_wide_slowdown_fails_even_though_the_ratio_did_not_move():
    ratio = gates.figure("converted/eager ratio", narrow(1.0), narrow(1.0))
    eager = gates.figure("eager / probe", narrow(1.9), narrow(1.0))
    converted = gates.figure("trace / probe", narrow(1.9), narrow(1.0))
    result = gates.regression_gate(
        ratio, eager, converted, 0.10, "trace", raw_converted=narrow(1.9)
    )
    assert result.outcome == gates.REGRESSION
    assert "eager and trace alike" in result.message


def test_an_unchanged_model_passes_and_a_wide_interval_is_inconclusive():
    same = gates.figure("converted/eager ratio", narrow(1.0), narrow(1.0))
    assert gates.regression_gate(same, None, None, 0.10).outcome == gates.PASS
    noisy = gates.figure("converted/eager ratio", Interval(1.15, 0.8, 1.6), narrow(1.0))
    assert gates.regression_gate(noisy, None, None, 0.10).outcome == gates.INCONCLUSIVE


def test_a_ratio_change_within_what_processes_differ_by_is_not_a_regression():
    # Measured on this project's machine: a baseline recorded in an unlucky process, and an
    # unchanged model gated later: +5.3% [+2.8%, +7.1%]. Past a 5% threshold, and the run's
    # interval excludes no change, but not the 3% processes of the same code differ by.
    between = verdicts.BETWEEN_PROCESSES
    then, now = Interval(0.413, 0.409, 0.420), Interval(0.435, 0.428, 0.441)
    unlucky = gates.figure("converted/eager ratio", now, then, allowance=between)
    result = gates.regression_gate(unlucky, None, None, 0.05)
    assert result.outcome == gates.INCONCLUSIVE
    assert "separate runs of unchanged code differ by up to 3%" in result.message
    slower = gates.figure("converted/eager ratio", Interval(0.46, 0.455, 0.465), then, 0, between)
    assert gates.regression_gate(slower, None, None, 0.05).outcome == gates.REGRESSION


def test_a_finding_the_steady_state_latencies_do_not_show_is_inconclusive_not_a_regression():
    # Measured on example_project's small BERT (eager is Python-heavy): in fresh processes
    # of unchanged code, the interleaved ratio moved +12.7% and eager/probe +20.5% against the
    # baseline while the steady-state latencies moved under 2%. A real slowdown moves both.
    ratio = gates.figure("converted/eager ratio", narrow(1.127), narrow(1.0), allowance=0.03)
    unchanged = gates.SteadyChanges(ratio=1.012, eager=1.01, converted=1.02)
    result = gates.regression_gate(ratio, None, None, 0.05, "trace", steady=unchanged)
    assert result.outcome == gates.INCONCLUSIVE
    assert "+12.7% over the interleaved rounds but +1.2% in steady state" in result.message
    assert "steady state (consecutive calls): converted/eager +1.2%" in result.message
    slower = gates.SteadyChanges(ratio=1.11)
    assert gates.regression_gate(ratio, None, None, 0.05, steady=slower).outcome == (
        gates.REGRESSION
    )
    # gate_quality.py, one core busy, unchanged code: +7.8% [+5.7%, +9.8%] interleaved in an
    # unlucky process, +2.6% in steady state (more than half the threshold, not past it)
    unlucky = gates.figure("converted/eager ratio", Interval(1.078, 1.057, 1.098), narrow(1.0))
    assert gates.regression_gate(
        unlucky, None, None, 0.05, steady=gates.SteadyChanges(ratio=1.026)
    ).outcome == (gates.INCONCLUSIVE)
    flat = gates.figure("converted/eager ratio", narrow(1.0), narrow(1.0))
    eager = gates.figure("eager / probe", narrow(1.2), narrow(1.0))
    converted = gates.figure("trace / probe", narrow(1.07), narrow(1.0))
    wide = gates.regression_gate(
        flat, eager, converted, 0.05, "trace", raw_converted=narrow(1.07), steady=unchanged
    )
    assert wide.outcome == gates.INCONCLUSIVE
    assert "in steady state one of them only +1.0%" in wide.message
    # Past half the threshold in steady state is not enough: steady state must agree.
    halfway = gates.SteadyChanges(ratio=1.0, eager=1.19, converted=1.04)
    assert gates.regression_gate(
        flat, eager, converted, 0.05, "trace", raw_converted=narrow(1.07), steady=halfway
    ).outcome == (gates.INCONCLUSIVE)
    model_wide = gates.SteadyChanges(ratio=1.0, eager=1.19, converted=1.08)
    assert gates.regression_gate(
        flat, eager, converted, 0.05, "trace", raw_converted=narrow(1.07), steady=model_wide
    ).outcome == (gates.REGRESSION)


def test_a_ratio_within_what_runs_differ_by_stays_inconclusive_when_steady_state_agrees():
    # Measured by between_processes.py: unchanged mobilenet_v3_small in a later batch of
    # processes read its traced/eager ratio +5.4% interleaved and +9.3% in steady state: the
    # model's own speed had drifted, in both instruments alike. Steady state confirms a ratio
    # past the allowance for what runs differ by; it does not lift one within it.
    ratio = gates.figure(
        "converted/eager ratio",
        Interval(1.054, 1.025, 1.068),
        narrow(1.0),
        allowance=verdicts.BETWEEN_PROCESSES,
    )
    drifted = gates.SteadyChanges(ratio=1.093)
    result = gates.regression_gate(ratio, None, None, 0.05, steady=drifted)
    assert result.outcome == gates.INCONCLUSIVE
    assert result.message.startswith("too noisy to tell: the converted/eager ratio moved +5.4% [")
    assert "but separate runs of unchanged code differ by up to 3%" in result.message
    # Past that allowance, the same steady state makes it a regression.
    slower = gates.figure(
        "converted/eager ratio",
        Interval(1.10, 1.07, 1.13),
        narrow(1.0),
        allowance=verdicts.BETWEEN_PROCESSES,
    )
    confirmed = gates.regression_gate(slower, None, None, 0.05, steady=drifted)
    assert confirmed.outcome == gates.REGRESSION
    assert "slower than the baseline: converted/eager ratio" in confirmed.message


def test_a_slower_deployed_module_is_a_regression_when_eager_drift_hides_it_from_the_ratio():
    # Measured by gate_quality.py, one core busy: a converted 10% slowdown whose ratio read
    # +1.4% because eager's interleaved time moved +4.9% in that process; the scripted module
    # itself read +8.3% [+7.1%, +9.2%] probe-normalised and +5.6% in steady state.
    ratio = gates.figure(
        "converted/eager ratio", Interval(1.014, 1.004, 1.032), narrow(1.0), allowance=0.03
    )
    between_runs = verdicts.BETWEEN_RUNS
    eager = gates.figure(
        "eager / probe", Interval(1.049, 1.037, 1.059), narrow(1.0), allowance=between_runs
    )
    slower = gates.figure(
        "script / probe", Interval(1.083, 1.071, 1.092), narrow(1.0), allowance=between_runs
    )
    steady = gates.SteadyChanges(ratio=1.048, eager=1.008, converted=1.056)
    result = gates.regression_gate(
        ratio, eager, slower, 0.05, "script", raw_converted=narrow(1.08), steady=steady
    )
    assert result.outcome == gates.REGRESSION
    assert result.message.startswith(
        "the script module got 8% slower (probe-normalised, 95% interval 7%..10%, steady state "
        "+5.6%); eager moved only +4.9% [+3.3%, +6.4%] (probe-normalised), so the conversion "
        "made it slower; the converted/eager ratio moved +1.4% ["
    ), result.message
    # Each instrument must agree: not in steady state, not in the module's plain time (the
    # probe alone ran faster), or an interval within what runs of the same code differ by,
    # and it is not a regression.
    calm = gates.SteadyChanges(ratio=1.0, eager=1.0, converted=1.03)
    for steady_now, raw, figure in [
        (calm, narrow(1.08), slower),
        (steady, narrow(1.01), slower),
        (
            steady,
            narrow(1.08),
            gates.figure(
                "script / probe", Interval(1.08, 1.04, 1.11), narrow(1.0), allowance=between_runs
            ),
        ),
    ]:
        outcome = gates.regression_gate(
            ratio, eager, figure, 0.05, "script", raw_converted=raw, steady=steady_now
        ).outcome
        assert outcome != gates.REGRESSION


def test_figures_are_too_busy_to_judge_only_where_interruptions_left_too_few_clean_rounds():
    def result(rounds, preempted):
        samples = {name: [1e-3] * rounds for name in ("eager", "trace", "probe:compute")}
        return timing.TimingResult(samples, {}, rounds, 1, "cpu", 1.0, preempted=preempted)

    series = ["eager", "trace", "probe:compute"]
    # resnet18 beside pytest -n 2: its long calls interrupted in most rounds
    busy = result(36, {"eager": list(range(29)), "trace": list(range(3, 35))})
    assert perf.too_busy(busy, series, "absolute times") == (
        "absolute times not judged: the machine was too busy to time them cleanly (only 1 of 36 "
        "rounds ran without another process taking the core, and a long call is interrupted "
        "more often than a short one); run the gate on a quieter machine"
    )
    assert perf.too_busy(result(36, {"eager": [1, 2, 3]}), series, "absolute times") is None
    # a slow model that fitted only 5 rounds, none interrupted: coarse, not busy
    assert perf.too_busy(result(5, {}), series, "absolute times") is None


def test_a_ratio_verdict_on_a_busy_machine_stands_only_where_interruptions_cannot_make_it():
    # Interruptions add the same slices to eager and converted: the measured ratio is pulled
    # towards 1, so the true one lies further from 1.
    regression = gates.GateResult("max_regression", gates.REGRESSION, "slower")
    passed = gates.GateResult("max_regression", gates.PASS, "figures")
    assert perf.ratio_verdict(regression, 1.3, "busy").outcome == gates.REGRESSION
    assert perf.ratio_verdict(regression, 0.9, "busy").outcome == gates.INCONCLUSIVE
    assert perf.ratio_verdict(passed, 0.5, "busy").outcome == gates.PASS
    doubtful = perf.ratio_verdict(passed, 1.02, "busy")
    assert doubtful.outcome == gates.INCONCLUSIVE
    assert doubtful.message == "too noisy to tell: busy\n  figures"
    assert perf.ratio_verdict(regression, 0.9, None) is regression


# Rounds on a machine busy with other work (a fake clock and a fake preemption count)


class BusyMachine:
    """Calls that advance a fake clock (and the thread's CPU time) by their cost; on the rounds
    listed in ``busy`` the converted series is switched out for ``slice_s`` (20 ms, as another
    process would take the core; a kernel thread takes microseconds)."""

    def __init__(self, monkeypatch, busy, slice_s=0.020):
        self.now, self.ran, self.switches, self.round, self.busy = 0.0, 0.0, 0, 0, busy
        self.slice_s = slice_s
        monkeypatch.setattr(timing, "clock", lambda: self.now)
        monkeypatch.setattr(timing, "cpu_time", lambda: self.ran)
        monkeypatch.setattr(timing, "preemptions", lambda: self.switches)

    def eager(self):
        self.now += 0.001
        self.ran += 0.001

    def converted(self):
        self.now += 0.003
        self.ran += 0.003
        if self.busy(self.round):
            self.now += self.slice_s
            self.switches += 1
        self.round += 1

    def rounds(self, planned, deadline=1.0, late_deadline=2.0, weigh_switches=False):
        samples, preempted, _ = timing.take_rounds(
            {"eager": self.eager, "converted": self.converted},
            {"eager": 1, "converted": 1},
            lambda: None,
            planned,
            deadline,
            late_deadline,
            weigh_switches=weigh_switches,
        )
        return timing.TimingResult(
            samples,
            {"eager": 1, "converted": 1},
            len(samples["eager"]),
            1,
            "cpu",
            self.now,
            preempted=preempted,
        )


def test_preempted_rounds_are_replaced_and_left_out_of_the_ratio(monkeypatch):
    result = BusyMachine(monkeypatch, busy=lambda index: index % 3 == 0).rounds(planned=12)
    assert result.rounds == 18  # 12 undisturbed, and the 6 preempted ones they replaced
    assert result.preempted == {"eager": [], "converted": [0, 3, 6, 9, 12, 15]}
    assert result.disturbed_rounds == 6
    ratio = result.ratio("converted")
    assert (ratio.low, ratio.median, ratio.high) == pytest.approx((3.0, 3.0, 3.0))
    assert result.median("converted").median == pytest.approx(0.003)


@pytest.mark.parametrize("weigh_switches", [False, True])
def test_a_switch_that_cost_a_scheduler_slice_disturbs_its_round_either_way(
    monkeypatch, weigh_switches
):
    busy = BusyMachine(monkeypatch, busy=lambda index: index % 3 == 0)
    result = busy.rounds(planned=12, weigh_switches=weigh_switches)
    assert result.preempted["converted"] == [0, 3, 6, 9, 12, 15]


def test_a_switch_that_cost_microseconds_is_weighed_as_no_disturbance(monkeypatch):
    # On a quiet machine a kernel thread takes the core for 5-40 us now and then: a third of
    # resnet50's 67 ms samples saw a switch, and a round of three such samples was rarely
    # clean, so its baseline was never recorded. Weighed by the CPU time the sample lost,
    # a switch of 10 us in a 3 ms sample (0.3%) is not a disturbance; counted, it is.
    sliver = BusyMachine(monkeypatch, busy=lambda index: True, slice_s=0.00001)
    weighed = sliver.rounds(planned=12, weigh_switches=True)
    assert weighed.rounds == 12 and weighed.disturbed_rounds == 0
    counted = BusyMachine(monkeypatch, busy=lambda index: True, slice_s=0.00001).rounds(12)
    assert counted.disturbed_rounds == counted.rounds


def _few_rounds(rounds: int, seconds: float) -> timing.TimingResult:
    return timing.TimingResult(
        {"eager": [0.1] * rounds},
        {"eager": 1},
        rounds,
        1,
        "cpu",
        seconds,
        phases={"rounds": seconds},
    )


def test_a_gate_undecided_for_too_few_rounds_names_the_budget_that_fits_enough():
    # resnet50: 5 rounds of 242 ms in the default 2 s; a 95% interval needs 9 rounds, and
    # twice that after the warm-up's share is ceil(18 * 0.242 / 0.7) = 7 s.
    undecided = GateResult("max_regression", gates.INCONCLUSIVE, "too noisy to tell: wide")
    coarse = _few_rounds(5, 1.21)
    message = perf.explain_coarse(undecided, coarse, 2.0, {"rounds": 12}).message
    assert message.endswith(
        "only 5 rounds fitted in time_budget=2 s, and a 95% interval needs 9 or more (a round "
        "of this model takes 242 ms): give the test time_budget=7 (marker, or ts_time_budget "
        "in ini)"
    )
    # enough rounds now, but the baseline entry was recorded from too few: re-record it
    again = perf.explain_coarse(undecided, _few_rounds(21, 5.1), 6.0, {"rounds": 5}).message
    assert "the baseline entry was recorded from 5, and a 95% interval needs 9" in again
    assert again.endswith(
        "time_budget=7 (marker, or ts_time_budget in ini) and re-record its baseline entry with it"
    )
    # a budget already long enough for the rounds is never suggested lower
    assert "time_budget=3 " in perf.explain_coarse(undecided, _few_rounds(8, 0.01), 2.0, {}).message
    # decided gates, and gates of timings with rounds enough, are left as they were
    decided = GateResult("max_regression", gates.PASS, "fine")
    assert perf.explain_coarse(decided, coarse, 2.0, {"rounds": 5}) == decided
    assert perf.explain_coarse(undecided, _few_rounds(21, 5.1), 6.0, {"rounds": 21}) == undecided


def test_a_machine_busy_throughout_stops_at_the_late_deadline_and_keeps_every_round(monkeypatch):
    result = BusyMachine(monkeypatch, busy=lambda index: True).rounds(planned=12)
    assert result.rounds == 84  # 2 s of 24 ms rounds: the extra time is bounded
    assert result.undisturbed("converted") == list(range(84))
    assert result.ratio("converted").median == pytest.approx(23.0)
    gate = gates.max_slowdown_gate(Interval(23.0, 0.5, 30.0), 2.0)
    message = perf.explain_busy(gate, result).message
    assert message.endswith(
        "84 of 84 rounds were interrupted by other processes on this machine (run it on a "
        "quieter one or raise time_budget)"
    )


def test_a_quiet_machine_takes_the_planned_rounds_and_a_slow_one_stops_at_the_deadline(
    monkeypatch,
):
    assert BusyMachine(monkeypatch, busy=lambda index: False).rounds(planned=12).rounds == 12
    slow = BusyMachine(monkeypatch, busy=lambda index: False).rounds(planned=400, deadline=0.1)
    assert slow.rounds == 25  # 4 ms rounds until 0.1 s: not extended, nothing was preempted


# Baseline validation and migration


def write_baseline(tmp_path, data) -> object:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def good_entry() -> dict:
    """A format-1 entry (the ratio and the medians only): still read, judged by its ratio."""
    return {
        "ratio": {"median": 1.1, "low": 1.0, "high": 1.2},
        "eager_median": 0.01,
        "converted_median": 0.011,
        "fingerprint": {"cpu": "x"},
    }


def test_one_bad_entry_is_marked_and_the_others_load(tmp_path):
    path = write_baseline(
        tmp_path,
        {
            "format": baseline.FORMAT,
            "version": 1,
            "entries": {"good": good_entry(), "bad": {"ratio": "fast"}, "worse": [1]},
        },
    )
    entries = baseline.load(path)
    assert entries["good"] == good_entry()
    assert isinstance(entries["bad"], baseline.InvalidEntry)
    assert isinstance(entries["worse"], baseline.InvalidEntry)
    assert "not an object" in entries["worse"].problem
    assert entries["bad"].problem == "has no 'ratio' object"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", r"not valid JSON \(line 1, column 2"),
        ('{"format": "something else"}', "not a pytest-torchscript baseline"),
        (
            '{"machine_info": {}, "benchmarks": []}',
            "it is pytest-benchmark's own JSON.*--benchmark-compare",
        ),
        ("1" * 5000, "unreadable JSON"),
    ],
)
def test_a_file_that_is_not_a_baseline_is_a_usage_error_naming_it(tmp_path, content, expected):
    path = write_baseline(tmp_path, content)
    said = _refusal(path)
    assert re.search(expected, said) and str(path) in said


def _refusal(path) -> str:
    """What loading ``path`` as a baseline said, read as one paragraph: the message wraps at
    text.WIDTH, wherever the (temporary, any length) path puts the breaks."""
    with pytest.raises(UsageProblem) as raised:
        baseline.load(path)
    return " ".join(str(raised.value).split())


def test_a_baseline_in_invalid_utf8_names_the_byte(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_bytes(b'{"format": "\xff"}')
    assert "not UTF-8 text (byte 12)" in _refusal(path)


def test_an_unknown_version_says_which_versions_are_read(tmp_path):
    path = write_baseline(tmp_path, {"format": baseline.FORMAT, "version": 99, "entries": {}})
    assert "version 99, and this pytest-torchscript reads" in _refusal(path)


def test_an_update_keeps_entries_it_does_not_replace(tmp_path):
    path = write_baseline(
        tmp_path,
        {"format": baseline.FORMAT, "version": 1, "entries": {"old": good_entry()}},
    )
    baseline.update(path, {"new": good_entry()})
    written = json.loads(path.read_text())
    assert set(written["entries"]) == {"old", "new"}
    assert written["version"] == 2


def recorded_run(scale: float, ratio: float = 0.8) -> dict:
    """One run's entry as --ts-update-baseline writes it, the model ``scale`` times as slow
    (a process where it happened to run faster or slower)."""

    def around(value):
        return {"median": value, "low": value * 0.99, "high": value * 1.01}

    return {
        "ratio": around(ratio),
        "eager_median": 1e-3 * scale,
        "converted_median": 1e-3 * scale * ratio,
        "normalised": {"eager": around(20.0 * scale), "converted": around(20.0 * scale * ratio)},
        "probe": {
            **around(5e-5),
            "spread": 0.02,
            "components": {"compute": 4e-5, "memory": 9e-5, "overhead": 4e-5},
        },
        "latency": {"eager": 1e-3 * scale, "converted": 1e-3 * scale * ratio},
        "rounds": 60,
        "loops": {"eager": 10, "script": 12},
        "fingerprint": {"cpu": "x", "torch": "2.14.1", "threads": 1, "device": "cpu"},
        "timed_input": "(float32[8, 64])",
    }


def test_an_entry_of_several_runs_is_judged_by_their_medians_and_their_spread():
    # mobilenet_v3_small ran 13% faster in one process: a baseline of that run alone fails
    # every later run of the same code; three runs put it at their median.
    entry = recorded_run(0.87)
    for scale in (1.0, 1.02):
        entry = baseline.extended(entry, recorded_run(scale))
    assert len(entry["recordings"]) == 3
    assert entry["normalised"]["eager"]["median"] == pytest.approx(20.0)
    assert entry["normalised"]["eager"]["low"] == pytest.approx(20.0 * 0.99)
    assert entry["eager_median"] == pytest.approx(1e-3)
    assert entry["ratio"]["median"] == pytest.approx(0.8)
    spread = baseline.between_runs(entry)
    assert spread["eager"] == pytest.approx(baseline.RANGE_FACTOR * math.log(1.02 / 0.87))
    assert spread["ratio"] == pytest.approx(0.0)
    assert baseline.between_runs(recorded_run(1.0)) == {}  # one run cannot tell
    assert baseline._entry_problem(entry) is None
    # The latest MAX_RECORDINGS are kept: the model moves on as it changes.
    for scale in (1.1, 1.1, 1.1):
        entry = baseline.extended(entry, recorded_run(scale))
    assert len(entry["recordings"]) == baseline.MAX_RECORDINGS
    assert entry["normalised"]["eager"]["median"] == pytest.approx(22.0)


@pytest.mark.parametrize(
    "change",
    [
        {"fingerprint": {"cpu": "another"}},
        {"timed_input": "(float32[1, 64])"},
        {"loops": {"eager": 11, "script": 12}},
        {"normalised": "fast"},
    ],
    ids=["another-machine", "another-input", "other-calls-per-sample", "invalid"],
)
def test_a_run_is_added_only_to_an_entry_timed_the_same_way(change):
    assert baseline.extended({**recorded_run(1.0), **change}, recorded_run(1.0)) is None
    assert baseline.extended(None, recorded_run(1.0)) is None


def test_extending_a_baseline_file_says_which_entries_started_over(tmp_path):
    path = write_baseline(
        tmp_path,
        {
            "format": baseline.FORMAT,
            "version": 2,
            "entries": {
                "same": recorded_run(0.9),
                "moved": {**recorded_run(0.9), "fingerprint": {"cpu": "old"}},
                "other": recorded_run(1.3),
            },
        },
    )
    new = {"same": recorded_run(1.0), "moved": recorded_run(1.0), "new": recorded_run(1.0)}
    assert baseline.update(path, new, extend=True) == baseline.Extension(["new"], ["moved"])
    entries = baseline.load(path)
    assert len(entries["same"]["recordings"]) == 2
    assert "recordings" not in entries["moved"] and "recordings" not in entries["new"]
    assert entries["other"] == recorded_run(1.3)  # untouched
    broken = json.loads(path.read_text())
    broken["entries"]["same"]["recordings"][1]["ratio"] = {"median": -1, "low": 1, "high": 2}
    path.write_text(json.dumps(broken))
    problem = baseline.load(path)["same"].problem
    assert problem == "recording 2 has ratio.median = -1, not a positive number"
    del broken["entries"]["same"]["recordings"][1]["latency"]  # every run records all figures
    broken["entries"]["same"]["recordings"][1]["ratio"] = {"median": 1, "low": 1, "high": 1}
    path.write_text(json.dumps(broken))
    assert baseline.load(path)["same"].problem == "recording 2 has no 'latency'"
    broken["entries"]["same"]["recordings"] = [5]
    path.write_text(json.dumps(broken))
    assert baseline.load(path)["same"].problem == "recording 1 is 5, not an object"


def gate_of(
    entry: dict, now_scale: float, memory: float = 1.0, threshold: float = 0.05
) -> GateResult:
    """The max_regression gate of a run ``now_scale`` times as slow as 1.0, against
    ``entry``, by the plugin's own comparison; ``memory``: how much slower the probe's memory
    component alone ran in this run (the probe, their geometric mean, by a third of that)."""
    now = recorded_run(now_scale)
    probe = 5e-5 * memory ** (1 / 3)
    now["probe"]["components"]["memory"] *= memory
    for role in ("eager", "converted"):
        now["normalised"][role] = {
            name: value / memory ** (1 / 3) for name, value in now["normalised"][role].items()
        }
    report = perf.PerfReport(
        ratio=Interval(**now["ratio"]),
        probe=Interval(probe, probe * 0.99, probe * 1.01),
        probe_spread=0.02,
        normalised={role: Interval(**now["normalised"][role]) for role in ("eager", "converted")},
        interleaved={
            "eager": Interval(*[now["eager_median"]] * 3),
            "script": Interval(*[now["converted_median"]] * 3),
        },
        medians={
            "eager": Interval(*[now["latency"]["eager"]] * 3),
            "script": Interval(*[now["latency"]["converted"]] * 3),
        },
    )
    settings = PerfSettings(Path("b.json"))
    return perf.against_baseline(
        report,
        now["probe"]["components"],
        entry,
        now["fingerprint"],
        threshold,
        "key",
        settings,
        "script",
        now["timed_input"],
    )


def test_one_probe_component_moving_alone_is_not_read_as_the_machines_speed():
    # The memory stream read 15% slower in this process while compute and overhead held (as
    # it does between processes of an idle VM): against the mean of the three, a model 12%
    # slower in both forms reads only 7% slower, within the widening that unevenness earns.
    # Read against the middle component, it is the 12% it is.
    slower = gate_of(recorded_run(1.0), 1.12, memory=1.15)
    assert slower.outcome == gates.REGRESSION, slower.message
    assert "eager / probe: " in slower.message and "+12.0% [" in slower.message
    assert re.search(
        r"probe-normalised times are read against the probe's middle component "
        r"\((compute|overhead) \+0\.0%; its components moved compute \+0%, memory \+15%, "
        r"overhead \+0%\), not all three",
        slower.message,
    ), slower.message
    unchanged = gate_of(recorded_run(1.0), 1.0, memory=1.15)  # the widening may leave it open
    assert unchanged.outcome in (gates.PASS, gates.INCONCLUSIVE), unchanged.message
    assert "+0.0% [" in unchanged.message.split("eager / probe: ")[1].splitlines()[0]
    # All three together are the machine: nothing to re-read, nothing said.
    assert "middle component" not in gate_of(recorded_run(1.0), 1.0).message


def test_a_probe_component_moving_alone_widens_the_times_only_the_way_it_can_mislead():
    # The memory stream alone 25% slower: a model that streams more than the probe may have
    # followed it and read slower than it is, never faster. So the change's low end is
    # widened and its high end is not: an unchanged model passes (it was inconclusive when
    # both ends were widened), while a slower one still cannot be caught by the slow stream.
    unchanged = gate_of(recorded_run(1.0), 1.0, memory=1.25)
    assert unchanged.outcome == gates.PASS, unchanged.message
    assert (
        "so the probe-normalised intervals were widened by 13% below the change and 0% above "
        "it (a model doing more of the work that moved than the probe followed it that way), "
        "the ratio's by 3%"
    ) in unchanged.message
    # The stream 20% faster: the model may read faster than it is, so a slowdown's low end
    # stands (a model 12% slower is caught) and an unchanged model's high end is widened.
    assert gate_of(recorded_run(1.0), 1.12, memory=0.8).outcome == gates.REGRESSION
    hidden = gate_of(recorded_run(1.0), 1.0, memory=0.8)
    assert hidden.outcome == gates.INCONCLUSIVE, hidden.message
    assert "widened by 0% below the change and 13% above it" in hidden.message


def test_a_ratio_within_the_threshold_is_not_a_pass_when_steady_state_is_past_it():
    # gate_quality.py, a converted 10% slowdown: the interleaved ratio read +5.0% [+2.7%,
    # +7.1%] (eager's interleaved time had drifted up), steady state +10.2%. The rounds alone
    # would pass it; the two instruments disagree, and the slower one is past the threshold.
    ratio = gates.figure(
        "converted/eager ratio",
        Interval(1.049, 1.027, 1.071),
        narrow(1.0),
        allowance=verdicts.BETWEEN_PROCESSES,
    )
    slower = gates.regression_gate(ratio, None, None, 0.05, steady=gates.SteadyChanges(1.102))
    assert slower.outcome == gates.INCONCLUSIVE, slower.message
    assert re.match(
        r"too noisy to tell: the converted/eager ratio moved \+4\.9% \[\+2\.\d%, \+7\.\d%\] over "
        r"the interleaved rounds but \+10\.2% in steady state: the two instruments disagree",
        slower.message,
    ), slower.message
    same = gates.regression_gate(ratio, None, None, 0.05, steady=gates.SteadyChanges(1.03))
    assert same.outcome == gates.PASS, same.message
    # A ratio the rounds place surely within the threshold is not second-guessed.
    within = gates.figure("converted/eager ratio", Interval(1.02, 1.01, 1.03), narrow(1.0))
    assert gates.regression_gate(
        within, None, None, 0.05, steady=gates.SteadyChanges(1.102)
    ).outcome == (gates.PASS)


def test_runs_of_a_baseline_differ_by_the_model_not_by_a_probe_component_moving_alone():
    # Three recordings of an unchanged model; in one the probe's memory stream alone ran 25%
    # slower (as between processes of an idle VM), so that run's times divided by the whole
    # probe read 7% faster. Read against the middle component, as the gate reads a new run,
    # the runs agree: the allowance is the model's, not the memory stream's 15%.
    def with_memory(run: dict, memory: float) -> dict:
        run["probe"]["components"]["memory"] *= memory
        for role in ("eager", "converted"):
            run["normalised"][role] = {
                name: value / memory ** (1 / 3) for name, value in run["normalised"][role].items()
            }
        return run

    entry = baseline.extended(
        baseline.extended(recorded_run(1.0), with_memory(recorded_run(1.0), 1.25)),
        recorded_run(1.02),
    )
    allowed = baseline.between_runs(entry)
    assert allowed["eager"] == pytest.approx(2 * math.log(1.02), abs=1e-3), allowed
    assert allowed["converted"] == pytest.approx(2 * math.log(1.02), abs=1e-3), allowed


def test_the_gate_allows_for_how_much_runs_differ_and_says_how_to_teach_it():
    unlucky = recorded_run(0.87)
    alone = gate_of(unlucky, 1.0)
    assert alone.outcome == gates.REGRESSION, alone.message
    assert verdicts.ONE_RECORDING in alone.message  # how to tell the gate about this model
    three = baseline.extended(baseline.extended(unlucky, recorded_run(1.0)), recorded_run(1.02))
    # Against the median run the unlucky one fails nothing; but runs 17% apart cannot show a
    # model within 5%: a slowdown of twice that could read as this, so no pass, and it says so
    apart = gate_of(three, 1.0)
    assert apart.outcome == gates.INCONCLUSIVE, apart.message
    assert apart.message.startswith(
        "too noisy to tell: the baseline's 3 runs of unchanged code lie too far apart for "
        "max_regression=5% (eager / probe 17.2%, script / probe 17.2%): a reading within it "
        "does not rule out a slowdown of twice that; record the baseline again where runs agree"
    ), apart.message
    assert gate_of(three, 1.0, threshold=0.2).outcome == gates.PASS  # runs fine enough for 20%
    # Runs 17% apart: a later run may differ by twice that, so a 30% slowdown cannot be told
    # from one, and it says so; a slowdown beyond it is a regression.
    within = gate_of(three, 1.3)
    assert within.outcome == gates.INCONCLUSIVE, within.message
    assert "runs of unchanged code of this model differ by up to 37%" in within.message
    assert within.message.endswith(
        "the baseline entry holds 3 runs; a run of unchanged code may differ from their "
        "medians by: ratio 3.0%, eager / probe 37.5%, script / probe 37.5%"
    ), within.message
    slower = gate_of(three, 1.6)
    assert slower.outcome == gates.REGRESSION
    assert slower.message.startswith("the model got 60% slower in eager and script alike")
    assert verdicts.ONE_RECORDING not in slower.message
    # Runs that agree keep the gate as fine as the 5% allowed for runs of any model.
    steady = baseline.extended(
        baseline.extended(recorded_run(0.99), recorded_run(1.0)), recorded_run(1.01)
    )
    assert gate_of(steady, 1.09).outcome == gates.REGRESSION
    assert gate_of(steady, 1.03).outcome == gates.PASS
    # With one run, a change of that size is judged against the same default allowance.
    assert gate_of(recorded_run(1.0), 1.09).outcome == gates.REGRESSION


# Cells every view shares


def check(verdict: str, **fields) -> dict:
    base = {"verdict": verdict, "roundtrips": [], "control_flow": None}
    base.update(fields)
    return base


def test_verdicts_are_counted_and_ordered_failures_first():
    checks = [check("passed"), check("failed"), check("xfailed"), check("passed")]
    assert count_verdicts(checks) == "2 passed, 1 failed, 1 xfailed"
    assert [c["verdict"] for c in ordered(checks)][0] == "failed"
    counts = summary_counts(checks)
    assert (counts["passed"], counts["failed"], counts["xfailed"], counts["xpassed"]) == (
        2,
        1,
        1,
        0,
    )


def test_cells_say_what_ran_and_write_numbers_in_human_units():
    flow = {"coverage": 0.5, "arms_exercised": 1, "arms_total": 2}
    assert coverage_cell(check("passed", control_flow=flow)) == "50% 1/2"
    assert coverage_cell(check("passed", control_flow={"coverage": None})) == "no branches"
    trips = [{"ok": True}, {"ok": False}, {"ok": True, "skipped": "no C++"}]
    assert roundtrip_cell(check("failed", roundtrips=trips)) == "ok FAIL skip"
    assert (duration(0.0345), duration(2.5), duration(3e-6)) == ("34.5 ms", "2.5 s", "3 us")
    assert (size(512), size(2_500_000), size(None)) == ("512 B", "2.5 MB", "-")


def test_options_are_frozen_so_layers_never_leak_into_each_other():
    base = Options()
    layered = base.merged({"rtol": 0.5})
    assert base.rtol is None and layered.rtol == 0.5
    with pytest.raises(AttributeError):
        layered.rtol = 1.0  # type: ignore[misc]


def test_a_reply_that_arrived_with_the_announcement_is_read_without_waiting(monkeypatch, tmp_path):
    """Two replies that arrive in one read (the worker's announcement and an answer) are
    both returned: a buffered reader kept the second where waiting on the pipe never saw it,
    and a check hung for the whole timeout."""
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import sys\n"
        'sys.stdout.write(\'{"ready": true}\\n{"ok": true, "answer": 1}\\n\')\n'
        "sys.stdout.flush()\n"
        "sys.stdin.read()\n"
    )
    monkeypatch.setattr(fresh_process, "_WORKER_SCRIPT", worker)
    monkeypatch.setattr(fresh_process, "REPLY_TIMEOUT_S", 20.0)
    fresh = fresh_process.FreshProcess([str(tmp_path / "project")])
    try:
        fresh.start()
        assert fresh._read_reply() == {"ready": True}
        assert fresh._read_reply() == {"ok": True, "answer": 1}
    finally:
        fresh.close()


def test_float32_on_a_cuda_device_with_tf32_gets_tf32_tolerances(monkeypatch):
    """cuDNN allows TF32 by default: eager's float32 then carries TF32 rounding, and other
    kernels differ from it by that much (atol then also grows with the output's scale, in
    the comparison). CPU, float64 and TF32 switched off keep torch.testing's tolerances."""
    from pytest_torchscript.check import parity

    flags = SimpleNamespace(
        backends=SimpleNamespace(
            cudnn=SimpleNamespace(allow_tf32=True),
            cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)),
        ),
        get_float32_matmul_precision=lambda: "highest",
    )
    monkeypatch.setattr(parity, "import_torch", lambda: flags)
    assert parity.default_tolerances("torch.float32", "cpu") == (1.3e-6, 1e-5)
    assert parity.default_tolerances("torch.float32", "cuda:0") == (1e-3, 1e-4)
    assert parity.default_tolerances("torch.float64", "cuda") == (1e-7, 1e-7)
    assert parity.default_tolerances("torch.int64", "cuda") == (0.0, 0.0)
    flags.backends.cudnn.allow_tf32 = False
    assert parity.default_tolerances("torch.float32", "cuda") == (1.3e-6, 1e-5)


def test_a_modes_tolerances_are_a_floor_under_each_dtypes_defaults():
    """onnx's least tolerances raise float32's, but must not tighten bfloat16's rtol (they
    replaced it before), nor make integers inexact."""
    from pytest_torchscript.check import parity

    onnx = {"rtol": 1e-3, "atol": 1e-4}
    assert parity.default_tolerances("torch.float32", "cpu", onnx) == (1e-3, 1e-4)
    assert parity.default_tolerances("torch.bfloat16", "cpu", onnx) == (1.6e-2, 1e-4)
    assert parity.default_tolerances("torch.float64", "cpu", onnx) == (1e-3, 1e-4)
    assert parity.default_tolerances("torch.int64", "cpu", onnx) == (0.0, 0.0)
    assert parity.default_tolerances("torch.bool", "cpu", onnx) == (0.0, 0.0)


def ratio_moved(change: float, low: float, high: float, allowance: float) -> gates.Figure:
    """A converted/eager ratio that moved by ``change`` [low, high] against the baseline."""
    then = Interval(0.4, 0.396, 0.404)
    return gates.Figure(
        "converted/eager ratio",
        Interval(0.4 * change, 0.4 * low, 0.4 * high),
        then,
        Interval(change, low, high),
        allowance,
    )


@pytest.mark.parametrize(
    ("steady_ratio", "busy", "expected"),
    [
        (0.993, None, gates.PASS),  # steady state clearly still: the rounds' wander is noise
        (1.03, None, gates.INCONCLUSIVE),  # steady state moved over half the threshold
        (0.993, "the machine is not in the state it was in", gates.INCONCLUSIVE),
    ],
    ids=["steady-still", "steady-moved", "machine-busy"],
)
def test_a_ratio_the_rounds_cannot_settle_is_settled_by_a_clearly_still_steady_state(
    steady_ratio, busy, expected
):
    # A small BERT's interleaved ratio moved +16% with nothing changed, within the 31% its
    # recorded runs differ by, while its steady-state ratio moved -0.7%.
    ratio = ratio_moved(1.163, 1.137, 1.185, allowance=math.log(1.31))
    verdict = gates.regression_gate(
        ratio, None, None, 0.05, "trace", busy=busy, steady=gates.SteadyChanges(steady_ratio)
    )
    assert verdict.outcome == expected, verdict.message
    settled = "the converted/eager ratio's rounds could not tell (+16.3% [+13.7%, +18.5%]"
    assert (settled in verdict.message) == (expected == gates.PASS), verdict.message
    if expected == gates.PASS:
        assert "in steady state it moved -0.7%, within half of max_regression" in verdict.message
    if busy:  # the reason heads the message, once: not again among the figures
        assert verdict.message.startswith(f"too noisy to tell: {busy}\n"), verdict.message
        assert verdict.message.count(busy) == 1, verdict.message
    # Past what runs differ by, the rounds do tell: steady state never settles that to a pass.
    surely = ratio_moved(1.163, 1.137, 1.185, allowance=math.log(1.03))
    outcome = gates.regression_gate(
        surely, None, None, 0.05, "trace", steady=gates.SteadyChanges(steady_ratio)
    ).outcome
    assert outcome == (gates.REGRESSION if steady_ratio - 1 > 0.05 else gates.INCONCLUSIVE)


def test_the_gates_that_could_not_decide_are_the_ones_with_a_reason_of_their_own_to_show():
    def gate(outcome, message, not_judged=None):
        return {
            "gate": "max_regression",
            "outcome": outcome,
            "message": message,
            "not_judged": not_judged,
        }

    unrecorded = "baseline entry not recorded: too busy"
    checks = {
        "passed": [gate("pass", "ok"), gate("inconclusive", "too noisy to tell: x")],
        "stale": [gate("stale baseline", "timed another input set")],
        "counted once for all": [gate("inconclusive", unrecorded, not_judged=unrecorded)],
        "partly judged": [gate("inconclusive", "too noisy: y", not_judged="probe not judged")],
        "failed": [gate("inconclusive", "too noisy to tell: z")],
    }
    shown = {
        name: [
            g["message"]
            for g in undecided_gates(
                {"verdict": "failed" if name == "failed" else "passed", "perf": {"gates": gates_}}
            )
        ]
        for name, gates_ in checks.items()
    }
    assert shown == {
        "passed": ["too noisy to tell: x"],
        "stale": ["timed another input set"],
        "counted once for all": [],
        "partly judged": ["too noisy: y"],
        "failed": [],  # its failure says it already
    }
    assert undecided_gates({"verdict": "passed", "perf": None}) == []


class TerminalLog:
    """The two calls the terminal writers make, kept as lines."""

    def __init__(self):
        self.lines = []

    def write_line(self, line, **markup):
        self.lines.append(line)


def test_gates_on_a_device_the_gate_was_never_measured_on_are_called_advisory():
    from pytest_torchscript.reporting.terminal import write_unvalidated_gates

    def check(device, gate="max_regression"):
        return {"device": device, "perf": {"gates": [{"gate": gate, "outcome": "pass"}]}}

    on_gpu = TerminalLog()
    write_unvalidated_gates(on_gpu, [check("cuda:0"), check("cuda:0"), check("cpu")])
    assert len(on_gpu.lines) == 1
    assert "max_regression has not yet been validated on cuda:0 " in on_gpu.lines[0]
    assert "read its passes there as advisory" in on_gpu.lines[0]
    quiet = TerminalLog()
    write_unvalidated_gates(
        quiet, [check("cpu"), check("cuda", gate="max_slowdown"), {"device": "mps", "perf": None}]
    )
    assert quiet.lines == []  # measured on CPUs; max_slowdown compares within one run


def test_a_thread_clock_that_reads_more_than_the_wall_clock_cannot_excuse_a_switch(monkeypatch):
    # A coarse thread clock (one that jumps a tick) can read more CPU time than wall time
    # passed: such a reading cannot weigh the switch, so it counts as a disturbance.
    machine = BusyMachine(monkeypatch, busy=lambda index: True, slice_s=0.00001)
    monkeypatch.setattr(timing, "cpu_time", lambda: machine.ran * 2)
    assert machine.rounds(planned=12, weigh_switches=True).disturbed_rounds > 0


def test_the_migration_matrix_has_a_row_per_model_of_a_zoo_and_one_per_model_across_modes():
    from pytest_torchscript.reporting.terminal import matrix_row, write_matrix

    def check(test_id, mode, model="ResNet", verdict="passed"):
        return {
            "test_id": test_id,
            "mode": mode,
            "model": model,
            "verdict": verdict,
            "failed_stage": "parity" if verdict == "failed" else None,
            "failure": "",
        }

    zoo = [  # the plugin's mode list, over the user's parametrization by model name
        check("tests/test_zoo.py::test_zoo[trace-resnet18]", "trace"),
        check("tests/test_zoo.py::test_zoo[export-resnet18]", "export"),
        check("tests/test_zoo.py::test_zoo[trace-resnet50]", "trace", verdict="failed"),
        check("tests/test_zoo.py::test_zoo[export-resnet50]", "export"),
        check("tests/test_zoo.py::test_mlp[trace]", "trace", model="MLP"),  # the user's mode
        check("tests/test_zoo.py::test_mlp_export", "export", model="MLP"),  # another test
    ]
    assert [matrix_row(c) for c in zoo] == [
        "ResNet[resnet18] (tests/test_zoo.py)",
        "ResNet[resnet18] (tests/test_zoo.py)",
        "ResNet[resnet50] (tests/test_zoo.py)",
        "ResNet[resnet50] (tests/test_zoo.py)",
        "MLP (tests/test_zoo.py)",
        "MLP (tests/test_zoo.py)",
    ]
    log = TerminalLog()
    write_matrix(log, zoo)
    rows = [line.split() for line in log.lines[2:5]]
    assert rows == [
        ["pass", "pass", "ResNet[resnet18]", "(tests/test_zoo.py)"],
        ["FAIL", "parity", "pass", "ResNet[resnet50]", "(tests/test_zoo.py)"],
        ["pass", "pass", "MLP", "(tests/test_zoo.py)"],
    ]


# torch.compile's recompiles, in words (no torch: Dynamo's guard texts as it writes them)


@pytest.mark.parametrize(
    ("guard", "words"),
    [
        ("0/0: tensor 'x' size mismatch at index 0. expected 2, actual 5",
         "x.size(0) changed 2 -> 5 under a static shape guard"),
        ("tensor 'L['x']' size mismatch at index 1. expected 16, actual 12",
         "x.size(1) changed 16 -> 12 under a static shape guard"),
        ("tensor 'kwargs['input_ids']' size mismatch at index 0. expected 1, actual 2",
         "input_ids.size(0) changed 1 -> 2 under a static shape guard"),
        ("0/1: tensor 'x' dtype mismatch. expected Float, actual Double",
         "x's dtype changed Float -> Double"),
        ("L['scale'] == 3.0", "the Python value scale changed (the code was compiled for "
         "scale == 3.0)"),
        ("___check_obj_id(L['self'].mode, 1402)", "a guard failed: ___check_obj_id(L['self']"
         ".mode, 1402)"),
    ],
)  # fmt: skip
def test_a_recompile_is_put_in_words_with_its_fix(guard, words):
    from pytest_torchscript.modes.dynamo import recompile_in_words

    said, hint = recompile_in_words(guard)
    assert said == words
    if "size(" in words:
        assert "torch._dynamo.mark_dynamic" in hint and "'dynamic': True" in hint
    if words.startswith("a guard failed"):
        assert hint is None


@pytest.mark.parametrize(
    ("steady", "rounds", "two_stories"),
    [
        ((0.368, 0.366, 0.369), (0.349, 0.347, 0.351), False),  # both "2.8x faster": one story
        ((0.80, 0.79, 0.81), (0.95, 0.94, 0.96), True),  # 19% apart
        ((1.04, 1.03, 1.05), (0.97, 0.96, 0.98), True),  # slower against faster
        ((1.02, 1.01, 1.03), (0.99, 0.98, 0.995), False),  # across 1, but within 5%
        ((0.80, 0.70, 0.95), (0.95, 0.90, 1.0), False),  # intervals overlap
    ],
)
def test_two_figures_of_a_row_tell_two_stories_only_when_far_enough_apart(
    steady, rounds, two_stories
):
    said = disagreement(Interval(*steady), Interval(*rounds))
    assert (said is not None) == two_stories, said


def test_a_tvm_target_is_a_string_or_a_dict_and_a_json_typo_is_refused_at_collection():
    assert parse_check_options({"tvm_target": "llvm"}, "t")["tvm_target"] == "llvm"
    given = '{"kind": "llvm", "mcpu": "skylake"}'  # as an ini file gives it
    assert parse_check_options({"tvm_target": given}, "t")["tvm_target"] == {
        "kind": "llvm", "mcpu": "skylake"
    }  # fmt: skip
    with pytest.raises(UsageProblem, match="opens a JSON object but is not valid JSON"):
        parse_check_options({"tvm_target": '{"kind": "llvm",}'}, "t")
    with pytest.raises(UsageProblem, match="is not a target string or a dict with a 'kind'"):
        parse_check_options({"tvm_target": {"mcpu": "skylake"}}, "t")


@pytest.mark.parametrize(
    ("recorded", "alike"),
    [
        ({"latency": {"eager": 1.0, "converted": 0.56}, "ratio": {"median": 0.47}}, True),
        ({"latency": {"eager": 1.0, "converted": 0.47}, "ratio": {"median": 0.47}}, False),
        ({"latency": {"eager": 1.0, "converted": 0.60}, "ratio": {"median": 0.47}}, False),
        ({"ratio": {"median": 0.47}}, False),  # an entry of a version without latencies
        ({"latency": {"eager": 0, "converted": 0.5}, "ratio": {"median": 0.47}}, False),
    ],
)
def test_a_disagreement_counts_as_the_baselines_only_where_it_had_the_same_one(recorded, alike):
    steady, rounds = Interval(0.56, 0.555, 0.565), Interval(0.47, 0.465, 0.475)
    said = verdicts.disagreement_as_recorded(steady, rounds, recorded)
    assert (said is not None) == alike, said
    passed = GateResult("max_regression", "pass", "figures")
    limit = GateResult("max_slowdown", "pass", "figures")
    judged = verdicts.one_story([passed, limit], "two stories", steady, rounds, None, recorded)
    assert [gate.outcome for gate in judged] == [
        "pass" if alike else "inconclusive",
        "inconclusive",  # a limit on the ratio has no baseline to tell the two apart
    ]
    # a reloaded figure apart from the rounds is this run's noise, whatever the baseline had
    reloaded = Interval(0.62, 0.615, 0.625)
    judged = verdicts.one_story([passed], "two stories", steady, rounds, reloaded, recorded)
    assert judged[0].outcome == "inconclusive"


@pytest.mark.parametrize(
    ("apart", "runs", "unresolvable"),
    [
        (0.05, 3, False),  # three runs within the threshold: fine enough
        (0.05, 2, True),  # two runs that far apart say more about how far runs vary
        (0.07, 3, True),
        (0.07, 5, False),  # five runs spread wider by chance: more runs never count against it
        (0.50, 1, False),  # one run cannot tell; the default allowances apply
    ],
)
def test_a_figure_passes_only_against_runs_that_agree_to_within_its_threshold(
    apart, runs, unresolvable
):
    figure = gates.Figure(
        "eager / probe",
        narrow(1.0),
        narrow(1.0),
        Interval(1.0, 0.99, 1.01),
        runs_apart=math.log1p(apart),
        runs=runs,
    )
    assert figure.unresolvable(0.05) == unresolvable
    assert figure.outcome(0.05) == (gates.INCONCLUSIVE if unresolvable else gates.PASS)
