"""Run torch calls with their warnings recorded instead of raised; and the one place for the
torch internals the plugin cannot avoid (each says why).

torch 2.13+ warns on every torch.jit call (a FutureWarning or DeprecationWarning), and tracing
raises TracerWarnings. A user suite running with ``-W error`` or ``filterwarnings = error``
must not fail because of calls the plugin makes, so every such call runs inside
``recording_warnings()``; what was recorded goes into the check's report.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package root


@dataclass(frozen=True)
class RecordedWarning:
    """A warning raised during a check; ``user_file``/``user_line`` is the innermost frame of
    the user's own code on the stack when it was raised (None when it came from library code
    the user's code did not call, such as a torchvision model's internals)."""

    category: str
    message: str
    filename: str
    lineno: int
    user_file: str | None = None
    user_line: int | None = None

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def to_dict(self) -> dict:
        return {
            "category": self.category,
            "message": self.message,
            "filename": self.filename,
            "lineno": self.lineno,
            "user_file": self.user_file,
            "user_line": self.user_line,
        }


@contextlib.contextmanager
def recording_warnings(into: list[RecordedWarning]) -> Iterator[None]:
    """Record every warning raised inside the block into ``into``; raise none of them.

    ``warnings.showwarning`` is replaced (rather than ``record=True``) because it is called
    while the warning's stack is still live, so the user's frame can be found even when the
    warning is raised deep inside torch.
    """

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        frame = sys._getframe(1)
        user = calling_user_frame(frame)
        if is_plugin_file(filename):  # raised through a decisions.py wrapper: find the caller
            filename, lineno = _first_outside(frame, filename, lineno)
        into.append(
            RecordedWarning(
                category=category.__name__,
                message=str(message),
                filename=filename,
                lineno=lineno,
                user_file=user[0] if user else None,
                user_line=user[1] if user else None,
            )
        )

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        yield


# torch logs records for its structured-trace viewer (tlparse) to this logger, at DEBUG, on a
# logger that does not propagate and whose level is forced to DEBUG. pytest 8 attaches its
# log-capture handlers to every non-propagating logger, so every failed export or ONNX check
# showed dozens of empty "DEBUG torch.__trace:structured.py:28" lines, and torch, seeing a
# handler, built every record's payload (graphs printed as text) for nobody.
STRUCTURED_TRACE_LOGGER = "torch.__trace"


@contextlib.contextmanager
def quiet_structured_trace() -> Iterator[None]:
    """Detach the handlers of torch's structured-trace logger for the duration of a check,
    unless the user asked for a trace (TORCH_TRACE), and put them back afterwards."""
    logger = logging.getLogger(STRUCTURED_TRACE_LOGGER)
    if os.environ.get("TORCH_TRACE"):
        yield
        return
    detached = list(logger.handlers)
    for handler in detached:
        logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in detached:
            logger.addHandler(handler)  # a no-op for one already back


# Code objects of the plugin's thin wrappers around tensor methods: frames running them are
# looked through, as if the wrapped method had been called directly.
TRANSPARENT_CODE: set[Any] = set()


def _first_outside(frame: Any, filename: str, lineno: int) -> tuple[str, int]:
    while frame is not None:
        code = frame.f_code
        if code not in TRANSPARENT_CODE and not _is_torch_or_stdlib_file(code.co_filename):
            return code.co_filename, frame.f_lineno
        frame = frame.f_back
    return filename, lineno


def calling_user_frame(frame: Any) -> tuple[str, int] | None:
    """The line of the user's code that called into torch, walking out from ``frame`` past
    torch's own frames (and the warnings machinery); None when the caller is another library
    (a torchvision model's internals are not the user's decisions) or this plugin."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if frame.f_code in TRANSPARENT_CODE or _is_torch_or_stdlib_file(filename):
            frame = frame.f_back
            continue
        if is_plugin_file(filename) or is_library_file(filename):
            return None
        return filename, frame.f_lineno
    return None


