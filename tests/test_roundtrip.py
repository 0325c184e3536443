"""Save/reload parity, the fresh process that never imports user code, and kept artifacts."""

import sys

import pytest
from conftest import assert_no_plugin_traceback, expect_lines


def test_fresh_process_catches_an_artifact_that_needs_the_users_python_code(suite, pytester):
    pytester.makepyfile(
        mylib="""
        import torch

        @torch.library.custom_op("mylib::double", mutates_args=())
        def double(x: torch.Tensor) -> torch.Tensor:
            return x * 2

        class UsesCustomOp(torch.nn.Module):
            def forward(self, x):
                return torch.ops.mylib.double(x) + 1
        """
    )
    result = suite(
        """
        import pytest
        import torch
        from mylib import UsesCustomOp

        @pytest.mark.torchscript(inputs=torch.ones(3))
        def test_custom_op():
            return UsesCustomOp()

        @pytest.mark.torchscript(inputs=torch.ones(3), roundtrip="in-process")
        def test_custom_op_in_process_only():
            return UsesCustomOp()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of UsesCustomOp failed at fresh-process (mode='trace', device=cpu)",
            "*test_custom_op/trace.pt could not be loaded and run in a fresh Python process that "
            "never imported your code:",
            "  RuntimeError: Unknown builtin op: mylib::double.",
            "*",
            "hint: the artifact calls mylib::double, an operator that Python code registers "
            "when it is imported *for your own code, ship the operator as a library the "
            "deployment loads (torch.ops.load_library)",
        ],
    )
    expect_lines(
        result,
        [
            "failed (fresh-process)*ok FAIL*test_custom_op",
            "passed*trace*0*0*no branches*ok  *test_custom_op_in_process_only",
        ],
    )


def test_one_fresh_process_serves_the_session_and_imports_no_user_module(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        PIDS = []

        @pytest.mark.parametrize("batch", [1, 2, 3])
        def test_model(torchscript, batch):
            report = torchscript.check(Affine().eval(), torch.randn(batch, 4))
            in_process, fresh = report.roundtrips
            assert (in_process.where, fresh.where) == ("in-process", "fresh process")
            assert in_process.ok and fresh.ok
            assert fresh.user_modules == []
            PIDS.append(fresh.process_id)

        def test_same_process():
            assert len(PIDS) == 3 and len(set(PIDS)) == 1, PIDS
        """
    )
    result.assert_outcomes(passed=4)


def test_roundtrip_false_skips_saving(suite):
    result = suite(
        """
        import torch
        from models import Affine

        def test_no_roundtrip(torchscript):
            report = torchscript.check(Affine().eval(), torch.randn(2, 4), roundtrip=False)
            assert report.roundtrips == [] and report.artifact_path is None
        """
    )
    result.assert_outcomes(passed=1)


def test_artifacts_dir_keeps_artifact_code_and_graph_per_test(suite, pytester):
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()

        def test_single_steps(torchscript):
            model = Affine().eval()
            converted = torchscript.convert(model, torch.randn(2, 4))
            reloaded = torchscript.roundtrip(converted)
            torchscript.assert_parity(model, reloaded, [torch.randn(1, 4), torch.randn(3, 4)])
        """,
        "--ts-artifacts=kept",
    )
    result.assert_outcomes(passed=3)
    kept = pytester.path / "kept"
    for folder, stem in [
        ("test_user.py__test_model[trace]", "trace"),
        ("test_user.py__test_model[script]", "script"),
        ("test_user.py__test_single_steps", "trace"),
    ]:
        assert (kept / folder / f"{stem}.pt").stat().st_size > 0
        assert "def forward" in (kept / folder / f"{stem}.code").read_text()
        assert "graph(" in (kept / folder / f"{stem}.graph").read_text()
    assert not list(kept.rglob("*partial*"))


def test_unwritable_artifacts_dir_is_a_usage_error_at_start_up(suite, pytester):
    (pytester.path / "blocked").write_text("a file, not a directory")
    result = suite("def test_nothing():\n    pass\n", "--ts-artifacts=blocked/sub")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ts-artifacts=blocked/sub: cannot write artifacts there (*); choose a "
            "writable directory"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = suite("def test_nothing():\n    pass\n", "--ts-artifacts=blocked")
    result.stderr.fnmatch_lines(
        ["ERROR: --ts-artifacts=blocked: is a file, and artifacts go in a directory; *"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (pytester.path / "blocked").read_text() == "a file, not a directory"


def test_failing_check_keeps_failure_code_graph_diff_and_outputs(suite, pytester):
    result = suite(
        """
        import pytest
        import torch
        from models import Branchy

        @pytest.mark.torchscript(inputs=[torch.ones(2, 4), -torch.ones(2, 4)])
        def test_frozen():
            return Branchy()
        """,
        "--ts-artifacts=kept",
        "-W",
        "ignore::pytest_torchscript.TrainModeWarning",
    )
    result.assert_outcomes(failed=1)
    folder = pytester.path / "kept" / "test_user.py__test_frozen" / "trace-failure"
    assert "the trace recorded the True arm" in (folder / "failure.txt").read_text()
    assert "def forward" in (folder / "trace.code").read_text()
    diff = (folder / "graph-set0-vs-set1.diff").read_text()
    assert "--- trace of input set 0" in diff and "aten::mul" in diff and "aten::sub" in diff
    # The outputs load with plain torch (checked in a subprocess: this suite never imports torch).
    check = pytester.run(
        sys.executable,
        "-c",
        "import sys, torch; d = torch.load(sys.argv[1]); "
        "assert torch.equal(d['eager'], -torch.ones(2, 4) - 5); "
        "assert torch.equal(d['converted'], -torch.ones(2, 4) * 2); print('outputs ok')",
        str(folder / "outputs-set1.pt"),
    )
    check.stdout.fnmatch_lines(["outputs ok"])


RERUN_SUITE = """
import os

