"""Which way the user's data-dependent decisions went in eager, per input set.

A decision on tensor data is a tensor turned into a Python value: ``if x.sum() > 0`` calls
``Tensor.__bool__``, ``range(int(n))`` calls ``__int__``, a scale read with ``.item()``...
While the eager model runs for parity, those methods are wrapped to note the value and the
line of the user's code that asked for it. Nothing else is instrumented: no ``sys.settrace``
(so coverage.py keeps its tracer), no cost for models that never convert tensors to Python
values, and decisions inside torch or other libraries are not attributed to the user.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .jit_warnings import TRANSPARENT_CODE, calling_user_frame, import_torch

# Tensor method -> the kind of decision it makes.
_WATCHED = {
    "__bool__": "bool",
    "__int__": "int",
    "__index__": "int",
    "__float__": "float",
    "item": "item",
    "tolist": "tolist",
    "numpy": "numpy",
    "__iter__": "iter",
}
_ABSENT = object()


@dataclass(frozen=True)
class Observation:
    """One conversion of a tensor to a Python value, at a line of the user's code."""

    filename: str
    lineno: int
    kind: str
    value: Any


class DecisionRecorder:
    """Collects ``Observation``s per input set across the eager parity runs."""

    def __init__(self) -> None:
        self.by_set: dict[int, list[Observation]] = {}

    @contextlib.contextmanager
    def recording(self, input_index: int) -> Iterator[None]:
        torch = import_torch()
        sink = self.by_set.setdefault(input_index, [])
        saved = {name: torch.Tensor.__dict__.get(name, _ABSENT) for name in _WATCHED}
        for name, kind in _WATCHED.items():
            setattr(torch.Tensor, name, _observed(getattr(torch.Tensor, name), kind, sink))
        try:
            yield
        finally:
            for name, original in saved.items():
                if original is _ABSENT:
                    delattr(torch.Tensor, name)
                else:
                    setattr(torch.Tensor, name, original)


def _observed(method: Any, kind: str, sink: list[Observation]) -> Any:
    @functools.wraps(method)
    def observed(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        where = calling_user_frame(sys._getframe(1))
        if where is not None:
            sink.append(Observation(where[0], where[1], kind, _summary(kind, self, result)))
        return result

    TRANSPARENT_CODE.add(observed.__code__)
    return observed


def _summary(kind: str, tensor: Any, result: Any) -> Any:
    """A small, comparable stand-in for what the conversion produced."""
    if kind in ("bool", "int", "float", "item"):
        return result
    if kind == "iter":
        with warnings.catch_warnings():  # reading a size while tracing must not add a hazard
            warnings.simplefilter("ignore")
            return f"{int(tensor.shape[0]) if tensor.dim() else 0} items"
    if kind == "numpy":
        return f"array{tuple(result.shape)}"
    return f"list of {len(result) if isinstance(result, list) else 1}"
