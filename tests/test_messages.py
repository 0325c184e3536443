"""Failure messages on the shapes of problems real models have: the right cause (never one
of the plugin's own frames), the root of an exception chain, lines bounded in length with the
whole text kept as an artifact, structures side by side, and hints that name what to do.

The pure text logic is tested in process (no torch); the rest through pytest itself."""

from __future__ import annotations

from conftest import assert_no_plugin_traceback, expect_lines

from pytest_torchscript.modes import export as exporting
from pytest_torchscript.text import first_lines, root_cause, strip_ansi


def test_the_plugin_s_own_frame_is_never_named_as_the_cause(monkeypatch):
    monkeypatch.setattr(
        exporting,
        "LAST_SIZE_DECISION",
        [("/venv/site-packages/torchvision/ops/boxes.py", 103, "_batched_nms_coordinate_trick")],
    )
    # torch names the innermost Python frame of a failed guard: the plugin's wrapper, in
    # whatever module it lives (the path is the real one, so moving the module is covered).
    for frame in (exporting.__file__, "/venv/site-packages/pytest_torchscript/exporting.py"):
        message = (
            "Could not guard on data-dependent expression Eq(u0, 0)\n"
            f"Caused by: ({frame}:218 in observed)"
        )
        scrubbed = exporting.without_plugin_frames(message)
        assert "pytest_torchscript" not in scrubbed
        assert "boxes.py:103 in _batched_nms_coordinate_trick)" in scrubbed


def test_quoted_lines_are_bounded_in_length_and_number():
    text = "short\n" + "s0*" * 2000 + "\n" + "\n".join(f"line {i}" for i in range(40))
    quoted = first_lines(text, 6, width=400)
    lines = quoted.splitlines()
    assert len(lines) == 7 and lines[-1] == "..."
    assert max(len(line) for line in lines) < 430
    assert lines[1].endswith("... (6000 characters)")


def test_the_root_of_an_exception_chain_is_found_and_colour_codes_go():
    try:
        try:
            raise ValueError("\x1b[31mconstant folding for node SplitToSequence\x1b[0m")
        except ValueError as inner:
            raise RuntimeError("An error occurred when running the PassManager pass") from inner
    except RuntimeError as outer:
        root = root_cause(outer)
    assert isinstance(root, ValueError)
    assert strip_ansi(str(root)) == "constant folding for node SplitToSequence"


def test_a_guard_that_assumes_size_one_never_happens_says_so():
    message = exporting.explain_rejected_input(
        RuntimeError("Guard failed: (x.size()[2] // 32) != 1"), 1, "(float32[1, 3, 32, 32])", []
    )
    assert "input set 1 (float32[1, 3, 32, 32]) does not satisfy it" in message
    assert (
        "torch.export assumes that a dynamic size, and every size computed from it, is "
        "never 0 or 1" in message
    )
    assert "Use input sets that keep it at least 2 (larger inputs)" in message
    assert "dynamic_shapes={'x': {2: torch.export.Dim('x_dim2', min=...)}}" in message


def test_an_onnx_optimizer_failure_quotes_its_root_cause_and_the_option_past_it(suite, pytester):
    pytester.makeconftest(
        """
        import pytest_torchscript.modes.onnx as convert

        def failing_export(model, args, kwargs, dynamic_shapes, options=None):
            if options and options.get("optimize") is False:
                return REAL(model, args, kwargs, dynamic_shapes, options)
            try:
                raise ValueError("\\x1b[31mconstant folding for node SplitToSequence failed: "
                                 + "s0*" * 1500 + "\\x1b[0m")
            except ValueError as inner:
                raise RuntimeError("An error occurred when running the PassManager pass") from inner

        REAL = convert.export_onnx
        convert.export_onnx = failing_export
        """
    )
    source = """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="onnx", inputs=torch.randn(2, 4), roundtrip=False
                                 OPTIONS)
        def test_model():
            return Affine().eval()
        """
    result = suite(source.replace("OPTIONS", ""), "--ts-artifacts=kept")
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Affine failed at conversion (mode='onnx', device=cpu)",
            "torch.onnx.export could not convert Affine (mode='onnx')",
        ],
    )
    expect_lines(
        result,
        [
            "root cause: ValueError: constant folding for node SplitToSequence failed: s0*s0*"
            "*... (4550 characters)",
            "hint: the ONNX exporter's optimizer failed after the model was exported; export "
            "without it: @pytest.mark.torchscript(onnx_options={'optimize': False})*",
        ],
    )
    assert "\x1b[" not in result.stdout.str()
    assert max(len(line) for line in result.stdout.lines) < 600
    (kept,) = (pytester.path / "kept").rglob("converter-error.txt")
    assert kept.read_text().count("s0*") == 1500
    assert_no_plugin_traceback(result)
    fixed = suite(source.replace("OPTIONS", ', onnx_options={"optimize": False}'))
    fixed.assert_outcomes(passed=1)


