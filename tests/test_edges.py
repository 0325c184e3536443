"""The edges a new user hits: tests the marker cannot see into, marks that are repeated or
added late, values and devices the plugin cannot use, outputs it cannot write, files it must
not clobber. Each ends in a clear outcome that names the test and the fix, never a silent pass,
a frame from inside the plugin or an INTERNALERROR."""

import json
import os
import subprocess
import sys

import pytest
from conftest import assert_no_plugin_traceback, expect_lines


def test_a_marked_unittest_method_is_an_error_not_a_silent_pass(suite):
    result = suite(
        """
        import unittest
        import pytest
        import torch
        from models import Branchy

        class TestModels(unittest.TestCase):
            @pytest.mark.torchscript(inputs=torch.randn(2, 4))
            def test_model(self):
                return Branchy()
        """
    )
    result.assert_outcomes(errors=1)
    expect_lines(
        result,
        [
            "*test_user.py::TestModels::test_model: @pytest.mark.torchscript cannot check a "
            "unittest.TestCase method: *Write the check as a plain pytest test function*"
        ],
    )
    assert_no_plugin_traceback(result)


def test_a_marked_async_test_has_its_returned_model_checked(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine, Branchy

        @pytest.mark.anyio
        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), -torch.ones(2, 4)], roundtrip=False)
        async def test_branchy():
            return Branchy()

        @pytest.mark.anyio
        @pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip=False)
        async def test_affine():
            return Affine().eval()

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(result, ["*torchscript check of Branchy failed at parity (mode='trace'*"])
    expect_lines(result, ["passed*test_user.py::test_affine"])


def test_two_marks_on_one_test_are_a_collection_error(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="script")
        @pytest.mark.torchscript(mode="trace", inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """
    )
    result.assert_outcomes(errors=1)
    expect_lines(
        result,
        [
            "*test_user.py::test_model: @pytest.mark.torchscript is applied 2 times to "
            "test_user.py::test_model; merge them into one mark*"
        ],
    )
    assert_no_plugin_traceback(result)


def test_a_class_mark_is_a_default_the_test_mark_overrides(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="script", inputs=torch.randn(2, 4), roundtrip=False)
        class TestModels:
            @pytest.mark.torchscript(mode="trace")
            def test_model(self):
                return Affine().eval()
        """
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["passed*trace*test_user.py::TestModels::test_model"])


def test_marks_added_after_collection_are_checked_or_refused_clearly(suite, pytester):
    pytester.makeconftest(
        """
        import pytest
        import torch

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_one_mode":
                    item.add_marker(pytest.mark.torchscript(mode="script",
                                                            inputs=torch.randn(2, 4)))
                if item.name == "test_mode_list":
                    item.add_marker(pytest.mark.torchscript(mode=["trace", "script"],
                                                            inputs=torch.randn(2, 4)))
        """
    )
    result = suite(
        """
        from models import Affine, Branchy

        def test_one_mode():
            return Affine().eval()

        def test_mode_list():
            return Affine().eval()

        def test_late_in_a_fixture(request):
            import pytest
            request.node.add_marker(pytest.mark.torchscript(inputs=(1,)))
            return Branchy()
        """,
        "-W",
        "ignore::pytest.PytestReturnNotNoneWarning",
    )
    result.assert_outcomes(passed=1, failed=1, errors=1)
    expect_lines(result, ["passed*script*test_user.py::test_one_mode"])
    expect_lines(
        result,
        [
            "*test_user.py::test_mode_list: @pytest.mark.torchscript(mode=('trace', 'script')) "
            "reached the test without parametrizing it: the mark was added after collection*"
        ],
    )
    expect_lines(
        result,
        [
            "*test_user.py::test_late_in_a_fixture: @pytest.mark.torchscript was added after the plugin*"
        ],
    )
    assert_no_plugin_traceback(result)


def test_an_overflowing_tolerance_is_a_collection_error(suite):
    result = suite(
        """
        import pytest

        @pytest.mark.torchscript(rtol=10**400)
        def test_model():
            pass
        """
    )
    result.assert_outcomes(errors=1)
    expect_lines(result, ["*option rtol=* is invalid (* is too large); rtol accepts a number*"])
    assert_no_plugin_traceback(result)


