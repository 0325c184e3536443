"""Compare a converted model's outputs with eager's, path by path, and measure how they differ.

Outputs are walked together through tensors, tuples, lists, namedtuples, dicts (ModelOutput
and other mappings), dataclasses, None and Python scalars. Every leaf gets a ``LeafResult``:
either a structural difference (shape, dtype, device, type, missing key...) or value figures
that say by how much it differs and which tolerances would have passed. Tolerances default by
dtype as in ``torch.testing.assert_close``; NaNs in the same places count as equal.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..text import short_repr
from .jit_warnings import flatten_registered, import_torch

# (rtol, atol) per dtype name, as torch.testing.assert_close picks them; others compare exactly.
_DEFAULT_TOLERANCES = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex32": (1e-3, 1e-5),
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}
_PYTHON_FLOAT_TOLERANCES = _DEFAULT_TOLERANCES["float64"]
# float32 on a CUDA device where TF32 is allowed (cuDNN's convolutions allow it by default):
# eager then keeps 10 bits of mantissa in its convolutions and matmuls, and a converted module
# that runs other kernels (AOTInductor's, onnxruntime's) differs by that rounding, not by a
# bug. The rounding scales with the output, not elementwise (benchmarks/tf32_rounding.py on
# an H100: TF32 on vs off moved resnet18 by 2.7e-3 at outputs up to 5.9, resnet50 by 0.057 at
# outputs up to 112, convnext_tiny by 1.2e-3 at 2.1: at most 5e-4 of the largest output), so
# atol is TF32_SCALE times the largest |eager| of the output, at least TF32 atol below.
TF32_TOLERANCES = {"rtol": 1e-3, "atol": 1e-4}
TF32_SCALE = 2e-3


class UncomparableOutput(TypeError):
    """An output leaf of a type the plugin does not know how to compare (``kind``)."""

    def __init__(self, message: str, kind: type) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class LeafResult:
    """How one output leaf of the converted model compares with eager's."""

    path: str
    problem: str | None = None  # a structural difference, in words; None when values compare
    numel: int = 1
    mismatched: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_index: tuple[int, ...] | None = None
    worst_expected: Any = None
    worst_actual: Any = None
    rtol: float = 0.0
    atol: float = 0.0
    needed_atol: float = 0.0
    needed_rtol: float = 0.0
    nan_mismatches: int = 0
    # Of the mismatched elements, those where eager's value is exactly 0: all of them means
    # eager skipped those positions (a nested-tensor fast path zeroes padding) where the
    # converted module computed them (``stages.eager_zeroed_hint``).
    mismatched_at_eager_zero: int = 0
    # How many elements' absolute error falls in each decade [1e-12, 1e-11), ... [1e3, 1e4],
    # kept for mismatching leaves so a report can draw the error distribution.
    error_histogram: list[int] | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.mismatched == 0

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        for key in ("worst_expected", "worst_actual"):
            data[key] = _plain(data[key])
        return data


