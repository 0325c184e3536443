"""No line the plugin prints is wider than text.WIDTH: hints and notes wrap at spaces, keeping
every word; a word wider than a line (a long path) stays whole on the line it starts on.
Checked on the text function itself, on every hint the package's source can print, and on a run
whose failures, usage error and notes are the longest the plugin writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import assert_no_plugin_traceback

from pytest_torchscript.text import WIDTH, bounded

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_torchscript"


def test_a_long_hint_wraps_at_spaces_keeping_every_word_and_its_indent():
    hint = "  hint: " + " ".join(f"word{i}" for i in range(120))
    wrapped = bounded(hint)
    lines = wrapped.split("\n")
    assert len(lines) > 1 and all(len(line) <= WIDTH for line in lines)
    assert lines[0].startswith("  hint: word0 ") and all(
        line.startswith("    ") for line in lines[1:]
    )
    assert wrapped.split() == hint.split()  # nothing lost, nothing added
    assert bounded("short\n  lines stay") == "short\n  lines stay"


def test_a_word_wider_than_a_line_stays_whole_beside_its_words():
    path = "/very/long/" + "x" * 300
    lines = bounded(f"the artifact at {path} could not be loaded " + "word " * 40).split("\n")
    assert lines[0] == f"the artifact at {path}"  # a path cut short names no file
    assert len(lines) > 1 and all(len(line) <= WIDTH for line in lines[1:])


def _hint_texts() -> list[str]:
    """Every hint the package can print: the literal text of each string (f-strings with their
    placeholders as {...}) that starts a "hint:" line, joined across implicit concatenation."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                text = "".join(
                    part.value if isinstance(part, ast.Constant) else "{...}"
                    for part in node.values
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            found += [m.group(0) for m in re.finditer(r"hint: [^\n]*", text)]
    return found


def test_every_hint_in_the_source_prints_within_the_width():
    hints = _hint_texts()
    assert len(hints) > 20  # the walk found the package's hints
    for hint in hints:
        for indent in ("", "  ", "    "):
            lines = bounded(indent + hint + " " + "y" * 40).split("\n")
            assert all(len(line) <= WIDTH for line in lines), hint


SUITE = """
import pytest
import torch


class Branchy(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


class Spectrum(torch.nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x * 2).abs()


@pytest.mark.torchscript(mode="trace", inputs=[torch.ones(2, 3), -torch.ones(2, 3)])
def test_frozen_branch():
    return Branchy()


@pytest.mark.torchscript(mode="export", inputs=[torch.randn(2, 8)], dynamic_shapes=["nonsense"])
def test_bad_dynamic_shapes():
    return Spectrum()


@pytest.mark.torchscript(mode="tvm", inputs=torch.randn(2, 8))
def test_unsupported_operator():
    return Spectrum()
"""


def test_a_run_of_long_failures_prints_no_line_wider_than_the_width(suite):
    result = suite(SUITE, "-p", "no:warnings")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 2
    output = result.printed
    ours = []
    inside = False
    for line in output:  # the failure texts and the plugin's own section
        if re.match(r"^_+ test_\w+ _+$", line) or line.startswith("=") and "torchscript" in line:
            inside = True
        elif line.startswith(("----", "=")) and "torchscript" not in line:
            inside = False
        elif inside:
            ours.append(line)
    assert len(ours) > 10
    # wider only where a word is too wide for any line (a long path)
    wide = [line for line in ours if len(line) > WIDTH and max(map(len, line.split())) < 150]
    assert not wide, "\n".join(wide)
    assert any(line.lstrip().startswith("hint:") for line in ours)
    assert_no_plugin_traceback(result)


def test_the_tests_read_a_wrapped_paragraph_as_the_line_it_was():
    from conftest import unwrapped

    hint = "  hint: " + " ".join(f"word{i}" for i in range(120))
    message = f"first line\n{hint}\n  next: short\nE   not this"
    assert unwrapped(bounded(message).split("\n")) == message.split("\n")
    failure = ["E   " + line for line in bounded(hint).split("\n")]
    assert unwrapped(failure) == ["E   " + hint]
    path = "/tmp/pytest-of-root/" + "x" * 140 + "/base.json"  # fits a line of its own
    written = f"torchscript: wrote 1 baseline entry to {path}; " + "and more " * 20
    assert unwrapped(bounded(written.strip()).split("\n")) == [written.strip()]
    # pytest's warning summary: a test id, then its warning indented under it, never joined
    summary = ["test_user.py::test_x", "  /tmp/" + "y" * 200 + "/test_user.py:5: Warning: text"]
    assert unwrapped(summary) == summary
