"""mode="tvm": the model compiled ahead of time by Apache TVM (Relax) and run by TVM's VM.

It is an optional extra (``pip install 'pytest-torchscript[tvm]'``); without it, tvm items
skip saying so. The path is TVM's own for PyTorch models: the program torch.export captures
(with the same dynamic dimensions as mode="export", so one build serves every batch size the
input sets use), ``tvm.relax.frontend.torch.from_exported_program`` with the weights kept in
the module, ``tvm.compile`` for the target of ``--ts-device`` (``llvm`` on the CPU, ``cuda``
where TVM was built with it; ``tvm_target=`` chooses another), and a ``relax.VirtualMachine``.
The artifact is the one shared library ``export_library`` writes (weights inside), loaded back
with ``tvm.runtime.load_module`` here and in the fresh process, which imports tvm and torch
and never the user's code.

TVM takes and returns flat tensors: ``TvmModule`` binds a call's arguments as the ONNX mode
does (``onnx.flat_inputs``, the exporter's order) and rebuilds the model's output structure
from the exported program's output spec, so parity compares like with like. Timing calls the
VM with TVM tensors made once, so converting inputs is outside the timed region, as it is in a
deployment that keeps its data in TVM.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..check.jit_warnings import import_torch, is_library_file, tree_unflatten
from ..text import display_path, first_lines, model_name, strip_ansi
from .base import ConversionFailed, Target, installed
from .export import ExportedBackend, export_program, program_code
from .onnx import flat_inputs, parameter_names

EXTRA = "pip install 'pytest-torchscript[tvm]'"
# Measured by benchmarks/tvm_modes.py (8 torchvision models and BERT from small configs, CPU,
# untuned llvm builds, batch 1 and 2): at most 2.9e-6 absolute (densenet121, resnet18) and
# 1.7e-6 of the output's scale. TVM's kernels sum in another order than PyTorch's, so errors
# grow with depth: atol stays float32's default 1e-5 (3x the worst), rtol 1e-4 leaves deeper
# models room; a real divergence differs by the size of the outputs themselves.
TOLERANCES = {"rtol": 1e-4, "atol": 1e-5}
# The importer's refusal: "Unsupported function types ['_fft_r2c.default', 'nonzero.default']"
_UNSUPPORTED = re.compile(r"Unsupported function types? \[([^\]]*)\]")
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_ERROR_LINES = 6  # of TVM's own message, in the failure (the whole text under --ts-artifacts)


def missing_reason(device: str = "cpu") -> str | None:
    torch = import_torch()
    # said first: no extra helps a torch whose export gives TVM dims it cannot build. Before
    # Dim.DYNAMIC (torch 2.6) the plugin's dynamic dims are named Dims with an unbounded range,
    # and tvm.compile overflowed int64 on them (torch 2.4.1: "Literal value 7.5e22 exceeds range
    # of int64"); CI checks the mode on the pinned torch 2.14.
    if getattr(torch.export.Dim, "DYNAMIC", None) is None:
        return (
            f"mode='tvm' needs torch.export's Dim.DYNAMIC, which torch {torch.__version__} lacks "
            f"(it came with torch 2.6): TVM cannot build the unbounded named dims older torch "
            f"exports"
        )
    if not installed("tvm"):
        return f"mode='tvm' needs Apache TVM (not installed): {EXTRA}"
    kind = device.split(":")[0]
    if kind not in ("cpu", "cuda"):
        return f"mode='tvm' builds for the CPU (llvm) and CUDA here, not for --ts-device={device}"
    if kind == "cuda":
        import tvm

        if not tvm.runtime.enabled("cuda"):
            return (
                "mode='tvm' on --ts-device=cuda needs a TVM built with CUDA, and this one "
                "(the PyPI wheel) was built for the CPU only; build TVM with USE_CUDA=ON, or "
                "check mode='tvm' on the CPU"
            )
    return None


def import_tvm(threads: int) -> Any:
    """``import tvm``, with its thread pool sized like the timed eager run (TVM reads
    TVM_NUM_THREADS once, when its pool starts; a value the user set is kept)."""
    os.environ.setdefault("TVM_NUM_THREADS", str(threads))
    import tvm

    return tvm


def build_target(tvm: Any, device: Any, chosen: Any) -> Any:
    """The TVM target: ``chosen`` (a target string such as "llvm", or a dict / JSON object
    such as {"kind": "llvm", "mcpu": "skylake"}), else the device's default."""
    if chosen is None:
        chosen = "cuda" if getattr(device, "type", "cpu") == "cuda" else "llvm"
    return tvm.target.Target(chosen)


