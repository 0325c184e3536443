"""mode="onnx", mode="all", --ts-modes and the migration matrix."""

import pytest
from conftest import expect_lines

MODEL = """
import pytest
import torch
from models import Masked


class Gate(torch.nn.Module):
    '''Traces wrongly, scripts correctly, and export refuses its data-dependent branch.'''

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.linear(x)
        return self.linear(-x)


def positive_then_negative():
    return [torch.ones(2, 8), -torch.ones(3, 8)]


@pytest.mark.torchscript(mode="all", inputs=positive_then_negative)
def test_gate():
    return Gate().eval()


@pytest.mark.torchscript(mode="onnx", inputs=[
    {"x": torch.randn(2, 5, 8), "mask": torch.ones(2, 5)},
    {"x": torch.randn(3, 9, 8), "mask": torch.ones(3, 9)},
])
def test_onnx_dict(torchscript):
    report = torchscript.check(Masked().eval())
    assert report.artifact_path.endswith("onnx.onnx")
    assert all(roundtrip.ok for roundtrip in report.roundtrips)
    leaf = report.parity[0].leaves[0]
    assert (leaf.rtol, leaf.atol) == (1e-3, 1e-4)  # onnxruntime's default tolerances
"""


def test_all_modes_give_a_migration_matrix_with_one_line_reasons(suite):
    result = suite(MODEL, "-W", "ignore::pytest_torchscript.TraceHazardWarning")
    result.assert_outcomes(passed=2, failed=4)  # script and the onnx dict model pass
    expect_lines(
        result,
        [
            "migration matrix (per model: a verdict for each mode):",
            "  trace * script * export * onnx * model",
            "  FAIL parity  pass * FAIL conversion  FAIL conversion  Gate (test_user.py)",
            "  - * - * - * pass * Masked (test_user.py)",
        ],
    )
    expect_lines(
        result,
        [
            "  test_user.py::test_gate[export]: torch.export could not convert Gate (mode='export') "
            "(at test_user.py:*: if x.sum() > 0:)"
        ],
    )
    expect_lines(result, ["passed*onnx*ok ok*test_user.py::test_onnx_dict"])


def test_ts_modes_chooses_what_all_means(suite):
    result = suite(MODEL, "--ts-modes=script,export", "-v", "-k", "gate")
    output = result.stdout.str()
    assert "test_gate[script] PASSED" in output and "test_gate[export] FAILED" in output
    assert "test_gate[trace]" not in output and "test_gate[onnx]" not in output


def test_bad_ts_modes_is_a_usage_error(suite):
    result = suite(MODEL, "--ts-modes=trace,tflite")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ts-modes='trace,tflite': unknown mode 'tflite'; give a comma-separated list "
            "of trace, script, export, onnx, aoti, compile, tvm"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_onnx_skips_with_the_extra_named_when_onnxruntime_is_missing(suite, pytester):
    pytester.makeconftest(
        "import sys\nsys.modules['onnxruntime'] = None  # as if the extra were not installed\n"
    )
    result = suite(MODEL, "-rs", "-k", "onnx_dict")
    result.assert_outcomes(skipped=1)
    expect_lines(
        result,
        [
            "SKIPPED [1] test_user.py:*: mode='onnx' needs onnxruntime (not installed): "
            "pip install 'pytest-torchscript[onnx]'"
        ],
    )


def test_complex_inputs_and_outputs_cross_onnx_as_their_real_view_and_are_compared_as_complex(
    suite,
):
    """ONNX has no complex dtype: the exporter passes complex tensors as torch.view_as_real
    pairs. The check feeds and reads them that way, here and in the fresh process, and
    compares values, where it used to fail every FFT model on the shape."""
    result = suite(
        """
        import pytest
        import torch

        class Spectrum(torch.nn.Module):
            def forward(self, signal, phase):
                return torch.fft.rfft(signal), phase * 2j, signal.sum()

        def sets():
            return [
                (torch.randn(2, 16), torch.randn(3, dtype=torch.complex64)),
                (torch.randn(3, 16), torch.randn(5, dtype=torch.complex64)),
            ]

        @pytest.mark.torchscript(mode="onnx", inputs=sets)
        def test_spectrum(torchscript):
            report = torchscript.check(Spectrum().eval())
            spectrum, phase, total = report.parity[1].leaves[:3]  # then the inputs after
            assert spectrum.path == "output[0]" and spectrum.numel == 3 * 9
            assert spectrum.max_abs < 1e-3 and phase.max_abs < 1e-5
            assert [roundtrip.ok for roundtrip in report.roundtrips] == [True, True]
        """
    )
    result.assert_outcomes(passed=1)


def test_a_forward_taking_star_args_is_fed_every_argument_by_onnx(suite):
    result = suite(
        """
        import pytest
        import torch

        class Weighted(torch.nn.Module):
            def forward(self, *parts, scale: float = 1.0):
                return sum(part * (index + 1) for index, part in enumerate(parts)) * scale

        @pytest.mark.torchscript(
            mode="onnx",
            inputs=[(torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 4)),
                    (torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4))],
        )
        def test_weighted():
            return Weighted().eval()
        """
    )
    result.assert_outcomes(passed=1)


def test_an_input_set_in_another_dtype_says_the_onnx_graph_is_typed_by_the_example(suite):
    result = suite(
        """
        import pytest
        import torch

        @pytest.mark.torchscript(mode="onnx", inputs=[torch.randn(2, 4),
                                                      torch.randn(3, 4, dtype=torch.float64)])
        def test_two_dtypes():
            return Scale()

        class Scale(torch.nn.Module):
            def forward(self, x):
                return x * 2 + 1
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "the converted module raised on input set 1 (float64[3, 4]), where eager did not: *",
            "the module was converted with input set 0 (float32[2, 4])",
            "hint: in input set 1, args[0] is float64 (input set 0: float32): torch.onnx.export "
            "built the module for the example's dtypes; check each dtype the deployment feeds "
            "in its own check, or cast the inputs as the deployment does",
        ],
    )


def test_a_python_value_among_the_outputs_says_trace_and_onnx_return_tensors(suite):
    result = suite(
        """
        import pytest
        import torch

        class Summary(torch.nn.Module):
            def forward(self, x):
                return x.sum(), 3.5

        @pytest.mark.torchscript(mode=["trace", "script", "onnx"], inputs=torch.randn(2, 4))
        def test_summary():
            return Summary().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=2)  # script returns the float typed
    expect_lines(
        result,
        [
            "torchscript check of Summary failed at conversion (mode='trace', device=cpu)",
            "*",
            "hint: a trace returns tensors and tuples, lists and dicts of them, not Python "
            "values *return such a value as a tensor (torch.tensor(...))*",
        ],
    )
    expect_lines(
        result,
        [
            "hint: an ONNX model's outputs are tensors, and forward returns a Python constant *",
        ],
    )
