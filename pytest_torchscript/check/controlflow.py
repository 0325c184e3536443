"""Control-flow coverage: the decisions a conversion depends on, and whether inputs covered them.

Trace mode: every data-dependent decision of the user's code seen in eager (``decisions.py``)
is compared across input sets. Where another set went a different way than the example set,
the trace (which replays the example's path) is proven wrong for it: a *divergence*, named at
its line. Re-tracing on each set and comparing graphs (``graphs.py``) catches the decisions
eager cannot see, such as a branch on a size. Script mode keeps control flow, so its report is
about coverage only: which arms of each data-dependent ``if``/loop the input sets exercised,
and therefore what parity did not verify.
"""

from __future__ import annotations

import ast
import linecache
import re
from collections import defaultdict
from dataclasses import dataclass, field

from ..text import display_path
from .decisions import Observation
from .graphs import GraphDivergence, ScriptDecision
from .hazards import Hazard

_BRANCH_ARMS = ("True", "False")
_LOOP_ARMS = ("zero iterations", "some iterations")
_HEADER = re.compile(r"^\s*(?:if|elif|while)\s+(?P<condition>.+?)\s*:\s*(?:#.*)?$")
_NEGATED = {ast.Gt: "<=", ast.GtE: "<", ast.Lt: ">=", ast.LtE: ">", ast.Eq: "!=", ast.NotEq: "=="}
_OPERATOR = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


@dataclass
class Decision:
    """A data-dependent branch or loop of the user's code, and the input sets per arm."""

    kind: str  # "branch" or "loop"
    filename: str
    lineno: int
    exercised: dict[str, list[int]] = field(default_factory=dict)

    @property
    def arms(self) -> tuple[str, ...]:
        return _BRANCH_ARMS if self.kind == "branch" else _LOOP_ARMS

    @property
    def location(self) -> str:
        return f"{display_path(self.filename)}:{self.lineno}"

    @property
    def source(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()

    @property
    def unexercised(self) -> list[str]:
        return [arm for arm in self.arms if not self.exercised.get(arm)]

    def suggestion(self, arm: str) -> str:
        """What an input set would need, to take ``arm`` (as far as the source says)."""
        if self.kind == "loop":
            return (
                "no input set made this loop run zero times"
                if arm == "zero iterations"
                else "no input set made this loop run at all"
            )
        condition = _condition(self.source)
        if condition is None:
            return f"no input set took the {arm} arm"
        try:
            tree = ast.parse(condition, mode="eval").body
        except SyntaxError:
            tree = None
        if isinstance(tree, ast.Compare) and len(tree.ops) == 1:
            left, right = ast.unparse(tree.left), ast.unparse(tree.comparators[0])
            operator = (_OPERATOR if arm == "True" else _NEGATED).get(type(tree.ops[0]))
            if operator:
                return f"no input set had {left} {operator} {right}"
        return f"no input set made `{condition}` {arm}"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "filename": self.filename,
            "lineno": self.lineno,
            "source": self.source,
            "arms": list(self.arms),
            "exercised": {arm: self.exercised.get(arm, []) for arm in self.arms},
            "unexercised": self.unexercised,
        }


@dataclass
class Divergence:
    """Proof that the trace does not compute what eager computes for one input set."""

    filename: str
    lineno: int
    input_index: int
    message: str

    @property
    def location(self) -> str:
        return f"{display_path(self.filename)}:{self.lineno}" if self.filename else "(library)"

    @property
    def source(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip() if self.filename else ""

    def describe(self) -> str:
        source = f"  `{self.source}`" if self.source else ""
        return f"{self.location}: {self.message}{source}"

    def to_dict(self) -> dict:
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "input_index": self.input_index,
            "message": self.message,
            "source": self.source,
        }


@dataclass
class ControlFlowReport:
    mode: str
    decisions: list[Decision] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    hazards: list[Hazard] = field(default_factory=list)

    @property
    def arms_total(self) -> int:
        return sum(len(decision.arms) for decision in self.decisions)

    @property
    def arms_exercised(self) -> int:
        return self.arms_total - sum(len(d.unexercised) for d in self.decisions)

    @property
    def coverage(self) -> float | None:
        """Exercised arms / arms; None when the user's code makes no data-dependent decision."""
        return self.arms_exercised / self.arms_total if self.arms_total else None

    def describe_coverage(self) -> str:
        if self.coverage is None:
            return "no data-dependent decisions"
        return f"{self.coverage:.0%} ({self.arms_exercised}/{self.arms_total} arms)"

    def unexercised_lines(self) -> list[str]:
        return [
            f"{d.location}: the {arm} arm of `{d.source}` ({d.suggestion(arm)})"
            for d in self.decisions
            for arm in d.unexercised
        ]

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "coverage": self.coverage,
            "coverage_text": self.describe_coverage(),
            "unexercised": self.unexercised_lines(),
            "divergence_lines": [divergence.describe() for divergence in self.divergences],
            "arms_total": self.arms_total,
            "arms_exercised": self.arms_exercised,
            "decisions": [decision.to_dict() for decision in self.decisions],
            "divergences": [divergence.to_dict() for divergence in self.divergences],
            "hazards": [hazard.to_dict() for hazard in self.hazards],
        }