def tvm_device(tvm: Any, device: Any) -> Any:
    if getattr(device, "type", "cpu") == "cuda":
        return tvm.cuda(device.index or 0)
    return tvm.cpu(0)


class TvmBuild:
    """What mode="tvm" saves: the compiled executable, with the exported program it came from
    (for the graph fingerprint and the code kept beside a failure) and the Relax module."""

    def __init__(self, executable: Any, program: Any, relax_module: Any) -> None:
        self.executable = executable
        self.exported_program = program
        self.relax_module = relax_module


class TvmModule:
    """A TVM Relax VM called like the torch module it was compiled from."""

    def __init__(self, library: Any, parameters: list[str], out_spec: Any, device: Any) -> None:
        import tvm
        from tvm import relax

        self.tvm = tvm
        self.device = device
        self.tvm_device = tvm_device(tvm, device)
        self.vm = relax.VirtualMachine(library, self.tvm_device)
        self.main = self.vm["main"]
        self.parameters = parameters
        self.out_spec = out_spec

    def like(self, library: Any) -> TvmModule:
        """The same calling convention over a library loaded back from its file."""
        return TvmModule(library, self.parameters, self.out_spec, self.device)

    def tvm_inputs(self, args: tuple, kwargs: dict) -> list[Any]:
        flat = flat_inputs(self.parameters, args, kwargs)
        return [
            self.tvm.runtime.from_dlpack(tensor.detach().to(self.device).contiguous())
            for tensor in flat
        ]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.rebuild(to_torch(self.main(*self.tvm_inputs(args, kwargs)), self.device))

    def timed_call(self, *args: Any, **kwargs: Any) -> Any:
        """The call a timing repeats: the VM on TVM tensors made here, once."""
        inputs = self.tvm_inputs(args, kwargs)
        return lambda: self.main(*inputs)

    def rebuild(self, outputs: list[Any]) -> Any:
        return tree_unflatten(list(outputs), self.out_spec)


def to_torch(result: Any, device: Any) -> list[Any]:
    """The VM's result (one tensor, or an array of them) as a flat list of torch tensors."""
    torch = import_torch()
    items = [result] if hasattr(result, "shape") else list(result)
    return [torch.from_dlpack(item).to(device) for item in items]


class TvmBackend(ExportedBackend):
    """The shared library TVM compiles, run by TVM's VM here, in the fresh process and in
    deployment."""

    name = "tvm"
    converter = "Apache TVM (torch.export -> Relax -> tvm.compile)"
    suffix = ".so"
    fresh_loader = "tvm"
    tolerances = TOLERANCES
    runs_in_torch = False
    # A build costs seconds per model on top of the export (resnet18 on 2 cores: 1.7 s import,
    # 2.0 s build, 2.3 s to link the library) and TVM is an extra few suites deploy with:
    # mode="all" leaves it out unless --ts-modes names it.
    in_all = False

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        return missing_reason(device)

    def build(self, model: Any, args: tuple, kwargs: dict, target: Target) -> tuple[Any, Any]:
        tvm = import_tvm(target.threads)
        from tvm.relax.frontend.torch import from_exported_program

        program = export_program(model, args, kwargs, target.dynamic_shapes)
        try:
            relax_module = from_exported_program(program, keep_params_as_input=False)
        except Exception as error:
            raise ImportRefused(program, error) from error
        try:
            executable = tvm.compile(
                relax_module, target=build_target(tvm, target.device, target.tvm_target)
            )
        except Exception as error:
            raise BuildFailed(error) from error
        out_spec = program.module_call_graph[0].signature.out_spec
        module = TvmModule(executable, parameter_names(model), out_spec, target.device)
        return TvmBuild(executable, program, relax_module), module

    def _failure(self, model: Any, error: Exception, guards: list) -> ConversionFailed:
        if isinstance(error, ImportRefused):
            return import_failure(model, error)
        if isinstance(error, BuildFailed):
            return build_failure(model, error)
        return super()._failure(model, error, guards)

    def owns(self, artifact: Any) -> bool:
        return isinstance(artifact, TvmBuild)

    def save(self, artifact: Any, path: Path) -> None:
        artifact.executable.export_library(str(path))

    def describe(self, artifact: Any) -> tuple[str, str]:
        code, graph = program_code(artifact.exported_program)
        return artifact.relax_module.script(show_meta=False), graph

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        import tvm

        return like.like(tvm.runtime.load_module(str(path)))

    def fresh_inputs(self, converted: Any, cpu_sets: list[tuple]) -> list[tuple]:
        """The fresh process feeds TVM flat tensors, by position."""
        return [(flat_inputs(converted.parameters, *input_set), {}) for input_set in cpu_sets]

    def fresh_outputs(self, converted: Any, outputs: list[Any]) -> list[Any]:
        return [converted.rebuild(list(flat)) for flat in outputs]


