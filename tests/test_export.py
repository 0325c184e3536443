"""mode="export": dynamic dimensions from the input sets, narrowed ranges and data-dependent
branches named at their line, dict outputs, and the .pt2 round trip."""

from conftest import expect_lines, line_of

EXPORT_MODELS = """
import torch


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                          torch.nn.Linear(16, 3))

    def forward(self, x):
        return self.layers(x)


class NeedsBigBatch(torch.nn.Module):
    def forward(self, x):
        if x.shape[0] > 4:
            return x * 2
        return x + 1


class ValueBranch(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1

"""


def run_export(suite, pytester, source, *args):
    pytester.makepyfile(export_models=EXPORT_MODELS)
    return suite(source, *args)


def test_clean_model_exports_with_the_batch_dimension_made_dynamic(suite, pytester):
    result = run_export(
        suite,
        pytester,
        """
        import pytest
        import torch
        from export_models import Classifier

        @pytest.mark.torchscript(mode="export", inputs=[torch.randn(2, 8), torch.randn(7, 8)])
        def test_export(torchscript):
            report = torchscript.check(Classifier().eval(), [torch.randn(2, 8), torch.randn(7, 8)])
            assert report.artifact_path.endswith("export.pt2")
            assert [rt.where for rt in report.roundtrips] == ["in-process", "fresh process"]
            assert all(rt.ok for rt in report.roundtrips)
        """,
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["passed*export*ok ok*test_user.py::test_export"])


def test_narrowed_dynamic_dimension_names_the_line_and_range(suite, pytester):
    result = run_export(
        suite,
        pytester,
        """
        import pytest
        import torch
        from export_models import NeedsBigBatch

        @pytest.mark.torchscript(mode="export", inputs=[torch.ones(6, 3), torch.ones(2, 3)])
        def test_narrowed():
            return NeedsBigBatch()
        """,
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of NeedsBigBatch failed at conversion (mode='export', device=cpu)",
            "export narrowed a dynamic dimension: the exported program requires "
            "x.size()[0] >= 5, and input set 1 (float32[2, 3]) does not satisfy it",
            "the user code decided on sizes while exporting at:",
            f"  export_models.py:{line_of(EXPORT_MODELS, 'if x.shape[0] > 4:')}: `if x.shape[0] > 4:` (*)",
            "hint: make the code hold for every size*",
        ],
    )


def test_data_dependent_branch_fails_with_the_line_and_the_fix(suite, pytester):
    result = run_export(
        suite,
        pytester,
        """
        import pytest
        import torch
        from export_models import ValueBranch

        @pytest.mark.torchscript(mode="export", inputs=torch.ones(3))
        def test_value_branch():
            return ValueBranch()
        """,
        "--ts-artifacts=artifacts",
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torch.export could not convert ValueBranch (mode='export')",
            f"  at export_models.py:{line_of(EXPORT_MODELS, 'if x.sum() > 0:')}: if x.sum() > 0:",
        ],
    )
    expect_lines(
        result,
        [
            "hint: export cannot follow a branch on tensor values; express it "
            "with torch.cond(pred, true_fn, false_fn, operands)*"
        ],
    )
    # torch's structured-trace records (a logger pytest 8 captures) stay out of the failure,
    # and so does the partial graph torch prints to stderr (thousands of lines for a real
    # model): it is kept with the converter's whole message under --ts-artifacts.
    assert "torch.__trace" not in result.stdout.str()
    assert "def forward(self" not in result.stdout.str()
    kept = next(pytester.path.joinpath("artifacts").rglob("converter-error.txt")).read_text()
    assert "partial graph (what export captured):" in kept
    assert "def forward(self" in kept


def test_dict_outputs_and_keyword_inputs_with_two_dynamic_dims(suite, pytester):
    result = run_export(
        suite,
        pytester,
        """
        import pytest
        import torch
        from models import Masked

        def sets():
            return [{"x": torch.randn(2, 5, 8), "mask": torch.ones(2, 5)},
                    {"x": torch.randn(3, 9, 8), "mask": torch.ones(3, 9)}]

        @pytest.mark.torchscript(mode="export", inputs=sets)
        def test_dict():
            return Masked().eval()
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_named_tuple_output_of_the_user_s_code_fails_saving_with_what_to_return(suite):
    result = suite(
        """
        from typing import NamedTuple

        import pytest
        import torch

        class Out(NamedTuple):
            logits: torch.Tensor
            scores: torch.Tensor

        class Scorer(torch.nn.Module):
            def forward(self, x):
                return Out(x * 2, x.softmax(-1))

        @pytest.mark.torchscript(mode="export", inputs=[torch.randn(2, 3), torch.randn(4, 3)])
        def test_scorer():
            return Scorer()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Scorer failed at roundtrip (mode='export', device=cpu)",
            "saving the converted module to * failed: NotImplementedError: *namedtuple class*",
            "hint: the exported program takes or returns test_user.Out, a NamedTuple of your "
            "code*return a tuple or a dict of tensors instead",
        ],
    )


def test_a_dataclass_output_gets_what_trace_and_export_take_instead(suite):
    result = suite(
        """
        import dataclasses

        import pytest
        import torch

        @dataclasses.dataclass
        class Out:
            logits: torch.Tensor

        class Scorer(torch.nn.Module):
            def forward(self, x):
                return Out(x * 2)

        @pytest.mark.torchscript(mode=["trace", "export"], inputs=torch.randn(2, 3))
        def test_scorer():
            return Scorer()
        """
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "torchscript check of Scorer failed at conversion (mode='trace', device=cpu)",
            "hint: a trace takes and returns tensors and tuples, lists and dicts of them*",
        ],
    )
    expect_lines(
        result,
        [
            "torchscript check of Scorer failed at conversion (mode='export', device=cpu)",
            "hint: export flattens every output into tensors and does not know test_user.Out; "
            "*torch.export.register_dataclass(Out, serialized_type_name='test_user.Out')*",
        ],
    )
    assert "mode='script' compiles the Python source" not in result.stdout.str()
    # Registered without a name: the .pt2 cannot store it, and says how to name it. Named:
    # the fresh process, which has no user code, cannot rebuild it (and is not told to
    # import the user's own module).
    for registration, stage, expected in (
        (
            "torch.export.register_dataclass(Out)",
            "roundtrip",
            "hint: the exported program takes or returns test_user.Out, registered as a pytree "
            "node without the name a .pt2 stores it by: register it with "
            "torch.export.register_dataclass(Out, serialized_type_name='test_user.Out')*",
        ),
        (
            "torch.export.register_dataclass(Out, serialized_type_name='test_user.Out')",
            "fresh-process",
            "hint: the .pt2 stores its inputs or outputs as a Python class registered as a "
            "pytree node (by a library or your code)*",
        ),
    ):
        result = suite(
            f"""
            import dataclasses
            import pytest
            import torch

            @dataclasses.dataclass
            class Out:
                logits: torch.Tensor

            {registration}

            class Scorer(torch.nn.Module):
                def forward(self, x):
                    return Out(x * 2)

            @pytest.mark.torchscript(mode="export", inputs=torch.randn(2, 3))
            def test_scorer():
                return Scorer()
            """
        )
        result.assert_outcomes(failed=1)
        expect_lines(
            result,
            [f"torchscript check of Scorer failed at {stage} (mode='export', device=cpu)"],
        )
        expect_lines(result, [expected])
        assert "--ts-deploy-imports" not in result.stdout.str()
