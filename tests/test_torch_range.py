"""What every torch the plugin declares must do (``pyproject.toml``: torch >= 2.4): the suite CI
runs on the oldest supported torch too (``make test-oldest``), covering every mode and the round
trips. A mode the installed torch lacks skips with what it lacks; nothing fails or crashes for
want of an API. Expectations follow the installed torch's version (read from its metadata, not
imported: the user suites run in subprocesses)."""

from __future__ import annotations

import json
import re
import shutil
from importlib.metadata import version

import pytest
from conftest import assert_no_plugin_traceback, expect_lines, line_of

TORCH = tuple(int(part) for part in re.findall(r"\d+", version("torch"))[:2])
needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("c++", "g++", "clang++")), reason="no C++ compiler here"
)

MLP = """
import pytest
import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(8, 16)
        self.out = torch.nn.Linear(16, 4)

    def forward(self, x, mask):
        hidden = self.hidden(x).relu() * mask.unsqueeze(-1)
        return {"logits": self.out(hidden).sum(1), "hidden": hidden}


SETS = [
    {"x": torch.randn(2, 5, 8), "mask": torch.ones(2, 5)},
    {"x": torch.randn(3, 7, 8), "mask": torch.ones(3, 7)},
]

@pytest.mark.torchscript(mode=MODES, inputs=SETS, compile_options={"backend": "aot_eager"})
def test_mlp():
    return MLP().eval()
"""


@needs_compiler
def test_every_mode_on_this_torch_passes_or_says_what_the_torch_lacks(
    suite, pytester, monkeypatch, cpp_cache
):
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CACHE", str(cpp_cache))
    modes = ["trace", "script", "export", "onnx", "compile", "tvm"] + (
        ["aoti"] if TORCH < (2, 6) else []
    )
    result = suite(MLP.replace("MODES", repr(modes)), "--ts-report=report.json", cpp=True)
    checks = {
        check["mode"]: check
        for check in json.loads((pytester.path / "report.json").read_text())["checks"]
    }
    for mode in ("trace", "script"):  # LibTorch in C++ runs TorchScript on every torch
        assert checks[mode]["verdict"] == "passed", checks[mode]["failure"]
        assert [rt["ok"] for rt in checks[mode]["roundtrips"]] == [True, True, True]
        assert not any(rt["skipped"] for rt in checks[mode]["roundtrips"])
    assert checks["export"]["verdict"] == "passed", checks["export"]["failure"]
    if TORCH < (2, 5):
        assert "needs the ONNX exporter built on torch.export" in checks["onnx"]["skipped"]
        assert "it came with torch 2.5" in checks["onnx"]["skipped"]
    else:
        assert checks["onnx"]["verdict"] == "passed", checks["onnx"]["failure"]
    assert checks["compile"]["verdict"] == "passed", checks["compile"]["failure"]
    cache = [rt["skipped"] for rt in checks["compile"]["roundtrips"] if rt["where"] != "C++"]
    if TORCH < (2, 7):
        assert all("needs torch.compiler.save_cache_artifacts" in (s or "") for s in cache)
        expect_lines(
            result,
            ["  skipped in this process and in a fresh process (test_user.py::test_mlp[compile]): "
             "a compile cache round trip needs torch.compiler.save_cache_artifacts*"],
        )  # fmt: skip
    else:
        assert cache == [None, None]
    if TORCH < (2, 6):
        assert "mode='aoti' needs AOTInductor packages" in checks["aoti"]["skipped"]
        assert "mode='tvm' needs torch.export's Dim.DYNAMIC" in checks["tvm"]["skipped"]
        assert "it came with torch 2.6" in checks["tvm"]["skipped"]
    else:
        assert checks["tvm"]["verdict"] == "passed", checks["tvm"]["failure"]
    skipped = (TORCH < (2, 5)) + 2 * (TORCH < (2, 6))
    result.assert_outcomes(passed=len(modes) - skipped, skipped=skipped)
    assert_no_plugin_traceback(result)


FROZEN = """
import pytest
import torch


class Branchy(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 5


class Norm(torch.nn.Module):
    def forward(self, x):
        return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.torchscript(mode="trace", inputs=[torch.ones(2, 3), -torch.ones(2, 3)])
def test_frozen():
    return Branchy()


@pytest.mark.torchscript(mode="script", inputs=torch.randn(2, 3))
def test_unscriptable():
    return Norm()


def test_unscriptable_again(torchscript):
    torchscript.check(Norm(), torch.randn(2, 3), mode="script")
"""


def test_a_frozen_branch_and_an_unscriptable_model_fail_with_the_real_reason(suite):
    """The frozen branch is named at its line. ``x.norm(dim=-1)`` cannot be scripted (torch:
    "Argument p not provided"), and a second script of the same class in one session makes
    torch say "Can't redefine method: forward" instead (2.4 and 2.14 alike): both checks must
    give torch's real reason."""
    result = suite(FROZEN, name="test_range")
    result.assert_outcomes(failed=3)
    expect_lines(
        result,
        [f"*test_range.py:{line_of(FROZEN, 'if x.sum() > 0:')}: the trace recorded the True arm "
         f"(input set 0); input set 1 takes the False arm*"],
    )  # fmt: skip
    text = result.stdout.str()
    assert text.count("Argument p not provided") >= 2, text
    assert "torch.jit.script failed on Norm earlier in this session for this reason" in text
    assert_no_plugin_traceback(result)
