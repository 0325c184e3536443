"""Helpers for driving pytest-torchscript through pytest itself.

Every test writes a small user suite with ``pytester`` and runs it in a subprocess (torch
does not like being imported twice into one interpreter's pytest sessions), then asserts on
what a user would see: outcomes, failure messages, the summary section.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from pytest_torchscript.text import WIDTH

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
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's ``pytester`` whose subprocess runs read the plugin's wrapped paragraphs as one
    line each (:func:`read_as_paragraphs`), for every test's expectations alike."""
    run_in_subprocess = pytester.runpytest_subprocess
    pytester.runpytest_subprocess = lambda *args, **kwargs: read_as_paragraphs(
        run_in_subprocess(*args, **kwargs)
    )
    return pytester


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


_PYTEST_PREFIX = re.compile(r"^(E   |>   )?")
_TEST_ID = re.compile(r"\S+::\S+")  # a line that is a test's id alone


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def unwrapped(lines: list[str], width: int = WIDTH) -> list[str]:
    """``lines`` with the plugin's wrapped paragraphs (``text.bounded``) joined back into one
    line each, so an expectation about a hint's words does not depend on where it wrapped.

    A line continues the one before when that one could not have taken its first word within
    ``width`` while a continuation line can (``bounded`` keeps a longer word on the line it
    starts on), and it is indented two spaces past its paragraph's first line (under the same
    ``E   `` prefix pytest gives a failure's text). The printed lines stay in
    ``result.printed`` for the tests of the width itself."""
    out: list[str] = []
    paragraph_indent = previous_length = -1
    previous_prefix = None
    for line in lines:
        prefix = _PYTEST_PREFIX.match(line).group(0)
        body = line[len(prefix) :]
        words = body.split()
        continues = (
            out
            and words
            and prefix == previous_prefix
            and _indent(body) == paragraph_indent + 2
            and previous_length + 1 + len(words[0]) > width
            and _indent(body) + len(words[0]) <= width
            # a test id alone takes no continuation: pytest's warnings summary indents the
            # warnings under it
            and not _TEST_ID.fullmatch(out[-1])
        )
        if continues:
            out[-1] += " " + body.strip()
        else:
            out.append(line)
            paragraph_indent = _indent(body)
        previous_prefix, previous_length = prefix, len(body)
    return out


def read_as_paragraphs(result: pytest.RunResult) -> pytest.RunResult:
    """``result`` whose output (``outlines``, ``stdout``, and stderr's) reads wrapped paragraphs
    as one line (:func:`unwrapped`); what was printed is kept as ``result.printed``."""
    printed = result.outlines
    result.outlines, result.errlines = unwrapped(printed), unwrapped(result.errlines)
    result.stdout = pytest.LineMatcher(result.outlines)
    result.stderr = pytest.LineMatcher(result.errlines)
    result.printed = printed
    return result


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
