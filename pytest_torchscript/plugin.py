"""pytest hooks and fixtures of pytest-torchscript; the work itself lives in other modules.

Importing this module never imports torch: a suite with no marked test pays nothing. torch is
imported when the first test that uses the plugin is collected (to validate ``--ts-device``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from . import html_report, json_report
from .benchmark_bridge import MachineInfo, timing_off_reason
from .errors import CheckFailed, TorchScriptWarning, UsageProblem
from .options import (
    ALL,
    INI_HELP,
    MODES,
    Options,
    parse_ini,
    parse_layer,
    parse_marker,
    parse_modes_list,
)
from .perf import PerfSettings
from .session import SessionState, Settings
from .summary import write_matrix, write_regressions, write_summary

MARKER = "torchscript"
FIXTURE = "torchscript"
_MODE_PARAM = "_torchscript_mode"
_STATE = pytest.StashKey[SessionState]()
_CHECKER = pytest.StashKey[Any]()

_DEVICE_HELP = "device to convert and run models on: cpu, cuda, cuda:N, mps... (default: cpu)"
_ARTIFACTS_HELP = "keep every converted artifact and its .code under DIR, one folder per test"
_MARKER_DOC = (
    "torchscript(mode='trace', *, inputs=None, rtol=None, atol=None, roundtrip=True, ...): "
    "check that the test's model converts (mode 'trace', 'script', 'export' or 'onnx', a list "
    "of them to parametrize the test, or 'all') and matches eager on every input set; the test "
    "returns the model or calls the torchscript fixture's check(model, inputs)."
)
_HOW_TO = (
    "{test} is marked @pytest.mark.torchscript but neither returned a model nor used the "
    "torchscript fixture, so nothing was checked. Either return the model from the test "
    "(with inputs=... on the marker), or request the torchscript fixture and call "
    "torchscript.check(model, inputs)."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchscript", "model conversion checks (pytest-torchscript)")
    group.addoption("--ts-device", dest="ts_device", metavar="DEVICE", help=_DEVICE_HELP)
    group.addoption("--ts-artifacts", dest="ts_artifacts", metavar="DIR", help=_ARTIFACTS_HELP)
    group.addoption(
        "--ts-report",
        dest="ts_report",
        metavar="PATH",
        help="write every figure of every check to PATH (JSON, schema in docs/report-schema.md)",
    )
    group.addoption(
        "--ts-html",
        dest="ts_html",
        metavar="PATH",
        help="write a self-contained HTML report (table, latency chart, parity errors) to PATH",
    )
    group.addoption(
        "--ts-modes",
        dest="ts_modes",
        metavar="MODES",
        help="comma-separated modes that mode='all' checks in this run (default: "
        "trace,script,export,onnx)",
    )
    group.addoption(
        "--ts-baseline",
        dest="ts_baseline",
        metavar="PATH",
        help="JSON perf baseline to gate converted/eager ratios against (see --ts-update-baseline)",
    )
    group.addoption(
        "--ts-update-baseline",
        dest="ts_update_baseline",
        action="store_true",
        help="write this run's timings into --ts-baseline, keeping the entries of other tests",
    )
    group.addoption(
        "--ts-perf-strict",
        dest="ts_perf_strict",
        action="store_true",
        help="fail checks whose perf gate is inconclusive (too noisy) or has no baseline entry",
    )
    group.addoption(
        "--ts-max-regression",
        dest="ts_max_regression",
        metavar="FRACTION",
        help="default max_regression for this run (overrides ini ts_max_regression)",
    )
    parser.addini("ts_device", _DEVICE_HELP, default="cpu")
    parser.addini("ts_artifacts", _ARTIFACTS_HELP + " (relative to the ini file)", default="")
    parser.addini("ts_modes", "modes that mode='all' checks (comma-separated)", default="")
    parser.addini("ts_threads", "torch threads while timing (recorded; default: 1)", default="1")
    for key, help_text in INI_HELP.items():
        parser.addini(key, help_text, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_DOC)
    try:
        settings = _settings(config)
    except UsageProblem as problem:
        raise pytest.UsageError(str(problem)) from None
    try:
        state = SessionState(
            settings, [str(config.rootpath)], timing_off=lambda: timing_off_reason(config)
        )
    except UsageProblem as problem:
        raise pytest.UsageError(str(problem)) from None
    config.stash[_STATE] = state
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistMerge(state), "torchscript-xdist")
    if config.pluginmanager.hasplugin("benchmark"):
        config.pluginmanager.register(
            MachineInfo(settings.perf.threads), "torchscript-benchmark-machine-info"
        )


def _settings(config: pytest.Config) -> Settings:
    from .artifacts import prepare_artifact_root
    from .devices import check_device_syntax

    source = str(config.inipath) if config.inipath else "the ini file"
    if config.option.ts_device:
        device = check_device_syntax(config.option.ts_device, "--ts-device")
        device_source = "--ts-device"
    else:
        device = check_device_syntax(config.getini("ts_device") or "cpu", f"ts_device in {source}")
        device_source = "ts_device"
    artifact_root = None
    if config.option.ts_artifacts:
        artifact_root = prepare_artifact_root(config.option.ts_artifacts, "--ts-artifacts")
    elif config.getini("ts_artifacts"):
        base = config.inipath.parent if config.inipath else Path.cwd()
        artifact_root = prepare_artifact_root(
            str(base / config.getini("ts_artifacts")), f"ts_artifacts in {source}"
        )
    option_defaults = parse_ini(config.getini, source)
    if config.option.ts_max_regression is not None:
        option_defaults.update(
            parse_layer(
                {"max_regression": _number(config.option.ts_max_regression)},
                "--ts-max-regression",
            )
        )
    modes = MODES
    if config.option.ts_modes:
        modes = parse_modes_list(config.option.ts_modes, "--ts-modes")
    elif config.getini("ts_modes"):
        modes = parse_modes_list(config.getini("ts_modes"), f"ts_modes in {source}")
    return Settings(
        device,
        device_source,
        artifact_root,
        option_defaults,
        perf=_perf_settings(config, source),
        modes=modes,
    )


def _perf_settings(config: pytest.Config, source: str) -> PerfSettings:
    path = Path(config.option.ts_baseline).resolve() if config.option.ts_baseline else None
    if config.option.ts_update_baseline and path is None:
        raise UsageProblem(
            "--ts-update-baseline needs --ts-baseline=PATH: the file to write the timings into"
        )
    try:
        threads = int(config.getini("ts_threads"))
        if threads < 1:
            raise ValueError
    except ValueError:
        raise UsageProblem(
            f"ini option ts_threads = {config.getini('ts_threads')!r} in {source} is invalid; "
            f"ts_threads accepts a whole number >= 1"
        ) from None
    return PerfSettings(
        path, bool(config.option.ts_update_baseline), bool(config.option.ts_perf_strict), threads
    )


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    state.write_baseline()
    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports
        config.workeroutput["torchscript_checks"] = [r.to_dict() for r in state.reports]
        return
    checks = state.checks()
    if config.option.ts_report:
        json_report.write(
            Path(config.option.ts_report), json_report.document(checks, exitstatus, state.settings)
        )
    if config.option.ts_html:
        html_report.write(Path(config.option.ts_html), checks, state.settings)


class _XdistMerge:
    """On the xdist controller: collect the checks each worker made, so the one summary and
    the one report cover the whole run."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.state.worker_checks.extend(output.get("torchscript_checks", []))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Validate the marker at collection, request the fixture, and parametrize mode lists."""
    marks = list(metafunc.definition.iter_markers(MARKER))
    if not marks:
        return
    try:
        options = parse_marker(marks, metafunc.definition.nodeid)
    except UsageProblem as problem:
        pytest.fail(str(problem), pytrace=False)
    modes = options.get("mode")
    if modes == ALL:
        modes = metafunc.config.stash[_STATE].settings.modes
    if isinstance(modes, tuple):
        metafunc.fixturenames.append(_MODE_PARAM)
        metafunc.parametrize(_MODE_PARAM, modes, ids=list(modes))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Parse ``--ts-device`` with torch now, once, if any collected test will need it, so a
    device torch cannot parse is a usage error before any test runs."""
    if any(_uses_plugin(item) for item in items):
        try:
            config.stash[_STATE].device  # noqa: B018 - resolves and caches the device
        except UsageProblem as problem:
            raise pytest.UsageError(str(problem)) from None


def _uses_plugin(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return FIXTURE in names or "ts_device" in names or item.get_closest_marker(MARKER) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Call a marked test ourselves, so a returned model gets checked and a test that checked
    nothing fails instead of passing silently."""
    if pyfuncitem.get_closest_marker(MARKER) is None:
        return None
    function = pyfuncitem.obj
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return None
    funcargs = pyfuncitem.funcargs
    returned = function(**{name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames})
    _finish_marked_test(pyfuncitem, pyfuncitem.stash[_CHECKER], returned)
    return True


