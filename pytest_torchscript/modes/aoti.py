"""mode="aoti": torch.export, then AOTInductor compiles the exported program into a package (a
``.pt2`` holding a shared library and the weights) that Python loads with
``torch._inductor.aoti_load_package`` and a C++ service with
``torch::inductor::AOTIModelPackageLoader``: the deployment path PyTorch recommends now that
TorchScript is deprecated.

``aoti_compile_and_package`` and ``aoti_load_package`` are AOTInductor's documented entry
points, though they live under ``torch._inductor``. Compiling takes seconds to minutes, so a
package is reused within the process when the same program (graph, input specs and weights)
comes back.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check.jit_warnings import import_torch
from .base import Target
from .export import ExportedBackend, export_program, program_code

_CACHE: dict[str, Path] = {}
_FOLDER: list[Path] = []
# The loader is native code, and on some builds it crashes the process outright (seen with
# torch 2.11 on an H100, also without the plugin). A new package is therefore loaded once in a
# throwaway process first: such a crash then fails the check instead of ending the session.
_LOAD_PROBE = (
    "import sys, warnings; warnings.simplefilter('ignore'); import torch; "
    "torch._inductor.aoti_load_package(sys.argv[1], device_index=int(sys.argv[2]))"
)
_PROBED: set[Path] = set()


@dataclass
class AotiPackage:
    """What a check saves in mode="aoti": the compiled package, and the program it came from
    (whose code and graph go beside it under --ts-artifacts)."""

    path: Path
    program: Any


def compile_package(program: Any) -> Path:
    """The package for ``program``: compiled now, or the one compiled earlier in this process
    for the same graph, input specs and weights."""
    torch = import_torch()
    key = _fingerprint(program)
    if key in _CACHE and _CACHE[key].exists():
        return _CACHE[key]
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="pytest-torchscript-aoti-")))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
    path = _FOLDER[0] / f"{key}.pt2"
    torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    _CACHE[key] = path
    return path


def load_package(path: Path, device: Any = None) -> Any:
    """The package as a callable module (on the device it was compiled for)."""
    torch = import_torch()
    return torch._inductor.aoti_load_package(str(path), device_index=_device_index(device))


def _device_index(device: Any) -> int:
    index = getattr(device, "index", None)
    return -1 if index is None else index


def require_loadable(path: Path, device: Any = None) -> None:
    """Load the package in a throwaway process first (once per package): raise, with what it
    printed, if the loader crashed there (see ``_LOAD_PROBE``). An ordinary error there is
    left for the load in this process to raise, with its own message."""
    if path in _PROBED:
        return
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, str(path), str(_device_index(device))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        tail = "\n  ".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"AOTInductor's loader crashed ({name}) loading the package in a separate "
            f"process, so it was not loaded in this one, where the crash would have ended "
            f"the whole pytest session; that is a torch or build problem, not your model"
            + (f"; it printed:\n  {tail}" if tail else "")
        )
    _PROBED.add(path)


def _fingerprint(program: Any) -> str:
    digest = hashlib.sha256(program.graph_module.code.encode())
    digest.update(repr(program.call_spec).encode())
    placeholders = [node for node in program.graph.nodes if node.op == "placeholder"]
    digest.update(repr([(node.name, str(node.meta.get("val"))) for node in placeholders]).encode())
    for name, tensor in sorted(program.state_dict.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes()[:4096])
        digest.update(repr((tuple(tensor.shape), float(tensor.detach().double().sum()))).encode())
    return digest.hexdigest()[:20]


class AotiBackend(ExportedBackend):
    """The AOTInductor package, loaded by ``aoti_load_package`` here and in the fresh process,
    and by ``AOTIModelPackageLoader`` in C++ (flat lists of tensors in and out)."""

    name = "aoti"
    converter = "torch.export + AOTInductor"
    suffix = ".pt2"
    fresh_loader = "aoti"
    cpp_inputs = "flat"

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        inductor = getattr(import_torch(), "_inductor", None)
        if inductor is None:
            import importlib

            inductor = importlib.import_module("torch._inductor")
        if hasattr(inductor, "aoti_compile_and_package") and hasattr(inductor, "aoti_load_package"):
            return None
        return (
            f"mode='aoti' needs AOTInductor packages (torch._inductor.aoti_compile_and_package "
            f"and aoti_load_package), which torch {import_torch().__version__} lacks; they came "
            f"with torch 2.6"
        )

    def build(self, model: Any, args: tuple, kwargs: dict, target: Target) -> tuple[Any, Any]:
        exported = export_program(model, args, kwargs, target.dynamic_shapes)
        package = AotiPackage(compile_package(exported), exported)
        require_loadable(package.path, target.device)
        return package, load_package(package.path, target.device)

    def extra_hints(self, text: str) -> list[str]:
        if "invalidcxxcompiler" in text or "no working c++ compiler" in text:
            return [
                "hint: AOTInductor compiles the model to C++ with a C++ compiler, and none "
                "works here: install one (apt install g++), or point "
                "torch._inductor.config.cpp.cxx (or $CXX) at it; or skip mode='aoti' on this "
                "machine: @pytest.mark.torchscript(skip={'aoti': 'no compiler on this runner'})"
            ]
        return []

    def owns(self, artifact: Any) -> bool:
        return isinstance(artifact, AotiPackage)

    def save(self, artifact: Any, path: Path) -> None:
        path.write_bytes(artifact.path.read_bytes())

    def describe(self, artifact: Any) -> tuple[str, str]:
        return program_code(artifact.program)

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        return load_package(path, device)
