"""How messages quote what users gave: values cut to a readable length, the first lines of a
converter's message, a model's name. Plain text helpers, no torch, no plugin state."""

from __future__ import annotations

import os
import re
from typing import Any

WIDTH = 160  # the widest line a message of the plugin prints: a CI log's readable width
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Terminal colour codes (the ONNX exporter's messages carry them) do not belong in a
    failure message, a JSON report or an HTML page."""
    return _ANSI.sub("", text)


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` on one line, cut to ``limit`` characters, for error messages that quote a
    user's value; a tensor by its dtype and shape (its values say nothing there)."""
    if type(value).__name__ == "Tensor" and hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"tensor({str(value.dtype).removeprefix('torch.')}{list(value.shape)})"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_lines(text: str, count: int = 12, width: int = 400) -> str:
    """The first ``count`` non-blank lines of a (converter's) message, each cut to ``width``
    characters (a symbolic shape expression can run to thousands), for failure texts. The
    full text goes to ``--ts-artifacts``."""
    lines = [line for line in strip_ansi(text).strip().splitlines() if line.strip()]
    shown = [
        line if len(line) <= width else f"{line[:width]}... ({len(line)} characters)"
        for line in lines[:count]
    ]
    return "\n".join(shown) + ("\n..." if len(lines) > count else "")


_SCRIPT_FRAME = re.compile(r"^\s*(?P<file>.+?)\((?P<line>\d+)\): (?P<function>\S+)\s*$")


def interpreter_error(text: str) -> tuple[str, tuple[str, int, str] | None] | None:
    """What a converted module's "The following operation failed in the TorchScript
    interpreter" says, in the order a reader needs it: the error itself (its last line) and
    the innermost frame of the traceback (file, line, function) that TorchScript lists first.
    None for any other message."""
    lines = [line for line in strip_ansi(text).strip().splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if "Traceback of TorchScript" in line), None)
    if header is None or header == len(lines) - 1:
        return None
    frame = None
    for line in lines[header + 1 :]:
        found = _SCRIPT_FRAME.match(line)
        if found:
            frame = (found["file"], int(found["line"]), found["function"])
            break
    return lines[-1].strip(), frame


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when it lies below it, as pytest shows
    paths, so messages stay short and clickable."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def short_path(filename: str) -> str:
    """An installed library's file from its package on (``transformers/masking_utils.py``),
    any other file as ``display_path`` shows it."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return "/".join(parts[parts.index(marker) + 1 :])
    return display_path(filename)


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of ``error``'s chain (``raise ... from``, or raised while
    handling another): the outer ones often only say that a pass failed."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def model_name(model: Any) -> str:
    """How messages name a model: its class for modules, its name for functions."""
    if hasattr(model, "forward"):
        return type(model).__qualname__
    return getattr(model, "__qualname__", type(model).__qualname__)


def library_of(filename: str) -> str:
    """The installed library a file belongs to ('torchvision', 'transformers'...): its first
    folder below site-packages; any other file by its name."""
    shown = short_path(filename)
    if shown != display_path(filename):
        return shown.split("/")[0].removesuffix(".py")
    return os.path.basename(filename)


def bounded(text: str, width: int = WIDTH) -> str:
    """``text`` with every line wider than ``width`` wrapped at spaces, each continuation
    indented two spaces past its line's own indent, so a hint reads as a paragraph in a CI log
    instead of one line of 600 characters. A word wider than a line (a long path) stays whole
    on the line it starts on, beside the words that say what it is: a path cut short names no
    file, and one alone on a line reads as a new item. A converter's long lines are cut before
    they get here (:func:`first_lines`)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        continuation = indent + "  "
        current = indent
        for word in line.split():
            fits = len(current) + 1 + len(word) <= width
            if current.strip() and not fits and len(continuation) + len(word) <= width:
                out.append(current)
                current = continuation + word
            else:
                current += (" " if current.strip() else "") + word
        out.append(current)
    return "\n".join(out)
