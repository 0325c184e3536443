"""Exceptions and warnings that users see, and may catch or filter by name.

Nothing here imports torch: these types appear in ``-W`` filters and ``except`` clauses of
suites that never convert a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .report import CheckReport


class CheckFailed(AssertionError):
    """A model failed a conversion check; ``report`` holds every figure that was measured.

    It is an ``AssertionError`` so pytest shows it as a test failure pointing at the user's
    test, not as an error inside the plugin.
    """

    def __init__(self, message: str, report: CheckReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class UsageProblem(ValueError):
    """The test used the marker, the fixture or ``check`` wrongly (bad option, bad inputs...).

    Raised with a message that names what was wrong and how to fix it.
    """


class TorchScriptWarning(pytest.PytestWarning):
    """Base class of the warnings this plugin emits, so one filter can silence them all."""


class TrainModeWarning(TorchScriptWarning):
    """The model was in train mode; the plugin put it in eval mode for the check."""


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, for error messages that quote a user's value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TraceHazardWarning(TorchScriptWarning):
    """A trace turned tensors into Python values in the user's code, but no input set proved
    it wrong; inputs that take other paths may still break the deployed trace."""


def first_lines(text: str, count: int = 12) -> str:
    """The first ``count`` non-blank lines of a (converter's) message, for failure texts."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:count]) + ("\n..." if len(lines) > count else "")


def model_name(model: Any) -> str:
    """How messages name a model: its class for modules, its name for functions."""
    if hasattr(model, "forward"):
        return type(model).__qualname__
    return getattr(model, "__qualname__", type(model).__qualname__)
