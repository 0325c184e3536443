"""What TorchDynamo did to a model under mode="compile", in the user's words: the graph breaks
(where the model leaves the compiled graph and runs in Python, and why) and the recompiles
(which input set failed which guard). These are torch.compile's silent hazards, the analogue of
a trace's frozen branch: the outputs stay right, but part of the model runs uncompiled, or the
model compiles again in the middle of serving.

Plain data (no torch here): the report, the terminal, JSON and HTML read it; ``failure`` judges
it against ``max_graph_breaks`` and ``max_recompiles``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..check.jit_warnings import is_library_file
from ..text import display_path, first_lines, library_of

# (what Dynamo's reason says, what the user should read); the first match wins.
_BREAK_KINDS = (
    (r"data-dependent branching|generic_jump|data dependent", "data-dependent branch (an `if` "
     "on a tensor's value)"),
    (r"builtin operator `print`|\bprint\b", "print() call"),
    (r"\.item\(\)|Tensor\.item|capture_scalar_outputs|scalar output", "tensor turned into a "
     "Python number (.item())"),
    (r"\.tolist\(\)|Tensor\.tolist", "tensor turned into a Python list (.tolist())"),
    (r"numpy|\.numpy\(\)", "NumPy call"),
    (r"torch\._dynamo\.disable|skip_files|marked as skipped|disabled", "call Dynamo is told to "
     "skip (torch._dynamo.disable, a skipped file)"),
    (r"dynamic shape operator|data-dependent output shape|nonzero|unique", "operator whose output "
     "shape depends on the data"),
    (r"graph_break\(\)|torch\._dynamo\.graph_break", "explicit torch._dynamo.graph_break()"),
    (r"Failed to trace builtin|call_function|unsupported|not supported|Unsupported",
     "unsupported call"),
)  # fmt: skip

# Dynamo names a tensor by where it came from: x, L['x'], kwargs['input_ids'], L['x'][0]
_SIZE = re.compile(
    r"tensor '(?P<name>.+?)' size mismatch at index (?P<dim>\d+)\. "
    r"expected (?P<old>\d+), actual (?P<new>\d+)"
)
_DTYPE = re.compile(
    r"tensor '(?P<name>.+?)' dtype mismatch\. expected (?P<old>\w+), actual (?P<new>\w+)"
)
_RANK = re.compile(
    r"tensor '(?P<name>.+?)' rank mismatch\. expected (?P<old>\d+), actual (?P<new>\d+)"
)
_SOURCE = re.compile(r"^(?:L|kwargs)\['(?P<inner>[^']+)'\]")
_VALUE = re.compile(r"L\['(?P<name>\w+)'\]\s*==\s*(?P<old>.+)$")
_SYMBOLIC = re.compile(r"\b[sL]\d*\b.*(?:<=|>=|<|>|==|!=)")

SHAPE_HINT = (
    "a new size under a static shape guard compiles the model again (with the default "
    "dynamic=None, once: the dimension is then made dynamic); compile it dynamic from the "
    "start with compile_options={'dynamic': True}, or mark the dimension before the first "
    "call: torch._dynamo.mark_dynamic(x, 0)"
)
DTYPE_HINT = (
    "each dtype gets a graph of its own; cast inputs to one dtype before the model, or "
    "check each dtype the deployment feeds in its own check"
)
VALUE_HINT = (
    "Dynamo specialises on Python values (numbers, flags) and compiles again for each new "
    "one; pass a value that varies in deployment as a tensor (torch.tensor(value))"
)


@dataclass
class GraphBreak:
    """One place where Dynamo stopped the graph and ran the model in Python."""

    filename: str
    lineno: int
    source: str  # the line of code
    kind: str  # in words: "data-dependent branch (...)"
    reason: str  # Dynamo's own first line
    in_user_code: bool
    user_frame: str | None = None  # for a break inside a library: the user's line that led there

    @property
    def location(self) -> str:
        return f"{display_path(self.filename)}:{self.lineno}"

    @property
    def library(self) -> str:
        return library_of(self.filename)

    def describe(self) -> str:
        text = f"{self.location}: {self.kind}" + (f": `{self.source}`" if self.source else "")
        if self.user_frame:
            text += f" (reached from {self.user_frame})"
        return text

    def to_dict(self) -> dict:
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "location": self.location,
            "source": self.source,
            "kind": self.kind,
            "reason": self.reason,
            "in_user_code": self.in_user_code,
            "library": None if self.in_user_code else self.library,
            "user_frame": self.user_frame,
        }


@dataclass
class Recompile:
    """One input set that failed a guard of the code compiled before it."""

    input_index: int
    guard: str  # Dynamo's words: "tensor 'x' size mismatch at index 0. expected 2, actual 5"
    words: str  # ours: "x.size(0) changed 2 -> 5 under a static shape guard"
    hint: str | None
    function: str  # which compiled function: "forward (models.py:12)"
    seconds: float = 0.0

    def describe(self) -> str:
        return f"input set {self.input_index}: {self.words}, recompiling {self.function}"

    def to_dict(self) -> dict:
        return {
            "input_index": self.input_index,
            "guard": self.guard,
            "words": self.words,
            "hint": self.hint,
            "function": self.function,
            "seconds": self.seconds,
        }


@dataclass
class CompileFindings:
    """Graph breaks (from ``torch._dynamo.explain`` on the example), recompiles (over the input
    sets in order), how many graphs the model became, and what compiling cost."""

    graphs: int = 0
    graph_breaks: list[GraphBreak] = field(default_factory=list)
    recompiles: list[Recompile] = field(default_factory=list)
    # input set -> seconds of its first call, where it compiled (the example's cold compile)
    compile_seconds: dict[int, float] = field(default_factory=dict)
    # the cache round trip: input set -> first call's seconds once the cache was loaded
    warm_seconds: dict[int, float] = field(default_factory=dict)
    warm_where: str | None = None  # "fresh process" (an empty Inductor cache)
    cache_kinds: dict[str, int] = field(default_factory=dict)  # what the saved cache held
    options: str = ""  # the compile options, as given
    explained: bool = True  # False where explain() itself failed: breaks unknown, said so
    not_explained: str | None = None

    @property
    def cold_seconds(self) -> float:
        return sum(self.compile_seconds.values())

    @property
    def recompile_seconds(self) -> float:
        return sum(recompile.seconds for recompile in self.recompiles)

    def failure(
        self, max_graph_breaks: int | None, max_recompiles: int | None
    ) -> tuple[str, str] | None:
        """(stage, message) where a gate the user set is exceeded, else None."""
        if max_graph_breaks is not None and len(self.graph_breaks) > max_graph_breaks:
            return "graph-breaks", (
                f"torch.compile broke the model into {self.graphs} graphs at "
                f"{len(self.graph_breaks)} graph break(s), above max_graph_breaks="
                f"{max_graph_breaks}; the code between them runs in Python, uncompiled:\n"
                + "\n".join(f"  {b.describe()}" for b in self.graph_breaks[:8])
                + _more(self.graph_breaks, 8)
                + "\nhint: "
                + break_hint(self.graph_breaks)
            )
        if not self.explained and max_graph_breaks is not None:
            return "graph-breaks", (
                f"max_graph_breaks={max_graph_breaks} cannot be judged: {self.not_explained}"
            )
        if max_recompiles is not None and len(self.recompiles) > max_recompiles:
            hints = list(dict.fromkeys(r.hint for r in self.recompiles if r.hint))
            return "recompiles", (
                f"torch.compile compiled the model again {len(self.recompiles)} time(s) over "
                f"the input sets, above max_recompiles={max_recompiles}; in deployment each "
                f"recompile stalls a request:\n"
                + "\n".join(f"  {r.describe()}" for r in self.recompiles[:8])
                + _more(self.recompiles, 8)
                + "".join(f"\nhint: {hint}" for hint in hints)
            )
        return None

    def to_dict(self) -> dict:
        return {
            "graphs": self.graphs,
            "graph_breaks": [item.to_dict() for item in self.graph_breaks],
            "recompiles": [item.to_dict() for item in self.recompiles],
            "compile_seconds": {str(k): v for k, v in self.compile_seconds.items()},
            "cold_seconds": self.cold_seconds,
            "warm_seconds": {str(k): v for k, v in self.warm_seconds.items()},
            "warm_where": self.warm_where,
            "cache_kinds": self.cache_kinds,
            "options": self.options,
            "explained": self.explained,
            "not_explained": self.not_explained,
        }


def _more(items: list, shown: int) -> str:
    return f"\n  (+{len(items) - shown} more)" if len(items) > shown else ""


def break_kind(reason: str) -> str:
    """Dynamo's reason for a graph break, as the kind of code that caused it."""
    for pattern, words in _BREAK_KINDS:
        if re.search(pattern, reason, re.IGNORECASE):
            return words
    first = reason.strip().splitlines()[0] if reason.strip() else "unknown reason"
    return first if len(first) <= 100 else first[:97] + "..."


