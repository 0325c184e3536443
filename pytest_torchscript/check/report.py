"""What one check measured (``CheckReport``), and how a failure is put in words.

The report is plain data: the terminal summary, the fixture's caller and (later) the JSON and
HTML reports all read it. Failure messages say which input set, which output path, by how much
and which tolerances would have passed, so nobody has to rerun anything to understand them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..modes.dynamo import CompileFindings
from ..perf.run import PerfReport
from .controlflow import ControlFlowReport
from .jit_warnings import RecordedWarning
from .parity import LeafResult, ParityResult

# Every verdict a check can have, worst first: the order of the summary and the counts.
# How ``CheckReport.skipped`` begins for the check a Ctrl-C stopped (the stage follows).
INTERRUPTED = "interrupted (KeyboardInterrupt)"
VERDICTS = ("failed", "xpassed", "xfailed", "skipped", "passed")


@dataclass
class RoundTripResult:
    """Parity of the saved-and-reloaded artifact, in this process or in a fresh one."""

    where: str  # "in-process", "fresh process" or "C++"
    parity: list[ParityResult] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None  # why this round trip could not run here (no compiler...)
    # what kind of reason: "format" (no loader of this kind takes the artifact), "toolchain"
    # (said once per run), "operators" (a declared library's, which the runner lacks), "model"
    # (this model cannot be handed to the process) or "torch" (this torch lacks the API): the
    # last three are listed under the table
    skip_kind: str | None = None
    seconds: float = 0.0
    user_modules: list[str] = field(default_factory=list)
    process_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(result.ok for result in self.parity)

    def to_dict(self) -> dict:
        return {
            "where": self.where,
            "ok": self.ok and self.skipped is None,  # a round trip that did not run is not ok
            "skipped": self.skipped,
            "skip_kind": self.skip_kind,
            "error": self.error,
            "seconds": self.seconds,
            "user_modules": self.user_modules,
            "process_id": self.process_id,
            "parity": [result.to_dict() for result in self.parity],
        }


@dataclass
class CheckReport:
    """Everything one ``check`` found out about one model in one mode."""

    test_id: str
    mode: str
    device: str
    model: str = ""
    threads: int = 1  # torch threads while timing (--ts-threads): part of what was measured
    input_sets: list[str] = field(default_factory=list)
    parity: list[ParityResult] = field(default_factory=list)
    roundtrips: list[RoundTripResult] = field(default_factory=list)
    artifact_path: str | None = None
    artifact_bytes: int | None = None
    conversion_seconds: float | None = None
    warnings: list[RecordedWarning] = field(default_factory=list)
    was_training: bool = False
    control_flow: ControlFlowReport | None = None
    perf: PerfReport | None = None
    compile: CompileFindings | None = None  # mode="compile": graph breaks and recompiles
    graph: dict | None = None  # the converted graph's operator counts per module (graph_diff)
    failed_stage: str | None = None
    failure: str | None = None
    skipped: str | None = None  # why the mode could not run here (e.g. onnxruntime missing)
    expected: str | None = None  # "xfailed" or "xpassed" when the test is marked xfail

    def __str__(self) -> str:
        """The short human summary (``print(report)``); ``to_dict()`` has every figure."""
        lines = [f"{self.model or 'model'} ({self.mode}, {self.device}): {self.verdict}"]
        if self.failure:
            lines.append("  " + self.failure.splitlines()[0])
        if self.parity:
            lines.append(
                f"  parity on {len(self.parity)} input set(s): max abs {self.max_abs:.3g}, "
                f"max rel {self.max_rel:.3g}"
            )
        flow = self.control_flow
        if flow is not None and flow.coverage is not None:
            lines.append(f"  coverage {flow.describe_coverage()}")
            lines += [f"    not exercised: {line}" for line in flow.unexercised_lines()]
        if flow is not None:
            lines += [f"  hazard at {hazard.location} ({hazard.kind})" for hazard in flow.hazards]
        for roundtrip in self.roundtrips:
            status = "skipped" if roundtrip.skipped else "ok" if roundtrip.ok else "failed"
            lines.append(f"  round trip {roundtrip.where}: {status}")
        if self.perf is not None and self.perf.ratio is not None:
            medians = ", ".join(
                f"{name} {value.median * 1e3:.3g} ms" for name, value in self.perf.medians.items()
            )
            lines.append(f"  timings: {medians}; converted/eager {self.perf.ratio.describe()}")
            lines += [f"  {gate.gate}: {gate.outcome}" for gate in self.perf.gates]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"CheckReport(test_id={self.test_id!r}, mode={self.mode!r}, device={self.device!r}, "
            f"model={self.model!r}, verdict={self.verdict!r})"
        )

    @property
    def passed(self) -> bool:
        return self.failed_stage is None

    @property
    def outcome(self) -> str:
        """One of ``VERDICTS``."""
        if self.skipped:
            return "skipped"
        if self.expected:
            return self.expected
        return "passed" if self.passed else "failed"

    @property
    def verdict(self) -> str:
        if self.passed or self.skipped:
            return self.outcome
        return f"{self.outcome} ({self.failed_stage})"

    @property
    def max_abs(self) -> float | None:
        return max((result.max_abs for result in self.parity), default=None)

    @property
    def max_rel(self) -> float | None:
        return max((result.max_rel for result in self.parity), default=None)

    def to_dict(self) -> dict[str, Any]:
        """Every figure of the check, as plain JSON data: the one form the terminal summary,
        the JSON and HTML reports and xdist's worker-to-controller channel all use."""
        return {
            "test_id": self.test_id,
            "mode": self.mode,
            "device": self.device,
            "threads": self.threads,
            "model": self.model,
            "verdict": self.outcome,
            "verdict_text": self.verdict,
            "skipped": self.skipped,
            "failed_stage": self.failed_stage,
            "failure": self.failure,
            "input_sets": self.input_sets,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "parity": [result.to_dict() for result in self.parity],
            "roundtrips": [roundtrip.to_dict() for roundtrip in self.roundtrips],
            "artifact_path": self.artifact_path,
            "artifact_bytes": self.artifact_bytes,
            "conversion_seconds": self.conversion_seconds,
            "was_training": self.was_training,
            "control_flow": self.control_flow.to_dict() if self.control_flow else None,
            "perf": self.perf.to_dict() if self.perf else None,
            "compile": self.compile.to_dict() if self.compile else None,
            "graph": self.graph,
            "warnings": [warning.to_dict() for warning in self.warnings],
        }


