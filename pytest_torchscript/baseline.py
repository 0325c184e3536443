"""The perf baseline a user commits: read and validated at start-up, updated atomically.

One JSON file, ``{"format": "pytest-torchscript-baseline", "version": 1, "entries": {...}}``,
entries keyed ``"<test id> | <mode> | <device>"``. Updates re-read the file under a lock and
merge, so two pytest processes updating it at once keep each other's entries, and the new file
replaces the old one by rename, so a crash never leaves half a baseline.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .artifacts import write_text_atomically
from .errors import UsageProblem

FORMAT = "pytest-torchscript-baseline"
VERSION = 1
_RATIO_FIELDS = ("median", "low", "high")
_NUMBER_FIELDS = ("eager_median", "converted_median")


def entry_key(test_id: str, mode: str, device: str) -> str:
    return f"{test_id} | {mode} | {device}"


def load(path: Path) -> dict[str, dict]:
    """The entries of the baseline at ``path`` ({} if it does not exist yet), validated."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UsageProblem(
            f"--ts-baseline {path}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); fix it or delete it and re-create it with --ts-update-baseline"
        ) from None
    except OSError as error:
        raise UsageProblem(f"--ts-baseline {path}: cannot read it ({error.strerror})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageProblem(
            f'--ts-baseline {path}: not a pytest-torchscript baseline (no "format": '
            f'"{FORMAT}"); pass the file written by --ts-update-baseline'
        )
    if data.get("version") != VERSION:
        raise UsageProblem(
            f"--ts-baseline {path}: written in baseline format version "
            f"{data.get('version')!r}, and this pytest-torchscript reads version {VERSION}; "
            f"re-create it with --ts-update-baseline (timings are not comparable across formats)"
        )
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise UsageProblem(f'--ts-baseline {path}: "entries" must be an object')
    for key, entry in entries.items():
        problem = _entry_problem(entry)
        if problem:
            raise UsageProblem(
                f"--ts-baseline {path}: entry {key!r} {problem}; fix the entry or re-create it "
                f"with --ts-update-baseline"
            )
    return entries


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    ratio = entry.get("ratio")
    if not isinstance(ratio, dict):
        return 'has no "ratio" object'
    for name in _RATIO_FIELDS:
        if not _positive(ratio.get(name)):
            return f"has ratio.{name} = {ratio.get(name)!r}, not a positive number"
    if not ratio["low"] <= ratio["median"] <= ratio["high"]:
        return "has a ratio interval that does not contain its median"
    for name in _NUMBER_FIELDS:
        if not _positive(entry.get(name)):
            return f"has {name} = {entry.get(name)!r}, not a positive number of seconds"
    if not isinstance(entry.get("fingerprint"), dict):
        return 'has no "fingerprint" object'
    return None


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def update(path: Path, new_entries: dict[str, dict]) -> None:
    """Merge ``new_entries`` into the baseline at ``path``, keeping every other entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        entries = load(path)
        entries.update(new_entries)
        document = {"format": FORMAT, "version": VERSION, "entries": dict(sorted(entries.items()))}
        write_text_atomically(path, json.dumps(document, indent=2) + "\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: updates are atomic but not serialised
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fingerprint(device: Any, threads: int) -> dict[str, Any]:
    """What must match for absolute times to be comparable across runs."""
    from .jit_warnings import import_torch

    torch = import_torch()
    info = {
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "threads": threads,
        "device": str(device),
    }
    if getattr(device, "type", "") == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