def test_different_output_structures_are_shown_side_by_side(suite):
    result = suite(
        """
        from typing import Dict, List, Tuple

        import torch

        class Detector(torch.nn.Module):
            \"\"\"Like torchvision's detectors: scripted, they return (losses, detections).\"\"\"

            def forward(self, x):
                detections: List[Dict[str, torch.Tensor]] = [{"boxes": x[:, :4]}]
                if torch.jit.is_scripting():
                    losses: Dict[str, torch.Tensor] = {}
                    return losses, detections
                return detections

        def test_detector(torchscript):
            torchscript.check(Detector(), torch.randn(3, 6), mode="script", roundtrip=False)
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "*eager returned 1 items, converted 2:",
            "*  eager:     list[dict{boxes: float32[3, 4]}]",
            "*  converted: tuple(dict{}, list[dict{boxes: float32[3, 4]}])",
        ],
    )


def test_a_key_value_cache_in_the_output_fails_at_eager_before_any_conversion(suite):
    """GPT-2's shape of the problem: a generative model returns transformers' DynamicCache
    beside its logits by default. Nothing converted, so the stage is eager, not parity, and
    the hint gives the form that works in every mode."""
    result = suite(
        """
        import pytest
        import torch
        from transformers.cache_utils import DynamicCache

        from types import SimpleNamespace

        class TinyLM(torch.nn.Module):
            def forward(self, x):
                return {"logits": x * 2, "past_key_values": DynamicCache()}

        @pytest.mark.torchscript(mode=["trace", "export"], inputs=torch.randn(2, 3))
        def test_lm():
            return TinyLM()

        class Decoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.config = SimpleNamespace(use_cache=True)  # a copy, as T5's decoder keeps

        class TinySeq2Seq(TinyLM):
            def __init__(self):
                super().__init__()
                self.config = SimpleNamespace(use_cache=True)
                self.decoder = Decoder()

        @pytest.mark.torchscript(inputs=torch.randn(2, 3))
        def test_seq2seq():
            model = TinySeq2Seq()
            model.config.use_cache = False  # what the hint says, and not enough here
            return model
        """
    )
    result.assert_outcomes(failed=3)
    for mode in ("trace", "export"):
        expect_lines(
            result,
            [
                f"torchscript check of TinyLM failed at eager (mode='{mode}', device=cpu)",
                "the model's output cannot be checked (found before any conversion): input set "
                "0: output['past_key_values'] is a transformers.cache_utils.DynamicCache*",
                "hint: DynamicCache is transformers' key/value cache*build the model from a "
                "config with use_cache=False*or set model.config.use_cache = False*",
            ],
        )
    expect_lines(
        result,
        [
            "torchscript check of TinySeq2Seq failed at eager (mode='trace', device=cpu)",
            "*hint: DynamicCache is transformers' key/value cache*model.config.use_cache is "
            "False, but model.decoder.config (a copy of the config that a submodule keeps, as "
            "T5's decoder does) still has use_cache = True: build the model from a config with "
            "use_cache=False*or set it on that config too*",
        ],
    )
    assert "could not convert" not in result.stdout.str()
    message = result.stdout.str().split("failed at eager")[1].split("____")[0]
    assert len(message) < 1200, message
    assert_no_plugin_traceback(result)


def test_a_transformers_model_that_cannot_be_scripted_gets_the_modes_that_work(suite):
    """transformers models fail to script deep inside the library (GPT-2's "Failed to get
    source for GPT2Config.__init__"): no decorator of the user's fixes that, so the hint
    names the modes that do work instead of @torch.jit.ignore."""
    result = suite(
        """
        import pytest
        import torch

        class TinyModel(torch.nn.Module):
            def forward(self, x, **kwargs):  # **kwargs: script refuses it, as in transformers
                return x * 2

        TinyModel.__module__ = "transformers.models.tiny.modeling_tiny"

        @pytest.mark.torchscript(mode="script", inputs=torch.randn(2, 3))
        def test_tiny():
            return TinyModel()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of TinyModel failed at conversion (mode='script', device=cpu)",
            "hint: transformers models do not support torch.jit.script*mode='trace', 'export' "
            "or 'onnx'*skip={'script': *}",
        ],
    )
    assert "@torch.jit.ignore" not in result.stdout.str()
    assert_no_plugin_traceback(result)


