"""How far do onnxruntime's outputs round away from eager PyTorch on real models?

mode="onnx" compares eager with the exported model run by onnxruntime, whose kernels sum in
another order, so float outputs differ by rounding that grows with a network's depth and its
outputs' magnitude. This script measures it on torchvision models (``weights=None``, seeded,
eval mode, two random inputs each), to choose mode="onnx"'s default tolerances from evidence:
per model, the largest absolute difference, the largest output magnitude, the smallest
``atol`` that passes with ``rtol=1e-3`` (``allowed = atol + rtol * |eager|``, the plugin's
rule), and how many elements fail under candidate defaults. A real divergence (a wrong
operator, a frozen branch) differs by the size of the outputs themselves, orders of magnitude
above any of these.

Run: .venv/bin/python benchmarks/onnx_rounding.py
Writes benchmarks/results/onnx_rounding.json (docs/benchmarks.md).
"""

from __future__ import annotations

import io
import warnings

import onnxruntime
import torch
import torchvision
from results_file import machine, write

CANDIDATES = ((1e-3, 1e-5), (1e-3, 1e-4))
MODELS = (
    ("resnet18", torchvision.models.resnet18, (1, 3, 96, 96)),
    ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small, (1, 3, 96, 96)),
    ("efficientnet_b0", torchvision.models.efficientnet_b0, (1, 3, 96, 96)),
    ("squeezenet1_0", torchvision.models.squeezenet1_0, (1, 3, 96, 96)),
    ("densenet121", torchvision.models.densenet121, (1, 3, 64, 64)),
    ("fcn_resnet50", torchvision.models.segmentation.fcn_resnet50, (1, 3, 96, 96)),
    (
        "deeplabv3_mobilenet_v3_large",
        torchvision.models.segmentation.deeplabv3_mobilenet_v3_large,
        (1, 3, 96, 96),
    ),
)


def flat(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in flat(item)]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flat(item)]
    return []


def main() -> None:
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    header = f"{'model':<30} {'elements':>9} {'max |eager|':>11} {'max abs diff':>12} "
    header += f"{'atol needed (rtol 1e-3)':>24} " + " ".join(
        f"{'fail @ ' + f'{r:g}/{a:g}':>16}" for r, a in CANDIDATES
    )
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, 1 thread")
    print(header)
    rows = []
    for name, build, shape in MODELS:
        kwargs = {"weights_backbone": None} if "segmentation" in build.__module__ else {}
        model = build(weights=None, **kwargs).eval()
        inputs = [torch.randn(*shape) for _ in range(2)]
        with torch.no_grad():
            program = torch.onnx.export(model, (inputs[0],), dynamo=True, verbose=False)
        buffer = io.BytesIO(program.model_proto.SerializeToString())
        session = onnxruntime.InferenceSession(buffer.getvalue(), options)
        feed_name = session.get_inputs()[0].name
        elements = 0
        magnitude = diff_max = needed = 0.0
        failures = [0 for _ in CANDIDATES]
        for x in inputs:
            with torch.no_grad():
                expected = [t.double() for t in flat(model(x))]
            actual = [
                torch.from_numpy(a).double() for a in session.run(None, {feed_name: x.numpy()})
            ]
            for left, right in zip(expected, actual):
                diff = (left - right).abs()
                elements += left.numel()
                magnitude = max(magnitude, float(left.abs().max()))
                diff_max = max(diff_max, float(diff.max()))
                needed = max(needed, float((diff - 1e-3 * left.abs()).max()))
                for index, (rtol, atol) in enumerate(CANDIDATES):
                    failures[index] += int((diff > atol + rtol * left.abs()).sum())
        print(
            f"{name:<30} {elements:>9} {magnitude:>11.3g} {diff_max:>12.3g} "
            f"{max(needed, 0):>24.3g} " + " ".join(f"{count:>16}" for count in failures),
            flush=True,
        )
        rows.append(
            {"model": name, "elements": elements, "max abs eager": magnitude,
             "max abs diff": diff_max, "atol needed at rtol 1e-3": max(needed, 0)}
            | {f"fail at {r:g}/{a:g}": count for (r, a), count in zip(CANDIDATES, failures)}
        )  # fmt: skip
    write(
        "onnx_rounding",
        "how far onnxruntime's outputs round from eager PyTorch on torchvision models (two "
        "random inputs each, one thread), and how many elements fail under candidate "
        "rtol/atol defaults",
        rows,
        machine=machine(onnxruntime=onnxruntime.__version__),
    )


if __name__ == "__main__":
    main()
