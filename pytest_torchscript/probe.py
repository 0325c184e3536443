"""The machine-speed probe: a small fixed workload timed beside every model in the same rounds.

A model that got slower in eager and converted form alike leaves the converted/eager ratio
unchanged, so only absolute times can show it; but absolute times also move when the machine
is slower (another CPU clock, a busy neighbour). The probe runs the kinds of kernels models
spend their time in (a matrix multiply, a convolution, a chain of elementwise ops) on the
check's device and thread count, interleaved round by round with the model, so
"model time / probe time" stays put when the machine changes and moves when the model does.

The workload never changes between releases without a baseline format bump: its times are
what baselines are normalised by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .jit_warnings import import_torch

PROBE = "probe"  # its series name in a timing result; not a mode name, so never a collision

# (matrix side, conv channels, conv image side, elementwise length) per device type: on a GPU
# larger shapes keep the kernels, not their launches, in what is measured.
_SHAPES = {"cpu": (96, 8, 24, 8192), "cuda": (1024, 32, 64, 1 << 20)}


def reference_workload(device: Any) -> Callable[[], Any]:
    """A no-argument callable running the probe's kernels on ``device``.

    Its tensors come from a private generator, so the user's random state is left alone."""
    torch = import_torch()
    side, channels, image, length = _SHAPES.get(getattr(device, "type", "cpu"), _SHAPES["cpu"])
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int) -> Any:
        return torch.randn(*shape, generator=generator).to(device)

    a, b = tensor(side, side), tensor(side, side)
    picture, weight = tensor(1, channels, image, image), tensor(channels, channels, 3, 3)
    vector = tensor(length)
    conv2d = torch.nn.functional.conv2d

    def probe() -> Any:
        torch.mm(a, b)
        conv2d(picture, weight, padding=1)
        return torch.sigmoid(torch.tanh(vector * 1.5 + 0.5))

    return probe
