"""Timing without a coverage or debugger trace function in the way: ``sys.settrace`` hooks are
suspended around the timed rounds where they can be put back exactly, and named in the report
where they cannot (their cost is then in the timings)."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def python_tracers_suspended() -> Iterator[tuple[list[str], list[str]]]:
    """Run the block with this thread's trace and profile functions off where they can be put
    back exactly, and put them back. Yields (suspended, left running), each named by the module
    that set it (``coverage.tracer.CTracer``), for the report.

    ``sys.settrace(f)`` restores what ``sys.gettrace()`` returned only where that is the
    function itself: a Python function or method, or coverage's C tracer (which reinstalls its
    fast path when restored so, as after a debugger). A C-level hook returns another object
    (cProfile's profiler is not callable: restored through ``sys.setprofile`` it raised
    "'Profile' object is not callable" in every later call), so those are left running and
    the timings include their cost."""
    hooks = {"trace": sys.gettrace(), "profile": sys.getprofile()}
    suspended, left = [], []
    for kind, hook in hooks.items():
        if hook is not None:
            (suspended if _restorable(hook) else left).append(f"{kind} function {_named(hook)}")
    restorable = {kind: hook is not None and _restorable(hook) for kind, hook in hooks.items()}
    if restorable["trace"]:
        sys.settrace(None)
    if restorable["profile"]:
        sys.setprofile(None)
    try:
        yield suspended, left
    finally:
        if restorable["trace"]:
            sys.settrace(hooks["trace"])
        if restorable["profile"]:
            sys.setprofile(hooks["profile"])


def _restorable(hook: Any) -> bool:
    if isinstance(hook, (types.FunctionType, types.MethodType)):
        return True
    # coverage's C tracer: its module is loaded wherever one is installed (never import it)
    ctracer = getattr(sys.modules.get("coverage.tracer"), "CTracer", None)
    return ctracer is not None and isinstance(hook, ctracer)


def _named(hook: Any) -> str:
    module = getattr(hook, "__module__", None) or type(hook).__module__
    return f"{module}.{getattr(hook, '__qualname__', type(hook).__qualname__)}"