@dataclass
class ParityResult:
    """Every leaf of one input set's outputs, compared."""

    input_index: int
    leaves: list[LeafResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    @property
    def failures(self) -> list[LeafResult]:
        return [leaf for leaf in self.leaves if not leaf.ok]

    @property
    def max_abs(self) -> float:
        return max((leaf.max_abs for leaf in self.leaves), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((leaf.max_rel for leaf in self.leaves), default=0.0)

    def to_dict(self) -> dict:
        return {
            "input_index": self.input_index,
            "ok": self.ok,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "leaves": [leaf.to_dict() for leaf in self.leaves],
        }


def compare_outputs(
    expected: Any,
    actual: Any,
    input_index: int,
    rtol: float | None = None,
    atol: float | None = None,
    root: str = "output",
    floor: Mapping[str, float] | None = None,
) -> ParityResult:
    """Compare ``actual`` (converted) against ``expected`` (eager) over their whole structure.
    An ``rtol``/``atol`` left None is the dtype's default, raised to ``floor`` (a mode's own
    least tolerances) for floating-point outputs."""
    result = ParityResult(input_index)
    tolerance = Tolerance(rtol, atol, dict(floor or {}))
    _walk(expected, actual, root, tolerance, result.leaves, import_torch())
    return result


@dataclass(frozen=True)
class Tolerance:
    """What the user set (None: by dtype) and the mode's floor under the dtype defaults."""

    rtol: float | None = None
    atol: float | None = None
    floor: Mapping[str, float] = field(default_factory=dict)


def _walk(expected, actual, path, tolerance, out: list[LeafResult], torch) -> None:
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            out.append(_type_problem(path, expected, actual))
        else:
            out.append(_compare_tensors(expected, actual, path, tolerance, torch))
        return
    if isinstance(expected, Mapping):
        _walk_mapping(expected, actual, path, tolerance, out, torch)
        return
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        fields = {f.name: getattr(expected, f.name) for f in dataclasses.fields(expected)}
        if dataclasses.is_dataclass(actual) and not isinstance(actual, type):
            actual = {f.name: getattr(actual, f.name) for f in dataclasses.fields(actual)}
        _walk_mapping(fields, actual, path, tolerance, out, torch, attribute_style=True)
        return
    if isinstance(expected, (tuple, list)):
        _walk_sequence(expected, actual, path, tolerance, out, torch)
        return
    if expected is None or isinstance(expected, (bool, int, str, bytes)):
        if type(actual) is not type(expected):
            out.append(_type_problem(path, expected, actual))
        elif actual != expected:
            out.append(
                LeafResult(path, problem=f"eager returned {expected!r}, converted {actual!r}")
            )
        else:
            out.append(LeafResult(path))
        return
    if isinstance(expected, float):
        if not isinstance(actual, float):
            out.append(_type_problem(path, expected, actual))
        else:
            out.append(
                _compare_tensors(
                    torch.tensor(expected, dtype=torch.float64),
                    torch.tensor(actual, dtype=torch.float64),
                    path,
                    Tolerance(
                        _PYTHON_FLOAT_TOLERANCES[0] if tolerance.rtol is None else tolerance.rtol,
                        _PYTHON_FLOAT_TOLERANCES[1] if tolerance.atol is None else tolerance.atol,
                    ),
                    torch,
                )
            )
        return
    leaves = flatten_registered(expected)
    if leaves is not None:  # a library's own container (a transformers Cache, say)
        actual_leaves = flatten_registered(actual)
        if actual_leaves is None and isinstance(actual, (tuple, list)):
            actual_leaves = _nested_leaves(actual)
        if actual_leaves is not None:
            _walk_sequence(leaves, actual_leaves, f"{path} (flattened)", tolerance, out, torch)
            return
        out.append(_type_problem(path, expected, actual))
        return
    raise UncomparableOutput(
        f"{path} is a {type(expected).__module__}.{type(expected).__qualname__} "
        f"({short_repr(expected)}), which the plugin cannot compare; return tensors, tuples, "
        f"lists, dicts, dataclasses, None or Python scalars from the model",
        type(expected),
    )


def _walk_sequence(expected, actual, path, tolerance, out, torch) -> None:
    if not isinstance(actual, (tuple, list)):
        out.append(_type_problem(path, expected, actual))
        return
    if len(actual) != len(expected):
        out.append(
            LeafResult(
                path,
                problem=f"eager returned {len(expected)} items, converted {len(actual)}:\n"
                f"  eager:     {structure(expected)}\n  converted: {structure(actual)}",
            )
        )
        return
    names = getattr(expected, "_fields", None)
    for index, (left, right) in enumerate(zip(expected, actual)):
        child = f"{path}.{names[index]}" if names else f"{path}[{index}]"
        _walk(left, right, child, tolerance, out, torch)


def _walk_mapping(expected, actual, path, tolerance, out, torch, attribute_style=False) -> None:
    if not isinstance(actual, Mapping):
        out.append(_type_problem(path, expected, actual))
        return

    def child(key: Any) -> str:
        return f"{path}.{key}" if attribute_style else f"{path}[{key!r}]"

    for key, value in expected.items():
        if key not in actual:
            out.append(LeafResult(child(key), problem="present in eager, missing in converted"))
        else:
            _walk(value, actual[key], child(key), tolerance, out, torch)
    for key in actual:
        if key not in expected:
            out.append(LeafResult(child(key), problem="missing in eager, present in converted"))


def _type_problem(path: str, expected: Any, actual: Any) -> LeafResult:
    problem = f"eager returned {_kind(expected)}, converted returned {_kind(actual)}"
    if isinstance(expected, (tuple, list, Mapping)) or isinstance(actual, (tuple, list, Mapping)):
        problem += f":\n  eager:     {structure(expected)}\n  converted: {structure(actual)}"
    return LeafResult(path, problem=problem)


def structure(value: Any, depth: int = 3, limit: int = 240) -> str:
    """A one-line picture of a nested output: ``tuple(dict{boxes: float32[3, 4]}, list[0])``,
    so two structures that differ can be read side by side."""
    text = _structure(value, depth, import_torch())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _structure(value: Any, depth: int, torch: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).replace('torch.', '')}{list(value.shape)}"
    if depth == 0:
        return type(value).__name__ + "(...)"
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{key}: {_structure(item, depth - 1, torch)}" for key, item in value.items()
        )
        return f"{type(value).__name__}{{{inner}}}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_structure(item, depth - 1, torch) for item in value)
        return f"{type(value).__name__}({inner})" if isinstance(value, tuple) else f"list[{inner}]"
    return type(value).__name__


