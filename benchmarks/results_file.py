"""Where a benchmark keeps its latest run: ``benchmarks/results/<name>.json``, with the date, the
command as it was typed and the machine, for ``scripts/render_benchmarks.py`` to show in the
docs (docs/benchmarks.md). One run per benchmark is kept; earlier runs are in git history, so
no page shows a figure nobody can trace back to the run that produced it."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def machine(**versions: str) -> str:
    """The machine in a phrase: architecture, cores, Python, torch and any other library given."""
    import torch

    named = {"torch": torch.__version__, **versions}
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, " + (
        ", ".join(f"{library} {version}" for library, version in named.items())
    )


def command() -> str:
    """This run's command line, as a reader would type it from the repository's root."""
    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write(benchmark: str, summary: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Replace ``benchmark``'s results with this run's: ``rows`` become the table in the docs,
    ``summary`` the sentence above it; ``extra`` keeps raw figures (every session, every pair)
    that the table summarises. Pass ``machine=`` to name libraries beyond torch."""
    document = {
        "benchmark": benchmark,
        "date": date.today().isoformat(),
        "command": command(),
        "machine": extra.pop("machine", None) or machine(),
        "summary": summary,
        "rows": rows,
        **extra,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
