"""Where converted artifacts go, and how they are written (atomically) and read back.

With ``--ts-artifacts=DIR`` every artifact is kept under DIR, one folder per test id, next to
its ``.code`` (the TorchScript source) and ``.graph`` (the inlined graph) so a CI failure can be
read from the artifacts alone. Without it they go to pytest's temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..check.jit_warnings import RecordedWarning, recording_warnings
from ..errors import UsageProblem
from ..files import (
    TEMPORARY_PREFIX,
    exclusive_temporary,
    remove_stale_temporaries,
    write_bytes_atomically,
    write_text_atomically,
)
from ..modes import Backend, backend_for_artifact

_UNSAFE = re.compile(r"[^A-Za-z0-9._=\[\]-]+")
_NAME_LIMIT = 150


def prepare_artifact_root(text: str, source: str) -> Path:
    """Create ``--ts-artifacts`` DIR now and prove it is writable, so a bad path is a usage
    error at start-up rather than a failure of every test."""
    root = Path(text).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageProblem(
            f"{source}={text}: is a file, and artifacts go in a directory; give a directory "
            f"path, e.g. {text}-artifacts"
        )
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


def save(
    artifact: Any, folder: Path, stem: str, into: list[RecordedWarning], backend: Backend
) -> Path:
    """Write the artifact as ``stem`` plus its mode's suffix (``.pt``, ``.pt2``, ``.onnx``)
    beside ``stem.code``/``stem.graph``. Each file is written to a fresh, exclusively created
    temporary name and renamed into place: a crash never leaves a truncated artifact, and
    nothing already at a name (a file, a planted symlink) is written through."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{backend.suffix}"
    temporary = exclusive_temporary(path)
    try:
        with recording_warnings(into):
            backend.save(artifact, temporary)
            code, graph = backend.describe(artifact)
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


# What a check writes under its test's folder of --ts-artifacts, per stem (``trace``,
# ``trace-2`` for a test's second check of that mode): the artifact with its code and graph,
# and ``<stem>-failure/`` with the evidence of a failure (``evidence.py``).
ARTIFACT_SUFFIXES = (".pt", ".pt2", ".onnx", ".code", ".graph")
EVIDENCE_PATTERNS = (
    "failure.txt",
    "converter-error.txt",
    "*.code",
    "*.graph",
    "graph-set0-vs-set*.diff",
    "outputs-set*.pt",
)


def stem_for(mode: str, check_number: int) -> str:
    """The name a test's ``check_number``-th check of ``mode`` writes under."""
    return mode if check_number == 1 else f"{mode}-{check_number}"


def forget_earlier_evidence(folder: Path) -> None:
    """Remove the evidence an earlier run's failure left in ``folder`` (a ``<stem>-failure/``):
    before this run's failure writes its own (an earlier run's ``outputs-set3.pt`` beside this
    run's failure would read as this run's), or when the check passed (evidence of a failure
    that no longer happens sends someone debugging after it). Only the files a failure writes
    are removed, then the folder if that left it empty; never through a symlink."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for pattern in EVIDENCE_PATTERNS:
        for path in folder.glob(pattern):
            with contextlib.suppress(OSError):
                if path.is_file() or path.is_symlink():
                    path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only if empty: anything else there is not ours to remove


def forget_earlier_artifact(folder: Path, stem: str, published: set[Path]) -> None:
    """Remove the artifact an earlier run saved under ``stem`` (with its code and graph), for a
    check that failed before saving one: beside this run's failure it would read as this run's
    converted module. One this run ``published`` (the fixture's own roundtrip() in the same
    test) stays."""
    if folder.is_symlink() or any(folder / f"{stem}{s}" in published for s in ARTIFACT_SUFFIXES):
        return
    for suffix in ARTIFACT_SUFFIXES:
        with contextlib.suppress(OSError):
            (folder / f"{stem}{suffix}").unlink(missing_ok=True)


def describe(artifact: Any) -> tuple[str, str]:
    """The code and graph text of a converted artifact of any mode."""
    return backend_for_artifact(artifact).describe(artifact)


def load(
    path: Path, device: Any, into: list[RecordedWarning], backend: Backend, like: Any = None
) -> Any:
    """Load an artifact back; ``like`` is the converted module it came from (an ``.onnx``
    file is called the way its onnxruntime module was)."""
    with recording_warnings(into):
        return backend.load(path, device, like)
