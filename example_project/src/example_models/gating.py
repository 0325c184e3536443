"""A block whose control flow depends on the data: the classic way a trace goes wrong."""

import torch


class GatedResidual(torch.nn.Module):
    """Adds a learned correction only to inputs with high energy.

    torch.jit.trace records the branch the example input took and replays it for every input;
    torch.jit.script compiles the ``if`` and keeps it.
    """

    def __init__(self, dim: int = 8, threshold: float = 4.0) -> None:
        super().__init__()
        self.correction = torch.nn.Linear(dim, dim)
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.norm() > self.threshold:
            return x + self.correction(x)
        return x
