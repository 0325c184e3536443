"""The options a check takes, from the marker, ``check(**options)`` and ini, validated once.

Every option is described by one ``OptionSpec``: its accepted values in words (used verbatim in
error messages) and a parser that returns the clean value or raises ``ValueError`` saying why.
Layers are merged in order of precedence: ``check`` keywords > marker > ini > defaults.
No torch here: markers are validated at collection, before any model exists.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageProblem
from ..modes import MODES
from ..modes.compile import compile_options_parser
from ..text import short_repr

ALL = "all"  # every mode of --ts-modes (default: modes.ALL_MODES)


@dataclass(frozen=True)
class Options:
    """The resolved options of one check."""

    mode: str = "trace"
    inputs: Any = None
    rtol: float | None = None
    atol: float | None = None
    roundtrip: bool | str = True
    min_coverage: float | None = None
    benchmark: bool = True
    time_budget: float = 2.0
    max_slowdown: float | None = None
    max_regression: float = 0.05
    dynamic_shapes: Any = None
    xfail: Mapping[str, str] = dataclasses.field(default_factory=dict)  # mode -> reason
    skip: Mapping[str, str] = dataclasses.field(default_factory=dict)  # mode -> reason
    known_hazards: tuple[str, ...] = ()  # "file.py:12" or a library name: no warning
    onnx_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    compile_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tvm_target: str | Mapping[str, Any] | None = None  # mode="tvm"; None: the device's
    max_graph_breaks: int | None = None  # mode="compile": fail above this many graph breaks
    max_recompiles: int | None = None  # mode="compile": fail above this many recompiles
    max_graph_change: int | None = None  # fail above this many changed operator counts
    timeout: float | None = None  # seconds for the whole check; None: no limit
    # Not a user option: the mode's own least tolerances (onnxruntime's rounding), which the
    # dtype's defaults are raised to where the user set no rtol/atol (see parity.py).
    tolerance_floor: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # The options some layer (ini, a mark, check()) set, not left at their defaults: a gate
    # the user asked for that cannot run is said, a default one is not.
    explicit: frozenset[str] = frozenset()

    def merged(self, layer: Mapping[str, Any]) -> Options:
        """These options with ``layer``'s (already validated) values on top."""
        given = frozenset(key for key, value in layer.items() if value is not None)
        return dataclasses.replace(self, **layer, explicit=self.explicit | given)

    @property
    def fresh_process(self) -> bool:
        """Whether the round trip also loads the artifact in a fresh interpreter."""
        return self.roundtrip is True


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"unknown mode {short_repr(value)}")
    return value


def _modes(value: Any) -> str | tuple[str, ...]:
    """One mode, "all", or several (a list or tuple, which parametrizes the test)."""
    if value == ALL:
        return ALL
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("the list of modes is empty")
        modes = tuple(_mode(item) for item in value)
        if len(set(modes)) != len(modes):
            raise ValueError(f"a mode is listed twice in {short_repr(value)}")
        return modes
    return _mode(value)


def _tolerance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{short_repr(value)} is not a number")
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        raise ValueError(f"{short_repr(value)} is too large") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{short_repr(value)} is not a finite number >= 0")
    return number


def _fraction(value: Any) -> float:
    number = _tolerance(value)
    if number > 1:
        raise ValueError(f"{short_repr(value)} is above 1")
    return number


def _regression(value: Any) -> float:
    """A fraction: 0.1 allows 10% slower. Above 1 it allows more than twice the baseline's
    time, which is what someone who meant a factor (1.5 for "1.5x") would write, so it is
    refused with both readings spelled out."""
    number = _tolerance(value)
    if number > 1:
        meant = (
            f"if you meant {number:g} times the baseline's time, give {number - 1:g}"
            if number < 2
            else "a gate that lets a model take twice its time and more catches nothing"
        )
        raise ValueError(
            f"{short_repr(value)} would allow {number:.0%} slower, {number + 1:g} times the "
            f"baseline's time: it is a fraction (0.1 for 10% slower); {meant}"
        )
    return number


