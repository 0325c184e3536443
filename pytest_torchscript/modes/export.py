"""mode="export": torch.export with dynamic dimensions inferred from the input sets.

A dimension whose size differs across input sets is made dynamic (``Dim.DYNAMIC``); the user
may pass ``dynamic_shapes`` instead. When export cannot keep a dimension dynamic over the sizes
the input sets use (a branch on a size narrows it), the failure names the dimension, the range
export kept, and the line of the user's code that narrowed it; a branch on tensor values
(which export refuses) is named at its line with the fixes PyTorch offers.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import linecache
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..check.inputs import InputSet
from ..check.jit_warnings import (
    TRANSPARENT_CODE,
    RecordedWarning,
    calling_user_frame,
    import_torch,
    recording_warnings,
)
from ..perf.graph_diff import fx_ops
from ..text import display_path, first_lines, root_cause, short_path, strip_ansi
from .base import Backend, Conversion, ConversionFailed, Target, failure_header

_EXPORT_HINT = (
    "hint: export cannot follow a branch on tensor values; express it with "
    "torch.cond(pred, true_fn, false_fn, operands), or tell export what holds with "
    "torch._check(...); torch.export.draft_export(model, args) lists every such place"
)


def infer_dynamic_shapes(model: Any, input_sets: list[InputSet]) -> Any:
    """``dynamic_shapes`` for torch.export: dims whose size differs across sets are dynamic.

    Returned as a dict keyed by the forward's parameter names (so keyword inputs work), or
    None when every set has the same shapes (nothing to make dynamic).
    """
    torch = import_torch()
    forward = model.forward if hasattr(model, "forward") else model
    try:
        signature = inspect.signature(forward)
        bound = [signature.bind(*s.args, **s.kwargs).arguments for s in input_sets]
    except (TypeError, ValueError):
        return None
    if any(list(arguments) != list(bound[0]) for arguments in bound):
        return None
    specs = {}
    varying = False
    dims = _DimMaker(torch)
    for name in bound[0]:
        spec = _spec(dims, [arguments[name] for arguments in bound])
        specs[name] = spec
        varying = varying or _has_dynamic(spec)
    return specs if varying else None


def export_example(input_sets: list[InputSet], dynamic_shapes: Any) -> int:
    """Which input set to export with: the first, unless a dimension made dynamic has size 0
    or 1 there; torch.export specialises such sizes ("0/1 specialisation"), so the first set
    where every varying dimension is at least 2 is used instead."""
    if dynamic_shapes is None:
        return 0
    torch = import_torch()
    for index, input_set in enumerate(input_sets):
        sizes = [
            size
            for tensor, dims in _dynamic_dims(torch, input_set, dynamic_shapes)
            for size in (tensor.shape[dim] for dim in dims)
        ]
        if all(size >= 2 for size in sizes):
            return index
    return 0


def _dynamic_dims(torch: Any, input_set: InputSet, dynamic_shapes: Any):
    """(tensor, its dynamic dims) of one input set; ``dynamic_shapes`` is keyed by parameter
    name in signature order, positional arguments first, as ``infer_dynamic_shapes`` made it."""
    if not isinstance(dynamic_shapes, dict):
        return
    values = dict(zip(dynamic_shapes, input_set.args))
    values.update(input_set.kwargs)
    for name, spec in dynamic_shapes.items():
        yield from _pairs(torch, values.get(name), spec)


def _pairs(torch: Any, value: Any, spec: Any):
    if isinstance(value, torch.Tensor) and isinstance(spec, dict):
        yield value, list(spec)
    elif isinstance(value, (tuple, list)) and isinstance(spec, (tuple, list)):
        for item, inner in zip(value, spec):
            yield from _pairs(torch, item, inner)
    elif isinstance(value, dict) and isinstance(spec, dict):
        for key, item in value.items():
            yield from _pairs(torch, item, spec.get(key))


class _DimMaker:
    """The dynamic dimension of a size that varies across the input sets: ``Dim.DYNAMIC``,
    which lets export infer how dimensions relate, where torch has it (2.6 and later). Older
    torch takes named dims only, and export refuses two of them that its trace proves equal
    (an input and its mask, both of the batch's size); so dimensions whose sizes agree in
    every input set share one named dim, as they would share a size in deployment."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.dynamic = getattr(torch.export.Dim, "DYNAMIC", None)
        self.named: dict[tuple[int, ...], Any] = {}

    def __call__(self, sizes: tuple[int, ...]) -> Any:
        if self.dynamic is not None:
            return self.dynamic
        if sizes not in self.named:
            self.named[sizes] = self.torch.export.Dim(f"dim{len(self.named)}")
        return self.named[sizes]


def _spec(dims: _DimMaker, values: list[Any]) -> Any:
    torch = dims.torch
    first = values[0]
    if isinstance(first, torch.Tensor):
        if not all(isinstance(v, torch.Tensor) and v.dim() == first.dim() for v in values):
            return None
        dynamic = {
            dim: dims(tuple(v.shape[dim] for v in values))
            for dim in range(first.dim())
            if len({v.shape[dim] for v in values}) > 1
        }
        return dynamic or None
    if isinstance(first, (tuple, list)) and all(
        isinstance(v, type(first)) and len(v) == len(first) for v in values
    ):
        return type(first)(_spec(dims, [v[i] for v in values]) for i in range(len(first)))
    if isinstance(first, dict) and all(
        isinstance(v, dict) and v.keys() == first.keys() for v in values
    ):
        return {key: _spec(dims, [v[key] for v in values]) for key in first}
    return None


def _has_dynamic(spec: Any) -> bool:
    if isinstance(spec, dict):
        return any(isinstance(k, int) or _has_dynamic(v) for k, v in spec.items())
    if isinstance(spec, (tuple, list)):
        return any(_has_dynamic(item) for item in spec)
    return False


def export_program(model: Any, args: tuple, kwargs: dict, dynamic_shapes: Any) -> Any:
    torch = import_torch()
    return torch.export.export(model, args, kwargs=kwargs, dynamic_shapes=dynamic_shapes)


# Lines of the ONNX exporter's wrapper and torch's debugging pointers that say nothing about
# this model: left out of the quoted message (the whole text is kept under --ts-artifacts).
_BOILERPLATE = re.compile(
    r"^\s*(- Modify the model code for `torch\.export\.export`|- Debug `torch\.export\.export`"
    r"|- Create an issue in the PyTorch GitHub|## Exception summary|For more information, run "
    r"with TORCH_LOGS|For more debugging help, see |The error above occurred when calling "
    r"torch\.export\.export|\(Refer to the full stack trace above)"
)
_ONNX_STEP = re.compile(
    r"^Failed to export the model with torch\.export\. This is step (\d)/(\d).*$"
)


def without_boilerplate(message: str) -> str:
    """``message`` without the lines ``_BOILERPLATE`` names, and the ONNX exporter's "step
    1/3" preamble put in one short line."""
    lines = [line for line in strip_ansi(message).splitlines() if not _BOILERPLATE.match(line)]
    return "\n".join(
        _ONNX_STEP.sub(r"torch.export failed (step \1 of \2 of the ONNX export):", line)
        for line in lines
    )


def explain_export_failure(error: BaseException, guards: list[tuple[str, int, str]]) -> str:
    """Put an export error in the user's terms; ``guards`` are the (file, line, expression)
    of the size decisions the user's code made while exporting."""
    message = without_boilerplate(without_plugin_frames(str(error).strip()))
    lines = []
    data_dependent = "data-dependent" in message or "data dependent" in message.lower()
    narrowed = "Constraints violated" in message or "specialized" in message
    if narrowed and guards:
        lines.append("export could not keep the dimensions dynamic that the input sets vary:")
        for filename, lineno, expression in guards[:5]:
            lines.append(f"  {display_path(filename)}:{lineno}: the code decides on {expression}")
    first = first_lines(message, 14)
    lines.append("  " + first.replace("\n", "\n  "))
    unknown = re.search(
        r"Found <class '([^']+)'> in (input|output), which is not a known type", message
    )
    if data_dependent:
        lines.append(_EXPORT_HINT)
    elif unknown:
        name, where = unknown.group(1), unknown.group(2)
        lines.append(
            f"hint: export flattens every {where} into tensors and does not know {name}; "
            f"return (or take) a tuple or a dict of tensors, or register a dataclass with "
            f"torch.export.register_dataclass({name.rsplit('.', 1)[-1]}, "
            f"serialized_type_name={name!r}) (the name is how a .pt2 stores it; a deployment "
            f"then needs your class to rebuild it, which the fresh-process round trip checks)"
        )
    elif "specialized due to hint of" in message:
        lines.append(
            "hint: torch.export specialises sizes 0 and 1; give the dimension a size of at "
            "least 2 in at least one input set, which the plugin then exports with"
        )
    elif narrowed:
        lines.append(
            "hint: a branch on a size specialises the exported program to one side of it; "
            "make the code hold for every size, or pass dynamic_shapes=... with the range the "
            "model supports, and input sets within it"
        )
    return "\n".join(lines)


# Where the last size decision was taken: torch names the innermost Python frame of a failed
# guard ("Caused by: ..."), which is this module's wrapper; messages name this caller instead.
LAST_SIZE_DECISION: list[tuple[str, int, str]] = []
_PLUGIN_FRAME = re.compile(r"[^\s()\"']*pytest_torchscript(?:[/\\]\w+)+\.py:\d+(?: in \w+)?")


def without_plugin_frames(message: str) -> str:
    """A converter's message with this plugin's own frames replaced by the code that called
    into them: our wrappers are never the cause of a user's failure."""
    if not LAST_SIZE_DECISION:
        return _PLUGIN_FRAME.sub("(a frame of pytest-torchscript)", message)
    filename, lineno, function = LAST_SIZE_DECISION[0]
    return _PLUGIN_FRAME.sub(f"{short_path(filename)}:{lineno} in {function}", message)


@contextlib.contextmanager
def recording_size_decisions(into: list[tuple[str, int, str]]) -> Iterator[None]:
    """While exporting, note every decision the user's code takes on a symbolic size (a
    ``SymBool`` turned into a Python bool): the lines that can narrow a dynamic dimension."""
    torch = import_torch()
    original = torch.SymBool.__bool__

    def observed(self: Any) -> bool:
        caller = sys._getframe(1)
        LAST_SIZE_DECISION[:] = [
            (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
        ]
        result = original(self)
        where = calling_user_frame(sys._getframe(1))
        if where is not None:
            into.append((where[0], where[1], f"{self.node.expr}, took {result}"))
        return result

    TRANSPARENT_CODE.add(observed.__code__)
    torch.SymBool.__bool__ = observed
    try:
        yield
    finally:
        torch.SymBool.__bool__ = original


def explain_rejected_input(
    error: BaseException, index: int, described: str, guards: list[tuple[str, int, str]]
) -> str | None:
    """If the exported program rejected an input set because export narrowed a dynamic
    dimension, say which, to what, and where the user's code narrowed it; else None."""
    message = str(error)
    if "Guard failed" not in message:
        return None
    requirement = message.split("Guard failed:", 1)[1].strip().splitlines()[0]
    lines = [
        f"export narrowed a dynamic dimension: the exported program requires {requirement}, "
        f"and input set {index} {described} does not satisfy it"
    ]
    if guards:
        lines.append("the user code decided on sizes while exporting at:")
        seen = set()
        for filename, lineno, expression in guards:
            if (filename, lineno) in seen:
                continue
            seen.add((filename, lineno))
            source = linecache.getline(filename, lineno).strip()
            lines.append(f"  {display_path(filename)}:{lineno}: `{source}` ({expression})")
    if _assumes_not_one(requirement):
        lines.append(
            f"hint: torch.export assumes that a dynamic size, and every size computed from it, "
            f"is never 0 or 1; input set {index} makes the size in `{requirement}` 1 (or 0). "
            f"Use input sets that keep it at least 2 (larger inputs), or give the dimension a "
            f"range that excludes the sizes the model cannot take, and input sets inside it: "
            f"{_range_example(requirement)}"
        )
    else:
        lines.append(
            "hint: make the code hold for every size (no branch on it), or export with "
            "dynamic_shapes=... and input sets inside the range the model supports"
        )
    return "\n".join(lines)


def _range_example(requirement: str) -> str:
    """A ``dynamic_shapes=`` for the dimension a guard names (``x.size()[3]``)."""
    found = re.search(r"(\w+)\.size\(\)\[(\d+)\]", requirement)
    name, dim = (found.group(1), int(found.group(2))) if found else ("x", 0)
    label = "batch" if dim == 0 else f"{name}_dim{dim}"
    return f"dynamic_shapes={{'{name}': {{{dim}: torch.export.Dim('{label}', min=...)}}}}"


def _assumes_not_one(requirement: str) -> bool:
    """Guards that encode the 0/1 specialisation: ``!= 1``, ``> 1``, ``>= 2`` (or 0)."""
    compact = requirement.replace(" ", "")
    return any(token in compact for token in ("!=1", ">1)", ">=2", "!=0")) or compact.endswith(
        (">1", ">=2")
    )


def program_code(program: Any) -> tuple[str, str]:
    """The exported program's Python code and graph, for the artifacts folder."""
    module = program.graph_module
    return module.code, str(program.graph)


def _pass_on(text: str) -> None:
    """What the converter printed to stderr while converting, to stderr after all (pytest
    shows it with the failure), less what the check keeps as an artifact instead."""
    if text.strip():
        sys.stderr.write(text)


class ExportedBackend(Backend):
    """What every mode that goes through torch.export shares: the size decisions of the user's
    code are recorded while exporting, and a failure is explained by them."""

    exported = True

    def convert(self, model: Any, args: tuple, kwargs: dict, target: Target) -> Conversion:
        recorded: list[RecordedWarning] = []
        guards: list[tuple[str, int, str]] = []
        started = time.perf_counter()
        printed = io.StringIO()
        partial = None
        try:
            with (
                recording_warnings(recorded),
                recording_size_decisions(guards),
                contextlib.redirect_stderr(printed),
            ):
                artifact, module = self.build(model, args, kwargs, target)
        except Exception as error:
            failure = self._failure(model, error, guards)
            partial = getattr(error, "partial_fx_graph", None)
            if partial:  # torch prints it to stderr: thousands of lines for a real model
                failure.full_text += f"\n\npartial graph (what export captured):\n{partial}"
            raise failure from None
        finally:  # also past a timeout or an interrupt: what was printed is not lost
            _pass_on(
                printed.getvalue().replace(str(partial), "") if partial else printed.getvalue()
            )
        return Conversion(module, time.perf_counter() - started, recorded, artifact, guards)

    def build(self, model: Any, args: tuple, kwargs: dict, target: Target) -> tuple[Any, Any]:
        """(what is saved, what runs)."""
        raise NotImplementedError

    def extra_hints(self, text: str) -> list[str]:
        """Hints this mode adds for a failure whose whole text (lower case) is ``text``."""
        return []

    def _failure(self, model: Any, error: Exception, guards: list) -> ConversionFailed:
        lines = failure_header(self.converter, model, self.name, error)
        lines.append(explain_export_failure(error, guards))
        root = root_cause(error)
        text = first_lines(without_boilerplate(without_plugin_frames(strip_ansi(str(root)))), 6)
        if root is not error and text.splitlines()[0] not in "\n".join(lines):
            lines.append(f"root cause: {type(root).__name__}: " + text.replace("\n", "\n  "))
        lines.extend(self.extra_hints(strip_ansi(f"{error}\n{root}").lower()))
        failure = ConversionFailed(strip_ansi("\n".join(lines)))
        failure.full_text = strip_ansi(f"{error}\n\nroot cause:\n{root}")
        return failure

    def describe(self, artifact: Any) -> tuple[str, str]:
        return program_code(artifact)

    def fingerprint(self, conversion: Conversion) -> Any:
        """The exported program's operators: the same program every mode of this family
        starts from (onnx's and aoti's artifacts keep it)."""
        artifact = conversion.artifact
        program = getattr(artifact, "exported_program", None) or getattr(
            artifact, "program", artifact
        )
        graph = getattr(program, "graph", None)
        return fx_ops(graph) if graph is not None else None


class ExportBackend(ExportedBackend):
    """mode="export": the ExportedProgram, saved with torch.export.save as ``.pt2``."""

    name = "export"
    converter = "torch.export"
    suffix = ".pt2"
    fresh_loader = "exported"

    def build(self, model: Any, args: tuple, kwargs: dict, target: Target) -> tuple[Any, Any]:
        program = export_program(model, args, kwargs, target.dynamic_shapes)
        return program, program.module()

    def owns(self, artifact: Any) -> bool:
        return isinstance(artifact, import_torch().export.ExportedProgram)

    def save(self, artifact: Any, path: Path) -> None:
        import_torch().export.save(artifact, str(path))

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        return import_torch().export.load(str(path)).module()
