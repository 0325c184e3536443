"""Convert a model with torch.jit.trace or torch.jit.script, and explain a failure in the user's
terms: the converter's own message, the line of the user's source it points at, and a hint."""

from __future__ import annotations

import linecache
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .aoti import AotiPackage, compile_package, load_package
from .exporting import (
    explain_export_failure,
    export_program,
    recording_size_decisions,
    without_plugin_frames,
)
from .jit_warnings import (
    RecordedWarning,
    display_path,
    import_torch,
    is_library_file,
    recording_warnings,
)
from .onnx_mode import OnnxModule, export_onnx
from .options import EXPORTED_MODES
from .text import first_lines, model_name, root_cause, strip_ansi

_HINTS = {
    "script": (
        "mode='trace' records the operations that one input actually runs and may work where "
        "script cannot (but freezes data-dependent control flow); or keep the unsupported code "
        "out of the compiled path with @torch.jit.ignore / @torch.jit.unused"
    ),
    "trace": (
        "mode='script' compiles the Python source itself and handles control flow and "
        "non-tensor values that tracing cannot record"
    ),
}
_SCRIPT_LOCATION = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


@dataclass
class Conversion:
    """``module`` is what runs (a ScriptModule, or an exported program's module); ``artifact``
    is what is saved (the same ScriptModule, or the ExportedProgram)."""

    module: Any
    seconds: float
    warnings: list[RecordedWarning] = field(default_factory=list)
    artifact: Any = None
    size_decisions: list[tuple[str, int, str]] = field(default_factory=list)  # export only

    def __post_init__(self) -> None:
        if self.artifact is None:
            self.artifact = self.module


class ConversionFailed(Exception):
    """The converter rejected the model; the message is ready to show the user, with long
    lines cut; ``full_text`` (when set) is the converter's whole message, for the artifacts."""

    full_text: str | None = None


def convert(
    model: Any,
    mode: str,
    args: tuple,
    kwargs: dict,
    dynamic_shapes: Any = None,
    device: Any = "cpu",
    threads: int = 1,
    onnx_options: dict | None = None,
) -> Conversion:
    """Convert ``model`` with the example ``args``/``kwargs`` (a fresh copy the model may keep).
    ``dynamic_shapes`` is used by the export and onnx modes only."""
    torch = import_torch()
    recorded: list[RecordedWarning] = []
    started = time.perf_counter()
    if mode in EXPORTED_MODES:
        return _export(
            model,
            mode,
            args,
            kwargs,
            dynamic_shapes,
            recorded,
            started,
            device,
            threads,
            onnx_options or {},
        )
    try:
        with recording_warnings(recorded):
            if mode == "script":
                module = torch.jit.script(model)
            elif kwargs and args:
                raise ConversionFailed(
                    "mode='trace' cannot take positional and keyword arguments in one input "
                    "set (torch.jit.trace accepts example_inputs or example_kwarg_inputs, not "
                    "both); pass a tuple of positional arguments or a dict of keyword arguments"
                )
            elif kwargs:
                module = torch.jit.trace(
                    model, example_kwarg_inputs=kwargs, strict=False, check_trace=False
                )
            else:
                module = torch.jit.trace(model, args, strict=False, check_trace=False)
    except ConversionFailed:
        raise
    except Exception as error:
        raise ConversionFailed(explain_failure(model, mode, error)) from None
    return Conversion(module, time.perf_counter() - started, recorded)


def _export(
    model, mode, args, kwargs, dynamic_shapes, recorded, started, device, threads, onnx_options
) -> Conversion:
    guards: list[tuple[str, int, str]] = []
    try:
        with recording_warnings(recorded), recording_size_decisions(guards):
            if mode == "onnx":
                program = export_onnx(model, args, kwargs, dynamic_shapes, onnx_options)
                module = OnnxModule.from_program(program, model, device, threads)
            elif mode == "aoti":
                exported = export_program(model, args, kwargs, dynamic_shapes)
                program = AotiPackage(compile_package(exported), exported)
                module = load_package(program.path, device)
            else:
                program = export_program(model, args, kwargs, dynamic_shapes)
                module = program.module()
    except Exception as error:
        converter = {"onnx": "torch.onnx.export", "aoti": "torch.export + AOTInductor"}.get(
            mode, "torch.export"
        )
        lines = [f"{converter} could not convert {model_name(model)} (mode={mode!r})"]
        location = user_location(error)
        if location is not None:
            source = linecache.getline(location[0], location[1]).strip()
            lines.append(f"  at {display_path(location[0])}:{location[1]}: {source}")
        lines.append(explain_export_failure(error, guards))
        root = root_cause(error)
        if root is not error:
            text = first_lines(without_plugin_frames(strip_ansi(str(root))), 6)
            lines.append(f"root cause: {type(root).__name__}: " + text.replace("\n", "\n  "))
        whole = strip_ansi(f"{error}\n{root}").lower()
        if mode == "onnx" and ("passmanager" in whole or "constant folding" in whole):
            lines.append(
                "hint: the ONNX exporter's optimizer failed after the model was exported; "
                "export without it: @pytest.mark.torchscript(onnx_options={'optimize': False}) "
                "(torch.onnx.export(..., optimize=False) in your own export code)"
            )
        failure = ConversionFailed(strip_ansi("\n".join(lines)))
        failure.full_text = strip_ansi(f"{error}\n\nroot cause:\n{root}")
        raise failure from None
    return Conversion(module, time.perf_counter() - started, recorded, program, guards)


def explain_failure(model: Any, mode: str, error: BaseException) -> str:
    converter = "torch.jit.script" if mode == "script" else "torch.jit.trace"
    own_message = str(error).strip() or type(error).__name__
    lines = [f"{converter} could not convert {model_name(model)} (mode={mode!r})"]
    location = user_location(error)
    if location is not None:
        filename, lineno = location
        source = linecache.getline(filename, lineno).strip()
        lines.append(f"  at {display_path(filename)}:{lineno}: {source}")
    lines.append(f"  {type(error).__name__}: " + own_message.replace("\n", "\n    "))
    lines.append(f"hint: {_HINTS[mode]}")
    return "\n".join(lines)


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
