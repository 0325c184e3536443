"""The C++ round trip: the artifact run by LibTorch in a C++ process, compared with eager.

The runner is built once into a cache shared by these tests (about 20 s of CPU), then reused;
the fault cases (a runtime that rejects the artifact, a crash, a hang) use small scripts in
place of the runner, through PYTEST_TORCHSCRIPT_CPP_RUNNER, so they are deterministic."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import assert_no_plugin_traceback, expect_lines

pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("c++", "g++", "clang++")), reason="no C++ compiler here"
)

MODELS_SUITE = """
from typing import Dict, List, NamedTuple

import pytest
import torch
from models import Affine, Masked

@pytest.mark.torchscript(mode=["trace", "script"], inputs=[torch.randn(2, 4), torch.randn(5, 4)])
def test_affine():
    return Affine().eval()

@pytest.mark.torchscript(
    mode="script",
    inputs=[{"x": torch.randn(2, 3, 8), "mask": torch.ones(2, 3)},
            {"x": torch.randn(1, 5, 8), "mask": torch.ones(1, 5)}],
)
def test_nested_outputs():
    return Masked().eval()

class Pooled(torch.nn.Module):
    # Typed containers: LibTorch rejects a List[Any] where forward declares List[Tensor].
    def forward(self, parts: List[torch.Tensor], extra: Dict[str, torch.Tensor]):
        return torch.stack(parts).sum(0) + extra["bias"]

@pytest.mark.torchscript(
    mode="script",
    inputs=[([torch.randn(2), torch.randn(2)], {"bias": torch.randn(2)}),
            {"parts": [torch.randn(3)] * 3, "extra": {"bias": torch.randn(3)}}],
)
def test_typed_containers():
    return Pooled().eval()

class Batch(NamedTuple):
    x: torch.Tensor
    bias: torch.Tensor

class UsesBatch(torch.nn.Module):
    # A NamedTuple of the test module's: neither the fresh process nor C++ has the class
    def forward(self, batch: Batch):
        return batch.x * 2 + batch.bias

@pytest.mark.torchscript(
    mode="script",
    inputs=[(Batch(torch.randn(2), torch.randn(2)),), (Batch(torch.randn(3), torch.randn(3)),)],
)
def test_named_tuple_input():
    return UsesBatch().eval()
"""


def test_traced_scripted_and_nested_models_round_trip_through_cpp(
    suite, pytester, monkeypatch, cpp_cache
):
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CACHE", str(cpp_cache))
    result = suite(MODELS_SUITE, "--ts-report=report.json", cpp=True)
    result.assert_outcomes(passed=5)
    expect_lines(result, ["passed*ok ok ok*test_user.py::test_affine[trace]"])
    expect_lines(
        result,
        [
            "(round trip: reload in this process, then in a fresh process, then in a C++ "
            "(LibTorch) process)"
        ],
    )
    report = json.loads((pytester.path / "report.json").read_text())
    for check in report["checks"]:
        (cpp,) = [rt for rt in check["roundtrips"] if rt["where"] == "C++"]
        assert cpp["ok"] and cpp["skipped"] is None and len(cpp["parity"]) == 2
        assert all(result["max_abs"] == 0 for result in cpp["parity"])
    nested = [c for c in report["checks"] if c["test_id"].endswith("test_nested_outputs")][0]
    (cpp,) = [rt for rt in nested["roundtrips"] if rt["where"] == "C++"]
    assert {leaf["path"] for leaf in cpp["parity"][0]["leaves"]} == {
        "output['logits']",
        "output['hidden']",
    }
    # A second session reuses the cached runner: no build line, the same verdicts.
    again = suite(MODELS_SUITE, cpp=True)
    again.assert_outcomes(passed=5)
    again.stdout.no_fnmatch_line("*C++ runner built in*")


FAKE_RUNNERS = {
    "rejects": (
        "#!/bin/sh\necho 'Unknown builtin op: my_ops::fused_gelu.' >&2\nexit 2\n",
        [
            "*could not be loaded and run by LibTorch in a C++ process, as a C++ service would:",
            "*LibTorch rejected trace.pt:",
            "*Unknown builtin op: my_ops::fused_gelu.*",
        ],
    ),
    "crashes": (
        "#!/bin/sh\necho 'loading...' >&2\nkill -SEGV $$\n",
        ["*the C++ runner crashed (SIGSEGV) on trace.pt:*", "*loading...*"],
    ),
    "hangs": (
        "#!/bin/sh\nsleep 60\n",
        ["*the C++ runner did not finish within 2 s (killed)*"],
    ),
}


@pytest.mark.parametrize("fault", list(FAKE_RUNNERS))
def test_a_cpp_runtime_fault_fails_that_check_and_keeps_the_others(
    suite, pytester, monkeypatch, fault
):
    script, expected = FAKE_RUNNERS[fault]
    fake = pytester.path / "fake-runner"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CPP_RUNNER", str(fake))
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_cpp_fault():
            return Affine().eval()

        @pytest.mark.torchscript(mode="export", inputs=torch.randn(2, 4))
        def test_not_torchscript():
            return Affine().eval()
        """,
        ini="[pytest]\nts_cpp_timeout = 2\n",
        cpp=True,
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(result, ["torchscript check of Affine failed at cpp (mode='trace', device=cpu)"])
    expect_lines(result, expected)
    expect_lines(result, ["passed*export*ok ok skip*test_user.py::test_not_torchscript"])
    assert_no_plugin_traceback(result)


