"""pytest-torchscript: prove in CI that PyTorch models still convert correctly for deployment.

The plugin registers itself through the ``pytest11`` entry point; users write
``@pytest.mark.torchscript(mode="trace", inputs=...)`` or request the ``torchscript`` fixture.
Nothing here imports torch.
"""

from .errors import (
    CheckFailed,
    TorchScriptWarning,
    TraceHazardWarning,
    TrainModeWarning,
    UsageProblem,
)

__all__ = [
    "CheckFailed",
    "TorchScriptWarning",
    "TraceHazardWarning",
    "TrainModeWarning",
    "UsageProblem",
]
__version__ = "0.1.0"
