"""The session's C++ runner process: one for the whole session (reused by every check), a crash
that fails only the check in flight and the next check on a new process, a hang killed at
ts_cpp_timeout with its process group, and no runner left behind when the session ends, even
when pytest itself is killed. A stand-in runner speaks the runner's --serve protocol (it runs
the artifact with torch.jit.load, so parity holds) and injects the faults deterministically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import MODELS, assert_no_plugin_traceback, expect_lines

STAND_IN = textwrap.dedent(
    """\
    import os, signal, sys, time
    from pathlib import Path

    here = Path(sys.argv[0]).parent
    with open(here / "pids.txt", "a") as pids:
        pids.write(f"{os.getpid()}\\n")
    import torch

    fault = os.environ.get("STAND_IN_FAULT", "")
    for line in sys.stdin:
        artifact, inputs, outputs, device, error_file = line.rstrip("\\n").split("\\t")
        first = not (here / "faulted").exists()
        if first and fault:
            (here / "faulted").write_text(fault)
            print(f"runner about to {fault}", file=sys.stderr, flush=True)
            if fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if fault == "hang":
                time.sleep(600)
        module = torch.jit.load(artifact)
        sets = torch.load(inputs, weights_only=True)
        with torch.no_grad():
            torch.save([module(*args, **kwargs) for args, kwargs in sets], outputs)
        print("ok", flush=True)
    """
)

CONFTEST = """
from pathlib import Path
import pytest_torchscript.deploy.cpp_runner as cpp_runner

cpp_runner.runner = lambda device_type="cpu": cpp_runner.Runner(Path({path!r}), 0.0)
"""

SUITE = """
import pytest
import torch
from models import Affine

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.torchscript(inputs=torch.randn(2, 4), roundtrip=True)
def test_model(n):
    return Affine().eval()
"""


@pytest.fixture
def stand_in(pytester):
    runner = pytester.path / "runner.py"
    runner.write_text(f"#!{sys.executable}\n" + STAND_IN)
    runner.chmod(0o755)
    pytester.makeconftest(CONFTEST.format(path=str(runner)))
    return runner


def _pids(pytester) -> list[int]:
    path = pytester.path / "pids.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_one_runner_serves_the_session_and_ends_with_it(suite, pytester, stand_in):
    result = suite(SUITE, cpp=True)
    result.assert_outcomes(passed=3)
    expect_lines(result, ["passed*trace*ok ok ok*test_user.py::test_model[1]"])
    pids = _pids(pytester)
    assert len(pids) == 1, pids  # three checks, one process
    assert _gone(pids), "the runner outlived the session"


def test_a_crash_fails_the_check_in_flight_and_the_next_gets_a_new_runner(
    suite, pytester, stand_in, monkeypatch
):
    monkeypatch.setenv("STAND_IN_FAULT", "crash")
    result = suite(SUITE, cpp=True)
    result.assert_outcomes(passed=2, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Affine failed at cpp (mode='trace', device=cpu)",
            "*the C++ runner crashed (SIGSEGV) on trace.pt:",
            "*runner about to crash*",
        ],
    )
    pids = _pids(pytester)
    assert len(pids) == 2, pids  # restarted once, then reused
    assert _gone(pids)
    assert_no_plugin_traceback(result)


def test_a_hang_is_killed_at_the_timeout_and_the_session_goes_on(
    suite, pytester, stand_in, monkeypatch
):
    monkeypatch.setenv("STAND_IN_FAULT", "hang")
    started = time.monotonic()
    # The timeout covers a new runner's start, and this stand-in imports torch (over 3 s on a
    # slow VM loaded by the rest of the suite): 15 s leaves the healthy checks room.
    result = suite(SUITE, cpp=True, ini="[pytest]\nts_cpp_timeout = 15\n")
    result.assert_outcomes(passed=2, failed=1)
    expect_lines(
        result,
        ["*the C++ runner did not finish within 15 s (killed):", "*runner about to hang*"],
    )
    assert time.monotonic() - started < 120  # not the stand-in's 600 s sleep
    assert _gone(_pids(pytester))


def test_a_killed_pytest_leaves_no_runner_behind(pytester, stand_in):
    """pytest killed outright runs no clean-up: the runner sees its stdin end and exits."""
    pytester.makepyfile(models=MODELS)
    pytester.makepyfile(
        test_user="""
        import time
        import pytest
        import torch
        from models import Affine

        def test_then_linger(torchscript):
            torchscript.check(Affine().eval(), torch.randn(2, 4))
            (__import__("pathlib").Path("checked")).write_text("yes")
            time.sleep(600)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    pytest_process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-disable"],
        cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (pytester.path / "checked").exists():
            assert pytest_process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        pids = _pids(pytester)
        assert pids and all(_alive(pid) for pid in pids)
    finally:
        pytest_process.send_signal(signal.SIGKILL)
        pytest_process.wait()
    assert _gone(pids), "the runner outlived a killed pytest"