def _finish_marked_test(item: pytest.Function, checker: Any, returned: Any) -> None:
    if returned is None:
        if not checker.used:
            pytest.fail(_HOW_TO.format(test=item.nodeid), pytrace=False)
        return
    try:
        checker.check(returned)
    except (CheckFailed, UsageProblem, TorchScriptWarning) as failure:
        # The message says it all; the plugin's frames would only hide the user's test.
        message = (
            str(failure)
            if not isinstance(failure, Warning)
            else (f"{type(failure).__name__} (raised as an error by a warnings filter): {failure}")
        )
    else:
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def _torchscript_temp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("torchscript")


@pytest.fixture(autouse=True)
def _torchscript_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """Give every marked test a checker, whether or not it asks for the fixture by name."""
    if request.node.get_closest_marker(MARKER) is not None:
        request.getfixturevalue(FIXTURE)


@pytest.fixture
def ts_device(request: pytest.FixtureRequest) -> Any:
    """The ``torch.device`` chosen with ``--ts-device``; skips the test if it is unavailable."""
    return _available_device(request.config.stash[_STATE])


@pytest.fixture
def torchscript(request: pytest.FixtureRequest, _torchscript_temp_root: Path) -> Any:
    """The checker for this test: ``torchscript.check(model, inputs, **options)``."""
    from .checker import TorchScriptChecker

    state = request.config.stash[_STATE]
    _available_device(state)
    if state.temp_root is None:
        state.temp_root = _torchscript_temp_root
    options = Options().merged(state.settings.option_defaults)
    marker_layer = parse_marker(request.node.iter_markers(MARKER), request.node.nodeid)
    options = options.merged(marker_layer)
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and _MODE_PARAM in callspec.params:
        options = options.merged({"mode": callspec.params[_MODE_PARAM]})
    elif options.mode == ALL:  # a mode="all" run limited to a single mode by --ts-modes
        options = options.merged({"mode": state.settings.modes[0]})
    if options.fresh_process:
        state.fresh_process().start()  # its torch import overlaps this test's conversion
    checker = TorchScriptChecker(state, request.node, options)
    request.node.stash[_CHECKER] = checker
    return checker


