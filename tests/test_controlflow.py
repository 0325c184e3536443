"""Control-flow coverage: the branch a trace froze, named at its line; arms no input exercised."""

import pytest
from conftest import expect_lines, line_of

FLOW_MODELS = """
import torch


class SumBranch(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1          # for x = -1 this equals x * 2: values alone cannot tell


class LoopCount(torch.nn.Module):
    def forward(self, x):
        for _ in range(int(x.abs().max())):
            x = x + 1
        return x


class ItemScale(torch.nn.Module):
    def forward(self, x):
        return x * x.max().item()


class ShapeBranch(torch.nn.Module):
    def forward(self, x):
        if x.shape[0] > 2:
            return x * 3
        return x + 1


class Clean(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        if self.training:
            x = x * 0.5
        if x.dim() == 2:
            x = self.linear(x)
        return x


class IfAndLoop(torch.nn.Module):
    def forward(self, x):
        if x.mean() > 1:
            x = x / 2
        for _ in range(int(x.abs().max())):
            x = x - 1
        return x
"""


SUM_IF = line_of(FLOW_MODELS, "if x.sum() > 0:")
COUNT_LOOP = line_of(FLOW_MODELS, "for _ in range(int(x.abs().max())):")  # LoopCount's
ITEM = line_of(FLOW_MODELS, "x.max().item()")
SHAPE_IF = line_of(FLOW_MODELS, "if x.shape[0] > 2:")
MEAN_IF = line_of(FLOW_MODELS, "if x.mean() > 1:")
SCRIPT_LOOP = MEAN_IF + 2  # IfAndLoop's loop


@pytest.fixture
def flow_suite(suite, pytester):
    def run(source, *args, **kwargs):
        pytester.makepyfile(flow_models=FLOW_MODELS)
        return suite(source, *args, **kwargs)

    return run


def test_divergent_branch_fails_even_when_outputs_agree(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import SumBranch

        @pytest.mark.torchscript(inputs=[torch.ones(3), -torch.ones(3)])
        def test_branch():
            return SumBranch()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of SumBranch failed at control-flow (mode='trace', device=cpu)",
            "the outputs agree on these input sets, but the trace does not compute what eager "
            "computes for all of them:",
            "the trace replays the path of input set 0, and other input sets take another:",
            f"  flow_models.py:{SUM_IF}: the trace recorded the True arm (input set 0); input set 1 "
            "takes the False arm  `if x.sum() > 0:`",
            "hint: mode='script' keeps data-dependent control flow*",
        ],
    )