def analyse_trace(
    eager_by_set: dict[int, list[Observation]],
    traced_by_set: dict[int, list[Observation]],
    graph_differences: dict[int, GraphDivergence],
    hazards: list[Hazard],
) -> ControlFlowReport:
    """Coverage from eager's decisions; divergences from the decisions each set's trace made
    (which include branches on sizes), then eager's, then the graphs, one explanation per
    location and input set."""
    report = analyse_coverage("trace", eager_by_set)
    report.hazards = hazards
    seen: set[tuple[str, int]] = set()
    for by_set in (traced_by_set, eager_by_set):
        for (filename, lineno), per_set in _sequences(by_set).items():
            divergence = _first_divergence(filename, lineno, per_set)
            if divergence is not None and (filename, lineno) not in seen:
                seen.add((filename, lineno))
                report.divergences.append(divergence)
    explained = {divergence.input_index for divergence in report.divergences}
    for index, difference in sorted(graph_differences.items()):
        if index not in explained:
            report.divergences.append(_graph_divergence(index, difference))
    return report


def analyse_coverage(mode: str, eager_by_set: dict[int, list[Observation]]) -> ControlFlowReport:
    """Branch coverage from the decisions eager made on tensor data, per input set."""
    report = ControlFlowReport(mode)
    for (filename, lineno), per_set in _sequences(eager_by_set).items():
        kinds = {kind for observations in per_set.values() for kind, _ in observations}
        if "bool" in kinds and not _is_assert(filename, lineno):
            decision = Decision("branch", filename, lineno)
            for index, observations in sorted(per_set.items()):
                for kind, value in observations:
                    if kind == "bool":
                        _note(decision, str(bool(value)), index)
            report.decisions.append(decision)
    return report


def analyse_script(
    decisions: list[ScriptDecision], by_set: dict[int, list[Observation]]
) -> ControlFlowReport:
    report = ControlFlowReport("script")
    sequences = _sequences(by_set)
    for found in decisions:
        decision = Decision(found.kind, found.filename, found.lineno)
        for index, observations in sorted(
            sequences.get((found.filename, found.lineno), {}).items()
        ):
            for arm in _arms_taken(found.kind, observations):
                _note(decision, arm, index)
        report.decisions.append(decision)
    return report


def _sequences(by_set: dict[int, list[Observation]]) -> dict:
    """(file, line) -> input set -> [(kind, value), ...] in the order eager made them."""
    sequences: dict = defaultdict(lambda: defaultdict(list))
    for index, observations in sorted(by_set.items()):
        for observation in observations:
            where = (observation.filename, observation.lineno)
            sequences[where][index].append((observation.kind, observation.value))
    return sequences


def _note(decision: Decision, arm: str, index: int) -> None:
    taken = decision.exercised.setdefault(arm, [])
    if index not in taken:
        taken.append(index)


def _arms_taken(kind: str, observations: list[tuple[str, object]]) -> list[str]:
    if kind == "branch":
        return [str(bool(value)) for k, value in observations if k == "bool"]
    arms = []
    for k, value in observations:
        if k == "int":
            arms.append("some iterations" if value else "zero iterations")
    booleans = [bool(value) for k, value in observations if k == "bool"]
    if booleans:
        arms.append("some iterations" if booleans[0] else "zero iterations")
        if any(booleans):
            arms.append("some iterations")
    return arms


def _first_divergence(filename: str, lineno: int, per_set: dict) -> Divergence | None:
    example = per_set.get(0, [])
    for index in sorted(per_set):
        if index == 0 or per_set[index] == example:
            continue
        return Divergence(filename, lineno, index, _explain(example, per_set[index], index))
    for index in range(1, max(per_set, default=0) + 1):
        if index not in per_set and example:
            return Divergence(
                filename,
                lineno,
                index,
                f"the trace made this decision {len(example)} time(s) (input set 0); input "
                f"set {index} never reaches it",
            )
    return None


def _explain(example: list, other: list, index: int) -> str:
    for (kind, expected), (_, actual) in zip(example, other):
        if expected == actual:
            continue
        if kind == "bool":
            return (
                f"the trace recorded the {bool(expected)} arm (input set 0); input set {index} "
                f"takes the {bool(actual)} arm"
            )
        return (
            f"the trace froze the value {expected!r} (input set 0); input set {index} computes "
            f"{actual!r}"
        )
    return (
        f"the trace made this decision {len(example)} time(s) (input set 0); input set {index} "
        f"makes it {len(other)} time(s)"
    )


def _graph_divergence(index: int, difference: GraphDivergence) -> Divergence:
    filename, lineno = difference.source or ("", 0)
    expected, actual = difference.expected, difference.actual
    if expected and actual and expected.kind == actual.kind == "prim::Constant":
        message = (
            f"the trace froze the constant {expected.constant} (input set 0); re-tracing with "
            f"input set {index} gives {actual.constant}"
        )
    else:
        message = (
            f"re-tracing with input set {index} records different operations from here on "
            f"({expected.kind if expected else 'nothing'} for input set 0, "
            f"{actual.kind if actual else 'nothing'} for input set {index})"
        )
    return Divergence(filename, lineno, index, message)


def _condition(source: str) -> str | None:
    match = _HEADER.match(source)
    return match["condition"] if match else None


def _is_assert(filename: str, lineno: int) -> bool:
    """An ``assert`` is a guard, not a branch: its False arm is an error, not behaviour."""
    return linecache.getline(filename, lineno).lstrip().startswith("assert ")


def divergence_block(flow: ControlFlowReport) -> str:
    if not flow.divergences:
        return ""
    lines = ["\nthe trace replays the path of input set 0, and other input sets take another:"]
    lines += [f"  {divergence.describe()}" for divergence in flow.divergences[:10]]
    lines.append(
        "hint: mode='script' keeps data-dependent control flow; a traced model needs it "
        "expressed as tensor operations (torch.where, masking)"
    )
    return "\n".join(lines)
