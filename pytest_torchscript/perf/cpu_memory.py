"""Peak CPU memory of a call, where the OS can tell: on Linux, the process's resident-set
high-water mark (``VmHWM``) is reset by writing 5 to ``/proc/self/clear_refs`` and read back
from ``/proc/self/status``. What a series reports is how far resident memory rose above what
it was just before its first call (activations, workspaces, a converted module's own
buffers), the CPU counterpart of CUDA's ``max_memory_allocated``. Elsewhere nothing is
recorded rather than a guess."""

from __future__ import annotations

import re

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def start() -> int | None:
    """Reset the high-water mark; the resident bytes now, or None where it cannot be done."""
    try:
        with open(_CLEAR_REFS, "w") as clear:
            clear.write("5")
        return _read("VmRSS")
    except (OSError, ValueError):
        return None


def rise_since(resident_before: int | None) -> int | None:
    """Bytes the resident set peaked above ``resident_before`` (from ``start``)."""
    if resident_before is None:
        return None
    try:
        return max(0, _read("VmHWM") - resident_before)
    except (OSError, ValueError):
        return None


def _read(field: str) -> int:
    with open(_STATUS) as status:
        found = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if found is None:
        raise ValueError(f"no {field} in {_STATUS}")
    return int(found.group(1)) * 1024
