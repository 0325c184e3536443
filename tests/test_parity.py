"""Output parity: the bugs other checkers miss, and failure messages that say where and how much."""

from conftest import expect_lines


def test_frozen_branch_fails_naming_input_set_path_figures_and_the_branch_line(suite):
    result = suite(
        """
        import pytest
        import torch
        from models import Branchy

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.ones(2, 4), -torch.ones(2, 4)])
        def test_branchy():
            return Branchy()
        """
    )
    result.assert_outcomes(passed=1, failed=1)  # script keeps the branch; trace froze it
    expect_lines(
        result,
        [
            "torchscript check of Branchy failed at parity (mode='trace', device=cpu)",
            "the converted module differs from eager on 1 of 2 input set(s)",
            "input set 1, output:",
            "  8 of 8 elements (100%) differ beyond rtol=1.3e-06, atol=1e-05",
            "  max abs error 4, max rel error 0.6667",
            "  worst element at index (0, 0): eager -6.0, converted -2.0",
            "  would pass with atol=4 (with rtol=1.3e-06) or rtol=0.67 (with atol=1e-05)",
            "the trace replays the path of input set 0, and other input sets take another:",
            "  models.py:9: the trace recorded the True arm (input set 0); input set 1 takes the "
            "False arm  `if x.sum() > 0:`",
        ],
    )
    expect_lines(result, ["failed (parity)*trace*test_user.py::test_branchy[trace]"])


def test_model_writing_into_its_inputs_passes_and_its_writes_are_compared(suite):
    result = suite(
        """
        import pytest
        import torch

        class InPlace(torch.nn.Module):
            def forward(self, x):
                x.mul_(2)          # writes into the caller's tensor
                return x.add_(1).sum(dim=1)

        class WritesOnlyInEager(torch.nn.Module):
            def forward(self, x):
                if torch.jit.is_tracing() or torch.jit.is_scripting():
                    return x + 1
                x.add_(1)
                return x.clone()

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.ones(2, 3), torch.arange(6.0).view(2, 3)])
        def test_in_place():
            return InPlace()

        @pytest.mark.torchscript(mode="script", inputs=torch.ones(2, 3))
        def test_writes_differ():
            return WritesOnlyInEager()
        """
    )
    result.assert_outcomes(passed=2, failed=1)
    expect_lines(
        result,
        [
            "*test_writes_differ*",
            "input set 0, args[0] (input, after the call):",
            "  6 of 6 elements (100%) differ beyond*",
        ],
    )


def test_model_left_in_train_mode_with_dropout_passes_with_one_warning(suite):
    result = suite(
        """
        import pytest
        import torch

        class WithDropout(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(8, 8)
                self.dropout = torch.nn.Dropout(0.5)

            def forward(self, x):
                return self.dropout(self.linear(x))

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(4, 8))
        def test_dropout():
            model = WithDropout()
            assert model.training
            return model

        def test_training_flags_are_restored(torchscript):
            model = WithDropout()
            report = torchscript.check(model, torch.randn(4, 8))
            assert report.was_training and model.training and model.dropout.training
        """
    )
    result.assert_outcomes(passed=3)
    expect_lines(
        result,
        [
            "*TrainModeWarning: WithDropout was in train mode, where its Dropout behave "
            "differently; pytest-torchscript checked it in eval mode, as it is deployed*",
        ],
    )
    assert result.stdout.str().count("TrainModeWarning: WithDropout") == 1


def test_nondeterministic_model_is_reported_as_such_not_as_a_conversion_bug(suite):
    result = suite(
        """
        import pytest
        import torch

        class Noisy(torch.nn.Module):
            def forward(self, x):
                return {"clean": x * 2, "noisy": x + torch.rand_like(x)}

        class Counting(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("calls", torch.zeros(()))
                self.register_buffer("scale", torch.ones(()))

            def forward(self, x):
                self.calls += 1
                return x * self.calls * self.scale

        @pytest.mark.torchscript(inputs=torch.ones(3))
        def test_noisy():
            return Noisy()

        @pytest.mark.torchscript(inputs=torch.ones(3))
        def test_counting():
            return Counting()
        """
    )
    result.assert_outcomes(failed=2)
    # a model that writes to its own buffers is told so: the fix is not about randomness
    expect_lines(
        result,
        [
            "torchscript check of Counting failed at determinism (mode='trace', device=cpu)",
            "the eager model changes its own state: two eager runs on input set 0 differ at "
            "output (max abs difference 1), and forward wrote to buffer 'calls', so every run "
            "starts from another state*update them only when self.training*",
        ],
    )
    expect_lines(
        result,
        [
            "torchscript check of Noisy failed at determinism (mode='trace', device=cpu)",
            "the eager model is not deterministic: two eager runs on input set 0 differ at "
            "output['noisy'] (max abs difference *), so a conversion cannot be judged against "
            "it.*",
        ],
    )