def test_an_onnx_export_failure_quotes_torch_export_s_reason_once_without_boilerplate(suite):
    """The ONNX exporter wraps a torch.export failure in its own preamble, next steps, an
    exception summary and debugging pointers; the message keeps the reason, the user's line
    and the hint, once each."""
    result = suite(
        """
        import pytest
        import torch

        class Gated(torch.nn.Module):
            def forward(self, x):
                if x.norm() > 4.0:
                    return x * 2
                return x

        @pytest.mark.torchscript(mode="onnx", inputs=torch.randn(2, 8))
        def test_gated():
            return Gated()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Gated failed at conversion (mode='onnx', device=cpu)",
            "torch.onnx.export could not convert Gated (mode='onnx')",
            "  at test_user.py:6: if x.norm() > 4.0:",
            "  torch.export failed (step 1 of 3 of the ONNX export):",
            "*Could not guard on data-dependent expression*",
        ],
    )
    expect_lines(result, ["hint: export cannot follow a branch on tensor values; *torch.cond*"])
    text = result.stdout.str()
    message = text.split("failed at conversion")[1].split("hint: ")[0]
    for noise in ("Next steps", "## Exception summary", "docs.google.com", "root cause:"):
        assert noise not in message, message
    assert message.count("Could not guard on data-dependent expression") == 1, message
    assert len(message.splitlines()) <= 14, message
    assert_no_plugin_traceback(result)


def test_a_registered_cache_is_compared_by_its_tensors_and_its_deployment_gap_named(suite):
    """With transformers' pytree registration the cache is compared leaf by leaf (onnx
    passes); a .pt2 that returns it cannot load where transformers is absent, and the hint
    says how to leave the cache out."""
    result = suite(
        """
        import pytest
        import torch
        from transformers.cache_utils import DynamicCache
        from transformers.integrations.executorch import register_dynamic_cache_export_support

        register_dynamic_cache_export_support()

        class TinyLM(torch.nn.Module):
            def forward(self, x):
                cache = DynamicCache()
                cache.update(x.unsqueeze(1), x.unsqueeze(1) * 2, 0)
                return x * 2, cache

        @pytest.mark.torchscript(mode=["export", "onnx"], inputs=torch.randn(1, 2, 4, 8))
        def test_lm():
            return TinyLM()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of TinyLM failed at fresh-process (mode='export', device=cpu)",
            "*NotImplementedError: Deserializing transformers.cache_utils.DynamicCache in "
            "pytree is not registered.",
            "hint: the .pt2 returns transformers' key/value cache*use_cache=False*or set "
            "model.config.use_cache = False before returning it*",
            "passed *onnx *0 *0 *test_user.py::test_lm[onnx]",
        ],
    )
    assert_no_plugin_traceback(result)


