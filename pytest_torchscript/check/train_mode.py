"""Whether a model's train mode matters: it does only when some module behaves differently in
train mode (dropout, normalization layers, or a forward that reads ``self.training``), which is
when checking it in eval mode, as it is deployed, deserves a warning."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .jit_warnings import import_torch


def modes_that_matter(modules: list[Any]) -> list[str]:
    """Names of the module types in ``modules`` whose output depends on train/eval mode:
    dropout and normalization layers, and classes whose forward reads ``self.training``."""
    torch = import_torch()
    stateful = (
        torch.nn.modules.dropout._DropoutNd,
        torch.nn.modules.batchnorm._NormBase,
    )
    names: list[str] = []
    for module in modules:
        if isinstance(module, stateful) or _forward_reads_training(type(module)):
            name = type(module).__name__
            if name not in names:
                names.append(name)
    return names[:4]


@functools.cache
def _forward_reads_training(cls: type) -> bool:
    forward = cls.__dict__.get("forward")
    if forward is None or cls.__module__.startswith("torch."):
        return False
    try:
        return "self.training" in inspect.getsource(forward)
    except (OSError, TypeError):
        return False