def _nested_leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _nested_leaves(item)]
    return [value]


def _kind(value: Any) -> str:
    torch = import_torch()
    if isinstance(value, torch.Tensor):
        return f"a tensor {str(value.dtype).replace('torch.', '')}{list(value.shape)}"
    if isinstance(value, (tuple, list, Mapping)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{type(value).__name__} {short_repr(value, 30)}"


def default_tolerances(
    dtype: Any, device: Any = None, floor: Mapping[str, float] | None = None
) -> tuple[float, float]:
    """(rtol, atol) for ``dtype`` as torch.testing picks them; exact for integers and bools;
    TF32's where float32 is computed with it on ``device`` (``TF32_TOLERANCES``); and for
    floating-point dtypes at least ``floor`` (a mode's own: onnxruntime's rounding)."""
    name = str(dtype).replace("torch.", "")
    rtol, atol = _DEFAULT_TOLERANCES.get(name, (0.0, 0.0))
    floors = [TF32_TOLERANCES] if _computed_in_tf32(dtype, device) else []
    if floor and name in _DEFAULT_TOLERANCES:  # integers and bools stay exact
        floors.append(floor)
    for least in floors:
        rtol, atol = max(rtol, least.get("rtol", 0.0)), max(atol, least.get("atol", 0.0))
    return rtol, atol


def _computed_in_tf32(dtype: Any, device: Any) -> bool:
    return str(dtype).replace("torch.", "") in ("float32", "complex64") and tf32_in_use(device)


def tf32_in_use(device: Any) -> bool:
    """Whether float32 convolutions or matmuls on ``device`` may run in TF32 (CUDA only)."""
    if getattr(device, "type", str(device)).split(":")[0] != "cuda":
        return False
    torch = import_torch()
    return bool(
        torch.backends.cudnn.allow_tf32
        or torch.backends.cuda.matmul.allow_tf32
        or torch.get_float32_matmul_precision() != "highest"
    )


def _compare_tensors(expected, actual, path, tolerance, torch) -> LeafResult:
    if expected.shape != actual.shape:
        return LeafResult(
            path,
            problem=f"shape differs: eager {tuple(expected.shape)}, converted "
            f"{tuple(actual.shape)}",
        )
    if expected.dtype != actual.dtype:
        return LeafResult(
            path, problem=f"dtype differs: eager {expected.dtype}, converted {actual.dtype}"
        )
    if expected.device != actual.device:
        return LeafResult(
            path, problem=f"device differs: eager {expected.device}, converted {actual.device}"
        )
    default_rtol, default_atol = default_tolerances(
        expected.dtype, expected.device, tolerance.floor
    )
    left_all = _dense(expected, torch).detach().reshape(-1)
    right_all = _dense(actual, torch).detach().reshape(-1)
    rtol = default_rtol if tolerance.rtol is None else tolerance.rtol
    atol = tolerance.atol
    if atol is None:
        atol = default_atol
        if left_all.numel() and _computed_in_tf32(expected.dtype, expected.device):
            scale = left_all.abs().nan_to_num(nan=0.0, posinf=0.0).max()
            atol = max(atol, TF32_SCALE * float(scale))
    result = LeafResult(path, numel=expected.numel(), rtol=rtol, atol=atol)
    if expected.numel() == 0:
        return result
    wide = torch.complex128 if expected.is_complex() else torch.float64
    # In chunks: the float64 temporaries of a whole 50M-element output would take gigabytes.
    worst_excess = -math.inf
    result.max_abs = result.max_rel = result.needed_atol = 0.0
    for start in range(0, left_all.numel(), _CHUNK):
        chunk = _chunk_figures(
            left_all[start : start + _CHUNK].to("cpu", wide),
            right_all[start : start + _CHUNK].to("cpu", wide),
            rtol,
            atol,
            torch,
        )
        result.mismatched += chunk["mismatched"]
        result.nan_mismatches += chunk["nan_mismatches"]
        result.mismatched_at_eager_zero += chunk["at_eager_zero"]
        result.max_abs = max(result.max_abs, chunk["max_abs"])
        result.max_rel = max(result.max_rel, chunk["max_rel"])
        result.needed_atol = max(result.needed_atol, chunk["needed_atol"])
        if chunk["needed_rtol"] is not None:
            result.needed_rtol = max(result.needed_rtol or 0.0, chunk["needed_rtol"])
        if chunk["worst_excess"] > worst_excess:
            worst_excess, flat_worst = chunk["worst_excess"], start + chunk["worst_index"]
    if result.mismatched:  # a second pass, only for failures: where the errors lie
        result.error_histogram = [0] * (HISTOGRAM_DECADES[1] - HISTOGRAM_DECADES[0])
        for start in range(0, left_all.numel(), _CHUNK):
            left = left_all[start : start + _CHUNK].to("cpu", wide)
            right = right_all[start : start + _CHUNK].to("cpu", wide)
            counts = _decade_histogram(_abs_diff(left, right, torch), torch)
            result.error_histogram = [a + b for a, b in zip(result.error_histogram, counts)]
    result.worst_index = _unravel(flat_worst, tuple(expected.shape))
    result.worst_expected = left_all[flat_worst].item()
    result.worst_actual = right_all[flat_worst].item()
    return result


_CHUNK = 1 << 20  # elements compared at a time


def _abs_diff(left, right, torch):
    """|left - right|, 0 where both are equal or both NaN, inf where only one is NaN."""
    same = (left == right) | (torch.isnan(left) & torch.isnan(right))
    if left.is_complex():
        same |= torch.isnan(left.real) & torch.isnan(right.real)
    diff = torch.where(same, torch.zeros((), dtype=torch.float64), (left - right).abs())
    return diff.nan_to_num(nan=math.inf, posinf=math.inf)  # NaN on one side: never within


def _chunk_figures(left, right, rtol: float, atol: float, torch) -> dict:
    """The figures of one chunk of a comparison, to be combined over the chunks."""
    diff = _abs_diff(left, right, torch)
    magnitude = left.abs().nan_to_num(nan=0.0, posinf=math.inf)
    allowed = atol + rtol * magnitude
    relative = torch.where(diff == 0, torch.zeros((), dtype=torch.float64), diff / magnitude)
    excess = (diff - allowed).nan_to_num(nan=math.inf, posinf=math.inf)
    worst = int(excess.argmax())
    over_atol = diff > atol
    needed_rtol = None
    if bool(over_atol.any()):
        needed = ((diff - atol) / magnitude)[over_atol]
        needed_rtol = float(needed.nan_to_num(nan=math.inf, posinf=math.inf).max())
    beyond = diff > allowed
    return {
        "mismatched": int(beyond.sum()),
        "at_eager_zero": int((beyond & (left == 0)).sum()),
        "nan_mismatches": int((torch.isnan(left) ^ torch.isnan(right)).sum()),
        "max_abs": float(diff.max()),
        "max_rel": float(relative.nan_to_num(nan=math.inf, posinf=math.inf).max()),
        "needed_atol": max(0.0, float((diff - rtol * magnitude).max())),
        "needed_rtol": needed_rtol,
        "worst_excess": float(excess[worst]),
        "worst_index": worst,
    }


HISTOGRAM_DECADES = (-12, 4)  # 10**-12 .. 10**4


def _decade_histogram(diff, torch) -> list[int]:
    low, high = HISTOGRAM_DECADES
    nonzero = diff[(diff > 0) & torch.isfinite(diff)]
    decades = torch.floor(torch.log10(nonzero)).clamp(low, high - 1).to(torch.int64) - low
    return torch.bincount(decades, minlength=high - low).tolist()


def _dense(tensor, torch):
    if tensor.is_quantized:
        return tensor.dequantize()
    if tensor.layout != torch.strided:
        return tensor.to_dense()
    return tensor


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a worst-element value."""
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