def _positive(value: Any) -> float:
    number = _tolerance(value)
    if number == 0:
        raise ValueError(f"{short_repr(value)} is not above 0")
    return number


def _flag(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ValueError(f"{short_repr(value)} is not True or False")


def _tvm_target(value: Any) -> str | dict[str, Any]:
    """Checked for its form here (no TVM at collection); TVM judges the target when it builds.
    A string that opens a JSON object is one (ini gives text), read here so a typo in it is
    refused at collection, not quoted as a build error."""
    if isinstance(value, str) and value.strip().startswith("{"):
        value = _json_text(value.strip())
        if isinstance(value, str):
            raise ValueError(f"{short_repr(value)} opens a JSON object but is not valid JSON")
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping) and isinstance(value.get("kind"), str):
        return dict(value)
    raise ValueError(f"{short_repr(value)} is not a target string or a dict with a 'kind'")


def _dynamic_shapes(value: Any) -> Any:
    if value is None or isinstance(value, (dict, tuple, list)):
        return value
    raise ValueError(f"{short_repr(value)} is not a dict, tuple or list")


def _roundtrip(value: Any) -> bool | str:
    if value is True or value is False or value == "in-process":
        return value
    raise ValueError(f"{short_repr(value)} is not True, False or 'in-process'")


def _inputs(value: Any) -> Any:
    """Only the outer shape is checked here; tensors inside are checked when the test runs."""
    if isinstance(value, str) and value.isidentifier():
        raise ValueError(
            f"{short_repr(value)} is not an input set; a marker cannot take a fixture's "
            f"value: to check with a fixture's tensors, request the fixture and the "
            f"torchscript fixture and call torchscript.check(model, {value})"
        )
    if value is None or isinstance(value, (str, bytes, int, float)):
        raise ValueError(f"{short_repr(value)} is not an input set")
    return value


