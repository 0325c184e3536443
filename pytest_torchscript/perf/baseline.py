"""The perf baseline a user commits: read and validated at start-up, updated atomically.

One JSON file, ``{"format": "pytest-torchscript-baseline", "version": 2, "entries": {...}}``,
entries keyed ``"<test id> | <mode> | <device>"``. Updates re-read the file under a lock and
merge, so two pytest processes updating it at once keep each other's entries, and the new file
replaces the old one by rename, so a crash never leaves half a baseline.

An entry may hold several runs (``--ts-extend-baseline`` adds one per pytest run) under
``"recordings"``; its own figures are then their medians, and how far apart the runs lie tells
the gate how much this model's time moves between runs of the same code (``between_runs``).
Some models move far more than one run's interval shows: mobilenet_v3_small's probe-normalised
time spread -14.5%..+12.6% over 36 processes on a quiet machine, each run's interval about
+-1.5% (benchmarks/between_processes.py).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UsageProblem
from ..files import OwnFile, locked, write_text_atomically
from ..text import short_repr
from .probe import component_shifts, middle_of

FORMAT = "pytest-torchscript-baseline"
OWN_FILE = OwnFile("baseline", FORMAT.encode(), "baseline.json")
VERSION = 2  # 2 added the machine-speed probe; 1 is read and judged by its ratio alone
_READABLE = (1, 2)
_INTERVAL_FIELDS = ("median", "low", "high")
_NUMBER_FIELDS = ("eager_median", "converted_median")
# What one run measured: the figures an entry of several recordings keeps per recording.
RECORDING_FIELDS = ("ratio", "eager_median", "converted_median", "normalised", "probe", "latency")
MAX_RECORDINGS = 5  # --ts-extend-baseline keeps the latest five: a model that changes moves on
RANGE_FACTOR = 2  # a later run may differ by twice the range of the entry's runs (between_runs)


class InvalidEntry:
    """An entry that failed validation: its check fails naming it; the other checks go on."""

    def __init__(self, raw: Any, problem: str) -> None:
        self.raw = raw  # written back unchanged by an update that does not replace it
        self.problem = problem


def entry_key(test_id: str, mode: str, device: str) -> str:
    return f"{test_id} | {mode} | {device}"


def load(path: Path) -> dict[str, Any]:
    """The entries of the baseline at ``path`` ({} if it does not exist yet). A file that is
    not a baseline at all is a usage error naming it; an entry that is not valid becomes an
    ``InvalidEntry``, so only its own check fails."""
    if not path.exists():
        return {}
    fix = "fix it or delete it and re-create it with --ts-update-baseline"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as error:
        raise UsageProblem(
            f"--ts-baseline {path}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); {fix}"
        ) from None
    except UnicodeDecodeError as error:
        raise UsageProblem(
            f"--ts-baseline {path}: not UTF-8 text (byte {error.start}); {fix}"
        ) from None
    except (ValueError, RecursionError) as error:  # a 5,000-digit number, nesting too deep
        raise UsageProblem(f"--ts-baseline {path}: unreadable JSON ({error}); {fix}") from None
    except OSError as error:
        raise UsageProblem(
            f"--ts-baseline {path}: cannot read it ({error.strerror or error})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        other = (
            " (it is pytest-benchmark's own JSON, from --benchmark-json or --benchmark-save; "
            "pytest-benchmark compares those itself with --benchmark-compare)"
            if isinstance(data, dict) and "benchmarks" in data and "machine_info" in data
            else ""
        )
        raise UsageProblem(
            f'--ts-baseline {path}: not a pytest-torchscript baseline (no "format": '
            f'"{FORMAT}"){other}; pass the file written by --ts-update-baseline'
        )
    version = data.get("version")
    if version not in _READABLE:
        newer = isinstance(version, int) and version > max(_READABLE)
        raise UsageProblem(
            f"--ts-baseline {path}: written in baseline format version "
            f"{short_repr(version)}, and this pytest-torchscript reads versions "
            f"{' and '.join(map(str, _READABLE))}; "
            + (
                "it was written by a newer pytest-torchscript: upgrade this one to gate "
                "against it (it is left as it is: --ts-update-baseline does not overwrite it)"
                if newer
                else "delete it and re-create it with --ts-update-baseline (timings are not "
                "comparable across formats)"
            )
        )
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise UsageProblem(f'--ts-baseline {path}: "entries" must be an object')
    checked: dict[str, Any] = {}
    for key, entry in entries.items():
        problem = _entry_problem(entry)
        checked[key] = InvalidEntry(entry, problem) if problem else entry
    return checked


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"is {short_repr(entry)}, not an object"
    problem = _interval_problem(entry.get("ratio"), "ratio")
    if problem:
        return problem
    for name in _NUMBER_FIELDS:
        if not _positive(entry.get(name)):
            return f"has {name} = {short_repr(entry.get(name))}, not a positive number of seconds"
    if not isinstance(entry.get("fingerprint"), dict):
        return 'has no "fingerprint" object'
    if not isinstance(entry.get("timed_input", ""), str):  # optional: older entries lack it
        return f"has timed_input = {short_repr(entry['timed_input'])}, not a text"
    latency = entry.get("latency")  # optional, like timed_input
    if latency is not None and not (
        isinstance(latency, dict)
        and all(_positive(latency.get(name)) for name in ("eager", "converted"))
    ):
        return f"has latency = {short_repr(latency)}, not positive seconds for eager and converted"
    loops = entry.get("loops", {})
    if not isinstance(loops, dict) or not all(
        isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9
        for value in loops.values()
    ):
        return f"has loops = {short_repr(loops)}, not whole numbers of calls per series"
    recordings = entry.get("recordings")
    if recordings is not None:
        if not isinstance(recordings, list) or not recordings:
            return f"has recordings = {short_repr(recordings)}, not a list of recordings"
        for number, recording in enumerate(recordings, 1):
            problem = (
                _entry_problem({**recording, "fingerprint": entry["fingerprint"]})
                if isinstance(recording, dict)
                else f"is {short_repr(recording)}, not an object"
            )
            if problem is None:  # a dict: every run records every figure
                missing = [name for name in RECORDING_FIELDS if name not in recording]
                problem = f"has no {', '.join(map(repr, missing))}" if missing else None
            if problem:
                return f"recording {number} {problem}"
    if "normalised" in entry or "probe" in entry:  # format 2
        normalised = entry.get("normalised")
        if not isinstance(normalised, dict):
            return 'has no "normalised" object'
        for name in ("eager", "converted"):
            problem = _interval_problem(normalised.get(name), f"normalised.{name}")
            if problem:
                return problem
        probe = entry.get("probe")
        problem = _interval_problem(
            {k: v for k, v in probe.items() if k not in ("spread", "components")}
            if isinstance(probe, dict)
            else probe,
            "probe",
        )
        if problem:
            return problem
        spread = probe.get("spread")
        if not _positive(spread) and spread != 0:
            return f"has probe.spread = {short_repr(spread)}, not a number >= 0"
        components = probe.get("components", {})
        if not isinstance(components, dict) or not all(
            _positive(value) for value in components.values()
        ):
            return f"has probe.components = {short_repr(components)}, not positive seconds"
    return None


def _interval_problem(value: Any, name: str) -> str | None:
    if not isinstance(value, dict):
        return f"has no {name!r} object"
    if set(value) != set(_INTERVAL_FIELDS):
        return f"has {name} fields {sorted(value)}, expected exactly {list(_INTERVAL_FIELDS)}"
    for field in _INTERVAL_FIELDS:
        if not _positive(value[field]):
            return f"has {name}.{field} = {short_repr(value[field])}, not a positive number"
    if not value["low"] <= value["median"] <= value["high"]:
        return f"has a {name} interval that does not contain its median"
    return None


def _positive(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:  # an integer of hundreds of digits
        return False


def fingerprint_difference(then: dict, now: dict) -> str | None:
    """Where the machine that recorded a baseline differs from this one, in words."""
    differences = [
        f"{name} {short_repr(then.get(name))} (now {short_repr(now.get(name))})"
        for name in sorted(set(then) | set(now))
        if then.get(name) != now.get(name)
    ]
    return "with " + ", ".join(differences) if differences else None


class Extension(NamedTuple):
    """What ``--ts-extend-baseline`` could not add a run to: entries the file did not hold
    yet (``new``), and entries it held that could not take another run (``started_over``)."""

    new: list[str]
    started_over: list[str]


def update(path: Path, new_entries: dict[str, dict], extend: bool = False) -> Extension:
    """Merge ``new_entries`` into the baseline at ``path``, keeping every other entry. With
    ``extend``, each new entry is added to the recordings of the entry it replaces, where
    that one was recorded on this machine, input set and calls per sample; the keys where it
    could not be (and so started over with this run's recording), and the keys the file did
    not hold, are returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = Extension([], [])
    with locked(path.with_name(f".{path.name}.lock")):
        entries = {
            key: entry.raw if isinstance(entry, InvalidEntry) else entry
            for key, entry in load(path).items()
        }
        for key, entry in new_entries.items():
            if extend:
                combined = extended(entries.get(key), entry)
                if combined is not None:
                    entry = combined
                elif key in entries:
                    result.started_over.append(key)
                else:
                    result.new.append(key)
            entries[key] = entry
        document = {"format": FORMAT, "version": VERSION, "entries": dict(sorted(entries.items()))}
        write_text_atomically(path, json.dumps(document, indent=2) + "\n")
    return result


def recordings(entry: dict) -> list[dict]:
    """The runs an entry was recorded from: its ``"recordings"``, or the entry itself."""
    return entry.get("recordings") or [
        {name: entry[name] for name in RECORDING_FIELDS if name in entry}
    ]


def extended(old: Any, new: dict) -> dict | None:
    """``new`` (one run's entry) with ``old``'s recordings kept before it, the latest
    ``MAX_RECORDINGS``; None where ``old`` is not comparable: missing, invalid, recorded
    before the probe or latencies existed, on another machine, input set or calls per
    sample."""
    comparable = (
        isinstance(old, dict)
        and _entry_problem(old) is None
        and all(name in old for name in RECORDING_FIELDS)
        and all(old.get(name) == new.get(name) for name in ("fingerprint", "timed_input", "loops"))
    )
    if not comparable:
        return None
    kept = [*recordings(old), {name: new[name] for name in RECORDING_FIELDS}]
    return pooled(new, kept[-MAX_RECORDINGS:])


def pooled(template: dict, runs: list[dict]) -> dict:
    """An entry of several recordings: ``template``'s other fields, and each figure the
    median of the recordings' (an interval keeps the median recording's relative width:
    how precisely one run measures it; how far runs differ is ``between_runs``'s)."""

    median = statistics.median

    def interval(get: Callable[[dict], dict]) -> dict:
        found = [get(run) for run in runs]
        middle = median([value["median"] for value in found])
        return {
            "median": middle,
            "low": middle * median([value["low"] / value["median"] for value in found]),
            "high": middle * median([value["high"] / value["median"] for value in found]),
        }

    probes = [run["probe"] for run in runs]
    components = set.intersection(*(set(probe.get("components", {})) for probe in probes))
    return {
        **template,
        "ratio": interval(lambda run: run["ratio"]),
        "eager_median": median([run["eager_median"] for run in runs]),
        "converted_median": median([run["converted_median"] for run in runs]),
        "normalised": {
            role: interval(lambda run, role=role: run["normalised"][role])
            for role in ("eager", "converted")
        },
        "probe": {
            **interval(lambda run: {k: run["probe"][k] for k in ("median", "low", "high")}),
            "spread": median([probe.get("spread", 0.0) for probe in probes]),
            "components": {
                name: median([probe["components"][name] for probe in probes])
                for name in sorted(components)
            },
        },
        "latency": {
            role: median([run["latency"][role] for run in runs]) for role in ("eager", "converted")
        },
        "recordings": runs,
    }


def between_runs(entry: dict) -> dict[str, float]:
    """What a later run of the same code may differ by from the entry's figures (log units),
    per figure ("ratio", "eager", "converted"): twice as far as its runs lie apart (their
    range); {} for an entry of one run, which cannot tell.

    Twice, because a few runs underestimate how far the next can land: for normally varying
    runs, a new one lies beyond the median of three by more than their range 12% of the time
    and by more than twice it 4% (5 runs: 5% and 0.6%); and the threshold comes on top. On
    mobilenet_v3_small, whose time here wanders +-9% over tens of minutes, baselines of runs
    from other batches 20 minutes apart flagged 10% of unchanged gates with the range, 6-7%
    with twice it (between_processes.py)."""
    runs = entry.get("recordings") or []
    if len(runs) < 2:
        return {}
    reference = (entry.get("probe") or {}).get("components") or {}
    figures = {
        "ratio": lambda run: run["ratio"]["median"],
        "eager": lambda run: run["normalised"]["eager"]["median"] * _odd_factor(run, reference),
        "converted": lambda run: (
            run["normalised"]["converted"]["median"] * _odd_factor(run, reference)
        ),
    }
    spread = {}
    for name, get in figures.items():
        values = [get(run) for run in runs]
        spread[name] = RANGE_FACTOR * math.log(max(values) / min(values))
    return spread


def _odd_factor(run: dict, reference: dict[str, float]) -> float:
    """What ``run``'s probe-normalised times are multiplied by to read them against its probe's
    middle component, as the gate reads a new run's (``perf.odd_component``, which takes the
    probe's own medians; here the mean of the components' shifts stands for the probe's, which
    is their geometric mean round by round). One component moving alone between recordings (the
    memory stream here: 10-26% between processes of an idle VM) would otherwise spread the
    recordings' normalised times by a third of that, and the allowance of twice their range
    with it (a chain model's 3 runs allowed a later run 16-18% where its own runs differed by
    2-3%). 1.0 where the components are not known."""
    shifts = component_shifts((run.get("probe") or {}).get("components") or {}, reference)
    if len(shifts) < 3:
        return 1.0
    _, middle = middle_of(shifts)
    return math.exp(sum(shifts.values()) / len(shifts) - middle)


def fingerprint(device: Any, threads: int) -> dict[str, Any]:
    """What must match for absolute times to be comparable across runs."""
    from ..check.jit_warnings import import_torch

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
