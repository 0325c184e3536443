"""The marker's contract: registration, validation at collection, mode parametrization."""

import pytest
from conftest import assert_no_plugin_traceback


def test_marker_is_registered_for_strict_markers_and_listed(suite):
    result = suite(
        """
        import pytest
        from models import Affine
        import torch

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """,
        "--strict-markers",
        "--markers",
    )
    result.stdout.fnmatch_lines(["@pytest.mark.torchscript(mode='trace', *, inputs=None*"])
    assert result.ret == 0


@pytest.mark.parametrize(
    "marker, expected",
    [
        (
            "@pytest.mark.torchscript(mode='tracing')",
            "*test_user.py::test_model: @pytest.mark.torchscript: option mode='tracing' is "
            "invalid (unknown mode 'tracing'); mode accepts 'trace', 'script', 'export', "
            "'onnx', 'aoti', 'compile' or 'tvm', a list of them, or 'all'*",
        ),
        (
            "@pytest.mark.torchscript(rtoll=1e-3)",
            "*test_user.py::test_model: @pytest.mark.torchscript: unknown option 'rtoll'; "
            "accepted options: mode, inputs, rtol, atol, roundtrip*",
        ),
        (
            "@pytest.mark.torchscript(atol='loose')",
            "*option atol='loose' is invalid ('loose' is not a number); atol accepts a number*",
        ),
        (
            "@pytest.mark.torchscript(roundtrip='yes')",
            "*option roundtrip='yes' is invalid*roundtrip accepts True (save, reload, and "
            "reload in a fresh process), 'in-process', or False*",
        ),
        (
            "@pytest.mark.torchscript('trace', 'script')",
            "*takes at most one positional argument (the mode)*",
        ),
    ],
)
def test_bad_marker_is_a_collection_error_naming_test_option_and_accepted_values(
    suite, marker, expected
):
    result = suite(
        f"""
        import pytest

        {marker}
        def test_model():
            pass

        def test_unrelated():
            pass
        """
    )
    result.stdout.fnmatch_lines(["*ERROR collecting test_user.py*", expected])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling of the above exception*")  # said once
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_no_plugin_traceback(result)


def test_every_bad_marker_of_a_module_is_listed_in_one_collection_error(suite):
    result = suite(
        """
        import pytest

        @pytest.mark.torchscript(mode="trcae")
        def test_typo():
            pass

        def test_unrelated():
            pass

        @pytest.mark.torchscript(rtol="x")
        def test_bad_tolerance():
            pass

        class TestGroup:  # a module that fails to collect hides its classes' problems
            @pytest.mark.torchscript(roundtrp=True)
            def test_in_class(self):
                pass
        """
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_user.py *",
            "2 tests have a bad @pytest.mark.torchscript:",
            "test_user.py::test_typo: *option mode='trcae' is invalid*",
            "test_user.py::test_bad_tolerance: *option rtol='x' is invalid*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_no_plugin_traceback(result)


def test_every_bad_marker_of_a_class_is_listed_in_one_collection_error(suite):
    result = suite(
        """
        import pytest

        def test_unrelated():
            pass

        class TestGroup:
            @pytest.mark.torchscript(roundtrp=True)
            def test_one(self):
                pass

            @pytest.mark.torchscript(mode=["trace", "trace"])
            def test_two(self):
                pass
        """
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_user.py*",
            "2 tests have a bad @pytest.mark.torchscript:",
            "test_user.py::TestGroup::test_one: *unknown option 'roundtrp'*",
            "test_user.py::TestGroup::test_two: *a mode is listed twice*",
            "ERROR test_user.py::TestGroup - Failed: 2 tests have a bad*",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_no_plugin_traceback(result)


def test_mode_list_parametrizes_and_composes_with_user_parametrize(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.parametrize("batch", [1, 3])
        @pytest.mark.torchscript(mode=["trace", "script"])
        def test_model(torchscript, batch):
            report = torchscript.check(Affine().eval(), torch.randn(batch, 4))
            assert report.mode == torchscript.mode
        """,
        "-v",
    )
    output = result.stdout.str()
    for test_id in ("trace-1", "trace-3", "script-1", "script-3"):
        assert f"test_user.py::test_model[{test_id}] PASSED" in output
    result.assert_outcomes(passed=4)


def test_single_mode_does_not_change_the_test_id(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="script", inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """,
        "-v",
    )
    result.stdout.fnmatch_lines(["*test_user.py::test_model PASSED*"])


def test_marked_test_that_checks_nothing_fails_with_how_to(suite):
    result = suite(
        """
        import pytest

        @pytest.mark.torchscript
        def test_forgot():
            x = 1
        """
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_user.py::test_forgot is marked @pytest.mark.torchscript but neither returned "
            "a model nor used the torchscript fixture, so nothing was checked. Either return the "
            "model from the test (with inputs=... on the marker), or request the torchscript "
            "fixture and call torchscript.check(model, inputs).",
        ]
    )


def test_returned_model_is_checked_with_marker_inputs_from_a_callable(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        def make_inputs():
            return [torch.randn(1, 4), torch.randn(5, 4)]

        @pytest.mark.torchscript(inputs=make_inputs)
        def test_model():
            return Affine().eval()
        """
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*passed*trace*test_user.py::test_model"])


def test_fixture_without_marker_defaults_to_trace_and_check_options_win(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        def test_default(torchscript, ts_device):
            assert torchscript.mode == "trace"
            assert ts_device == torch.device("cpu") == torchscript.device
            assert torchscript.check(Affine().eval(), torch.randn(2, 4)).mode == "trace"

        @pytest.mark.torchscript(mode="trace", rtol=0.5, atol=0.5)
        def test_layers(torchscript):
            report = torchscript.check(Affine().eval(), torch.randn(2, 4), mode="script", atol=0.25)
            assert report.mode == "script"
            leaf = report.parity[0].leaves[0]
            assert (leaf.rtol, leaf.atol) == (0.5, 0.25)  # marker's rtol, check's atol

        def test_ini_layer(torchscript):
            leaf = torchscript.check(Affine().eval(), torch.randn(2, 4)).parity[0].leaves[0]
            assert (leaf.rtol, leaf.atol) == (0.125, 1e-05)  # ini rtol, float32 default atol
        """,
        ini="""
        [pytest]
        ts_rtol = 0.125
        """,
    )
    result.assert_outcomes(passed=3)


def test_bad_ini_value_is_a_usage_error_naming_the_key(suite):
    result = suite("def test_nothing():\n    pass\n", ini="[pytest]\nts_atol = tiny\n")
    result.stderr.fnmatch_lines(
        ["ERROR: ini option ts_atol = 'tiny' in *tox.ini is invalid (*); ts_atol accepts a number*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_check_rejects_a_list_of_modes(suite):
    result = suite(
        """
        import torch
        from models import Affine

        def test_model(torchscript):
            torchscript.check(Affine().eval(), torch.randn(2, 4), mode=["trace", "script"])
        """
    )
    result.stdout.fnmatch_lines(
        ["E   *UsageProblem: test_user.py::test_model: torchscript.check() takes one mode*"]
    )
    result.assert_outcomes(failed=1)


def test_suite_without_markers_never_imports_torch(suite):
    result = suite(
        """
        import sys

        def test_plain():
            assert "pytest_torchscript.plugin" in sys.modules
            assert "torch" not in sys.modules
        """
    )
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*= torchscript =*")