@functools.lru_cache(maxsize=4096)
def _is_torch_or_stdlib_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    torch = sys.modules.get("torch")
    roots = [os.path.dirname(os.__file__)]
    if torch is not None and getattr(torch, "__file__", None):
        roots.append(os.path.dirname(os.path.abspath(torch.__file__)))
    return any(path.startswith(root + os.sep) for root in roots)


@functools.lru_cache(maxsize=4096)
def is_plugin_file(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PLUGIN_DIR + os.sep)


def import_torch():
    """``import torch`` without letting its import-time warnings reach ``-W error`` filters."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    with recording_warnings([]):
        import torch
    return torch


@functools.lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """Whether a file belongs to torch, an installed package, the stdlib or this plugin, rather
    than to the user's own code."""
    path = os.path.abspath(filename)
    if path.startswith(_PLUGIN_DIR + os.sep):
        return True
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    if filename.startswith("<"):
        return True
    stdlib = os.path.dirname(os.__file__)
    return path.startswith(stdlib + os.sep)


def flatten_registered(value: Any) -> list[Any] | None:
    """The leaves of an object a library registered with torch's pytree (transformers' Cache
    and ModelOutput classes, for torch.export), or None when it is not such an object.

    torch's pytree module is private (``torch.utils._pytree``), but it is the only registry of
    these flattenings and torch.export depends on it; kept here, with the other torch
    internals, and tolerant of its absence."""
    try:
        from torch.utils import _pytree as pytree
    except ImportError:
        return None
    if type(value) not in getattr(pytree, "SUPPORTED_NODES", {}):
        return None
    try:
        leaves, _ = pytree.tree_flatten(value)
    except Exception:  # noqa: BLE001 - a library's flattening that fails: not comparable
        return None
    return leaves


def tree_flatten(value: Any) -> tuple[list[Any], Any]:
    """torch's pytree flattening (private, see ``flatten_registered``): the leaves of nested
    inputs or outputs in torch.export's order, and the spec that rebuilds them."""
    from torch.utils import _pytree as pytree

    return pytree.tree_flatten(value)


def tree_unflatten(leaves: list[Any], spec: Any) -> Any:
    """The structure ``spec`` (from ``tree_flatten`` or an exported program) rebuilt."""
    from torch.utils import _pytree as pytree

    return pytree.tree_unflatten(leaves, spec)


_TORCHSCRIPT_PROBE: list[str | None] = []


def torchscript_missing_reason() -> str | None:
    """Why this torch cannot run TorchScript (it was removed, or ``torch.jit`` raises unless
    an opt-in is set, as an open PyTorch change proposes), or None. Asked once per process,
    by scripting a one-line function."""
    if not _TORCHSCRIPT_PROBE:
        torch = import_torch()
        reason = None
        try:
            with recording_warnings([]):
                torch.jit.script(_probe_function)
        except Exception as error:  # noqa: BLE001 - any failure here means no TorchScript
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            reason = (
                f"this torch {torch.__version__} does not run TorchScript (torch.jit.script "
                f"raised {type(error).__name__}: {text}); check the model with mode='export' "
                f"(or 'onnx') instead"
            )
        _TORCHSCRIPT_PROBE.append(reason)
    return _TORCHSCRIPT_PROBE[0]


def forget_scripted_classes() -> None:
    """Drop TorchScript's process-wide registry of compiled Python classes, as transformers'
    own tests do after each test: it holds every class ever scripted (and what it refers to)
    until the process ends. Private (``torch.jit._state``); without it, nothing is dropped.
    Modules already scripted keep working; a class scripted again is compiled again."""
    state = getattr(import_torch().jit, "_state", None)
    clear = getattr(state, "_clear_class_state", None)
    if clear is not None:
        clear()


def _probe_function(x: int) -> int:
    return x + 1


def flat_tensors(value: Any) -> list[Any]:
    """The leaves of a nested output or input set in torch.export's order (its pytree), as
    AOTInductor's C++ loader takes and returns them."""
    return tree_flatten(value)[0]
