"""The end-of-run torchscript section: failures first, nothing when nothing was checked."""

from conftest import expect_lines


def test_summary_lists_failures_first_with_figures(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine, Branchy

        def test_ok(torchscript):
            torchscript.check(Affine().eval(), torch.randn(2, 4))

        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), -torch.ones(2, 4)], roundtrip=False)
        def test_frozen():
            return Branchy()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "*= torchscript (device cpu) =*",
            "verdict*mode*max abs*max rel*coverage*round trip*size*convert*test",
            "failed (parity)*trace*4*0.67*100% 2/2*-*-*s*test_user.py::test_frozen",
            "passed*trace*0*0*no branches*ok ok*kB*s*test_user.py::test_ok",
            "(round trip: reload in this process, then in a fresh process)",
            "2 check(s): 1 passed, 1 failed; * warning(s) raised by torch during the checks "
            "were recorded, not raised",
        ],
    )


def test_no_section_when_nothing_was_checked(suite):
    result = suite(
        """
        def test_fixture_requested_but_unused(torchscript):
            assert torchscript.mode == "trace"
        """
    )
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*torchscript ==*")


def test_round_trip_legend_says_what_ran(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip="in-process")
        def test_model():
            return Affine().eval()
        """
    )
    result.assert_outcomes(passed=1)
    expect_lines(
        result, ["passed*ok*test_user.py::test_model", "(round trip: reload in this process)"]
    )
    result.stdout.no_fnmatch_line("*fresh process*")


def test_matrix_reasons_name_each_test_once(suite):
    """A failure whose message starts with its test id (bad inputs) is not prefixed twice."""
    result = suite(
        """
        import pytest
        from models import Affine

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=[])
        def test_empty():
            return Affine()
        """
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "migration matrix (per model: a verdict for each mode):",
            "*FAIL inputs*FAIL inputs*Affine (test_user.py)",
            "  test_user.py::test_empty[trace]: inputs is an empty list; give at least one "
            "input set",
        ],
    )
    assert "test_empty[trace]: test_user.py::test_empty[trace]" not in result.stdout.str()