def test_a_trace_a_library_froze_names_the_error_where_it_raised_and_the_library_line(
    suite, pytester
):
    """GPT-2's shape of the problem: library code turns the example's batch size into a
    Python number while tracing, and the traced module fails on another batch inside
    TorchScript's interpreter. The message leads with the error itself and where it was
    raised (not 20 lines of traceback), and names the library line that froze the size."""
    library = pytester.mkdir("site-packages")
    (library / "fakelib.py").write_text(
        "import torch\n"
        "\n"
        "def pad(x):\n"
        "    count = int(x.sum() * 0 + x.shape[0])\n"
        "    return torch.cat([x, torch.zeros(count, 2)], dim=1)\n"
    )
    pytester.makeconftest(
        "import pathlib, sys\n"
        "sys.path.insert(0, str(pathlib.Path(__file__).parent / 'site-packages'))\n"
    )
    result = suite(
        """
        import pytest
        import torch
        import fakelib

        class Padded(torch.nn.Module):
            def forward(self, x):
                return fakelib.pad(x) * 2

        @pytest.mark.torchscript(mode="trace", inputs=[torch.randn(1, 3), torch.randn(2, 3)])
        def test_padded():
            return Padded()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Padded failed at parity (mode='trace', device=cpu)",
            "the converted module raised on input set 1 (float32[2, 3]), where eager did not: "
            "RuntimeError: *Sizes of tensors must match*",
            "  raised in the converted module at fakelib.py:5 in pad",
            "the module was converted with input set 0 (float32[1, 3])",
            "the trace raised TracerWarnings in libraries (not your code)*",
            "  fakelib.py:4: count = int(x.sum() * 0 + x.shape[0])",
            "hint: the traced module holds only for inputs like the example*",
        ],
    )
    assert "Traceback of TorchScript" not in result.stdout.str()
    assert_no_plugin_traceback(result)


def test_a_computed_size_that_becomes_one_is_explained_with_the_dimension_to_range(suite, pytester):
    """inception_v3's and raft's shape of the problem: torch.export assumes a size computed
    from a dynamic one is never 1, and the smaller input set makes it 1."""
    result = suite(
        """
        import pytest
        import torch

        class Pooled(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.avg_pool1d(x, 4).squeeze(-1) * 2

        @pytest.mark.torchscript(
            mode="export", inputs=[torch.randn(2, 3, 8), torch.randn(2, 3, 4)]
        )
        def test_pooled():
            return Pooled()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Pooled failed at conversion (mode='export', device=cpu)",
            "export narrowed a dynamic dimension: the exported program requires "
            "x.size()[2] // 4 != 1, and input set 1 (float32[2, 3, 4]) does not satisfy it",
            "hint: torch.export assumes that a dynamic size, and every size computed from it, "
            "is never 0 or 1; input set 1 makes the size in `x.size()[2] // 4 != 1` 1 (or 0). "
            "Use input sets that keep it at least 2 (larger inputs)*"
            "dynamic_shapes={'x': {2: torch.export.Dim('x_dim2', min=...)}}",
        ],
    )
    assert_no_plugin_traceback(result)