def _available_device(state: SessionState) -> Any:
    __tracebackhide__ = True
    resolved = state.device
    if resolved.unavailable_reason is not None:
        pytest.skip(resolved.unavailable_reason)
    return resolved.device


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Last of the plugin sections (after pytest-benchmark's table), so the perf regressions
    table is what a CI log reader sees just above pytest's own short summary."""
    state = config.stash.get(_STATE, None)
    if state is None or hasattr(config, "workerinput"):
        return
    checks = state.checks()
    if checks:
        write_summary(terminalreporter, checks, state.settings.perf.threads)
        write_matrix(terminalreporter, checks)
        write_regressions(terminalreporter, checks)
    for option, label in ((config.option.ts_report, "JSON"), (config.option.ts_html, "HTML")):
        if option and checks:
            terminalreporter.write_line(f"torchscript: {label} report written to {option}")
    if state is not None and state.settings.perf.update_baseline:
        path = state.settings.perf.baseline_path
        if state.new_baseline_entries:
            terminalreporter.write_line(
                f"torchscript: wrote {len(state.new_baseline_entries)} baseline entries to {path}"
            )
        else:
            why = f" ({state.timing_off})" if state.timing_off else ""
            terminalreporter.write_line(
                f"torchscript: --ts-update-baseline wrote nothing to {path}: no check was "
                f"timed{why}",
                yellow=True,
            )
