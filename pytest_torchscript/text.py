"""How messages quote what users gave: values cut to a readable length, the first lines of a
converter's message, a model's name. Plain text helpers, no torch, no plugin state."""

from __future__ import annotations

from typing import Any


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, for error messages that quote a user's value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_lines(text: str, count: int = 12) -> str:
    """The first ``count`` non-blank lines of a (converter's) message, for failure texts."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:count]) + ("\n..." if len(lines) > count else "")


def model_name(model: Any) -> str:
    """How messages name a model: its class for modules, its name for functions."""
    if hasattr(model, "forward"):
        return type(model).__qualname__
    return getattr(model, "__qualname__", type(model).__qualname__)
