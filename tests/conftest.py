"""Helpers for driving pytest-torchscript through pytest itself.

Every test writes a small user suite with ``pytester`` and runs it in a subprocess (torch
does not like being imported twice into one interpreter's pytest sessions), then asserts on
what a user would see: outcomes, failure messages, the summary section.
"""

from __future__ import annotations

import re
import textwrap

import pytest

# Shared by every user suite: a few tiny models with the behaviours the plugin must judge.
MODELS = '''
import collections
import torch


class Branchy(torch.nn.Module):
    """A data-dependent branch: a trace freezes whichever arm the example input took."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 5


class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x)


class Masked(torch.nn.Module):
    """Keyword inputs whose batch and length vary, and a dict output."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x, mask):
        hidden = self.linear(x) * mask.unsqueeze(-1)
        return {"logits": hidden.sum(1), "hidden": hidden}
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Write a user test file (with ``models.py`` beside it) and run it in a subprocess.

    Timing is off unless ``timed=True``, and the C++ round trip unless ``cpp=True``: both are
    on by default for users, but cost seconds per check, and only their own tests are about
    them.
    """
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # the user's run is not under our xdist

    def run(
        source: str,
        *args: str,
        name: str = "test_user",
        ini: str | None = None,
        timed: bool = False,
        cpp: bool = False,
    ):
        pytester.makepyfile(models=MODELS)
        pytester.makepyfile(**{name: textwrap.dedent(source)})
        if ini is not None:
            pytester.makeini(textwrap.dedent(ini))
        extra = () if timed else ("--benchmark-disable",)
        if not cpp:  # the C++ round trip has tests of its own; elsewhere it only costs time
            extra += ("--ts-cpp=off",)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *extra, *args)

    return run


def expect_lines(result: pytest.RunResult, patterns: list[str]) -> None:
    """``fnmatch_lines`` where ``[`` in a pattern is literal (output paths are full of it):
    ``*`` and ``?`` keep their glob meaning."""
    result.stdout.fnmatch_lines([pattern.replace("[", "[[]") for pattern in patterns])


def line_of(source: str, snippet: str) -> int:
    """The line number of ``snippet`` in ``source`` as pytester writes it (dedented, without
    the leading blank line), so tests name lines without counting them by hand."""
    lines = textwrap.dedent(source).strip("\n").splitlines()
    return next(number for number, line in enumerate(lines, 1) if snippet in line)


_PLUGIN_FRAME = re.compile(
    r"pytest_torchscript[/\\]\w+(?:[/\\]\w+)*\.py:\d+|File \".*pytest_torchscript"
)


def assert_no_plugin_traceback(result: pytest.RunResult) -> None:
    """What a user sees names their test and the fix: never a frame from inside the plugin,
    never an INTERNALERROR."""
    __tracebackhide__ = True
    output = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in output, output
    frames = _PLUGIN_FRAME.findall(output)
    assert not frames, f"plugin frames in the output: {frames}\n{output}"


@pytest.fixture(scope="session")
def cpp_cache(tmp_path_factory: pytest.TempPathFactory):
    """One C++ runner cache for the whole run, shared by xdist workers (their temporary
    folders are siblings): the runner is built once (its file lock serialises the builders)."""
    folder = tmp_path_factory.getbasetemp().parent / "cpp-runner-cache"
    folder.mkdir(exist_ok=True)
    return folder
