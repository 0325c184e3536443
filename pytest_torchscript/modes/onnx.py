"""mode="onnx": torch.onnx.export (the dynamo exporter) run with onnxruntime.

It is an optional extra (``pip install pytest-torchscript[onnx]``); without it, onnx items
skip with a reason naming the extra. The ``.onnx`` file is the round-trip artifact. ONNX
flattens inputs and outputs; ``OnnxModule`` binds a call's arguments to the model's signature
(as the exporter does), feeds the session by position, and rebuilds the model's output
structure from the exported program's output spec, so parity compares like with like. ONNX
has no complex dtype: the exporter passes a complex tensor as its real view (a trailing
dimension of 2, ``torch.view_as_real``), as ``ONNXProgram.__call__`` and PyTorch's own ONNX
verification do, and ``OnnxModule`` turns complex outputs back, so an FFT model is compared
value for value, not failed on a shape its deployment is documented to see.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..check.jit_warnings import import_torch, tree_flatten, tree_unflatten
from ..text import first_lines, model_name, strip_ansi
from .base import ConversionFailed, Target, installed
from .export import ExportedBackend

EXTRA = "pip install 'pytest-torchscript[onnx]'"
# onnxruntime's kernels sum in another order than PyTorch's, so float outputs differ by
# rounding that grows with depth and magnitude (benchmarks/onnx_rounding.py on seven
# torchvision models: at most 2.3e-5 absolute, fcn_resnet50 with outputs up to 17, which
# atol=1e-5 failed on). A real divergence differs by the size of the outputs themselves.
TOLERANCES = {"rtol": 1e-3, "atol": 1e-4}


def missing_reason() -> str | None:
    torch = import_torch()
    # said first: no extra helps a torch without the exporter. torch 2.4 takes dynamo=True but
    # runs the older dynamo_export, without dynamic_shapes; the torch.export-based one has them.
    if "dynamic_shapes" not in inspect.signature(torch.onnx.export).parameters:
        return (
            f"mode='onnx' needs the ONNX exporter built on torch.export (torch.onnx.export(..., "
            f"dynamo=True, dynamic_shapes=...)), which torch {torch.__version__} lacks; it came "
            f"with torch 2.5"
        )
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if not installed(name)]
    if missing:
        return f"mode='onnx' needs {', '.join(missing)} (not installed): {EXTRA}"
    return None


def export_onnx(
    model: Any, args: tuple, kwargs: dict, dynamic_shapes: Any, options: dict | None = None
) -> Any:
    """``options``: the marker's ``onnx_options``, extra keywords for torch.onnx.export."""
    torch = import_torch()
    settings = {"dynamo": True, "dynamic_shapes": dynamic_shapes, "verbose": False}
    settings.update(options or {})
    return torch.onnx.export(model, args, kwargs=kwargs, **settings)


class RuntimeRefused(Exception):
    """onnxruntime would not create a session for the exported model (the export worked)."""


class OnnxModule:
    """An onnxruntime session called like the torch module it was exported from."""

    def __init__(
        self,
        source: Any,
        parameters: list[str],
        out_spec: Any,
        device: Any,
        threads: int,
        complex_outputs: tuple[bool, ...] = (),
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
        self.complex_outputs = complex_outputs

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
            complex_user_outputs(exported),
        )

    def like(self, path: Any) -> OnnxModule:
        """The same calling convention over a saved ``.onnx`` file."""
        return OnnxModule(
            str(path),
            self.parameters,
            self.out_spec,
            self.device,
            self.threads,
            self.complex_outputs,
        )

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
        if len(self.complex_outputs) == len(outputs):
            outputs = [
                torch.view_as_complex(output.contiguous())
                if was_complex and not output.is_complex() and output.shape[-1:] == (2,)
                else output
                for output, was_complex in zip(outputs, self.complex_outputs)
            ]
        return tree_unflatten(outputs, self.out_spec)


def complex_user_outputs(exported: Any) -> tuple[bool, ...]:
    """Which of the model's outputs (in the ONNX model's order) are complex tensors, read
    from the exported program; empty where its outputs cannot be read that way."""
    output = next(node for node in exported.graph.nodes if node.op == "output")
    flags = []
    for spec, node in zip(exported.graph_signature.output_specs, output.args[0]):
        if spec.kind.name != "USER_OUTPUT":
            continue
        dtype = getattr(getattr(node, "meta", {}).get("val"), "dtype", None)
        flags.append(bool(dtype is not None and dtype.is_complex))
    return tuple(flags) if any(flags) else ()


