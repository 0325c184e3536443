"""mode="onnx": torch.onnx.export (the dynamo exporter) run with onnxruntime.

It is an optional extra (``pip install pytest-torchscript[onnx]``); without it, onnx items
skip with a reason naming the extra. The ``.onnx`` file is the round-trip artifact. ONNX
flattens inputs and outputs; ``OnnxModule`` binds a call's arguments to the model's signature
(as the exporter does), feeds the session by position, and rebuilds the model's output
structure from the exported program's output spec, so parity compares like with like.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

from .jit_warnings import import_torch

EXTRA = "pip install 'pytest-torchscript[onnx]'"
# onnxruntime's kernels round differently from PyTorch's: float tolerances for this mode.
TOLERANCES = {"rtol": 1e-3, "atol": 1e-5}


def missing_reason() -> str | None:
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if not _importable(name)]
    if not missing:
        return None
    return f"mode='onnx' needs {', '.join(missing)} (not installed): {EXTRA}"


def export_onnx(
    model: Any, args: tuple, kwargs: dict, dynamic_shapes: Any, options: dict | None = None
) -> Any:
    """``options``: the marker's ``onnx_options``, extra keywords for torch.onnx.export."""
    torch = import_torch()
    settings = {"dynamo": True, "dynamic_shapes": dynamic_shapes, "verbose": False}
    settings.update(options or {})
    return torch.onnx.export(model, args, kwargs=kwargs, **settings)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
        return False


class OnnxModule:
    """An onnxruntime session called like the torch module it was exported from."""

    def __init__(
        self, source: Any, parameters: list[str], out_spec: Any, device: Any, threads: int
    ) -> None:
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if getattr(device, "type", "") == "cuda" and (
            "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        ):
            providers.insert(0, "CUDAExecutionProvider")
        options = onnxruntime.SessionOptions()
        # As many threads as torch gets while timing, so the comparison with eager is fair.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(source, options, providers=providers)
        self.parameters = parameters
        self.out_spec = out_spec
        self.device = device
        self.threads = threads

    @classmethod
    def from_program(cls, program: Any, model: Any, device: Any, threads: int) -> OnnxModule:
        exported = program.exported_program
        out_spec = exported.module_call_graph[0].signature.out_spec
        return cls(
            program.model_proto.SerializeToString(),
            parameter_names(model),
            out_spec,
            device,
            threads,
        )

    def like(self, path: Any) -> OnnxModule:
        """The same calling convention over a saved ``.onnx`` file."""
        return OnnxModule(str(path), self.parameters, self.out_spec, self.device, self.threads)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        torch = import_torch()
        flat = flat_inputs(self.parameters, args, kwargs)
        names = [entry.name for entry in self.session.get_inputs()]
        feed = {name: tensor.detach().cpu().numpy() for name, tensor in zip(names, flat)}
        outputs = [
            torch.from_numpy(array).to(self.device) for array in self.session.run(None, feed)
        ]
        return self.rebuild(outputs)

    def rebuild(self, outputs: list[Any]) -> Any:
        torch = import_torch()
        return torch.utils._pytree.tree_unflatten(outputs, self.out_spec)


def parameter_names(model: Any) -> list[str]:
    forward = model.forward if hasattr(model, "forward") else model
    return list(inspect.signature(forward).parameters)


def flat_inputs(parameters: list[str], args: tuple, kwargs: dict) -> list[Any]:
    """The tensors of a call in the exporter's order: arguments in signature order, each
    flattened; values that are not tensors were baked into the ONNX graph as constants."""
    torch = import_torch()
    ordered = dict(zip(parameters, args))
    ordered.update(kwargs)
    values = [ordered[name] for name in parameters if name in ordered]
    leaves, _ = torch.utils._pytree.tree_flatten(values)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def save_onnx(program: Any, path: Any) -> None:
    program.save(str(path))
