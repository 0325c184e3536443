"""Run torch calls with their warnings recorded instead of raised.

torch 2.13+ warns on every torch.jit call (a FutureWarning or DeprecationWarning), and tracing
raises TracerWarnings. A user suite running with ``-W error`` or ``filterwarnings = error``
must not fail because of calls the plugin makes, so every such call runs inside
``recording_warnings()``; what was recorded goes into the check's report.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Iterator

_PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class RecordedWarning:
    category: str
    message: str
    filename: str
    lineno: int

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def to_dict(self) -> dict:
        return {
            "category": self.category,
            "message": self.message,
            "filename": self.filename,
            "lineno": self.lineno,
        }


@contextlib.contextmanager
def recording_warnings(into: list[RecordedWarning]) -> Iterator[None]:
    """Record every warning raised inside the block into ``into``; raise none of them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for item in caught:
                into.append(
                    RecordedWarning(
                        category=item.category.__name__,
                        message=str(item.message),
                        filename=item.filename,
                        lineno=item.lineno,
                    )
                )


def import_torch():
    """``import torch`` without letting its import-time warnings reach ``-W error`` filters."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    with recording_warnings([]):
        import torch
    return torch


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when it lies below it, as pytest shows
    paths, so messages stay short and clickable."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def is_library_file(filename: str) -> bool:
    """Whether a file belongs to torch, an installed package, the stdlib or this plugin, rather
    than to the user's own code."""
    path = os.path.abspath(filename)
    if path.startswith(_PLUGIN_DIR + os.sep):
        return True
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    if filename.startswith("<"):
        return True
    stdlib = os.path.dirname(os.__file__)
    return path.startswith(stdlib + os.sep)
