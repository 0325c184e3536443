"""The conversion modes, one module per family, and the registry the rest of the plugin asks.

``MODES`` (what the marker accepts, in the order the report lists them) is derived from the
registry. Adding a mode is writing a ``Backend`` (see ``base.py``) in its own module and
registering it here; nothing else in the plugin names a mode. Importing this package imports no
torch: backends import it when they first run.
"""

from __future__ import annotations

from typing import Any

from .aoti import AotiBackend
from .base import Backend, Conversion, ConversionFailed, Target
from .compile import CompileBackend
from .export import ExportBackend
from .jit import ScriptBackend, TraceBackend
from .onnx import OnnxBackend
from .tvm import TvmBackend

BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        TraceBackend(),
        ScriptBackend(),
        ExportBackend(),
        OnnxBackend(),
        AotiBackend(),
        CompileBackend(),
        TvmBackend(),
    )
}
MODES: tuple[str, ...] = tuple(BACKENDS)
# What mode="all" checks where --ts-modes does not say (see Backend.in_all).
ALL_MODES: tuple[str, ...] = tuple(name for name, b in BACKENDS.items() if b.in_all)


def backend(mode: str) -> Backend:
    """The backend of a validated mode name."""
    return BACKENDS[mode]


def owner_of(artifact: Any) -> Backend | None:
    """The backend that saves ``artifact`` (an artifact handed to the fixture's ``roundtrip``,
    whose mode the test may not say), or None for what no mode saves (an eager module)."""
    return next((b for b in BACKENDS.values() if b.owns(artifact)), None)


def backend_for_artifact(artifact: Any) -> Backend:
    """``owner_of``, TorchScript when none claims it."""
    return owner_of(artifact) or BACKENDS["trace"]


def convert(model: Any, mode: str, args: tuple, kwargs: dict, target: Target | None = None):
    """Convert ``model`` in ``mode`` with example ``args``/``kwargs`` (a copy the model may
    keep); raise ``ConversionFailed`` with the converter's explanation."""
    return backend(mode).convert(model, args, kwargs, target or Target())


__all__ = [
    "ALL_MODES",
    "BACKENDS",
    "MODES",
    "Backend",
    "Conversion",
    "ConversionFailed",
    "Target",
    "backend",
    "backend_for_artifact",
    "convert",
    "owner_of",
]
