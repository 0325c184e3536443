"""Input sets: what users may pass as ``inputs``, and fresh per-call copies on the device.

A tensor is one set with one argument; a tuple is one set of positional arguments; a dict is
one set of keyword arguments; a list of these is several sets. Every call of the eager or the
converted model gets its own deep copy, so a model that writes into its inputs cannot make
later calls see different data (torch.jit.trace's own checker reuses mutated inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import UsageProblem
from ..text import short_repr
from .jit_warnings import import_torch

_SCALARS = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class InputSet:
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def copy_to(self, device: Any) -> tuple[tuple, dict]:
        """A deep copy of the set, every tensor cloned and moved to ``device``."""
        torch = import_torch()

        def fresh_copy(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.detach().clone().to(device)
            return value

        return map_leaves(self.args, fresh_copy), map_leaves(self.kwargs, fresh_copy)

    def describe(self) -> str:
        parts = [_describe(value) for value in self.args]
        parts += [f"{key}={_describe(value)}" for key, value in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def normalize_inputs(value: Any, where: str) -> list[InputSet]:
    """Turn the ``inputs`` option into a list of input sets, or say clearly what is wrong."""
    torch = import_torch()
    if value is None:
        raise UsageProblem(
            f"{where}: no inputs to check the model with; pass inputs=... to "
            f"@pytest.mark.torchscript or to torchscript.check(model, inputs)"
        )
    if callable(value) and not isinstance(value, (torch.Tensor, torch.nn.Module)):
        try:
            value = value()
        except Exception as error:
            raise UsageProblem(
                f"{where}: the inputs callable {getattr(value, '__qualname__', short_repr(value))} "
                f"raised "
                f"{type(error).__name__}: {error}"
            ) from error
        if callable(value) and not isinstance(value, torch.Tensor):
            raise UsageProblem(
                f"{where}: the inputs callable returned another callable; "
                f"it must return the input sets themselves"
            )
    if isinstance(value, Iterator):
        raise UsageProblem(
            f"{where}: inputs is a {type(value).__name__}, which can be read "
            f"only once (and every mode and re-run of the test reads the inputs again); pass a "
            f"list, e.g. inputs=list(...), or a zero-argument callable that returns one"
        )
    if isinstance(value, list):
        if not value:
            raise UsageProblem(f"{where}: inputs is an empty list; give at least one input set")
        sets = [_one_set(item, where, index) for index, item in enumerate(value)]
    else:
        sets = [_one_set(value, where, 0)]
    return sets


def _one_set(value: Any, where: str, index: int) -> InputSet:
    torch = import_torch()
    if isinstance(value, torch.Tensor):
        input_set = InputSet((value,), {})
    elif isinstance(value, tuple):
        input_set = InputSet(value, {})
    elif isinstance(value, dict):
        bad_keys = [key for key in value if not isinstance(key, str)]
        if bad_keys:
            raise UsageProblem(
                f"{where}: input set {index} is a dict (keyword arguments) whose keys must be "
                f"strings; got {short_repr(bad_keys[0])}"
            )
        input_set = InputSet((), dict(value))
    elif isinstance(value, list):
        raise UsageProblem(
            f"{where}: input set {index} is a list inside the list of input sets; "
            f"write one input set as a tuple of arguments, e.g. inputs=[(x, y), (x2, y2)]"
        )
    else:
        raise UsageProblem(
            f"{where}: input set {index} is {type(value).__name__} {short_repr(value)}; an "
            f"input set is a tensor, a tuple of positional arguments or a dict of keyword "
            f"arguments{_as_tensor_hint(value)}"
        )
    for name, argument in _arguments(input_set):
        _check_leaves(argument, f"{where}: input set {index}, argument {name}", torch)
    return input_set


def _arguments(input_set: InputSet):
    yield from ((str(i), value) for i, value in enumerate(input_set.args))
    yield from input_set.kwargs.items()


def _check_leaves(value: Any, where: str, torch: Any) -> None:
    if isinstance(value, (torch.Tensor, *_SCALARS)):
        return
    if isinstance(value, (tuple, list)):
        for item in value:
            _check_leaves(item, where, torch)
        return
    if isinstance(value, dict):
        for item in value.values():
            _check_leaves(item, where, torch)
        return
    raise UsageProblem(
        f"{where} is {type(value).__name__} {short_repr(value)}; arguments must be tensors, "
        f"Python scalars, or tuples, lists and dicts of them{_as_tensor_hint(value)}"
    )


def _as_tensor_hint(value: Any) -> str:
    """The conversion a user most likely meant, for an array from another library (a NumPy
    array, a pandas frame, a PIL image: all offer ``__array__``)."""
    if type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "dtype"):
        if getattr(value, "ndim", None) == 0:
            return " (a NumPy scalar: pass value.item(), or torch.tensor(value) to vary it)"
        return " (a NumPy array: pass torch.from_numpy(array))"
    if hasattr(value, "__array__"):
        return f" (a {type(value).__name__}: pass torch.as_tensor(numpy.asarray(value)))"
    return ""


def map_leaves(value: Any, function: Callable[[Any], Any]) -> Any:
    """Apply ``function`` to every non-container leaf of a nested structure."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(map_leaves(item, function) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(map_leaves(item, function) for item in value)
    if isinstance(value, dict):
        return {key: map_leaves(item, function) for key, item in value.items()}
    return function(value)