def test_onnx_tolerances_pass_runtime_rounding_and_fail_a_real_divergence(suite, pytester):
    """onnxruntime's rounding (measured up to 2.3e-5 on real models) passes the defaults even
    on outputs near zero, where rtol does not help; a difference the size of the outputs
    fails. The runtime's outputs are perturbed here by a known amount."""
    pytester.makeconftest(
        """
        import onnxruntime

        NOISE = {"value": 0.0}
        _run = onnxruntime.InferenceSession.run

        def perturbed(self, *args, **kwargs):
            return [output + NOISE["value"] for output in _run(self, *args, **kwargs)]

        onnxruntime.InferenceSession.run = perturbed
        """
    )
    result = suite(
        """
        import pytest
        import torch
        from conftest import NOISE

        class Tiny(torch.nn.Module):
            def forward(self, x):
                return x * 1e-3

        @pytest.mark.torchscript(mode="onnx", inputs=torch.randn(4, 8), roundtrip=False)
        @pytest.mark.parametrize("noise", [3e-5, 0.5])
        def test_noise(noise):
            NOISE["value"] = noise
            return Tiny()
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Tiny failed at parity (mode='onnx', device=cpu)",
            "*32 of 32 elements (100%) differ beyond rtol=0.001, atol=0.0001",
        ],
    )
    expect_lines(result, ["passed *onnx *3e-05 *test_user.py::test_noise[3e-05]"])
    assert_no_plugin_traceback(result)


def test_a_model_onnxruntime_cannot_load_is_not_called_an_export_failure(suite, pytester):
    """The export succeeded and onnxruntime refused the model (no bfloat16 Gemm on the CPU,
    for one): the message names the runtime and what to do, not torch.onnx.export."""
    pytester.makeconftest(
        """
        import onnxruntime

        class Refusing:
            def __init__(self, *args, **kwargs):
                raise RuntimeError(
                    "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an "
                    "implementation for Gemm(13) node with name 'node_linear'"
                )

        onnxruntime.InferenceSession = Refusing
        """
    )
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="onnx", inputs=torch.randn(2, 4))
        def test_refused():
            return Affine().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Affine failed at conversion (mode='onnx', device=cpu)",
            "onnxruntime could not load the ONNX model exported from Affine (mode='onnx'; the "
            "export itself succeeded)",
            "  RuntimeError: [ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an "
            "implementation for Gemm(13)*",
            "hint: onnxruntime has no kernel for an operator in this dtype on this device*",
        ],
    )
    result.stdout.no_fnmatch_line("*torch.onnx.export could not convert*")
    assert_no_plugin_traceback(result)


def test_a_python_value_that_varies_between_input_sets_is_named_as_recorded_by_the_converter(
    suite,
):
    # export and onnx record a float argument as a constant of the program: onnx then computes
    # with the example's value (a plain numeric mismatch), export refuses the other value (a
    # guard that reads like a dimension); script compiles it as an argument.
    result = suite(
        """
        import pytest
        import torch

        class Scaled(torch.nn.Module):
            def forward(self, x, scale: float = 1.0):
                return x * scale

        @pytest.mark.torchscript(
            mode=["export", "onnx", "script"],
            inputs=[{"x": torch.ones(2, 3), "scale": 3.0}, {"x": torch.ones(2, 3), "scale": 4.0}],
            roundtrip=False,
        )
        def test_scaled():
            return Scaled().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=2)
    for mode, converter in (("export", "torch.export"), ("onnx", "torch.onnx.export")):
        expect_lines(
            result,
            [
                f"*check of Scaled failed at parity (mode='{mode}'*",
                "input set 1 passes scale=4.0 (input set 0: 3.0)",
                f"{converter} records the Python values (numbers, flags, strings, None) of the "
                "example it converts as constants*",
                "hint: pass a value that varies in deployment as a tensor*mode='script'*",
            ],
        )
    assert "narrowed a dynamic dimension" not in result.stdout.str()
    assert_no_plugin_traceback(result)


def test_an_optional_argument_none_in_one_set_and_a_tensor_in_another_is_named(suite):
    # export records mask=None from the example and computes without the mask ever after: a
    # parity failure that says why; trace cannot take None at all.
    result = suite(
        """
        from typing import Optional

        import pytest
        import torch

        class Masked(torch.nn.Module):
            def forward(self, x, mask: Optional[torch.Tensor] = None):
                return x if mask is None else x * mask

        @pytest.mark.torchscript(
            mode=["export", "trace", "script"],
            inputs=[{"x": torch.ones(2, 3), "mask": None},
                    {"x": torch.ones(2, 3), "mask": torch.full((2, 3), 2.0)}],
            roundtrip=False,
        )
        def test_masked():
            return Masked().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=2)
    expect_lines(
        result,
        [
            "*check of Masked failed at parity (mode='export'*",
            "input set 1 passes mask=float32[2, 3] (input set 0: None)",
            "torch.export records the Python values (numbers, flags, strings, None) *",
            "hint: an optional argument that is None in one input set and a tensor in another "
            "is two programs to a converter: check each form in its own check *",
        ],
    )
    expect_lines(
        result,
        [
            "*check of Masked failed at conversion (mode='trace'*",
            "*",
            "hint: a trace takes tensors only, and an input set passes None *",
        ],
    )
    assert_no_plugin_traceback(result)
