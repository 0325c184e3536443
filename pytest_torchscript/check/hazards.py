"""TracerWarnings, classified and grouped by the line of the user's code that caused them.

Users filter TracerWarnings because a real model raises dozens, most inside library code. This
turns them into a short list: what kind of hazard, where in the user's code (or in which
library, counted but not listed line by line), and how many times.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass
from typing import Any

from ..text import display_path, library_of, short_path
from .jit_warnings import RecordedWarning, is_library_file

# (start of TracerWarning message, what the user should read)
_KINDS = (
    ("Converting a tensor to a Python boolean", "tensor -> bool (a branch)"),
    ("Converting a tensor to a Python integer", "tensor -> int (a loop count or a size)"),
    ("Converting a tensor to a Python index", "tensor -> index (a loop count or a size)"),
    ("Converting a tensor to a Python float", "tensor -> float (a scale)"),
    ("Converting a tensor to a Python number", ".item() (a value)"),
    ("Converting a tensor to a Python list", ".tolist()"),
    ("Converting a tensor to a NumPy array", ".numpy()"),
    ("Iterating over a tensor", "iteration over a tensor (a loop over its first dimension)"),
    ("Using len to get tensor shape", "len() of a tensor (a size)"),
    (
        "results are registered as constants",
        "a tensor created from Python values, frozen as a constant",
    ),
    ("Trace had nondeterministic nodes", "nondeterministic operation"),
)


@dataclass
class Hazard:
    kind: str
    filename: str
    lineno: int
    in_user_code: bool
    count: int = 1

    @property
    def location(self) -> str:
        return f"{display_path(self.filename)}:{self.lineno}"

    @property
    def library(self) -> str:
        """The top-level package of a library location ('torchvision', 'transformers'...)."""
        return library_of(self.filename)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "filename": self.filename,
            "lineno": self.lineno,
            "in_user_code": self.in_user_code,
            "count": self.count,
            "location": self.location,
            "library": self.library,
        }


def classify(message: str) -> str:
    for start, kind in _KINDS:
        if start in message:
            return kind
    return "other: " + message.split(".")[0][:80]


def hazards_from(recorded: list[RecordedWarning]) -> list[Hazard]:
    """Group the TracerWarnings in ``recorded`` by kind and location, user code first."""
    grouped: dict[tuple[str, str, int], Hazard] = {}
    for warning in recorded:
        if warning.category != "TracerWarning":
            continue
        in_user_code = warning.user_file is not None
        filename = warning.user_file if in_user_code else warning.filename
        lineno = warning.user_line if in_user_code else warning.lineno
        key = (classify(warning.message), filename, lineno)
        if key in grouped:
            grouped[key].count += 1
        else:
            grouped[key] = Hazard(key[0], filename, lineno or 0, in_user_code)
    return sorted(grouped.values(), key=lambda h: (not h.in_user_code, h.filename, h.lineno))


def tracer_hint(recorded: list[RecordedWarning]) -> str:
    """Point at the TracerWarnings the trace raised: the usual reason a trace disagrees with
    eager, or fails, on inputs other than the example. The user's own code first; where
    there are none, the libraries', which the user cannot change but must know of."""
    mine: list[str] = []
    theirs: list[str] = []
    for warning in recorded:
        if warning.category != "TracerWarning":
            continue
        found = theirs if is_library_file(warning.filename) else mine
        if warning.location not in found:
            found.append(warning.location)
    if mine:
        lines = [
            "\nthe trace raised TracerWarnings in your code, so it probably froze a "
            "data-dependent branch or value at:"
        ]
        lines += [_quoted(location, display_path) for location in mine[:10]]
        lines.append("hint: mode='script' keeps such control flow; or make the inputs agree")
        return "\n".join(lines)
    if theirs:
        lines = [
            "\nthe trace raised TracerWarnings in libraries (not your code), so it probably "
            "froze a value there that depends on the example's sizes or data:"
        ]
        lines += [_quoted(location, short_path) for location in theirs[:5]]
        lines.append(
            "hint: the traced module holds only for inputs like the example in what those "
            "lines decide (often the batch size or sequence length); trace with inputs like "
            "the ones deployed, or use mode='export' (dynamic sizes) for this model"
        )
        return "\n".join(lines)
    return ""


def _quoted(location: str, shown: Any) -> str:
    filename, _, lineno = location.rpartition(":")
    source = linecache.getline(filename, int(lineno)).strip()
    return f"  {shown(filename)}:{lineno}: {source}"