def test_meta_device_is_a_usage_error_and_a_meta_model_a_failed_check(suite):
    result = suite("def test_nothing(ts_device):\n    pass\n", "--ts-device=meta")
    result.stderr.fnmatch_lines(["ERROR: --ts-device: 'meta' cannot check a model: *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = suite(
        """
        import pytest
        import torch

        @pytest.mark.torchscript(inputs=torch.randn(2, 4, device="meta"))
        def test_meta():
            return torch.nn.Linear(4, 4, device="meta").eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "*torchscript check of Linear failed at *(mode='trace', device=cpu)",
            "the check could not complete its * stage: *",
            "given: Linear on cpu, input sets *",
            "supported: models and inputs must hold values on a real device*",
        ],
    )
    assert_no_plugin_traceback(result)


def test_sparse_outputs_are_compared_by_their_values(suite):
    result = suite(
        """
        import torch

        class Sparse(torch.nn.Module):
            def forward(self, x):
                return (x * 2).to_sparse()

        class SparseOff(torch.nn.Module):
            def forward(self, x):
                y = x * 2
                if torch.jit.is_scripting():
                    y = y + 1
                return y.to_sparse()

        def test_sparse(torchscript):
            torchscript.check(Sparse(), torch.eye(3), mode="script", roundtrip=False)

        def test_sparse_off(torchscript):
            torchscript.check(SparseOff(), torch.eye(3), mode="script", roundtrip=False)
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(result, ["*torchscript check of SparseOff failed at parity*"])
    expect_lines(result, ["*9 of 9 elements (100%) differ*"])
    assert_no_plugin_traceback(result)


@pytest.mark.parametrize(
    ("flag", "example"),
    [
        ("--ts-report", "report.json"),
        ("--ts-html", "report.html"),
        ("--ts-baseline", "baseline.json"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_a_usage_error_at_start_up(
    suite, pytester, flag, example
):
    (pytester.path / "a-directory").mkdir()
    result = suite("def test_nothing():\n    pass\n", f"{flag}=a-directory")
    result.stderr.fnmatch_lines(
        [f"ERROR: {flag}=a-directory: is a directory; give a file path, e.g. a-directory/{example}"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    if os.geteuid() != 0:  # root writes anywhere
        locked = pytester.path / "locked"
        locked.mkdir(mode=0o500)
        result = suite("def test_nothing():\n    pass\n", f"{flag}=locked/out.json")
        result.stderr.fnmatch_lines([f"ERROR: {flag}=locked/out.json: cannot write there (*"])
    assert_no_plugin_traceback(result)


@pytest.mark.parametrize(
    "flags, first, second",
    [
        (["--ts-report=out.json", "--ts-html=out.json"], "--ts-report", "--ts-html"),
        (["--ts-baseline=base.json", "--ts-report=base.json"], "--ts-report", "--ts-baseline"),
        (["--ts-html=out.xml", "--junitxml=out.xml"], "--ts-html", "--junitxml"),
        (["--ts-report=b.json", "--benchmark-json=b.json"], "--ts-report", "--benchmark-json"),
    ],
)
def test_two_outputs_on_one_path_are_a_usage_error_not_a_clobbered_file(
    suite, pytester, flags, first, second
):
    kept = pytester.path / "base.json"
    kept.write_text('{"keep": "me"}')
    result = suite("def test_nothing():\n    pass\n", *flags)
    result.stderr.fnmatch_lines(
        [f"ERROR: {first} and {second} both name *: the one written last would overwrite*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert kept.read_text() == '{"keep": "me"}'
    assert_no_plugin_traceback(result)


@pytest.mark.parametrize("flag", ["--ts-device", "--ts-baseline", "--ts-report", "--ts-threads"])
def test_an_empty_flag_is_a_usage_error_not_the_default(suite, flag):
    """`--ts-baseline=$BASELINE` with the variable unset must not quietly drop the gate."""
    result = suite("def test_nothing():\n    pass\n", f"{flag}=")
    result.stderr.fnmatch_lines([f"ERROR: {flag} is empty (an unset variable *?); give *"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_no_plugin_traceback(result)


def test_a_symlink_planted_in_the_artifacts_folder_is_replaced_not_written_through(suite, pytester):
    outside = pytester.path / "precious.txt"
    outside.write_text("keep me")
    folder = pytester.path / "kept" / "test_user.py__test_model"
    folder.mkdir(parents=True)
    for name in ("trace.pt", "trace.code", "trace.graph"):
        (folder / name).symlink_to(outside)
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """,
        "--ts-artifacts=kept",
    )
    result.assert_outcomes(passed=1)
    assert outside.read_text() == "keep me"
    assert not (folder / "trace.pt").is_symlink() and (folder / "trace.pt").stat().st_size > 0
    assert not list(folder.glob(".ts-partial-*"))


def test_long_parametrized_ids_get_folders_of_their_own(suite, pytester):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        LONG = "x" * 200

        @pytest.mark.parametrize("name", [LONG + "a", LONG + "b"])
        @pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip="in-process")
        def test_model(name):
            return Affine().eval()
        """,
        "--ts-artifacts=kept",
    )
    result.assert_outcomes(passed=2)
    folders = [path for path in (pytester.path / "kept").iterdir() if path.is_dir()]
    assert len(folders) == 2, folders
    assert all(len(folder.name) <= 150 for folder in folders)


def test_stale_temporaries_of_a_killed_run_are_removed(suite, pytester):
    stale = pytester.path / "reports" / ".ts-partial-report.abcd.json"
    stale.parent.mkdir()
    stale.write_text("half a report")
    os.utime(stale, (0, 0))
    fresh = pytester.path / "reports" / ".ts-partial-report.efgh.json"
    fresh.write_text("another run is writing this right now")
    suite("def test_nothing():\n    pass\n", "--ts-report=reports/report.json")
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize(
    "args, reason",
    [
        (
            ("-n", "2"),
            "under xdist (-n) timings are off*run the perf job serially: add -p no:xdist (or -n 0)",
        ),
        (
            ("--benchmark-disable",),
            "--benchmark-disable turns timing off; drop it from the perf job",
        ),
    ],
    ids=["xdist", "benchmark-disable"],
)
def test_a_perf_gate_in_a_run_that_times_nothing_is_a_usage_error(
    pytester, monkeypatch, args, reason
):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # the user's run is not under our xdist
    pytester.makepyfile(test_user="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ts-baseline=base.json", *args
    )
    result.stderr.fnmatch_lines(
        [f"ERROR: --ts-baseline needs timings, but this run times nothing: {reason}"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_unavailable_device_says_so_in_the_summary_or_fails_when_required(suite):
    source = """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """
    result = suite(source, "--ts-device=cuda:7")
    result.assert_outcomes(skipped=1)
    expect_lines(
        result,
        ["torchscript: marked tests were skipped: --ts-device asks for cuda:7, but *"],
    )
    result = suite(source, "--ts-device=cuda:7", "--ts-require-device")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ts-device asks for cuda:7, but *, and --ts-require-device * makes that an error*"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # A backend torch parses but was not built with (xla without torch_xla) is unavailable
    # too, found at start-up: not a failed eager stage in every marked test.
    result = suite(source, "--ts-device=xla")
    result.assert_outcomes(skipped=1)
    expect_lines(
        result,
        [
            "torchscript: marked tests were skipped: --ts-device asks for xla, but torch cannot "
            "place a tensor there (*"
        ],
    )


def test_expected_failures_are_their_own_verdict(suite, pytester):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine, Branchy

        @pytest.mark.xfail(reason="a trace freezes the branch", strict=True)
        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), -torch.ones(2, 4)], roundtrip=False)
        def test_branchy():
            return Branchy()

        @pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip=False)
        def test_affine():
            return Affine().eval()
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=1, xfailed=1)
    expect_lines(result, ["xfailed (parity)*test_user.py::test_branchy"])
    expect_lines(result, ["2 check(s): 1 passed, 0 failed, 1 xfailed*"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["summary"]["xfailed"] == 1 and report["summary"]["failed"] == 0
    assert report["exit_status"] == 0


def test_str_of_a_report_is_a_short_summary(suite):
    result = suite(
        """
        import torch
        from models import Affine

        def test_print(torchscript):
            report = torchscript.check(Affine().eval(), torch.randn(2, 4))
            text = str(report)
            print(text)
            assert len(text) < 600, text
            assert "round trip fresh process: ok" in text
            assert repr(report).startswith("CheckReport(test_id=") and len(repr(report)) < 300
        """,
        "-s",
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["*Affine (trace, cpu): passed*"])


def test_one_mode_of_a_list_can_be_xfailed_or_skipped_on_the_marker(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Branchy

        @pytest.mark.torchscript(
            mode=["trace", "script", "export"],
            inputs=[torch.ones(2, 4), -torch.ones(2, 4)],
            roundtrip=False,
            xfail={"trace": "a trace freezes the branch"},
            skip={"export": "not deployed with torch.export"},
        )
        def test_branchy():
            return Branchy()
        """
    )
    result.assert_outcomes(passed=1, xfailed=1, skipped=1)
    expect_lines(result, ["xfailed (parity)*test_user.py::test_branchy[trace]"])
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(2, 4),
                                 roundtrip=False, xfail={"script": "wrongly expected"})
        def test_affine():
            return Affine().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=1)  # strict: an unexpected pass is a failure
    expect_lines(result, ["xpassed*script*test_user.py::test_affine[script]"])


def test_a_failed_check_the_test_expected_is_counted_as_expected_not_as_a_failure(suite, pytester):
    """A test that asserts a known hazard with pytest.raises passes; the summary used to
    report its check as a failure beside pytest's green line."""
    result = suite(
        """
        import pytest
        import torch
        from models import Branchy
        from pytest_torchscript import CheckFailed

        def test_known_hazard(torchscript):
            with pytest.raises(CheckFailed, match="failed at parity"):
                torchscript.check(Branchy(), [torch.ones(2, 4), -torch.ones(2, 4)])
            torchscript.check(Branchy(), [torch.ones(2, 4), -torch.ones(2, 4)], mode="script")

        def test_uncaught(torchscript):
            torchscript.check(Branchy(), [torch.ones(2, 4), -torch.ones(2, 4)])
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(result, ["3 check(s): 1 passed, 1 failed, 1 xfailed*"])
    checks = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert sorted((c["test_id"], c["mode"], c["verdict"]) for c in checks) == [
        ("test_user.py::test_known_hazard", "script", "passed"),
        ("test_user.py::test_known_hazard", "trace", "xfailed"),
        ("test_user.py::test_uncaught", "trace", "failed"),
    ]


def test_xfail_or_skip_for_a_mode_the_test_does_not_check_is_a_collection_error(suite):
    # Ignoring it would leave the user believing the mode is checked (and expected to fail).
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        pytestmark = pytest.mark.torchscript(skip={"aoti": "a default for the module"})

        @pytest.mark.torchscript(mode="trace", inputs=torch.randn(2, 4),
                                 xfail={"onnx": "the exporter drops the branch"})
        def test_affine():
            return Affine().eval()
        """
    )
    result.assert_outcomes(errors=1)
    expect_lines(
        result,
        [
            "*test_user.py::test_affine: @pytest.mark.torchscript: xfail= names mode 'onnx', "
            "which this test does not check (its modes: trace); add 'onnx' to mode=[...] or "
            "drop it from xfail=*"
        ],
    )
    assert_no_plugin_traceback(result)
    result = suite(  # "all" may name any mode: which it stands for varies by CI job
        """
        import pytest
        import torch
        from models import Affine

        pytestmark = pytest.mark.torchscript(skip={"onnx": "a default for the module"})

        @pytest.mark.torchscript(mode="all", inputs=torch.randn(2, 4), roundtrip=False,
                                 skip={"aoti": "compiles for a minute"})
        def test_all_modes():
            return Affine().eval()
        """,
        "--ts-modes=trace",
    )
    result.assert_outcomes(passed=1)


def test_an_acknowledged_hazard_does_not_warn(suite):
    from conftest import MODELS, line_of

    source = """
        import pytest
        import torch
        from models import Branchy

        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), torch.ones(3, 4)], roundtrip=False
                                 KNOWN)
        def test_branchy():
            return Branchy()
        """
    warned = suite(
        source.replace("KNOWN", ""), "-W", "error::pytest_torchscript.TraceHazardWarning"
    )
    warned.assert_outcomes(failed=1)
    expect_lines(warned, ["*TraceHazardWarning (raised as an error by a warnings filter)*"])
    line = line_of(MODELS, "if x.sum() > 0")
    quiet = suite(
        source.replace("KNOWN", f', known_hazards=["models.py:{line}"]'),
        "-W",
        "error::pytest_torchscript.TraceHazardWarning",
    )
    quiet.assert_outcomes(passed=1)


def test_a_torch_whose_torchscript_raises_skips_trace_and_script_and_says_why(suite, pytester):
    pytester.makeconftest(
        """
        import torch

        def _removed(*args, **kwargs):
            raise RuntimeError(
                "TorchScript is deprecated and disabled; set TORCH_JIT_OPT_IN=1 to use it"
            )

        torch.jit.script = _removed
        torch.jit.trace = _removed
        """
    )
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="all", inputs=torch.randn(2, 4), roundtrip="in-process")
        def test_model():
            return Affine().eval()
        """,
        "--ts-modes=trace,script,export",
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=2)
    expect_lines(
        result,
        [
            "SKIPPED*this torch * does not run TorchScript (torch.jit.script raised "
            "RuntimeError: TorchScript is deprecated and disabled; set TORCH_JIT_OPT_IN=1 to "
            "use it); check the model with mode='export' (or 'onnx') instead"
        ],
    )
    expect_lines(result, ["  skipped*skipped*pass*Affine (test_user.py)"])
    assert_no_plugin_traceback(result)


def test_a_check_past_its_timeout_fails_naming_the_stage_and_the_session_goes_on(suite):
    result = suite(
        """
        import time
        import pytest
        import torch
        from models import Affine

        class Slow(torch.nn.Module):
            def forward(self, x):
                time.sleep(3)
                return x * 2

        @pytest.mark.torchscript(inputs=torch.randn(2, 4), timeout=0.5)
        def test_slow():
            return Slow()

        @pytest.mark.torchscript(inputs=torch.randn(2, 4), timeout=60)
        def test_fine():
            return Affine().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Slow failed at eager (mode='trace', device=cpu)",
            "the check did not finish within timeout=0.5 s; it was in its eager stage*",
        ],
    )
    expect_lines(result, ["failed (eager)*test_user.py::test_slow"])
    assert_no_plugin_traceback(result)


def test_gating_reads_a_baseline_it_may_not_write(suite, pytester):
    # A directory where the baseline should be is a usage error; a missing baseline file in a
    # folder that does not exist is fine for a gate run (each check reports the entry missing),
    # since only --ts-update-baseline writes it.
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip=False, time_budget=0.2)
        def test_model():
            return Affine().eval()
        """,
        "--ts-baseline=nowhere/base.json",
        timed=True,
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["*max_regression missing baseline*test_user.py::test_model"])
    assert not (pytester.path / "nowhere").exists()  # a gate run creates nothing


def test_an_eager_output_that_is_all_nan_warns_that_parity_proved_nothing(suite):
    result = suite(
        """
        import pytest
        import torch

        class Broken(torch.nn.Module):
            def forward(self, x):
                return {"logits": x * float("nan"), "steps": torch.arange(3)}

        @pytest.mark.torchscript(mode="trace", inputs=torch.randn(2, 3))
        def test_broken():
            return Broken()

        @pytest.mark.torchscript(mode="trace", inputs=torch.randn(2, 3))
        def test_finite():
            return torch.nn.Sequential(torch.nn.Identity())
        """,
        "-W",
        "error::pytest_torchscript.TorchScriptWarning",
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "*Broken's eager output on input set 0 is NaN throughout, so parity compares NaN "
            "with NaN and proves nothing about the conversion; check the model's inputs and "
            "initialisation",
        ],
    )
    expect_lines(result, ["failed (warning)*test_user.py::test_broken"])
    expect_lines(result, ["passed *trace*test_user.py::test_finite"])


@pytest.mark.parametrize(
    ("flag", "name", "what"),
    [("--ts-report", "notes.json", "JSON report"), ("--ts-html", "index.html", "HTML report")],
)
def test_a_report_path_naming_a_file_the_plugin_did_not_write_is_refused_not_overwritten(
    suite, pytester, flag, name, what
):
    mine = pytester.path / name
    mine.write_text("the user's own file\n")
    result = suite("def test_nothing():\n    pass\n", f"{flag}={name}")
    result.stderr.fnmatch_lines(
        [
            f"ERROR: {flag}={name}: *{name} exists and is not a pytest-torchscript {what}, so "
            f"writing there would destroy it; give another path (e.g. *), or delete the file "
            f"first if it is yours to lose"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert mine.read_text() == "the user's own file\n"
    mine.unlink()  # then the plugin's own report from an earlier run is replaced, as before
    for _ in range(2):
        result = suite("def test_nothing():\n    pass\n", f"{flag}={name}")
        assert result.ret == pytest.ExitCode.OK
    assert "pytest-torchscript" in mine.read_text()
    if flag != "--ts-report":
        return
    (pytester.path / "README.md").write_text("# the user's readme\n")
    merge = subprocess.run(
        [sys.executable, "-m", "pytest_torchscript", "merge", name, "--json", "README.md"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert merge.returncode == 2
    assert "--json README.md: README.md exists and is not a pytest-torchscript" in merge.stderr
    assert (pytester.path / "README.md").read_text() == "# the user's readme\n"