def test_one_arm_exercised_passes_at_half_coverage_and_min_coverage_fails_it(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import SumBranch

        POSITIVE = [torch.ones(3), torch.full((3,), 2.0)]

        def test_report(torchscript):
            flow = torchscript.check(SumBranch(), POSITIVE).control_flow
            assert flow.coverage == 0.5
            assert flow.describe_coverage() == "50% (1/2 arms)"
            (decision,) = flow.decisions
            assert decision.exercised == {"True": [0, 1]}
            assert decision.unexercised == ["False"]

        @pytest.mark.torchscript(inputs=POSITIVE, min_coverage=1.0)
        def test_min_coverage():
            return SumBranch()
        """,
        "-W",
        "ignore::pytest_torchscript.TraceHazardWarning",
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of SumBranch failed at coverage (mode='trace', device=cpu)",
            "the input sets exercise 50% (1/2 arms) of the data-dependent branches and loops, "
            "below min_coverage=1; parity did not verify:",
            f"  flow_models.py:{SUM_IF}: the False arm of `if x.sum() > 0:` (no input set had "
            "x.sum() <= 0)",
        ],
    )
    expect_lines(result, ["passed*trace*50% 1/2*test_user.py::test_report"])


def test_min_coverage_from_ini_and_its_validation(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import SumBranch

        @pytest.mark.torchscript(inputs=[torch.ones(3), torch.ones(3) * 2])
        def test_ini():
            return SumBranch()

        @pytest.mark.torchscript(min_coverage=1.5)
        def test_bad():
            pass
        """,
        ini="[pytest]\nts_min_coverage = 0.75\n",
    )
    expect_lines(
        result,
        ["*option min_coverage=1.5 is invalid (1.5 is above 1); min_coverage accepts a fraction*"],
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_loop_count_and_item_scale_taken_from_tensors_are_named(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import ItemScale, LoopCount

        SETS = [torch.full((3,), 2.0), torch.full((3,), 4.0)]

        @pytest.mark.torchscript(inputs=SETS)
        def test_loop():
            return LoopCount()

        @pytest.mark.torchscript(inputs=SETS)
        def test_item():
            return ItemScale()
        """
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            f"  flow_models.py:{COUNT_LOOP}: the trace froze the value 2 (input set 0); input set 1 "
            "computes 4  `for _ in range(int(x.abs().max())):`",
        ],
    )
    expect_lines(
        result,
        [
            f"  flow_models.py:{ITEM}: the trace froze the value 2.0 (input set 0); input set 1 "
            "computes 4.0  `return x * x.max().item()`",
        ],
    )


def test_shape_branch_with_different_batch_sizes_is_named(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import ShapeBranch

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.ones(2, 4), torch.ones(5, 4)])
        def test_shape():
            return ShapeBranch()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            f"  flow_models.py:{SHAPE_IF}: the trace recorded the False arm (input set 0); input set 1 "
            "takes the True arm  `if x.shape[0] > 2:`",
        ],
    )
    # Script keeps the branch, and a branch on a size is not a data-dependent decision.
    expect_lines(result, ["passed*script*no branches*test_user.py::test_shape[script]"])


def test_clean_model_has_no_hazards_and_no_decisions(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import Clean

        @pytest.mark.torchscript(mode=["trace", "script"])
        def test_clean(torchscript):
            report = torchscript.check(Clean().eval(), [torch.ones(2, 4), torch.ones(5, 4)])
            flow = report.control_flow
            assert flow.coverage is None and flow.decisions == []
            assert flow.hazards == [] and flow.divergences == []
            assert flow.describe_coverage() == "no data-dependent decisions"
        """,
        "-W",
        "error",
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("control flow:")


def test_script_mode_reports_which_arms_of_an_if_and_a_loop_were_exercised(flow_suite):
    result = flow_suite(
        f"""
        import torch
        from flow_models import IfAndLoop

        def test_script(torchscript):
            report = torchscript.check(
                IfAndLoop(), [torch.full((3,), 0.5), torch.full((3,), 4.0)], mode="script"
            )
            flow = report.control_flow
            branch, loop = flow.decisions
            assert (branch.kind, branch.lineno, branch.exercised) == (
                "branch", {MEAN_IF}, {{"False": [0], "True": [1]}}
            )
            assert (loop.kind, loop.lineno) == ("loop", {SCRIPT_LOOP})
            assert loop.exercised == {{"zero iterations": [0], "some iterations": [1]}}
            assert flow.coverage == 1.0

        def test_script_partial(torchscript):
            flow = torchscript.check(IfAndLoop(), torch.full((3,), 4.0), mode="script").control_flow
            assert flow.describe_coverage() == "50% (2/4 arms)"
            assert flow.unexercised_lines() == [
                "flow_models.py:{MEAN_IF}: the False arm of `if x.mean() > 1:` (no input set had "
                "x.mean() <= 1)",
                "flow_models.py:{SCRIPT_LOOP}: the zero iterations arm of "
                "`for _ in range(int(x.abs().max())):` (no input set made this loop run zero times)",
            ]
        """
    )
    result.assert_outcomes(passed=2)


def test_hazards_without_divergence_pass_with_a_warning_naming_the_lines(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import ItemScale

        @pytest.mark.torchscript(inputs=[torch.full((3,), 2.0), torch.full((3,), 2.0)])
        def test_item_same_scale():
            return ItemScale()
        """
    )
    result.assert_outcomes(passed=1, warnings=1)
    expect_lines(
        result,
        [
            "*TraceHazardWarning: the trace of ItemScale turned tensors into Python values at "
            f"flow_models.py:{ITEM} (.item() (a value)). Every input set agreed, so the check passed, "
            "but inputs that take other paths may break the deployed trace*",
        ],
    )
    expect_lines(
        result,
        [
            "control flow:",
            "  test_user.py::test_item_same_scale (trace):",
            f"    hazards in your code: flow_models.py:{ITEM} .item() (a value)",
        ],
    )


def test_user_coverage_run_still_counts_the_users_lines(flow_suite):
    result = flow_suite(
        """
        import pytest
        import torch
        from flow_models import IfAndLoop

        @pytest.mark.torchscript(mode="script", inputs=[torch.full((3,), 0.5), torch.full((3,), 4.0)])
        def test_model():
            return IfAndLoop()
        """,
        "--cov=flow_models",
        "--cov-branch",
        "--cov-report=term-missing",
    )
    result.assert_outcomes(passed=1)
    # IfAndLoop ran in eager with both arms: its lines are covered, the other models' are not.
    expect_lines(result, ["flow_models.py *", "TOTAL*"])
    line = next(line for line in result.stdout.lines if line.startswith("flow_models.py"))
    missing = line.split("%", 1)[1]
    assert str(MEAN_IF) not in missing, line  # IfAndLoop's lines ran
    assert f"{SUM_IF}-{SUM_IF + 2}" in missing, line  # SumBranch's did not
