"""mode="aoti": torch.export, AOTInductor compiles a package, parity in Python, the fresh
process and the C++ runner; dynamic batches; a session-wide package cache. Each compile costs
tens of seconds of CPU, so there are two (and one that never compiles)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import expect_lines

pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("c++", "g++", "clang++")), reason="no C++ compiler here"
)


def test_aoti_checks_a_clean_model_and_a_dynamic_batch_everywhere(
    suite, pytester, monkeypatch, cpp_cache
):
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CACHE", str(cpp_cache))
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="aoti", inputs=[torch.randn(3, 4), torch.randn(7, 4)])
        def test_dynamic_batch():
            return Affine().eval()

        def test_same_model_twice(torchscript):
            model = Affine().eval()
            first = torchscript.check(model, torch.randn(2, 4), mode="aoti", roundtrip=False)
            again = torchscript.check(model, torch.randn(2, 4), mode="aoti", roundtrip=False)
            assert again.conversion_seconds < first.conversion_seconds / 3  # cached package
        """,
        "--ts-report=report.json",
        cpp=True,
    )
    result.assert_outcomes(passed=2)
    expect_lines(result, ["passed*aoti*ok ok ok*test_user.py::test_dynamic_batch"])
    report = json.loads((pytester.path / "report.json").read_text())
    dynamic = [c for c in report["checks"] if c["test_id"].endswith("test_dynamic_batch")][0]
    assert dynamic["artifact_path"].endswith("aoti.pt2")
    assert [rt["where"] for rt in dynamic["roundtrips"]] == ["in-process", "fresh process", "C++"]
    assert all(rt["ok"] and len(rt["parity"]) == 2 for rt in dynamic["roundtrips"])
    assert dynamic["conversion_seconds"] > 0


def test_a_loader_that_crashes_fails_the_check_not_the_session(suite, pytester):
    """AOTInductor's native loader can crash the process (torch 2.11 on an H100 did, without
    the plugin too). A package is loaded in a throwaway process first, so the crash is a
    failed check and the session goes on. The crash is simulated here."""
    pytester.makeconftest(
        """
        import pytest_torchscript.modes.aoti as aoti

        aoti._LOAD_PROBE = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
        """
    )
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="aoti", inputs=torch.randn(2, 4), roundtrip=False)
        def test_crashing_loader():
            return Affine().eval()

        def test_after():
            assert True
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Affine failed at conversion (mode='aoti', device=cpu)",
            "*AOTInductor's loader crashed (SIGSEGV) loading the package in a separate "
            "process, so it was not loaded in this one, where the crash would have ended the "
            "whole pytest session; that is a torch or build problem, not your model*",
        ],
    )


def test_no_working_compiler_for_aoti_says_how_to_get_one_or_skip_the_mode(suite, monkeypatch):
    # AOTInductor checks its compiler before compiling (a cached package does not help).
    monkeypatch.setenv("CXX", "/no/such/compiler/g++")
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="aoti", inputs=torch.randn(2, 4))
        def test_no_compiler():
            return Affine().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Affine failed at conversion (mode='aoti', device=cpu)",
            "*No working C++ compiler*",
            "hint: AOTInductor compiles the model to C++ with a C++ compiler, and none works "
            "here: install one (apt install g++), or point torch._inductor.config.cpp.cxx (or "
            "$CXX) at it; or skip mode='aoti' on this machine: *",
        ],
    )
