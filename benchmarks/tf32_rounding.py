"""How far does TF32 move float32 outputs on a CUDA device?

cuDNN runs float32 convolutions in TF32 by default (``torch.backends.cudnn.allow_tf32``), so
eager on a GPU keeps 10 bits of mantissa in them, and a converted module that runs other
kernels (AOTInductor's, onnxruntime's) differs from it by that rounding. This measures the
rounding directly, to choose the float32 tolerances the plugin uses where TF32 is on: per
model (torchvision, ``weights=None``, seeded, eval, one random input), eager with TF32 as
configured by default against eager with TF32 off, on the same GPU; the largest absolute
difference, the largest output, and the smallest atol that passes with rtol=1e-3.

Run (on a machine with CUDA): python benchmarks/tf32_rounding.py
Writes benchmarks/results/tf32_rounding.json (docs/benchmarks.md).
"""

from __future__ import annotations

import torch
import torchvision
from results_file import machine, write

MODELS = (
    ("resnet18", torchvision.models.resnet18, (2, 3, 224, 224)),
    ("resnet50", torchvision.models.resnet50, (2, 3, 224, 224)),
    ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small, (2, 3, 224, 224)),
    ("efficientnet_b0", torchvision.models.efficientnet_b0, (2, 3, 224, 224)),
    ("vit_b_16", torchvision.models.vit_b_16, (2, 3, 224, 224)),
    ("convnext_tiny", torchvision.models.convnext_tiny, (2, 3, 224, 224)),
)


def run(model, x, tf32: bool):
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    with torch.no_grad():
        return model(x).float()


def main() -> None:
    defaults = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name()}; by default cudnn.allow_tf32="
        f"{defaults[0]}, matmul.allow_tf32={defaults[1]}; TF32 on (both) vs off"
    )
    print(f"{'model':<22}{'max |out|':>12}{'max abs diff':>14}{'atol needed (rtol 1e-3)':>26}")
    rows = []
    for name, build, shape in MODELS:
        torch.manual_seed(0)
        model = build(weights=None).eval().cuda()
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).cuda()
        exact, rounded = run(model, x, False), run(model, x, True)
        diff = (exact - rounded).abs()
        needed = (diff - 1e-3 * exact.abs()).clamp(min=0).max()
        print(
            f"{name:<22}{float(exact.abs().max()):>12.3g}{float(diff.max()):>14.3g}"
            f"{float(needed):>26.3g}"
        )
        rows.append(
            {
                "model": name,
                "max abs output": float(exact.abs().max()),
                "max abs diff, TF32 on vs off": float(diff.max()),
                "atol needed (rtol 1e-3)": float(needed),
            }
        )
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = defaults
    path = write(
        "tf32_rounding",
        f"How far TF32 moves float32 outputs: eager with TF32 on (cudnn.allow_tf32="
        f"{defaults[0]}, matmul.allow_tf32={defaults[1]} by default) against off, same GPU.",
        rows,
        machine=machine(gpu=torch.cuda.get_device_name()),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
