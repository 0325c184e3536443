"""mode="trace" and mode="script": TorchScript, saved as ``.pt`` with ``torch.jit.save``.

Both load anywhere TorchScript runs (``torch.jit.load`` in Python, ``torch::jit::load`` in
C++). They differ in how they convert, so in what goes wrong: a trace records the operations
one input ran and freezes every data-dependent branch (the "trace" control-flow analysis
re-traces the other input sets to prove it); a script compiles the source and keeps its
branches (the "script" analysis says which of them the input sets exercised).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from pathlib import Path
from typing import Any

from ..check.inputs import plain_containers
from ..check.jit_warnings import (
    RecordedWarning,
    forget_scripted_classes,
    import_torch,
    recording_warnings,
    torchscript_missing_reason,
)
from ..perf.graph_diff import torchscript_ops
from .base import Backend, Conversion, ConversionFailed, Target, failure_header


class _TorchScript(Backend):
    suffix = ".pt"
    fresh_loader = "torchscript"
    cpp_inputs = "structured"
    hint: str  # the other TorchScript mode, and when it helps

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        return torchscript_missing_reason()

    def fresh_inputs(self, converted: Any, cpu_sets: list[tuple]) -> list[tuple]:
        """Plain containers: a NamedTuple of the user's would not unpickle in a process that
        never imported their code, and the module takes a plain tuple in its place."""
        return [plain_containers(input_set) for input_set in cpu_sets]

    def convert(self, model: Any, args: tuple, kwargs: dict, target: Target) -> Conversion:
        recorded: list[RecordedWarning] = []
        started = time.perf_counter()
        try:
            with recording_warnings(recorded):
                module = self._convert(import_torch(), model, args, kwargs)
        except ConversionFailed:
            raise
        except Exception as error:
            raise ConversionFailed(self.explain(model, error)) from None
        return Conversion(module, time.perf_counter() - started, recorded)

    def _convert(self, torch: Any, model: Any, args: tuple, kwargs: dict) -> Any:
        raise NotImplementedError

    def explain(self, model: Any, error: BaseException) -> str:
        own_message = str(error).strip() or type(error).__name__
        lines = failure_header(self.converter, model, self.name, error)
        lines.append(f"  {type(error).__name__}: " + own_message.replace("\n", "\n    "))
        lines.append(f"hint: {self.hint_for(model, error)}")
        return "\n".join(lines)

    def hint_for(self, model: Any, error: BaseException) -> str:
        """The hint for this failure: the mode's own, unless the model or the error says
        more."""
        return self.hint

    def release(self) -> None:
        forget_scripted_classes()

    def fingerprint(self, conversion: Conversion) -> Any:
        return torchscript_ops(conversion.module.inlined_graph)

    def owns(self, artifact: Any) -> bool:
        return isinstance(artifact, import_torch().jit.ScriptModule)

    def save(self, artifact: Any, path: Path) -> None:
        import_torch().jit.save(artifact, str(path))

    def describe(self, artifact: Any) -> tuple[str, str]:
        graph = getattr(artifact, "inlined_graph", getattr(artifact, "graph", ""))
        return getattr(artifact, "code", ""), str(graph)

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        return import_torch().jit.load(str(path), map_location=device)


class TraceBackend(_TorchScript):
    name = "trace"
    converter = "torch.jit.trace"
    control_flow = "trace"
    hint = (
        "mode='script' compiles the Python source itself and handles control flow and "
        "non-tensor values that tracing cannot record"
    )

    def hint_for(self, model: Any, error: BaseException) -> str:
        text = str(error)
        if "Tracer cannot infer type of" in text or "cannot be understood by the tracer" in text:
            # a class the tracer cannot record (a dataclass, a dict of lists): not control flow
            return (
                "a trace takes and returns tensors and tuples, lists and dicts of them (a "
                "dict's values tensors or tuples of tensors); return a tuple or a dict of "
                "tensors from forward"
            )
        if "Got NoneType" in text or "NoneType]' cannot be traced" in text:
            return (
                "a trace takes tensors only, and an input set passes None (an optional "
                "argument such as a mask left empty); leave it out of the input set so its "
                "default applies, or use mode='script', which takes Optional arguments"
            )
        if "can be output from traced functions" in text:
            return (
                "a trace returns tensors and tuples, lists and dicts of them, not Python values "
                "(a size such as x.shape[0], a constant, a flag, None); return such a value as "
                "a tensor (torch.tensor(...)) or leave it out, or use mode='script', which "
                "returns it typed"
            )
        return self.hint

    def _convert(self, torch: Any, model: Any, args: tuple, kwargs: dict) -> Any:
        if kwargs and args:
            raise ConversionFailed(
                "mode='trace' cannot take positional and keyword arguments in one input "
                "set (torch.jit.trace accepts example_inputs or example_kwarg_inputs, not "
                "both); pass a tuple of positional arguments or a dict of keyword arguments"
            )
        if kwargs:
            return torch.jit.trace(
                model, example_kwarg_inputs=kwargs, strict=False, check_trace=False
            )
        return torch.jit.trace(model, args, strict=False, check_trace=False)


class ScriptBackend(_TorchScript):
    name = "script"
    converter = "torch.jit.script"
    control_flow = "script"
    records_python_values = False
    hint = (
        "mode='trace' records the operations that one input actually runs and may work where "
        "script cannot (but freezes data-dependent control flow); or keep the unsupported code "
        "out of the compiled path with @torch.jit.ignore / @torch.jit.unused"
    )

    def __init__(self) -> None:
        # model class -> the explanation of the first time it failed to script in this process
        self._first_failures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def explain(self, model: Any, error: BaseException) -> str:
        """Torch's own reason, also the second time: a script that failed leaves the class
        half-defined in TorchScript's process-wide compilation unit (torch 2.4 and others), and
        every later script of it says "Can't redefine method: forward", which is not why it
        fails. The first failure's explanation is kept per class and given again."""
        earlier = self._first_failures.get(type(model))
        if earlier is not None and "Can't redefine method" in str(error):
            return (
                f"{earlier}\n(torch.jit.script failed on {type(model).__name__} earlier in this "
                f"session for this reason; torch then refuses to compile the class again, "
                f"saying \"Can't redefine method\")"
            )
        explanation = super().explain(model, error)
        with contextlib.suppress(TypeError):  # a class that takes no weak reference
            self._first_failures.setdefault(type(model), explanation)
        return explanation

    def hint_for(self, model: Any, error: BaseException) -> str:
        """A transformers model fails to script somewhere deep in the library (GPT-2's: "Failed
        to get source for GPT2Config.__init__"); no decorator of the user's fixes that."""
        if type(model).__module__.startswith("transformers."):
            return (
                "transformers models do not support torch.jit.script (the library only ever "
                "supported tracing); check them with mode='trace', 'export' or 'onnx', or leave "
                "script out for them: skip={'script': 'transformers models are not scriptable'}"
            )
        return self.hint

    def _convert(self, torch: Any, model: Any, args: tuple, kwargs: dict) -> Any:
        return torch.jit.script(model)
