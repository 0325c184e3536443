"""Run-wide settings: one table of every ``--ts-*`` flag and ``ts_*`` ini key, resolved once at
configure time (command line > ini > default) into a frozen, picklable ``Settings`` that the
plugin keeps in ``config.stash``. A bad value names where it came from (the flag, or the key
and the ini file) and what it accepts.

Per-check options (``rtol``, ``max_regression``...) live in ``options.py``; their ini keys are
registered here with the rest, from that table. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..errors import UsageProblem
from ..modes import ALL_MODES
from .ini_keys import INI_HELP
from .options import MODES, parse_ini, parse_layer, parse_modes_list


@dataclass(frozen=True)
class PerfSettings:
    """Run-wide perf settings."""

    baseline_path: Path | None = None
    update_baseline: bool = False  # write this run's entries (with --ts-extend-baseline too)
    strict: bool = False
    threads: int = 1
    # --ts-extend-baseline: add this run's timings to an entry's recordings, not replace them
    extend_baseline: bool = False

    @property
    def record_flag(self) -> str:
        """The option this run writes the baseline with, for messages that name it."""
        return record_flag(self.extend_baseline)


def record_flag(extend: bool) -> str:
    return "--ts-extend-baseline" if extend else "--ts-update-baseline"


@dataclass(frozen=True)
class Settings:
    """Everything the table below resolves to."""

    device: str = "cpu"
    device_source: str = "--ts-device"
    artifact_root: Path | None = None
    option_defaults: dict[str, Any] = field(default_factory=dict)
    perf: PerfSettings = field(default_factory=PerfSettings)
    modes: tuple[str, ...] = ALL_MODES  # what mode="all" stands for (--ts-modes)
    require_device: bool = False  # an unavailable device is an error, not a skip
    report_path: Path | None = None  # --ts-report, checked writable at start-up
    html_path: Path | None = None  # --ts-html, likewise
    cpp: str = "auto"  # the C++ round trip: "auto" (where a compiler is), "off", "require"
    cpp_timeout: float = 300.0  # seconds before a hanging C++ runner is killed
    benchmark_table: bool = False  # our rows in pytest-benchmark's own table too
    # modules the fresh process imports before loading an artifact: the libraries whose
    # operators or pytree classes a deployment loads (torchvision's nms, transformers'
    # ModelOutput), declared by the user
    deploy_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSetting:
    """One setting: its flag ``--ts-<name>`` and/or ini key ``ts_<name>``, sharing one help."""

    name: str
    help: str
    metavar: str | None = None  # None: a switch (store_true; ini type bool)
    flag: bool = True
    ini: bool = True
    default: str = ""
    choices: tuple[str, ...] | None = None

    @property
    def option(self) -> str:
        return "--ts-" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        return "ts_" + self.name


RUN_SETTINGS = (
    RunSetting(
        "device",
        "device to convert and run models on: cpu, cuda, cuda:N, mps... (default: cpu)",
        "DEVICE",
        default="cpu",
    ),
    RunSetting(
        "require_device",
        "make an unavailable --ts-device a usage error instead of skipping every check (GPU "
        "CI jobs)",
    ),
    RunSetting(
        "artifacts",
        "keep every converted artifact and its .code under DIR, one folder per test (an ini "
        "value is relative to the ini file)",
        "DIR",
    ),
    RunSetting(
        "report",
        "write every figure of every check to PATH (JSON, schema in docs/report-schema.md)",
        "PATH",
        ini=False,
    ),
    RunSetting(
        "html",
        "write a self-contained HTML report (table, latency chart, parity errors) to PATH",
        "PATH",
        ini=False,
    ),
    RunSetting(
        "modes",
        f"comma-separated modes that mode='all' checks (default: {','.join(ALL_MODES)}; "
        f"add {','.join(m for m in MODES if m not in ALL_MODES)} by naming it)",
        "MODES",
    ),
    RunSetting(
        "baseline",
        "JSON perf baseline to gate timings against (see --ts-update-baseline)",
        "PATH",
        ini=False,
    ),
    RunSetting(
        "update_baseline",
        "write this run's timings into --ts-baseline, keeping the entries of other tests",
        ini=False,
    ),
    RunSetting(
        "extend_baseline",
        "add this run's timings to --ts-baseline as another recording of each entry (up to "
        "5 kept): the gate then knows how much each model's time moves between runs",
        ini=False,
    ),
    RunSetting(
        "perf_strict",
        "fail checks whose perf gate is inconclusive (too noisy) or has no baseline entry",
        ini=False,
    ),
    RunSetting(
        "max_regression",
        "default max_regression for this run (overrides ini ts_max_regression)",
        "FRACTION",
        ini=False,  # the ini key is the per-check option's, in options.py
    ),
    RunSetting(
        "threads",
        "torch threads while timing (recorded in reports and baselines; default: 1)",
        "N",
        default="1",
    ),
    RunSetting(
        "cpp",
        "the C++ (LibTorch) round trip of TorchScript and AOTInductor artifacts: auto (where a "
        "C++20 compiler is found; else skipped, saying why), off, or require (a missing "
        "toolchain fails the check)",
        "MODE",
        default="auto",
        choices=("auto", "off", "require"),
    ),
    RunSetting(
        "cpp_timeout",
        "seconds after which a C++ round trip that has not finished is killed and fails its "
        "check (default: 300)",
        "SECONDS",
        default="300",
    ),
    RunSetting(
        "deploy_imports",
        "comma-separated Python modules your deployment imports for the operators or output "
        "classes they register (torchvision for torchvision::nms, "
        "transformers.modeling_outputs for a .pt2 returning a ModelOutput): the fresh "
        "process imports them before loading an artifact",
        "MODULES",
    ),
    RunSetting(
        "benchmark_table",
        "also show the checks' timings in pytest-benchmark's own table (they are always in its "
        "JSON, autosave and compare; the torchscript section shows them either way)",
    ),
)
_BY_NAME = {setting.name: setting for setting in RUN_SETTINGS}


def add_options(parser: pytest.Parser) -> None:
    """Register every flag and ini key of the table, and the per-check options' ini keys."""
    group = parser.getgroup("torchscript", "model conversion checks (pytest-torchscript)")
    for setting in RUN_SETTINGS:
        if setting.flag:
            if setting.metavar is None:
                group.addoption(
                    setting.option, dest=setting.key, action="store_true", default=None,
                    help=setting.help,
                )  # fmt: skip
            else:
                group.addoption(
                    setting.option, dest=setting.key, metavar=setting.metavar, help=setting.help
                )
        if setting.ini:
            kind = "bool" if setting.metavar is None else "string"
            default: Any = False if setting.metavar is None else setting.default
            parser.addini(setting.key, setting.help, type=kind, default=default)
    for key, help_text in INI_HELP.items():
        parser.addini(key, help_text, default="")


