"""How messages quote what users gave: values cut to a readable length, the first lines of a
converter's message, a model's name. Plain text helpers, no torch, no plugin state."""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Terminal colour codes (the ONNX exporter's messages carry them) do not belong in a
    failure message, a JSON report or an HTML page."""
    return _ANSI.sub("", text)


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, for error messages that quote a user's value."""
    text = repr(value)
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