def break_hint(breaks: list[GraphBreak]) -> str:
    """What to do about the breaks found, by their kinds."""
    kinds = {b.kind for b in breaks}
    hints = []
    if any(kind.startswith("data-dependent branch") for kind in kinds):
        hints.append(
            "express a branch on tensor values with torch.where or torch.cond(pred, "
            "true_fn, false_fn, operands)"
        )
    if any(kind.startswith("print") for kind in kinds):
        hints.append("move print() and logging out of forward")
    if any("Python number" in kind for kind in kinds):
        hints.append(
            "keep values as tensors, or set torch._dynamo.config.capture_scalar_outputs = True"
        )
    if not hints:
        hints.append(
            "move the unsupported code out of forward, or wrap it in a function Dynamo "
            "treats as opaque (torch.compiler.disable)"
        )
    if all(not b.in_user_code for b in breaks):
        hints.append("the breaks are in library code: raise max_graph_breaks to accept them")
    return "; ".join(hints) + "; fullgraph=True in compile_options makes any break an error"


def _argument(name: str) -> str:
    """Dynamo's source of a tensor as the user named it: ``kwargs['input_ids']`` is
    ``input_ids``, ``L['x'][0]`` is ``x[0]``."""
    return _SOURCE.sub(lambda found: found["inner"], name)


