"""``--ts-report=PATH.json``: every figure of every check, in a documented, versioned schema.

The file is written at the end of the session (also when tests failed or the run was
interrupted), to a temporary file renamed over PATH, so a reader never sees half a report.
The schema is described in docs/report-schema.md; ``version`` changes when a field changes
meaning or disappears (adding fields does not change it).
"""

from __future__ import annotations

import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any

from ..files import OwnFile, write_text_atomically
from .cells import matrix_row, summary_counts
from .model_table import model_table

FORMAT = "pytest-torchscript-report"
OWN_FILE = OwnFile("JSON report", FORMAT.encode(), "report.json")
VERSION = 1


def document(checks: list[dict], exit_status: int, settings: Any) -> dict:
    torch = sys.modules.get("torch")
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exit_status": int(exit_status),
        "torch": getattr(torch, "__version__", None),
        "device": settings.device,
        "threads": settings.perf.threads,
        "machine": machine(),
        "summary": summary_counts(checks),
        "models": model_table(checks, matrix_row).to_dict(),
        "checks": checks,
    }


def machine() -> dict[str, str]:
    """Where the checks ran, so a report merged from shards still says it per check."""
    import platform

    return {"host": platform.node(), "cpu": platform.processor() or platform.machine()}


def write(path: Path, data: dict) -> None:
    write_text_atomically(path, json.dumps(_json_safe(data), indent=2) + "\n")


def _json_safe(value: Any) -> Any:
    """JSON has no infinity or NaN: they become the strings "inf", "-inf" and "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