class ImportRefused(Exception):
    """TVM's PyTorch frontend could not import the exported program (the export worked)."""

    def __init__(self, program: Any, cause: Exception) -> None:
        super().__init__(str(cause))
        self.program = program


class BuildFailed(Exception):
    """``tvm.compile`` failed on the imported module."""


def import_failure(model: Any, error: ImportRefused) -> ConversionFailed:
    cause = error.__cause__ or error
    text = strip_ansi(str(cause))
    lines = [
        f"TVM's PyTorch frontend could not import {model_name(model)} (mode='tvm'; "
        f"torch.export captured it)"
    ]
    unsupported = _UNSUPPORTED.search(text)
    if unsupported:
        ops = [
            name.strip().strip("'\"") for name in unsupported.group(1).split(",") if name.strip()
        ]
        lines.append(f"  TVM has no conversion for {len(ops)} operator(s) the model uses:")
        located = operator_lines(error.program, ops)
        for op in ops:
            lines.append(f"  - aten.{op}{located.get(op, '')}")
        lines.append(
            "hint: keep these operators out of the part TVM compiles (compute them in torch "
            "before or after the compiled module), write them with operators TVM imports, or "
            "check this model in a mode that runs them (export, aoti, onnx)"
        )
    else:
        lines.append(
            f"  {type(cause).__name__}: " + first_lines(text, _ERROR_LINES).replace("\n", "\n  ")
        )
        symbolic = re.search(r"\bs\d+\b", text)  # torch's names of dynamic sizes: s0, s72
        lines.append(
            "hint: the message names a dynamic size (s0, s1...): TVM's importer is narrower "
            "than torch.export there; check with static shapes (dynamic_shapes= with None for "
            "each input) and input sets of one size"
            if symbolic
            else "hint: TVM's importer failed on this model's graph after torch.export took it "
            "(a limit of TVM's PyTorch frontend, not of your code): check the model in another "
            "mode (export, aoti, onnx), or report it to Apache TVM with the whole message "
            "(under --ts-artifacts)"
        )
    failure = ConversionFailed("\n".join(lines))
    failure.full_text = text
    return failure


def operator_lines(program: Any, ops: list[str]) -> dict[str, str]:
    """Where in the user's code each of ``ops`` (the importer's names, after torch's
    decompositions: ``_fft_r2c.default``) was called: ``" (from aten.fft_rfft) at f.py:12:
    code"``. The importer decomposes the program first, so the same decomposition is run to
    find the nodes; their stack traces survive it."""
    try:
        decomposed = program.run_decompositions()
    except Exception:  # noqa: BLE001 - the location is a courtesy; the op name is the message
        decomposed = program
    found = {}
    for node in decomposed.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target).removeprefix("aten.")
        if name not in ops or name in found:
            continue
        original = node.meta.get("original_aten")
        origin = str(original).removeprefix("aten.") if original is not None else ""
        text = f" (from aten.{origin})" if origin and origin != name else ""
        location = user_frame(node.meta.get("stack_trace") or "")
        if location:
            text += f" at {location}"
        found[name] = text
    return found


def user_frame(stack_trace: str) -> str:
    """The innermost frame of the user's code in an FX node's stack trace, with its line."""
    frames = list(_FRAME.finditer(stack_trace))
    for match in reversed(frames):
        if not is_library_file(match["file"]):
            rest = stack_trace[match.end() :].split("\n")
            source = rest[1].strip() if len(rest) > 1 else ""
            return f"{display_path(match['file'])}:{match['line']}: {source}"
    return ""


def build_failure(model: Any, error: BuildFailed) -> ConversionFailed:
    cause = error.__cause__ or error
    text = strip_ansi(str(cause))
    failure = ConversionFailed(
        f"tvm.compile could not build {model_name(model)} (mode='tvm'; TVM imported the "
        f"exported program)\n  {type(cause).__name__}: "
        + first_lines(text, _ERROR_LINES).replace("\n", "\n  ")
        + "\nhint: check the target (tvm_target=, default 'llvm' on the CPU): TVM builds it "
        "with LLVM; the whole message is under --ts-artifacts"
    )
    failure.full_text = text
    return failure