def parameter_names(model: Any) -> list[str]:
    """forward's parameters, ``*args`` and ``**kwargs`` marked with their stars."""
    forward = model.forward if hasattr(model, "forward") else model
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [
        stars.get(parameter.kind, "") + name
        for name, parameter in inspect.signature(forward).parameters.items()
    ]


def flat_inputs(parameters: list[str], args: tuple, kwargs: dict) -> list[Any]:
    """The tensors of a call in the exporter's order: arguments in signature order (every
    argument ``*args`` collects, then keywords ``**kwargs`` collects), each flattened; values
    that are not tensors were baked into the ONNX graph as constants."""
    torch = import_torch()
    values = []
    position = 0
    named = {name for name in parameters if not name.startswith("*")}
    for name in parameters:
        if name.startswith("**"):
            values.append([value for key, value in kwargs.items() if key not in named])
        elif name.startswith("*"):
            values.append(list(args[position:]))
            position = len(args)
        elif position < len(args):
            values.append(args[position])
            position += 1
        elif name in kwargs:
            values.append(kwargs[name])
    leaves, _ = tree_flatten(values)
    return [
        torch.view_as_real(leaf.resolve_conj()) if leaf.is_complex() else leaf
        for leaf in leaves
        if isinstance(leaf, torch.Tensor)
    ]


class OnnxBackend(ExportedBackend):
    """The ``.onnx`` file, run by onnxruntime here, in the fresh process, and in deployment."""

    name = "onnx"
    converter = "torch.onnx.export"
    suffix = ".onnx"
    fresh_loader = "onnx"
    tolerances = TOLERANCES
    runs_in_torch = False

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        return missing_reason()

    def build(self, model: Any, args: tuple, kwargs: dict, target: Target) -> tuple[Any, Any]:
        program = export_onnx(model, args, kwargs, target.dynamic_shapes, dict(target.onnx_options))
        try:
            return program, OnnxModule.from_program(program, model, target.device, target.threads)
        except Exception as error:
            raise RuntimeRefused(error) from error

    def _failure(self, model: Any, error: Exception, guards: list) -> ConversionFailed:
        if not isinstance(error, RuntimeRefused):
            return super()._failure(model, error, guards)
        cause = error.__cause__
        text = first_lines(strip_ansi(str(cause)), 4)
        hint = (
            "onnxruntime has no kernel for an operator in this dtype on this device (bfloat16 "
            "and float16 on the CPU, for example): check the model in the dtype and on the "
            "device it is deployed with, or skip this mode for it"
            if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text
            else "the exporter wrote a model this onnxruntime rejects: try another opset "
            "(onnx_options={'opset_version': ...}) or onnxruntime version"
        )
        failure = ConversionFailed(
            f"onnxruntime could not load the ONNX model exported from {model_name(model)} "
            f"(mode='onnx'; the export itself succeeded)\n"
            f"  {type(cause).__name__}: {text}\nhint: {hint}"
        )
        failure.full_text = strip_ansi(str(cause))
        return failure

    def extra_hints(self, text: str) -> list[str]:
        if "translating node return" in text and "has no attribute 'name'" in text:
            return [
                "hint: an ONNX model's outputs are tensors, and forward returns a Python "
                "constant (a number or a flag the graph does not compute); return it as a "
                "tensor (torch.tensor(...)) or leave it out of the outputs"
            ]
        if "passmanager" in text or "constant folding" in text:
            return [
                "hint: the ONNX exporter's optimizer failed after the model was exported; "
                "export without it: @pytest.mark.torchscript(onnx_options={'optimize': False}) "
                "(torch.onnx.export(..., optimize=False) in your own export code)"
            ]
        return []

    def owns(self, artifact: Any) -> bool:
        return type(artifact).__name__ == "ONNXProgram"

    def save(self, artifact: Any, path: Path) -> None:
        artifact.save(str(path))

    def describe(self, artifact: Any) -> tuple[str, str]:
        return str(artifact.model), str(getattr(artifact.exported_program, "graph", ""))

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        return like.like(path)

    def fresh_inputs(self, converted: Any, cpu_sets: list[tuple]) -> list[tuple]:
        """The fresh process feeds onnxruntime flat tensors, by position."""
        return [(flat_inputs(converted.parameters, *input_set), {}) for input_set in cpu_sets]

    def fresh_outputs(self, converted: Any, outputs: list[Any]) -> list[Any]:
        return [converted.rebuild(list(flat)) for flat in outputs]
