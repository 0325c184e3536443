"""What a conversion mode is: the ``Backend`` every mode module implements, and the
``Conversion`` it returns or the ``ConversionFailed`` it raises.

A backend owns everything that differs between modes, so the rest of the plugin never asks
which mode it runs: how to convert (and explain a failure in the user's terms), how the artifact
is saved, described, loaded back in this process and in a fresh one, which tolerances apply by
default, which control-flow analysis fits, whether LibTorch in C++ can run it, and whether this
installation can run the mode at all (a missing extra is a skip reason, not a crash).
"""

from __future__ import annotations

import importlib.util
import linecache
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..check.jit_warnings import RecordedWarning, is_library_file
from ..text import display_path, model_name

_SCRIPT_LOCATION = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def installed(name: str) -> bool:
    """Whether an optional extra's package can be imported, without importing it (a mode that
    needs it skips with the install command where it cannot)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
        return False


@dataclass(frozen=True)
class Target:
    """Where and how to convert: the device, the threads eager gets while timing (a runtime of
    its own, like onnxruntime, gets as many), and the mode-specific settings of the check."""

    device: Any = "cpu"
    threads: int = 1
    dynamic_shapes: Any = None  # modes that go through torch.export
    onnx_options: Mapping[str, Any] = field(default_factory=dict)
    compile_options: Mapping[str, Any] = field(default_factory=dict)  # mode="compile"
    tvm_target: Any = None  # mode="tvm": a TVM target string or dict; None: the device's


@dataclass
class Conversion:
    """``module`` is what runs (a ScriptModule, an exported program's module, an onnxruntime
    session called like the model); ``artifact`` is what is saved (the same ScriptModule, the
    ExportedProgram, the ONNX program, the AOTInductor package)."""

    module: Any
    seconds: float
    warnings: list[RecordedWarning] = field(default_factory=list)
    artifact: Any = None
    size_decisions: list[tuple[str, int, str]] = field(default_factory=list)  # torch.export

    def __post_init__(self) -> None:
        if self.artifact is None:
            self.artifact = self.module


class ConversionFailed(Exception):
    """The converter rejected the model; the message is ready to show the user, with long
    lines cut; ``full_text`` (when set) is the converter's whole message, for the artifacts."""

    full_text: str | None = None


