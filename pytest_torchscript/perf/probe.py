"""The machine-speed probe: a small fixed workload timed beside every model in the same rounds.

A model that got slower in eager and converted form alike leaves the converted/eager ratio
unchanged, so only absolute times can show it; but absolute times also move when the machine
is slower (another CPU clock, a busy neighbour). The probe runs the kinds of kernels models
spend their time in (compute on cached data, streaming through memory, many small ops) on the
check's device and thread count, interleaved round by round with the model, so
"model time / probe time" stays put when the machine changes and moves when the model does.
Its components are timed apart: when they move unevenly against the baseline, the machine is
not just slower but contended, and normalising is trusted less (see ``perf.contention``).

The workload never changes between releases without a baseline format bump: its times are
what baselines are normalised by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..check.jit_warnings import import_torch

PROBE = "probe"  # the prefix of its series in a timing result; no mode is named so
COMPONENTS = ("compute", "memory", "overhead")

# Per device type: (matrix side, conv channels, conv image side, streamed floats, small-op
# length). The streamed buffer is larger than a core's L2, so memory bandwidth and a shared
# cache show; on a GPU larger shapes keep the kernels, not their launches, in what is measured.
_SHAPES = {"cpu": (96, 8, 24, 1 << 20, 16), "cuda": (1024, 32, 64, 1 << 24, 16)}


def series_name(component: str) -> str:
    return f"{PROBE}:{component}"


def component_shifts(components: dict[str, float], then: dict[str, float]) -> dict[str, float]:
    """How far (log units) each probe component moved from ``then``."""
    return {
        name: math.log(components[name] / then[name])
        for name in components
        if isinstance(then.get(name), (int, float)) and then[name] > 0
    }


def middle_of(shifts: dict[str, float]) -> tuple[str, float]:
    """The component whose shift is the middle one, and that shift: the machine's speed
    whichever single component moved alone."""
    return sorted(shifts.items(), key=lambda item: item[1])[len(shifts) // 2]


def is_probe(name: str) -> bool:
    return name.startswith(f"{PROBE}:")


def reference_workloads(device: Any) -> dict[str, Callable[[], Any]]:
    """The probe's three components on ``device``, each a no-argument callable timed as its
    own series: cache-resident compute (a matrix multiply, a convolution), memory streaming
    (elementwise over a buffer larger than L2), and per-op overhead (a chain of tiny ops).
    Models mix the three; contention slows them unevenly, which is how it is told apart
    from a machine that is uniformly slower.

    Their tensors come from a private generator, so the user's random state is left alone."""
    torch = import_torch()
    side, channels, image, streamed, small = _SHAPES.get(
        getattr(device, "type", "cpu"), _SHAPES["cpu"]
    )
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int) -> Any:
        return torch.randn(*shape, generator=generator).to(device)

    a, b = tensor(side, side), tensor(side, side)
    picture, weight = tensor(1, channels, image, image), tensor(channels, channels, 3, 3)
    big, big_out = tensor(streamed), tensor(streamed)
    tiny = tensor(small)
    conv2d = torch.nn.functional.conv2d

    def compute() -> Any:
        torch.mm(a, b)
        return conv2d(picture, weight, padding=1)

    def memory() -> Any:
        return torch.mul(big, 1.5, out=big_out)

    def overhead() -> Any:
        x = tiny
        for _ in range(8):
            x = torch.tanh(x * 0.5 + 0.25)
        return x

    workloads = {"compute": compute, "memory": memory, "overhead": overhead}
    return {series_name(name): workloads[name] for name in COMPONENTS}