def _mode_reasons(value: Any) -> dict[str, str]:
    """``{"script": "why"}``: a reason for each mode it applies to."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{short_repr(value)} is not a dict of mode -> reason")
    for mode, reason in value.items():
        _mode(mode)
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"the reason for {mode!r} is {short_repr(reason)}, not a text")
    return dict(value)


def _hazard_patterns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        raise ValueError(f"{short_repr(value)} is not a list of 'file.py:LINE' or library names")
    return tuple(item.strip() for item in value)


def _keywords(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{short_repr(value)} is not a dict of keyword arguments")
    reserved = {"dynamo", "dynamic_shapes", "kwargs", "f"} & set(value)
    if reserved:
        raise ValueError(f"{sorted(reserved)[0]!r} is set by the plugin")
    return dict(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{short_repr(value)} is not a whole number >= 0")
    return value


def _json_text(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text  # the parser names it as not a dict


def _int_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _lines_text(text: str) -> Any:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _float_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _bool_text(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    return text


@dataclass(frozen=True)
class OptionSpec:
    """One option: what it accepts (in words, for errors), its parser, and how ini text maps to
    a value (None: the option has no ini key)."""

    name: str
    accepted: str
    parse: Callable[[Any], Any]
    from_ini_text: Callable[[str], Any] | None = None


OPTION_SPECS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec(
            "mode",
            f"{', '.join(repr(mode) for mode in MODES[:-1])} or {MODES[-1]!r}, a list of "
            f"them, or 'all'",
            _modes,
        ),
        OptionSpec(
            "inputs",
            "a tensor, a tuple (positional arguments), a dict (keyword arguments), "
            "a list of these (several input sets), or a zero-argument callable returning them",
            _inputs,
        ),
        OptionSpec("rtol", "a number >= 0 (relative tolerance)", _tolerance, _float_text),
        OptionSpec("atol", "a number >= 0 (absolute tolerance)", _tolerance, _float_text),
        OptionSpec(
            "roundtrip",
            "True (save, reload, and reload in a fresh process), 'in-process', or False",
            _roundtrip,
            _bool_text,
        ),
        OptionSpec(
            "min_coverage",
            "a fraction from 0 to 1 of the arms of data-dependent branches and loops that the "
            "input sets must exercise",
            _fraction,
            _float_text,
        ),
        OptionSpec(
            "benchmark",
            "True (time eager, converted and reloaded modules) or False",
            _flag,
            _bool_text,
        ),
        OptionSpec(
            "time_budget",
            "seconds (> 0) of timing per check, warm-up included",
            _positive,
            _float_text,
        ),
        OptionSpec(
            "max_slowdown",
            "a number > 0: how many times slower than eager the converted module may be",
            _positive,
            _float_text,
        ),
        OptionSpec(
            "max_regression",
            "a fraction from 0 to 1: how much slower than the baseline the converted module "
            "may get, relative to eager or to the machine-speed probe, e.g. 0.05 for 5%",
            _regression,
            _float_text,
        ),
        OptionSpec(
            "xfail",
            "a dict mapping modes to the reason they are expected to fail, e.g. "
            "{'script': 'not scriptable'} (strict: an unexpected pass fails)",
            _mode_reasons,
        ),
        OptionSpec(
            "skip",
            "a dict mapping modes to the reason they are not checked, e.g. "
            "{'onnx': 'not deployed with ONNX'}",
            _mode_reasons,
        ),
        OptionSpec(
            "known_hazards",
            "a list of acknowledged trace hazards that should not warn: 'file.py:LINE' (the end "
            "of the path is enough) or a library name such as 'torchvision'",
            _hazard_patterns,
            _lines_text,
        ),
        OptionSpec(
            "timeout",
            "seconds (> 0) the whole check may take; past it the check fails, naming the "
            "stage it was in, and the session goes on",
            _positive,
            _float_text,
        ),
        OptionSpec(
            "onnx_options",
            "a dict of extra keyword arguments for torch.onnx.export in mode='onnx', e.g. "
            "{'optimize': False}",
            _keywords,
        ),
        OptionSpec(
            "compile_options",
            "a dict of torch.compile keywords for mode='compile' (backend, mode, dynamic, "
            "fullgraph, options), e.g. {'backend': 'aot_eager'}; default: Inductor, "
            "dynamic=None",
            compile_options_parser(_keywords),
            _json_text,
        ),
        OptionSpec(
            "tvm_target",
            "the TVM target of mode='tvm': a target string such as 'llvm', or a dict such as "
            "{'kind': 'llvm', 'mcpu': 'skylake'}; default: llvm, or cuda on a GPU",
            _tvm_target,
            str,
        ),
        OptionSpec(
            "max_graph_breaks",
            "a whole number >= 0: mode='compile' fails where torch.compile breaks the model "
            "into graphs at more places than this (default: graph breaks are reported only)",
            _count,
            _int_text,
        ),
        OptionSpec(
            "max_recompiles",
            "a whole number >= 0: mode='compile' fails where the input sets make "
            "torch.compile compile the model again more times than this (default: reported "
            "only)",
            _count,
            _int_text,
        ),
        OptionSpec(
            "max_graph_change",
            "a whole number >= 0: with --ts-baseline, the check fails where more operator "
            "counts of the converted graph changed since the baseline entry (0: any change); "
            "default: changes are reported only",
            _count,
            _int_text,
        ),
        OptionSpec(
            "dynamic_shapes",
            "torch.export's dynamic_shapes (a dict by argument name, or a tuple); default: "
            "inferred from the input sets",
            _dynamic_shapes,
        ),
    )
}


MARKER_ONLY = ("xfail", "skip")  # outcomes of the test: torchscript.check() cannot set them


def parse_layer(
    options: Mapping[str, Any], where: str, excluded: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Validate one layer of options; ``where`` names its source in error messages and
    ``excluded`` the options this layer does not take (listed nowhere as accepted)."""
    parsed = {}
    for name, value in options.items():
        spec = OPTION_SPECS.get(name)
        if spec is None:
            accepted = ", ".join(option for option in OPTION_SPECS if option not in excluded)
            raise UsageProblem(f"{where}: unknown option {name!r}; accepted options: {accepted}")
        try:
            parsed[name] = spec.parse(value)
        except ValueError as reason:
            raise UsageProblem(
                f"{where}: option {name}={short_repr(value)} is invalid ({reason}); "
                f"{name} accepts {spec.accepted}"
            ) from None
    return parsed


