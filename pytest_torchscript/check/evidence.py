"""What a failing check leaves under ``--ts-artifacts``, so a CI failure can be debugged from
the artifacts alone: the failure, the converted code and graph, the diff between the trace of
the example and a diverging re-trace, and the eager and converted outputs that differ."""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import files
from ..deploy import artifacts
from .jit_warnings import RecordedWarning, import_torch
from .report import CheckReport


@dataclass
class Evidence:
    """Collected as a check runs; written only if it fails."""

    artifact: Any = None
    outputs: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # set -> (eager, converted)
    retraced_graphs: dict[int, str] = field(default_factory=dict)  # diverging set -> its graph
    full_error: str | None = None  # converter or converted module: the whole text, a part quoted

    def keep(self, folder: Path, report: CheckReport) -> None:
        try:
            files.write_text_atomically(folder / "failure.txt", report.failure or "")
            if self.full_error:
                files.write_text_atomically(folder / "converter-error.txt", self.full_error)
            if self.artifact is not None:
                code, graph = artifacts.describe(self.artifact)
                files.write_text_atomically(folder / f"{report.mode}.code", code)
                files.write_text_atomically(folder / f"{report.mode}.graph", graph)
                for index, retraced in self.retraced_graphs.items():
                    diff = difflib.unified_diff(
                        graph.splitlines(keepends=True),
                        retraced.splitlines(keepends=True),
                        "trace of input set 0",
                        f"trace of input set {index}",
                    )
                    files.write_text_atomically(
                        folder / f"graph-set0-vs-set{index}.diff", "".join(diff)
                    )
            for index in sorted(r.input_index for r in report.parity if not r.ok):
                if index in self.outputs:
                    eager_output, converted_output = self.outputs[index]
                    buffer = io.BytesIO()
                    import_torch().save(
                        {"eager": eager_output, "converted": converted_output}, buffer
                    )
                    files.write_bytes_atomically(
                        folder / f"outputs-set{index}.pt", buffer.getvalue()
                    )
        except Exception as error:  # evidence is a courtesy: never hide the real failure
            report.warnings.append(
                RecordedWarning("ArtifactWarning", f"could not keep evidence: {error}", "", 0)
            )