class _Reader:
    """Values of the table's settings, command line first, then ini, then default, each with
    the words that name where it came from."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ini_file = str(config.inipath) if config.inipath else "the ini file"

    def get(self, name: str) -> tuple[Any, str]:
        setting = _BY_NAME[name]
        if setting.flag:
            value = getattr(self.config.option, setting.key, None)
            if isinstance(value, str) and not value.strip():
                # `--ts-baseline=$BASELINE` with the variable unset: falling back to the
                # default would drop the gate (or run a GPU job on the CPU) without a word
                raise UsageProblem(
                    f"{setting.option} is empty (an unset variable in the command line?); "
                    f"give {setting.metavar}: {setting.help}"
                )
            if value is not None:
                return value, setting.option
        if setting.ini:
            value = self.config.getini(setting.key)
            if value not in ("", None):
                return value, f"ini option {setting.key} in {self.ini_file}"
        return (False if setting.metavar is None else setting.default), setting.option


def resolve(config: pytest.Config) -> Settings:
    """Every run-wide setting, validated; ``UsageProblem`` names the bad one."""
    from ..deploy.artifacts import prepare_artifact_root
    from ..files import prepare_output_path, readable_input_path, refuse_foreign_file
    from ..reporting import html_page, json_file
    from .devices import check_device_syntax

    read = _Reader(config)
    text, where = read.get("device")
    device = check_device_syntax(text or "cpu", where)
    device_source = "--ts-device" if where == "--ts-device" else "ts_device"
    artifact_root = None
    text, where = read.get("artifacts")
    if text:
        if where.startswith("ini") and config.inipath:
            text = str(config.inipath.parent / text)
        artifact_root = prepare_artifact_root(text, where)
    option_defaults = parse_ini(config.getini, read.ini_file)
    text, where = read.get("max_regression")
    if text:
        option_defaults.update(parse_layer({"max_regression": _number(text)}, where))
    outputs = {}
    for name in ("report", "html"):
        text, where = read.get(name)
        outputs[name] = prepare_output_path(text, where) if text else None
    text, where = read.get("baseline")
    outputs["baseline"] = None
    if text:  # only written with --ts-update-baseline: a read-only checkout may gate
        if read.get("update_baseline")[0] or read.get("extend_baseline")[0]:
            outputs["baseline"] = prepare_output_path(text, where)
        else:
            outputs["baseline"] = readable_input_path(text, where)
    _require_distinct_outputs(config, outputs)
    for name, kind in (("report", json_file.OWN_FILE), ("html", html_page.OWN_FILE)):
        if outputs[name] is not None:  # (--ts-update-baseline refuses a foreign baseline)
            text, where = read.get(name)
            refuse_foreign_file(outputs[name], f"{where}={text}", kind)
    text, where = read.get("modes")
    modes = parse_modes_list(text, where) if text else ALL_MODES
    update_baseline = bool(read.get("update_baseline")[0])
    extend_baseline = bool(read.get("extend_baseline")[0])
    if update_baseline and extend_baseline:
        raise UsageProblem(
            "--ts-update-baseline replaces each entry with this run's timings and "
            "--ts-extend-baseline adds them to the entry's recordings: pass one of them"
        )
    if (update_baseline or extend_baseline) and outputs["baseline"] is None:
        raise UsageProblem(
            f"{record_flag(extend_baseline)} needs --ts-baseline=PATH: the file to write the "
            f"timings into"
        )
    perf = PerfSettings(
        outputs["baseline"],
        update_baseline or extend_baseline,
        bool(read.get("perf_strict")[0]),
        _parsed(read, "threads", int, lambda n: n >= 1, "a whole number >= 1"),
        extend_baseline,
    )
    cpp, where = read.get("cpp")
    cpp = str(cpp).strip()
    if cpp not in _BY_NAME["cpp"].choices:
        raise UsageProblem(f"{where} = {cpp!r} is invalid; it accepts auto, off or require")
    return Settings(
        device=device,
        device_source=device_source,
        artifact_root=artifact_root,
        option_defaults=option_defaults,
        perf=perf,
        modes=modes,
        require_device=bool(read.get("require_device")[0]),
        report_path=outputs["report"],
        html_path=outputs["html"],
        cpp=cpp,
        cpp_timeout=_parsed(
            read, "cpp_timeout", float, lambda s: 0 < s < float("inf"), "a number of seconds > 0"
        ),
        benchmark_table=bool(read.get("benchmark_table")[0]),
        deploy_imports=_deploy_imports(*read.get("deploy_imports")),
    )


def _deploy_imports(text: Any, where: str) -> tuple[str, ...]:
    """Module names, each one that this environment can import (found, not imported: that
    is the fresh process's job, and importing torchvision here would import torch)."""
    import importlib.util

    names = tuple(name for name in str(text or "").replace(",", " ").split() if name)
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise UsageProblem(
                f"{where} = {text!r}: {name!r} is not a module name; give comma-separated "
                f"importable modules, e.g. torchvision"
            )
        if importlib.util.find_spec(name.split(".")[0]) is None:
            raise UsageProblem(
                f"{where} = {text!r}: no module {name.split('.')[0]!r} is installed here; "
                f"install it, or drop it from the list"
            )
    return names


def _require_distinct_outputs(config: pytest.Config, outputs: dict[str, Path | None]) -> None:
    """Two outputs on one path would leave only the last one written (a report written over
    the baseline it was gated against, say): refuse it before anything runs. pytest's own
    ``--junitxml`` and pytest-benchmark's ``--benchmark-json`` are outputs too."""
    named = {_BY_NAME[name].option: path for name, path in outputs.items() if path is not None}
    for option, attribute in (
        ("--junitxml", "xmlpath"),
        ("--benchmark-json", "benchmark_json"),
    ):
        value = getattr(config.option, attribute, None)
        value = getattr(value, "name", value)  # pytest-benchmark opens its file at parsing
        if isinstance(value, str) and value:
            named[option] = Path(value).expanduser().resolve()
    seen: dict[Path, str] = {}
    for option, path in named.items():
        if path in seen:
            raise UsageProblem(
                f"{seen[path]} and {option} both name {path}: the one written last would "
                f"overwrite the other; give each its own file"
            )
        seen[path] = option


def _parsed(
    read: _Reader, name: str, kind: Callable[[str], Any], valid: Callable[[Any], bool], what: str
) -> Any:
    text, where = read.get(name)
    try:
        value = kind(str(text).strip())
        if not valid(value):
            raise ValueError
    except ValueError:
        raise UsageProblem(f"{where} = {text!r} is invalid; it accepts {what}") from None
    return value


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # parse_layer names it as not a number
