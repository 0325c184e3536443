"""Reading TorchScript graphs: where two traces part ways, and a script's decisions.

A trace is a straight line of operations. Tracing again on another input set and comparing the
two lines of operations shows whether that input would have run other code: the first node
that differs carries the source line that made the difference (a shape-dependent ``if``, a
size frozen into a constant). A scripted graph keeps its ``prim::If`` and ``prim::Loop`` nodes;
those whose condition comes from tensor data are the decisions that coverage is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .jit_warnings import import_torch, is_library_file, is_plugin_file

_TRACE_FRAME = re.compile(r"^(?P<file>.+)\((?P<line>\d+)\): (?P<function>\S+)$")
_SCRIPT_LOCATION = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
# Operations that turn tensor data into a Python value inside a scripted graph.
_TENSOR_TO_VALUE = {
    "aten::Bool",
    "aten::Int",
    "aten::Float",
    "aten::item",
    "aten::is_nonzero",
    "aten::ScalarImplicit",
    "aten::IntImplicit",
    "aten::FloatImplicit",
    "aten::tolist",
    "prim::tolist",
}


@dataclass(frozen=True)
class GraphStep:
    """One node of a trace, reduced to what must match: its kind and constant value."""

    kind: str
    constant: str | None
    source: tuple[str, int] | None  # the innermost user frame that created it


@dataclass(frozen=True)
class GraphDivergence:
    index: int
    expected: GraphStep | None
    actual: GraphStep | None

    @property
    def source(self) -> tuple[str, int] | None:
        for step in (self.expected, self.actual):
            if step is not None and step.source is not None:
                return step.source
        return None


def trace_steps(traced: Any) -> list[GraphStep]:
    """The nodes of a traced module (inlined) or traced function, in order."""
    return [_step(node) for node in _all_nodes(_inlined_graph(traced))]


def first_difference(left: list[GraphStep], right: list[GraphStep]) -> GraphDivergence | None:
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else None
        b = right[index] if index < len(right) else None
        if a is None or b is None or (a.kind, a.constant) != (b.kind, b.constant):
            return GraphDivergence(index, a, b)
    return None


@dataclass(frozen=True)
class ScriptDecision:
    kind: str  # "branch" or "loop"
    filename: str
    lineno: int


def script_decisions(scripted: Any) -> list[ScriptDecision]:
    """The ``prim::If``/``prim::Loop`` nodes of the user's code whose condition or trip count
    comes from tensor data (not from constants, attributes, ranks or sizes)."""
    found: list[ScriptDecision] = []
    for node in _all_nodes(_inlined_graph(scripted)):
        kind = {"prim::If": "branch", "prim::Loop": "loop"}.get(node.kind())
        if kind is None:
            continue
        match = _SCRIPT_LOCATION.search(node.sourceRange())
        if match is None or is_library_file(match["file"]):
            continue
        deciding = list(node.inputs())[:1] if kind == "branch" else _loop_deciders(node)
        if any(_depends_on_tensor_data(value) for value in deciding):
            decision = ScriptDecision(kind, match["file"], int(match["line"]))
            if decision not in found:
                found.append(decision)
    return found


def _loop_deciders(node: Any) -> list[Any]:
    """A loop's trip count, initial condition and per-iteration condition."""
    values = list(node.inputs())[:2]
    body = next(iter(node.blocks()), None)
    if body is not None:
        values.extend(list(body.outputs())[:1])
    return values


def _depends_on_tensor_data(value: Any, depth: int = 0) -> bool:
    if depth > 40:
        return False
    node = value.node()
    if node.kind() in _TENSOR_TO_VALUE:
        return any(_is_tensor(source) for source in node.inputs())
    if node.kind() in ("aten::size", "aten::dim", "aten::len", "prim::GetAttr", "prim::Constant"):
        return False
    return any(_depends_on_tensor_data(source, depth + 1) for source in node.inputs())


def _is_tensor(value: Any) -> bool:
    torch = import_torch()
    return isinstance(value.type(), torch.TensorType)


def _inlined_graph(module: Any) -> Any:
    torch = import_torch()
    graph = getattr(module, "inlined_graph", None)
    if graph is None:
        graph = module.graph.copy()
        torch._C._jit_pass_inline(graph)
    return graph


def _all_nodes(block: Any):
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _all_nodes(inner)


def _step(node: Any) -> GraphStep:
    return GraphStep(node.kind(), _constant(node), _trace_source(node.sourceRange()))


def _constant(node: Any) -> str | None:
    if node.kind() != "prim::Constant":
        return None
    try:
        value = node.output().toIValue()
    except RuntimeError:
        return "?"
    torch = import_torch()
    if isinstance(value, torch.Tensor):
        if value.numel() <= 64:
            return f"tensor{tuple(value.shape)}{value.flatten().tolist()}"
        return f"tensor{tuple(value.shape)} sum={float(value.double().sum())}"
    return repr(value)


def _trace_source(text: str) -> tuple[str, int] | None:
    """A traced node's source range is a stack, innermost first: ``file(line): function``."""
    for line in text.splitlines():
        match = _TRACE_FRAME.match(line.strip())
        if match is None:
            continue
        if is_plugin_file(match["file"]):
            return None
        if not is_library_file(match["file"]):
            return match["file"], int(match["line"])
    return None