@pytest.mark.parametrize(
    ("cxx", "reason"),
    [
        (None, "no C++ compiler found (c++, g++, clang++ or $CXX)*"),
        ("/nonexistent/c++", "$CXX=/nonexistent/c++ is not a compiler found on this machine*"),
    ],
    ids=["none-on-path", "cxx-points-nowhere"],
)
def test_no_compiler_skips_the_cpp_round_trip_or_fails_when_required(
    suite, pytester, monkeypatch, cxx, reason
):
    if cxx is None:
        monkeypatch.delenv("CXX", raising=False)
        monkeypatch.setenv("PATH", str(pytester.mkdir("no-compilers")))
    else:
        monkeypatch.setenv("CXX", cxx)
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CACHE", str(pytester.path / "cache"))
    source = """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """
    result = suite(source, cpp=True)
    result.assert_outcomes(passed=1)
    expect_lines(result, ["passed*ok ok skip*test_user.py::test_model"])
    expect_lines(result, ["torchscript: C++ round trip skipped (cpu): " + reason])
    required = suite(source, "--ts-cpp=require", cpp=True)
    required.assert_outcomes(failed=1)
    expect_lines(required, ["--ts-cpp=require, and " + reason])


def test_a_runner_cache_that_cannot_be_written_skips_with_the_fix(suite, pytester, monkeypatch):
    blocked = pytester.path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CACHE", str(blocked / "cache"))
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_model():
            return Affine().eval()
        """,
        cpp=True,
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["passed*ok ok skip*test_user.py::test_model"])
    expect_lines(
        result,
        [
            "torchscript: C++ round trip skipped (cpu): cannot create the C++ runner cache * set "
            "PYTEST_TORCHSCRIPT_CACHE to a writable folder"
        ],
    )
    assert_no_plugin_traceback(result)


NMS_SUITE = """
import pytest
import torch
import torchvision

class KeepBest(torch.nn.Module):
    # torchvision::nms is registered by importing torchvision: a deployment must import it
    def forward(self, boxes, scores):
        return torchvision.ops.nms(boxes, scores, 0.5)

def sets():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    return [(boxes, torch.tensor([0.9, 0.8, 0.7])), (boxes[:2], torch.tensor([0.1, 0.6]))]

@pytest.mark.torchscript(mode="script", inputs=sets)
def test_keep_best():
    return KeepBest().eval()
"""


def test_operators_a_deployment_imports_are_declared_and_the_fresh_process_imports_them(
    suite, pytester, monkeypatch
):
    undeclared = suite(NMS_SUITE)
    undeclared.assert_outcomes(failed=1)
    expect_lines(
        undeclared,
        [
            "torchscript check of KeepBest failed at fresh-process (mode='script', device=cpu)",
            "*Unknown builtin op: torchvision::nms*",
            "hint: the artifact calls torchvision::nms, an operator that Python code "
            "registers when it is imported *for an installed library your deployment "
            "imports, declare it, --ts-deploy-imports=torchvision (ini ts_deploy_imports)*",
        ],
    )
    # Declared: the fresh process imports torchvision first. LibTorch alone (the C++ runner,
    # a fake that fails as LibTorch does here) lacks the operator: that round trip is
    # skipped, saying a C++ service must link the library's C++ build.
    fake = pytester.path / "fake-runner"
    fake.write_text("#!/bin/sh\necho 'Unknown builtin op: torchvision::nms.' >&2\nexit 2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PYTEST_TORCHSCRIPT_CPP_RUNNER", str(fake))
    declared = suite(NMS_SUITE, ini="[pytest]\nts_deploy_imports = torchvision\n", cpp=True)
    declared.assert_outcomes(passed=1)
    expect_lines(
        declared,
        [
            "passed*script*ok ok skip*test_user.py::test_keep_best",
            "*",
            "  skipped in a C++ (LibTorch) process (test_user.py::test_keep_best): script.pt "
            "calls torchvision::nms, an operator of a library your deployment loads "
            "(--ts-deploy-imports=torchvision); *link that library's C++ build too*",
        ],
    )
    required = suite(NMS_SUITE, "--ts-deploy-imports=torchvision", "--ts-cpp=require", cpp=True)
    required.assert_outcomes(failed=1)  # --ts-cpp=require: the C++ failure stands
    bad = suite(NMS_SUITE, "--ts-deploy-imports=torchvision,no_such_module_here")
    bad.stderr.fnmatch_lines(
        [
            "ERROR: --ts-deploy-imports = 'torchvision,no_such_module_here': no module "
            "'no_such_module_here' is installed here; install it, or drop it from the list"
        ]
    )
    assert_no_plugin_traceback(bad)