def describe_mismatch(results: list[ParityResult], total_sets: int, what: str) -> str:
    """The body of a parity failure: every failing leaf of every failing input set."""
    failing = [result for result in results if not result.ok]
    lines = [f"{what} differs from eager on {len(failing)} of {total_sets} input set(s)"]
    for result in failing:
        for leaf in result.failures:
            lines.append(f"input set {result.input_index}, {leaf.path}:")
            lines.extend("  " + line for line in describe_leaf(leaf))
    return "\n".join(lines)


def describe_leaf(leaf: LeafResult) -> list[str]:
    if leaf.problem is not None:
        return [leaf.problem]
    share = 100.0 * leaf.mismatched / leaf.numel if leaf.numel else 0.0
    lines = [
        f"{leaf.mismatched} of {leaf.numel} elements ({share:.3g}%) differ beyond "
        f"rtol={leaf.rtol:g}, atol={leaf.atol:g}",
        f"max abs error {_number(leaf.max_abs)}, max rel error {_number(leaf.max_rel)}",
        f"worst element at index {_index(leaf.worst_index)}: eager {leaf.worst_expected!r}, "
        f"converted {leaf.worst_actual!r}",
    ]
    if leaf.nan_mismatches:
        lines.append(f"{leaf.nan_mismatches} element(s) are NaN on one side only")
    if math.isfinite(leaf.needed_atol) or math.isfinite(leaf.needed_rtol):
        options = []
        if math.isfinite(leaf.needed_atol):
            options.append(f"atol={_ceil(leaf.needed_atol)} (with rtol={leaf.rtol:g})")
        if math.isfinite(leaf.needed_rtol):
            options.append(f"rtol={_ceil(leaf.needed_rtol)} (with atol={leaf.atol:g})")
        lines.append("would pass with " + " or ".join(options))
    else:
        lines.append("no finite tolerance would pass")
    return lines


def _index(index: tuple[int, ...] | None) -> str:
    if index is None:
        return "-"
    return "(" + ", ".join(str(i) for i in index) + ("," if len(index) == 1 else "") + ")"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _ceil(value: float) -> str:
    """A tolerance just above ``value``, rounded up to 2 significant digits, so it passes."""
    if value <= 0:
        return "0"
    exponent = math.floor(math.log10(value)) - 1
    step = 10.0**exponent
    return f"{math.ceil(value / step * (1 + 1e-12)) * step:.2g}"