def recompile_in_words(guard: str) -> tuple[str, str | None]:
    """Dynamo's failed guard as what changed, and how to avoid recompiling for it."""
    first = guard.strip().splitlines()[0] if guard.strip() else guard
    first = re.sub(r"^\s*\d+/\d+:\s*", "", first)  # the frame/compile id prefix
    found = _SIZE.search(first)
    if found:
        return (
            f"{_argument(found['name'])}.size({found['dim']}) changed {found['old']} -> "
            f"{found['new']} "
            f"under a static shape guard",
            SHAPE_HINT,
        )
    found = _DTYPE.search(first)
    if found:
        name = _argument(found["name"])
        return f"{name}'s dtype changed {found['old']} -> {found['new']}", DTYPE_HINT
    found = _RANK.search(first)
    if found:
        return (
            f"{_argument(found['name'])} changed from {found['old']} to {found['new']} dimensions",
            DTYPE_HINT.replace("dtype", "rank"),
        )
    found = _VALUE.search(first)
    if found:
        return (
            f"the Python value {found['name']} changed (the code was compiled for "
            f"{found['name']} == {found['old'].strip()})",
            VALUE_HINT,
        )
    if _SYMBOLIC.search(first):
        return f"a size left the range the dynamic graph was compiled for ({first})", (
            "give the dimension the range deployment uses: torch._dynamo.mark_dynamic(x, dim, "
            "min=..., max=...)"
        )
    return f"a guard failed: {first}", None


def graph_breaks(explained: Any) -> list[GraphBreak]:
    """Each distinct graph break ``explain`` found, at the innermost frame of its stack (a
    library's line is kept with the user's line that led there)."""
    found: dict[tuple[str, int], GraphBreak] = {}
    for reason in getattr(explained, "break_reasons", []):
        stack = list(getattr(reason, "user_stack", []) or [])
        if not stack:
            continue
        inner = stack[-1]
        text = str(getattr(reason, "reason", ""))
        in_user = not is_library_file(inner.filename)
        user_frame = None
        if not in_user:
            outer = next((f for f in reversed(stack) if not is_library_file(f.filename)), None)
            if outer is not None:
                user_frame = f"{display_path(outer.filename)}:{outer.lineno}"
        key = (inner.filename, inner.lineno or 0)
        if key not in found:
            found[key] = GraphBreak(
                inner.filename,
                inner.lineno or 0,
                (inner.line or "").strip(),
                break_kind(text),
                first_lines(text, 1, 150),
                in_user,
                user_frame,
            )
    return list(found.values())