def test_dict_and_namedtuple_outputs_pass_and_mismatches_name_the_nested_path(suite):
    result = suite(
        """
        import collections
        import pytest
        import torch

        Pair = collections.namedtuple("Pair", "first second")

        class DictOut(torch.nn.Module):
            def forward(self, x):
                return {"logits": x * 3, "shifted": x - 1}

        class TupleOut(torch.nn.Module):
            def forward(self, x):
                return Pair(x + 1, x * x)

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.randn(2, 3), torch.randn(4, 3)])
        def test_dict():
            return DictOut()

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(2, 3))
        def test_namedtuple():
            return TupleOut()

        def drifted(x):
            return (x + 1, x * x + 0.5)

        def test_nested_mismatch_names_path(torchscript):
            torchscript.assert_parity(TupleOut(), torch.jit.script(drifted), torch.ones(2, 2))
        """,
        "-W",
        "ignore::DeprecationWarning",
        "-W",
        "ignore::FutureWarning",
    )
    result.assert_outcomes(passed=4, failed=1)
    expect_lines(
        result,
        [
            "E * input set 0, output.second:",
            "E *   4 of 4 elements (100%) differ beyond rtol=1.3e-06, atol=1e-05",
            "E *   worst element at index (0, 0): eager 1.0, converted 1.5",
        ],
    )


def test_structure_shape_dtype_and_key_differences_are_reported_as_such(suite):
    result = suite(
        """
        import torch

        def reference(x):
            return {"a": x, "b": x.float(), "c": x[:1], "d": [x, x]}

        def converted(x):
            return {"a": x, "b": x.double(), "c": x, "d": [x], "e": x}

        def test_structure(torchscript):
            torchscript.assert_parity(reference, converted, torch.ones(2, 2))
        """
    )
    expect_lines(
        result,
        [
            "E * output['b']:",
            "E *   dtype differs: eager torch.float32, converted torch.float64",
            "E * output['c']:",
            "E *   shape differs: eager (1, 2), converted (2, 2)",
            "E * output['d']:",
            "E *   eager returned 2 items, converted 1:",
            "E * output['e']:",
            "E *   missing in eager, present in converted",
        ],
    )


def test_nan_in_the_same_places_is_equal_and_tolerances_can_be_loosened(suite):
    result = suite(
        """
        import pytest
        import torch

        class WithNaN(torch.nn.Module):
            def forward(self, x):
                return torch.log(x)   # NaN for negative inputs, -inf for zero

        @pytest.mark.torchscript(inputs=torch.tensor([-1.0, 0.0, 2.0]))
        def test_nan():
            return WithNaN()

        def test_loosened(torchscript):
            reference = lambda x: x
            converted = lambda x: x + 1e-3
            with pytest.raises(Exception, match="would pass with atol=0.001"):
                torchscript.assert_parity(reference, converted, torch.ones(3))
            torchscript.assert_parity(reference, converted, torch.ones(3), atol=2e-3)
        """
    )
    result.assert_outcomes(passed=2)


def test_padding_zeroed_by_the_encoder_fast_path_is_named_with_the_fix(suite):
    """nn.TransformerEncoder in eval mode under no_grad packs a padded batch into a nested
    tensor and returns 0 at the padded positions; export, ONNX and a reloaded script compute
    them. The failure is real (the deployed model returns other values there), but a user
    needs to know that only the padding differs, and how to make the forms agree."""
    result = suite(
        """
        import pytest
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self, nested):
                super().__init__()
                torch.manual_seed(0)
                layer = torch.nn.TransformerEncoderLayer(
                    d_model=8, nhead=2, dim_feedforward=16, batch_first=True
                )
                self.enc = torch.nn.TransformerEncoder(
                    layer, num_layers=1, enable_nested_tensor=nested
                )

            def forward(self, x, mask):
                return self.enc(x, src_key_padding_mask=mask)

        def padded():
            torch.manual_seed(0)
            mask = torch.zeros(2, 5, dtype=torch.bool)
            mask[1, 3:] = True
            other = torch.zeros(3, 4, dtype=torch.bool)
            other[0, 2:] = True
            return [(torch.randn(2, 5, 8), mask), (torch.randn(3, 4, 8), other)]

        @pytest.mark.torchscript(mode="export", inputs=padded)
        @pytest.mark.parametrize("nested", [True, False])
        def test_encoder(nested):
            return Encoder(nested).eval()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Encoder failed at parity (mode='export', device=cpu)",
            "*",
            "*worst element at index *: eager 0.0, converted *",
            "*",
            "every element that differs is exactly 0 in eager: nn.TransformerEncoder (`enc`) "
            "takes its nested-tensor fast path*",
            "hint: if those positions are padding, build the encoder with "
            "enable_nested_tensor=False*",
        ],
    )
    expect_lines(result, ["passed*export*test_user.py::test_encoder[False]"])