def plain_containers(value: Any) -> Any:
    """``value`` with every container a plain tuple, list or dict (a NamedTuple becomes a
    tuple, an OrderedDict a dict): what a process without the user's classes can unpickle.
    A TorchScript module takes a plain tuple where forward declares a NamedTuple, as a
    deployment calling it would pass one. (``fresh_worker._plain`` does the same for the
    outputs it sends back: the worker imports nothing of the plugin.)"""
    if isinstance(value, tuple):
        return tuple(plain_containers(item) for item in value)
    if isinstance(value, list):
        return [plain_containers(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_containers(item) for key, item in value.items()}
    return value


def tensor_leaves(arguments: tuple[tuple, dict]) -> dict[str, Any]:
    """The tensors among ``(args, kwargs)``, named as a user would point at them
    (``args[0]``, ``kwargs['mask'][1]``)."""
    torch = import_torch()
    args, kwargs = arguments
    return _named_leaves(
        [("args", tuple(args)), ("kwargs", dict(kwargs))],
        lambda value: isinstance(value, torch.Tensor),
    )


def python_values(input_set: InputSet) -> dict[str, Any]:
    """The non-tensor leaves of an input set (numbers, flags, strings, None), named as the
    user wrote them: ``scale`` for a keyword, ``argument 1`` for a position,
    ``options['eps']`` inside a container."""
    torch = import_torch()
    return {
        name: value
        for name, value in _leaves_as_written(input_set).items()
        if not isinstance(value, torch.Tensor)
    }


def _leaves_as_written(input_set: InputSet) -> dict[str, Any]:
    """Every leaf of an input set, tensors too, named as ``python_values`` names them."""
    roots = [(f"argument {index}", value) for index, value in enumerate(input_set.args)]
    return _named_leaves(roots + list(input_set.kwargs.items()), lambda value: True)


def _named_leaves(roots: list[tuple[str, Any]], keep: Callable[[Any], bool]) -> dict[str, Any]:
    """The leaves under each named root that ``keep`` accepts, by their path from it."""
    found: dict[str, Any] = {}

    def collect(value: Any, name: str) -> None:
        if isinstance(value, (tuple, list)):
            for index, item in enumerate(value):
                collect(item, f"{name}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                collect(item, f"{name}[{key!r}]")
        elif keep(value):
            found[name] = value

    for name, value in roots:
        collect(value, name)
    return found


class ValueChanges(NamedTuple):
    """What one input set passes otherwise than the example, in words, and whether an
    optional argument is None on one side and a tensor on the other."""

    text: str  # "scale=4.0 (input set 0: 3.0)"
    optional: bool


def changed_python_values(
    input_sets: list[InputSet], example_index: int
) -> dict[int, ValueChanges]:
    """Per input set, where it passes other Python values than the example the model was
    converted with (converters record them from it), as ``scale=4.0 (input set 0: 3.0)``;
    a tensor where the example passed a Python value, or the reverse, counts too (an optional
    ``mask=None`` in the example is recorded as None: ``mask=float32[3, 4] (input set 0:
    None)``)."""
    torch = import_torch()
    example = _leaves_as_written(input_sets[example_index])
    changed = {}
    for index, input_set in enumerate(input_sets):
        pairs = [
            (name, value, example[name])
            for name, value in _leaves_as_written(input_set).items()
            if name in example
            and not (isinstance(value, torch.Tensor) and isinstance(example[name], torch.Tensor))
            and not _same_value(example[name], value)
        ]
        if pairs:
            changed[index] = ValueChanges(
                ", ".join(
                    f"{name}={_describe(value)} (input set {example_index}: {_describe(was)})"
                    for name, value, was in pairs
                ),
                any(
                    (value is None and isinstance(was, torch.Tensor))
                    or (was is None and isinstance(value, torch.Tensor))
                    for _, value, was in pairs
                ),
            )
    return changed


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))  # NaN equals NaN here


def _describe(value: Any) -> str:
    torch = import_torch()
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).replace('torch.', '')}{list(value.shape)}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(item) for item in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    return short_repr(value, 20)