import pytest
import torch

class Flaky(torch.nn.Module):
    def forward(self, x):
        if os.environ["TS_TEST_OUTCOME"] == "eager fails":
            raise RuntimeError("weights missing")
        if os.environ["TS_TEST_OUTCOME"] == "parity fails" and not torch.jit.is_tracing():
            return x * 3
        return x * 2

@pytest.mark.torchscript(inputs=[torch.ones(2), torch.zeros(3)])
def test_flaky():
    return Flaky()
"""


def test_a_rerun_into_the_same_artifacts_folder_leaves_only_this_run_s_outcome(
    suite, pytester, monkeypatch
):
    # --ts-artifacts kept across runs (a developer's folder, a CI cache): what a check left
    # in an earlier run must not read as this run's: an artifact beside a failure at eager,
    # an earlier failure's outputs beside a later one's, a failure that no longer happens.
    kept = pytester.path / "kept" / "test_user.py__test_flaky"

    def run(outcome: str) -> set[str]:
        monkeypatch.setenv("TS_TEST_OUTCOME", outcome)
        suite(RERUN_SUITE, "--ts-artifacts=kept")
        return {str(path.relative_to(kept)) for path in kept.rglob("*")}

    assert run("passes") == {"trace.pt", "trace.code", "trace.graph"}
    (kept / "notes.txt").write_text("mine")  # a file the plugin did not write stays
    # parity fails before the artifact is saved: the earlier run's trace.pt goes
    assert run("parity fails") == {
        "notes.txt",
        "trace-failure",
        "trace-failure/failure.txt",
        "trace-failure/trace.code",
        "trace-failure/trace.graph",
        "trace-failure/outputs-set0.pt",
    }
    assert run("eager fails") == {"notes.txt", "trace-failure", "trace-failure/failure.txt"}
    assert "weights missing" in (kept / "trace-failure" / "failure.txt").read_text()
    assert run("passes") == {"notes.txt", "trace.pt", "trace.code", "trace.graph"}


def test_single_steps_misused_say_so_from_the_test_s_line(suite):
    result = suite(
        """
        import torch
        from models import Affine

        def test_roundtrip_of_an_eager_module(torchscript):
            torchscript.roundtrip(Affine())

        def test_convert_with_a_bad_example(torchscript):
            torchscript.convert(Affine(), "not a tensor")

        def test_parity_with_no_inputs(torchscript):
            model = Affine().eval()
            torchscript.assert_parity(model, torchscript.convert(model, torch.randn(2, 4)), [])
        """
    )
    result.assert_outcomes(failed=3)
    expect_lines(
        result,
        [
            "E   *UsageProblem: test_user.py::test_roundtrip_of_an_eager_module: "
            "torchscript.roundtrip() takes what torchscript.convert() returns*got Affine; "
            "convert it first*",
            "E   *UsageProblem: test_user.py::test_convert_with_a_bad_example: input set 0 is "
            "str 'not a tensor'*",
            "E   *UsageProblem: test_user.py::test_parity_with_no_inputs: inputs is an empty list*",
        ],
    )
    assert_no_plugin_traceback(result)


def test_an_artifact_this_run_saved_is_never_taken_for_an_earlier_run_s(suite, pytester):
    # The fixture's own roundtrip() saved trace.pt; a check of the same test that then fails
    # before saving must not remove it as a leftover of an earlier run.
    result = suite(
        """
        import torch
        from models import Affine

        class Broken(torch.nn.Module):
            def forward(self, x):
                raise RuntimeError("weights missing")

        def test_steps_then_a_failing_check(torchscript):
            model = Affine().eval()
            torchscript.roundtrip(torchscript.convert(model, torch.randn(2, 4)))
            torchscript.check(Broken(), torch.randn(2, 4))
        """,
        "--ts-artifacts=kept",
    )
    result.assert_outcomes(failed=1)
    kept = pytester.path / "kept" / "test_user.py__test_steps_then_a_failing_check"
    assert (kept / "trace.pt").stat().st_size > 0
    assert "weights missing" in (kept / "trace-failure" / "failure.txt").read_text()


def test_the_reloaded_module_runs_without_autograd_as_eager_and_the_converted_did(suite):
    """A TorchScript module's first calls fix its optimised plan: reloaded and run with autograd
    on, then timed without it, a small MLP read a quarter slower than the same graph converted.
    A model that outputs whether autograd is on shows how each form was run."""
    result = suite(
        """
        import pytest
        import torch

        class GradMode(torch.nn.Module):
            def forward(self, x):
                return x + float(torch.is_grad_enabled())

        @pytest.mark.torchscript(mode="script", inputs=torch.zeros(2, 3))
        def test_grad_mode():
            return GradMode()
        """
    )
    result.assert_outcomes(passed=1)