class Backend:
    """One conversion mode. Subclasses set the class attributes and implement ``convert``,
    ``owns``, ``save``, ``describe`` and ``load``; the defaults suit modes whose converted
    module takes and returns what the model does."""

    name: ClassVar[str]
    converter: ClassVar[str]  # the converter as messages name it, e.g. "torch.jit.trace"
    suffix: ClassVar[str]  # of the saved artifact
    # Modes that go through torch.export: dynamic dimensions are inferred from the input sets,
    # the size decisions of the user's code are recorded, and an input the program rejects is
    # explained by them.
    exported: ClassVar[bool] = False
    # Which control-flow analysis applies: "trace" (re-trace every input set, name the frozen
    # branch), "script" (which compiled arms eager exercised), "coverage" (eager's decisions
    # only: the converter refuses data-dependent branches itself).
    control_flow: ClassVar[str] = "coverage"
    # How the fresh process loads the artifact (a loader of ``fresh_worker.py``).
    fresh_loader: ClassVar[str]
    # Whether that is the session's shared fresh worker, started ahead so its torch import
    # overlaps the conversion (a mode with a fresh process of its own, ``run_fresh``, is not).
    shared_fresh_worker: ClassVar[bool] = True
    # How LibTorch in C++ runs it: "structured" (a TorchScript module, the model's own inputs
    # and outputs), "flat" (a list of tensors in, a list out), or None (another runtime).
    cpp_inputs: ClassVar[str | None] = None
    # least rtol/atol under every floating dtype's defaults, where the user set none
    tolerances: ClassVar[Mapping[str, float]] = {}
    # Whether the converted module computes with the Python values (numbers, flags, strings)
    # of the example input set whatever it is called with later: the converter records them
    # as constants (or guards on them). Only script compiles them as real arguments.
    records_python_values: ClassVar[bool] = True
    # Whether mode="all" checks it unless --ts-modes says otherwise: the deployment formats do;
    # a mode whose check costs many times the others' (compile: a cold Inductor compile, and
    # another in the fresh process) is opted into by naming it.
    in_all: ClassVar[bool] = True
    # Whether the converted module runs in torch (torch.profiler can split its time by
    # operator, to say where a regression's time went); not a runtime of its own.
    runs_in_torch: ClassVar[bool] = True

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        """Why this installation cannot run the mode (a missing extra, a torch without it, a
        toolchain the check's ``options`` need), as a skip reason; None when it can."""
        return None

    def roundtrip_missing_reason(self) -> str | None:
        """Why this torch cannot save and reload what the mode converts (an API it lacks), as
        the round trip's skip reason; None when it can."""
        return None

    def convert(self, model: Any, args: tuple, kwargs: dict, target: Target) -> Conversion:
        raise NotImplementedError

    def owns(self, artifact: Any) -> bool:
        """Whether ``artifact`` is what this mode saves (for artifacts handed to the
        fixture's ``roundtrip``, whose mode is not known)."""
        raise NotImplementedError

    def save(self, artifact: Any, path: Path) -> None:
        raise NotImplementedError

    def describe(self, artifact: Any) -> tuple[str, str]:
        """The artifact's code and graph as text, kept beside it for reading a CI failure."""
        raise NotImplementedError

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        """The saved artifact as a callable; ``like`` is the converted module it came from."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop what converting left in process-wide caches; called when the test that used
        this mode ends (never while its modules may still be in use)."""

    def fingerprint(self, conversion: Conversion) -> Any:
        """What the converted artifact computes, as operator counts per module path
        (``graph_diff.Fingerprint``), for the baseline to compare exactly; None where the
        mode's graph cannot be read."""
        return None

    def findings(self, conversion: Conversion) -> Any:
        """What the converter did that parity cannot show, judged once parity has run every
        input set (torch.compile's graph breaks and recompiles: ``dynamo.CompileFindings``);
        None for modes with nothing of the kind."""
        return None

    def run_fresh(
        self, session: Any, path: Path, cpu_sets: list[tuple], device: str, converted: Any
    ) -> tuple[list[Any], dict]:
        """Load and run the artifact in a fresh Python process (the session's, which never
        imports the user's code); its outputs and the process's reply."""
        return session.fresh_process().run(path, self.fresh_loader, cpu_sets, device)

    def fresh_inputs(self, converted: Any, cpu_sets: list[tuple]) -> list[tuple]:
        """The input sets as the fresh process feeds them to the loaded artifact."""
        return cpu_sets

    def fresh_outputs(self, converted: Any, outputs: list[Any]) -> list[Any]:
        """The fresh process's outputs in the structure the model returns."""
        return outputs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} mode={self.name!r}>"


def failure_header(converter: str, model: Any, mode: str, error: BaseException) -> list[str]:
    """The first lines of every conversion failure: which converter refused which model, and
    the line of the user's code it points at."""
    lines = [f"{converter} could not convert {model_name(model)} (mode={mode!r})"]
    location = user_location(error)
    if location is not None:
        filename, lineno = location
        source = linecache.getline(filename, lineno).strip()
        lines.append(f"  at {display_path(filename)}:{lineno}: {source}")
    return lines


def user_location(error: BaseException) -> tuple[str, int] | None:
    """The user's file and line an error points at: TorchScript's source ranges in the message
    first (script errors), else the innermost user frame of the traceback (trace errors)."""
    for match in _SCRIPT_LOCATION.finditer(str(error)):
        if not is_library_file(match["file"]):
            return match["file"], int(match["line"])
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not is_library_file(frame.filename):
            return frame.filename, frame.lineno or 0
    return None
