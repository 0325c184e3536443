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
import time
from pathlib import Path
from typing import Any

from .errors import UsageProblem
from .exporting import load_program, program_code, save_program
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
        with tempfile.NamedTemporaryFile(dir=root, prefix=_TEMPORARY_PREFIX):
            pass
    except OSError as error:
        raise UsageProblem(
            f"{source}={text}: cannot write artifacts there ({error.strerror or error}); "
            f"choose a writable directory"
        ) from None
    return root.resolve()


def prepare_output_path(text: str, source: str) -> Path:
    """Check a file the run writes at its end (``--ts-report``, ``--ts-html``,
    ``--ts-baseline``) now: not a directory, in a folder that can be created and written. A
    bad path is a usage error before any model is timed, not a traceback after the run."""
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise UsageProblem(f"{source}={text}: is a directory; give a file path, e.g. {text}/x.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=_TEMPORARY_PREFIX):
            pass
    except OSError as error:
        raise UsageProblem(
            f"{source}={text}: cannot write there ({error.strerror or error}); choose a "
            f"writable location"
        ) from None
    remove_stale_temporaries(path.parent)
    return path


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
    suffix = ".onnx" if is_onnx else ".pt2" if exported else ".pt"
    path = folder / f"{stem}{suffix}"
    temporary = _exclusive_temporary(path)
    try:
        with recording_warnings(into):
            if is_onnx:
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
    for source in (path, path.with_suffix(".code"), path.with_suffix(".graph")):
        if source.exists():
            write_bytes_atomically(folder / source.name, source.read_bytes())
    return published


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
    """``write_bytes_atomically`` for UTF-8 text."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to an exclusively created temporary file beside ``path`` and rename it
    over ``path``: a reader (or a crash) never sees half a file, and a symlink at ``path`` is
    replaced, not followed. Permissions are the usual ones (umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _exclusive_temporary(path)
    try:
        with open(temporary, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


_TEMPORARY_PREFIX = ".ts-partial-"
STALE_AFTER_S = 3600.0  # a temporary this old belongs to a run that was killed mid-write


def _exclusive_temporary(path: Path) -> Path:
    """A new, empty file beside ``path`` (O_EXCL: never an existing file or link)."""
    handle, name = tempfile.mkstemp(
        dir=path.parent, prefix=f"{_TEMPORARY_PREFIX}{path.stem}.", suffix=path.suffix
    )
    os.close(handle)
    return Path(name)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete this plugin's temporaries left in ``folder`` (not below it) by a killed run."""
    removed = 0
    now = time.time()
    try:
        candidates = list(folder.glob(f"{_TEMPORARY_PREFIX}*"))
    except OSError:
        return 0
    for candidate in candidates:
        try:
            if candidate.is_file() and now - candidate.lstat().st_mtime > STALE_AFTER_S:
                candidate.unlink()
                removed += 1
        except OSError:
            continue
    return removed
