"""Where converted artifacts go, and how they are written (atomically) and read back.

With ``--ts-artifacts=DIR`` every artifact is kept under DIR, one folder per test id, next to
its ``.code`` (the TorchScript source) and ``.graph`` (the inlined graph) so a CI failure can be
read from the artifacts alone. Without it they go to pytest's temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .aoti import AotiPackage, is_package, load_package
from .errors import UsageProblem
from .exporting import load_program, program_code, save_program
from .files import (
    TEMPORARY_PREFIX,
    exclusive_temporary,
    remove_stale_temporaries,
    write_bytes_atomically,
    write_text_atomically,
)
from .jit_warnings import RecordedWarning, import_torch, recording_warnings
from .onnx_mode import save_onnx

_UNSAFE = re.compile(r"[^A-Za-z0-9._=\[\]-]+")
_NAME_LIMIT = 150


def prepare_artifact_root(text: str, source: str) -> Path:
    """Create ``--ts-artifacts`` DIR now and prove it is writable, so a bad path is a usage
    error at start-up rather than a failure of every test."""
    root = Path(text).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=TEMPORARY_PREFIX):
            pass
    except OSError as error:
        raise UsageProblem(
            f"{source}={text}: cannot write artifacts there ({error.strerror or error}); "
            f"choose a writable directory"
        ) from None
    return root.resolve()


def folder_for(root: Path, test_id: str) -> Path:
    """One folder per test id, named readably: ``tests/test_m.py::test_x[trace]`` becomes
    ``tests_test_m.py__test_x[trace]``. Where the name had to be shortened or characters
    replaced, a hash of the whole id keeps two tests from sharing (and clobbering) a folder."""
    readable = test_id.replace("::", "__")
    name = _UNSAFE.sub("_", readable).strip("_") or "test"
    if name != readable or len(name) > _NAME_LIMIT:
        digest = hashlib.sha1(test_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = f"{name[: _NAME_LIMIT - 11]}-{digest}"
    return root / name


def save(artifact: Any, folder: Path, stem: str, into: list[RecordedWarning]) -> Path:
    """Write a ScriptModule as ``stem.pt`` (an ExportedProgram as ``stem.pt2``, an ONNX
    program as ``stem.onnx``) plus ``stem.code``/``stem.graph``. Each file is written to a
    fresh, exclusively created temporary name and renamed into place: a crash never leaves a
    truncated artifact, and nothing already at a name (a file, a planted symlink) is written
    through."""
    torch = import_torch()
    folder.mkdir(parents=True, exist_ok=True)
    exported = isinstance(artifact, torch.export.ExportedProgram)
    is_onnx = type(artifact).__name__ == "ONNXProgram"
    compiled = isinstance(artifact, AotiPackage)
    suffix = ".onnx" if is_onnx else ".pt2" if exported or compiled else ".pt"
    path = folder / f"{stem}{suffix}"
    temporary = exclusive_temporary(path)
    try:
        with recording_warnings(into):
            if compiled:
                temporary.write_bytes(artifact.path.read_bytes())
            elif is_onnx:
                save_onnx(artifact, temporary)
            elif exported:
                save_program(artifact, temporary)
            else:
                torch.jit.save(artifact, str(temporary))
            code, graph = describe(artifact)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    write_text_atomically(folder / f"{stem}.code", code)
    write_text_atomically(folder / f"{stem}.graph", graph)
    return path


def publish(path: Path, folder: Path) -> Path:
    """Copy a saved artifact and its ``.code``/``.graph`` into the user's artifacts folder
    (atomically, never through what is there). The check itself only ever loads its private
    copy, so another process writing the same folder cannot make it load foreign bytes."""
    published = folder / path.name
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    for source in (path, path.with_suffix(".code"), path.with_suffix(".graph")):
        if source.exists():
            write_bytes_atomically(folder / source.name, source.read_bytes())
    return published


def describe(artifact: Any) -> tuple[str, str]:
    """The code and graph text of a converted artifact (ScriptModule, ExportedProgram or
    ONNXProgram)."""
    torch = import_torch()
    if isinstance(artifact, AotiPackage):
        return program_code(artifact.program)
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
            return load_package(path, device) if is_package(path) else load_program(path)
        return torch.jit.load(str(path), map_location=device)
