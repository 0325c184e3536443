"""Exceptions and warnings that users see, and may catch or filter by name; nothing else.

Nothing here imports torch: these types appear in ``-W`` filters and ``except`` clauses of
suites that never convert a model.
"""

from __future__ import annotations

from typing import Any

import pytest

from .text import bounded


class CheckFailed(AssertionError):
    """A model failed a conversion check; ``report`` holds every figure that was measured.

    It is an ``AssertionError`` so pytest shows it as a test failure pointing at the user's
    test, not as an error inside the plugin.
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(bounded(message))  # no line of a CI log wider than text.WIDTH
        self.report = report


class UsageProblem(ValueError):
    """The test used the marker, the fixture or ``check`` wrongly (bad option, bad inputs...).

    Raised with a message that names what was wrong and how to fix it, no line of it wider
    than ``text.WIDTH``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(bounded(message))


class TorchScriptWarning(pytest.PytestWarning):
    """Base class of the warnings this plugin emits, so one filter can silence them all."""


class TrainModeWarning(TorchScriptWarning):
    """The model was in train mode; the plugin put it in eval mode for the check."""


class TraceHazardWarning(TorchScriptWarning):
    """A trace turned tensors into Python values in the user's code, but no input set proved
    it wrong; inputs that take other paths may still break the deployed trace."""
