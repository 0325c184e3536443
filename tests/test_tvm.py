"""mode="tvm": an Apache TVM build of the model checked on every input set (one build for every
batch size), its .so reloaded here and in a fresh process, an operator TVM cannot import named
at the user's line, a build error quoted with the target to check, the missing extra and a
fresh process that cannot load the library said in the user's terms."""

from __future__ import annotations

import json

from conftest import assert_no_plugin_traceback, expect_lines, line_of

NETS = '''
import torch


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        feat = torch.relu(self.conv(x))
        return {"feat": feat, "logits": self.head(feat.mean((2, 3)))}


class Spectrum(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        return torch.fft.rfft(y).abs()


class NonZero(torch.nn.Module):
    def forward(self, x):
        return torch.nonzero(x > 0).float().sum() + x.sum()
'''

TWO_BATCHES = "inputs=[torch.randn(1, 3, 16, 16), torch.randn(8, 3, 16, 16)]"


def _report(pytester):
    return {
        check["test_id"].split("::")[-1]: check
        for check in json.loads((pytester.path / "report.json").read_text())["checks"]
    }


def test_a_conv_net_with_a_dict_output_passes_at_two_batch_sizes_from_one_build(suite, pytester):
    pytester.makepyfile(nets=NETS)
    result = suite(
        f"""
        import pytest
        import torch
        from nets import ConvNet

        @pytest.mark.torchscript(mode="tvm", {TWO_BATCHES})
        def test_convnet():
            return ConvNet().eval()
        """,
        "--ts-report=report.json",
        "--ts-artifacts=artifacts",
        cpp=True,
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["passed*tvm*ok ok skip*test_user.py::test_convnet"])
    check = _report(pytester)["test_convnet"]
    assert check["mode"] == "tvm"
    assert len(check["parity"]) == 2 and all(p["ok"] for p in check["parity"])
    assert check["conversion_seconds"] > 0  # the build, in the convert column
    here, fresh, cpp = check["roundtrips"]
    assert (here["where"], fresh["where"], cpp["where"]) == ("in-process", "fresh process", "C++")
    assert here["ok"] and fresh["ok"] and len(fresh["parity"]) == 2
    assert "a .so file from mode='tvm' is loaded by another runtime" in cpp["skipped"]
    assert cpp["ok"] is False  # skipped is never reported as ok
    libraries = list((pytester.path / "artifacts").rglob("*.so"))
    assert libraries and libraries[0].stat().st_size > 0  # the deployable library, kept


def test_an_operator_tvm_cannot_import_is_named_at_the_users_line(suite, pytester):
    pytester.makepyfile(nets=NETS)
    result = suite(
        """
        import pytest
        import torch
        from nets import NonZero, Spectrum

        @pytest.mark.parametrize("model", [Spectrum, NonZero])
        @pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 8))
        def test_unsupported(model):
            return model()
        """
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "torchscript check of Spectrum failed at conversion (mode='tvm', device=cpu)",
            "TVM's PyTorch frontend could not import Spectrum (mode='tvm'; torch.export "
            "captured it)",
            "  TVM has no conversion for 1 operator(s) the model uses:",
            f"  - aten._fft_r2c.default* at nets.py:{line_of(NETS, 'torch.fft.rfft')}: "
            "return torch.fft.rfft(y).abs()",
            "hint: keep these operators out of the part TVM compiles*",
        ],
    )
    expect_lines(
        result,
        [f"  - aten.nonzero.default at nets.py:{line_of(NETS, 'torch.nonzero')}: *"],
    )
    assert_no_plugin_traceback(result)


def test_a_build_error_quotes_tvm_and_names_the_target_option(suite, pytester):
    pytester.makepyfile(nets=NETS)
    result = suite(
        """
        import pytest
        import torch
        from nets import ConvNet

        @pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 3, 8, 8),
                                 tvm_target={"kind": "llvm", "mtriple": "bogus-unknown-none"})
        def test_bad_target():
            return ConvNet().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "tvm.compile could not build ConvNet (mode='tvm'; TVM imported the exported "
            "program)",
            '  *No available targets are compatible with triple "bogus-unknown-none"*',
            "hint: check the target (tvm_target=*",
        ],
    )
    assert_no_plugin_traceback(result)
    refused = suite(
        """
        import pytest
        import torch

        @pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 3), tvm_target=3)
        def test_not_a_target():
            return torch.nn.Linear(3, 2)
        """
    )
    refused.assert_outcomes(errors=1)
    expect_lines(refused, ["*tvm_target*3 is not a target string or a dict with a 'kind'*"])


def test_without_the_extra_the_mode_skips_with_the_install_command(suite, pytester):
    pytester.makeconftest(
        "import sys\nsys.modules['tvm'] = None  # as if the extra were not installed\n"
    )
    pytester.makepyfile(nets=NETS)
    result = suite(
        """
        import pytest
        import torch
        from nets import ConvNet

        @pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 3, 8, 8))
        def test_convnet():
            return ConvNet().eval()
        """,
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    expect_lines(
        result,
        [
            "SKIPPED [1] test_user.py:*: mode='tvm' needs Apache TVM (not installed): "
            "pip install 'pytest-torchscript[tvm]'"
        ],
    )


def test_a_fresh_process_that_cannot_load_the_library_fails_the_round_trip_saying_why(
    suite, pytester, tmp_path
):
    # the deployment's Python has a broken TVM: only the fresh process imports it from there
    broken = tmp_path / "deployment" / "tvm"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(
        "raise ImportError('this TVM was built for another CPU')\n"
    )
    pytester.makepyfile(nets=NETS)
    pytester.makeconftest(
        f"import os\nos.environ['PYTHONPATH'] = {str(broken.parent)!r}\n"
    )
    result = suite(
        """
        import pytest
        import torch
        from nets import ConvNet

        @pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 3, 8, 8))
        def test_convnet():
            return ConvNet().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of ConvNet failed at fresh-process*(mode='tvm', device=cpu)",
            "*this TVM was built for another CPU*",
        ],
    )
    assert_no_plugin_traceback(result)
