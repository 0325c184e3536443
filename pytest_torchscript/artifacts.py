"""Where converted artifacts go, and how they are written (atomically) and read back.

With ``--ts-artifacts=DIR`` every artifact is kept under DIR, one folder per test id, next to
its ``.code`` (the TorchScript source) and ``.graph`` (the inlined graph) so a CI failure can be
read from the artifacts alone. Without it they go to pytest's temporary directory.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import UsageProblem
from .exporting import load_program, program_code, save_program
from .jit_warnings import RecordedWarning, import_torch, recording_warnings
from .onnx_mode import save_onnx

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def prepare_artifact_root(text: str, source: str) -> Path:
    """Create ``--ts-artifacts`` DIR now and prove it is writable, so a bad path is a usage
    error at start-up rather than a failure of every test."""
    root = Path(text).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageProblem(
            f"{source}={text}: cannot write artifacts there ({error.strerror or error}); "
            f"choose a writable directory"
        ) from None
    return root.resolve()


def folder_for(root: Path, test_id: str) -> Path:
    """One folder per test id, named readably: ``tests/test_m.py::test_x[trace]`` becomes
    ``tests_test_m.py__test_x_trace``."""
    name = _UNSAFE.sub("_", test_id.replace("::", "__")).strip("_") or "test"
    return root / name[:150]


def save(artifact: Any, folder: Path, stem: str, into: list[RecordedWarning]) -> Path:
    """Write a ScriptModule as ``stem.pt`` (an ExportedProgram as ``stem.pt2``) plus
    ``stem.code``/``stem.graph``, each via a temporary file and a rename so a crash never
    leaves a truncated artifact behind."""
    torch = import_torch()
    folder.mkdir(parents=True, exist_ok=True)
    exported = isinstance(artifact, torch.export.ExportedProgram)
    is_onnx = type(artifact).__name__ == "ONNXProgram"
    suffix = ".onnx" if is_onnx else ".pt2" if exported else ".pt"
    path = folder / f"{stem}{suffix}"
    temporary = folder / f".{stem}.partial{suffix}"
    with recording_warnings(into):
        if is_onnx:
            save_onnx(artifact, temporary)
        elif exported:
            save_program(artifact, temporary)
        else:
            torch.jit.save(artifact, str(temporary))
        code, graph = describe(artifact)
    os.replace(temporary, path)
    write_text_atomically(folder / f"{stem}.code", code)
    write_text_atomically(folder / f"{stem}.graph", graph)
    return path


def describe(artifact: Any) -> tuple[str, str]:
    """The code and graph text of a converted artifact (ScriptModule, ExportedProgram or
    ONNXProgram)."""
    torch = import_torch()
    if isinstance(artifact, torch.export.ExportedProgram):
        return program_code(artifact)
    if type(artifact).__name__ == "ONNXProgram":
        return str(artifact.model), str(getattr(artifact.exported_program, "graph", ""))
    graph = getattr(artifact, "inlined_graph", getattr(artifact, "graph", ""))
    return getattr(artifact, "code", ""), str(graph)


def load(path: Path, device: Any, into: list[RecordedWarning], like: Any = None) -> Any:
    """Load an artifact back; an ``.onnx`` file is called like ``like`` (its OnnxModule)."""
    torch = import_torch()
    with recording_warnings(into):
        if path.suffix == ".onnx":
            return like.like(path)
        if path.suffix == ".pt2":
            return load_program(path)
        return torch.jit.load(str(path), map_location=device)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``: a reader
    (or a crash) never sees half a file. Permissions are the usual ones (umask), not 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
