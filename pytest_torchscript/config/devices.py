"""``--ts-device``: its syntax at start-up (no torch), and its availability when first used."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ..check.jit_warnings import import_torch
from ..errors import UsageProblem

_DEVICE_SYNTAX = re.compile(r"^[a-z][a-z0-9_]*(:[0-9]+)?$")


def check_device_syntax(text: str, source: str) -> str:
    """Reject what cannot be a torch device string, without importing torch."""
    cleaned = text.strip()
    if not _DEVICE_SYNTAX.match(cleaned):
        raise UsageProblem(
            f"{source}: {text!r} is not a torch device; use cpu, cuda, cuda:N, mps, ..."
        )
    return cleaned


@dataclass(frozen=True)
class ResolvedDevice:
    device: Any  # torch.device
    unavailable_reason: str | None


def resolve_device(text: str, source: str) -> ResolvedDevice:
    """Parse ``text`` with torch and say whether this machine can run on it, and if not, why."""
    torch = import_torch()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as error:
        raise UsageProblem(f"{source}: torch cannot parse device {text!r}: {error}") from None
    if device.type == "meta":
        raise UsageProblem(
            f"{source}: {text!r} cannot check a model: tensors on the meta device have shapes "
            f"but no values, so outputs cannot be compared; use cpu, cuda, cuda:N, mps, ..."
        )
    return ResolvedDevice(device, _unavailable_reason(torch, device, source))


def _unavailable_reason(torch: Any, device: Any, source: str) -> str | None:
    kind = device.type
    if kind == "cpu":
        return None
    if kind == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            return f"{source} asks for {device}, but torch {torch.__version__} has no CUDA support"
        count = torch.cuda.device_count()
        if count == 0:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            extra = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
            return f"{source} asks for {device}, but no CUDA device is visible{extra}"
        if device.index is not None and device.index >= count:
            return f"{source} asks for {device}, but only {count} CUDA device(s) are visible"
        return None
    if kind == "mps":
        if not torch.backends.mps.is_available():
            return f"{source} asks for {device}, but MPS is not available on this machine"
        return None
    backend = getattr(torch, kind, None)
    is_available = getattr(backend, "is_available", None)
    if callable(is_available) and not is_available():
        return f"{source} asks for {device}, but torch.{kind}.is_available() is False"
    try:  # a backend torch was not built with (xla without torch_xla) parses but cannot allocate
        torch.empty(1, device=device)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return (
            f"{source} asks for {device}, but torch cannot place a tensor there "
            f"({first.split('. ')[0].rstrip('.')})"
        )
    return None
