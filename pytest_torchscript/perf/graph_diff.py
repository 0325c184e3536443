"""What a converted artifact computes, as counts of operators per module path (its graph's
fingerprint), and the exact difference between two fingerprints.

A conversion that got slower has usually changed its graph: an operator that no longer fuses,
a copy added, a branch unrolled. Unlike a timing, that difference is exact and never noisy, so
the baseline keeps each check's fingerprint (counts, not graphs: a few hundred bytes) and every
gate run says what changed, per module path (``extra.0: aten::linear 0 -> 1``). No torch here:
the backends read their graphs (``Backend.fingerprint``) with the helpers below.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

Fingerprint = dict[str, dict[str, int]]  # module path ("" is the model's own forward) -> op -> n
MODEL = "the model's own forward"


def torchscript_ops(graph: Any) -> Fingerprint:
    """A TorchScript graph's operators (not its plumbing: prim:: nodes), by the module scope
    a trace records (``__module.extra/__module.extra.0`` is ``extra.0``; a script has none)."""
    counts: Counter = Counter()
    for node in graph.nodes():
        kind = node.kind()
        if kind.startswith("prim::"):
            continue
        scope = node.scopeName().split("/")[-1].removeprefix("__module.")
        counts[(scope if scope != "__module" else "", kind)] += 1
    return _nested(counts)


def fx_ops(graph: Any) -> Fingerprint:
    """An FX graph's (torch.export's, Dynamo's) called operators, by the innermost module of
    each node's ``nn_module_stack``."""
    counts: Counter = Counter()
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        schema = getattr(node.target, "_schema", None)
        name = schema.name if schema is not None else getattr(node.target, "__name__", "")
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        counts[(path, name or str(node.target))] += 1
    return _nested(counts)


def _nested(counts: Counter) -> Fingerprint:
    nested: Fingerprint = {}
    for (path, op), count in sorted(counts.items()):
        nested.setdefault(path, {})[op] = count
    return nested


def changes(old: Fingerprint, new: Fingerprint) -> list[str]:
    """Every operator count that differs, per module path: ``extra.0: aten::linear 0 -> 1``;
    empty for an unchanged graph."""
    lines = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path, {}), new.get(path, {})
        for op in sorted(set(before) | set(after)):
            if before.get(op, 0) != after.get(op, 0):
                where = path or MODEL
                lines.append(f"{where}: {op} {before.get(op, 0)} -> {after.get(op, 0)}")
    return lines


# A fused operator and the operators that compute it in parts. When a fused operator's count
# falls and some of its parts' rise, the conversion computes it piecewise now: more kernels,
# intermediates written out and read back, the usual way a conversion gets slower with the
# model's code unchanged in spirit (``F.linear`` rewritten as ``x @ w.t() + b``, an attention
# written out by hand, a GELU spelled with ``erf``).
FUSED_PARTS = {
    "aten::linear": ("aten::matmul", "aten::mm", "aten::t", "aten::add", "aten::add_"),
    "aten::addmm": ("aten::mm", "aten::matmul", "aten::add", "aten::add_"),
    "aten::scaled_dot_product_attention": (
        "aten::softmax", "aten::_softmax", "aten::bmm", "aten::matmul", "aten::baddbmm",
    ),
    "aten::layer_norm": ("aten::mean", "aten::var", "aten::var_mean", "aten::rsqrt", "aten::pow"),
    "aten::gelu": ("aten::erf", "aten::tanh", "aten::pow"),
    "aten::silu": ("aten::sigmoid",),
    "aten::hardswish": ("aten::hardtanh", "aten::relu6", "aten::clamp"),
}  # fmt: skip


def _totals(fingerprint: Fingerprint) -> Counter:
    totals: Counter = Counter()
    for ops in fingerprint.values():
        totals.update(ops)
    return totals


def fusions_lost(old: Fingerprint, new: Fingerprint) -> list[str]:
    """The fused operators the converted graph computes by their parts now, over the whole
    graph (the parts often land in another module path than the fused operator left):
    ``aten::linear 1 -> 0 while aten::matmul, aten::add rose: a fused operator computed by its
    parts``; empty where none."""
    before, after = _totals(old), _totals(new)
    lines = []
    for fused, parts in FUSED_PARTS.items():
        if after[fused] >= before[fused]:
            continue
        rose = [part for part in parts if after[part] > before[part]]
        if rose:
            lines.append(
                f"{fused} {before[fused]} -> {after[fused]} while {', '.join(rose)} rose: "
                "a fused operator computed by its parts now (more kernels, intermediates "
                "written out)"
            )
    return lines


NO_FINGERPRINT = (
    "the baseline entry holds no graph fingerprint (recorded before baselines kept one): "
    "re-record it with --ts-update-baseline to compare the converted graph exactly"
)


def summary(lines: list[str], shown: int) -> str:
    """``changes`` on one line: the first ``shown``, and how many more."""
    more = f" (+{len(lines) - shown} more)" if len(lines) > shown else ""
    return "; ".join(lines[:shown]) + more


def valid(value: Any) -> bool:
    """Whether a baseline entry's ``graph`` is a fingerprint (a hand-edited file may not be)."""
    return isinstance(value, dict) and all(
        isinstance(ops, dict) and all(isinstance(n, int) for n in ops.values())
        for ops in value.values()
    )
