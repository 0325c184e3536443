"""Writing files safely where users and other runs also write: every write goes to an
exclusively created temporary beside its target and is renamed into place (a crash never leaves
half a file; a planted symlink is replaced, never followed); temporaries left by a killed run
are cleaned up; and a file the run will write at its end is checked at start-up."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageProblem


def prepare_output_path(text: str, source: str) -> Path:
    """Check a file the run writes at its end (``--ts-report``, ``--ts-html``,
    ``--ts-baseline``) now: not a directory, in a folder that can be created and written. A
    bad path is a usage error before any model is timed, not a traceback after the run."""
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        example = f"{text}/{_example_name(source)}"
        raise UsageProblem(f"{source}={text}: is a directory; give a file path, e.g. {example}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=TEMPORARY_PREFIX):
            pass
    except OSError as error:
        raise UsageProblem(
            f"{source}={text}: cannot write there ({error.strerror or error}); choose a "
            f"writable location"
        ) from None
    remove_stale_temporaries(path.parent)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """``write_bytes_atomically`` for UTF-8 text."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to an exclusively created temporary file beside ``path`` and rename it
    over ``path``: a reader (or a crash) never sees half a file, and a symlink at ``path`` is
    replaced, not followed. Permissions are the usual ones (umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = exclusive_temporary(path)
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


def readable_input_path(text: str, source: str) -> Path:
    """A file the run only reads (``--ts-baseline`` without an update): it may be missing (a
    missing baseline is reported per check), but it must not be a directory."""
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        example = f"{text}/{_example_name(source)}"
        raise UsageProblem(f"{source}={text}: is a directory; give a file path, e.g. {example}")
    return path


@dataclass(frozen=True)
class OwnFile:
    """A kind of file the plugin writes, as its writer knows it: what to call it, what it
    says near its start (so a file without it is not ours) and a name to suggest."""

    what: str  # "JSON report"
    signature: bytes
    example: str  # "report.json"


def refuse_foreign_file(path: Path, flag: str, kind: OwnFile) -> None:
    """Never overwrite a file this plugin did not write: a ``--ts-report=notes.json`` or a
    ``--ts-html=index.html`` that names a user's file would otherwise destroy it at the end
    of the run. An earlier run's output (or an empty file) is replaced as before."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except OSError:  # missing, or unreadable: writing it is checked (and reported) apart
        return
    if head.strip() and kind.signature not in head:
        raise UsageProblem(
            f"{flag}: {path} exists and is not a pytest-torchscript {kind.what}, so writing "
            f"there would destroy it; give another path (e.g. {path.with_name(kind.example)}), "
            f"or delete the file first if it is yours to lose"
        )


def _example_name(source: str) -> str:
    """A file name for ``source``'s kind of file, for a message that suggests one."""
    return (
        "report.html"
        if "html" in source
        else "baseline.json"
        if "baseline" in source
        else "report.json"
    )


TEMPORARY_PREFIX = ".ts-partial-"
STALE_AFTER_S = 3600.0  # a temporary this old belongs to a run that was killed mid-write


def exclusive_temporary(path: Path) -> Path:
    """A new, empty file beside ``path`` (O_EXCL: never an existing file or link)."""
    handle, name = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.stem}.", suffix=path.suffix
    )
    os.close(handle)
    return Path(name)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete this plugin's temporaries left in ``folder`` (not below it) by a killed run."""
    removed = 0
    now = time.time()
    try:
        candidates = list(folder.glob(f"{TEMPORARY_PREFIX}*"))
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


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing): two processes updating
    one baseline, or building one C++ runner, take turns. Where fcntl is missing (Windows)
    there is no lock; every write is still atomic."""
    with open(lock_path, "a") as lock:
        try:
            import fcntl
        except ImportError:
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