def parse_marker(marks: Iterable[Any], where: str) -> dict[str, Any]:
    """Merge the ``torchscript`` marks on a test, the closest first (function > class > module).

    ``mode`` may also be given as the single positional argument.
    """
    merged: dict[str, Any] = {}
    for mark in marks:
        options = dict(mark.kwargs)
        if mark.args:
            if len(mark.args) > 1 or "mode" in options:
                raise UsageProblem(
                    f"{where}: @pytest.mark.torchscript takes at most one positional argument "
                    f"(the mode), got {short_repr(mark.args)}; write "
                    f"@pytest.mark.torchscript(mode=..., inputs=..., ...)"
                )
            if not isinstance(mark.args[0], (str, list, tuple)):
                raise UsageProblem(
                    f"{where}: @pytest.mark.torchscript's one positional argument is the mode, "
                    f"but got {type(mark.args[0]).__name__} {short_repr(mark.args[0])}; pass "
                    f"input sets by name: @pytest.mark.torchscript(inputs=...)"
                )
            options["mode"] = mark.args[0]
        for name, value in parse_layer(options, f"{where}: @pytest.mark.torchscript").items():
            merged.setdefault(name, value)
    return merged


def parse_check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``torchscript.check(**options)``: like the marker, but one mode only."""
    parsed = parse_layer(options, f"{where}: torchscript.check()", MARKER_ONLY)
    for name in MARKER_ONLY:
        if name in parsed:
            raise UsageProblem(
                f"{where}: torchscript.check() does not take {name}=; put it on the marker "
                f"(@pytest.mark.torchscript({name}={{mode: reason}})), or use pytest.{name}() "
                f"in the test"
            )
    if isinstance(parsed.get("mode"), tuple) or parsed.get("mode") == ALL:
        raise UsageProblem(
            f"{where}: torchscript.check() takes one mode, got {parsed['mode']!r}; "
            f"to check several modes, call check once per mode or use "
            f"@pytest.mark.torchscript(mode=[...]) to parametrize the test"
        )
    return parsed


def parse_modes_list(text: str, source: str) -> tuple[str, ...]:
    """``--ts-modes=trace,export``: the modes ``mode="all"`` stands for in this run."""
    modes = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [mode for mode in modes if mode not in MODES]
    if not modes or unknown:
        raise UsageProblem(
            f"{source}={text!r}: {'unknown mode ' + repr(unknown[0]) if unknown else 'no mode'}; "
            f"give a comma-separated list of {', '.join(MODES)}"
        )
    return modes


def parse_ini(getini: Callable[[str], Any], source: str) -> dict[str, Any]:
    """Read the ``ts_<option>`` ini keys that are set; ``source`` names the ini file."""
    layer = {}
    for spec in OPTION_SPECS.values():
        if spec.from_ini_text is None:
            continue
        key = f"ts_{spec.name}"
        raw = getini(key)
        if not raw:
            continue
        try:
            layer[spec.name] = spec.parse(spec.from_ini_text(raw.strip()))
        except ValueError as reason:
            raise UsageProblem(
                f"ini option {key} = {raw!r} in {source} is invalid ({reason}); "
                f"{key} accepts {spec.accepted}"
            ) from None
    return layer
