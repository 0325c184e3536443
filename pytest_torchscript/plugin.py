"""pytest hooks and fixtures of pytest-torchscript; the work itself lives in other modules.

Importing this module never imports torch: a suite with no marked test pays nothing. torch is
imported when the first test that uses the plugin is collected (to validate ``--ts-device``).
"""

from __future__ import annotations

import functools
import inspect
import unittest
from pathlib import Path
from typing import Any

import pytest

from . import html_report, json_report
from .benchmark_bridge import BenchmarkHooks, timing_blocked, timing_off_reason
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
_REQUIRE_DEVICE_HELP = (
    "make an unavailable --ts-device a usage error instead of skipping every check (GPU CI jobs)"
)
_CPP_HELP = (
    "the C++ (LibTorch) round trip of TorchScript artifacts: auto (where a C++20 compiler is "
    "found; else skipped, saying why), off, or require (a missing toolchain fails the check)"
)
_TABLE_HELP = (
    "also show the checks' timings in pytest-benchmark's own table (they are always in its "
    "JSON, autosave and compare; the torchscript section shows them either way)"
)
_THREADS_HELP = "torch threads while timing (recorded in reports and baselines; default: 1)"
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
    group.addoption(
        "--ts-require-device",
        dest="ts_require_device",
        action="store_true",
        default=None,
        help=_REQUIRE_DEVICE_HELP,
    )
    group.addoption("--ts-threads", dest="ts_threads", metavar="N", help=_THREADS_HELP)
    group.addoption("--ts-cpp", dest="ts_cpp", choices=("auto", "off", "require"), help=_CPP_HELP)
    group.addoption(
        "--ts-benchmark-table",
        dest="ts_benchmark_table",
        action="store_true",
        help=_TABLE_HELP,
    )
    parser.addini("ts_device", _DEVICE_HELP, default="cpu")
    parser.addini("ts_require_device", _REQUIRE_DEVICE_HELP, type="bool", default=False)
    parser.addini("ts_benchmark_table", _TABLE_HELP, type="bool", default=False)
    parser.addini("ts_cpp", _CPP_HELP, default="auto")
    parser.addini(
        "ts_cpp_timeout",
        "seconds after which a C++ round trip that has not finished is killed and fails its "
        "check (default: 300)",
        default="300",
    )
    parser.addini("ts_artifacts", _ARTIFACTS_HELP + " (relative to the ini file)", default="")
    parser.addini("ts_modes", "modes that mode='all' checks (comma-separated)", default="")
    parser.addini("ts_threads", _THREADS_HELP, default="1")
    for key, help_text in INI_HELP.items():
        parser.addini(key, help_text, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_DOC)
    try:
        settings = _settings(config)
        _require_timing_for_gates(config, settings)
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
        show_table = bool(config.option.ts_benchmark_table or config.getini("ts_benchmark_table"))
        config.pluginmanager.register(
            BenchmarkHooks(settings.perf.threads, show_table), "torchscript-benchmark"
        )


def _settings(config: pytest.Config) -> Settings:
    from .artifacts import prepare_artifact_root
    from .devices import check_device_syntax
    from .files import prepare_output_path

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
    outputs = {
        flag: prepare_output_path(getattr(config.option, flag), "--" + flag.replace("_", "-"))
        for flag in ("ts_report", "ts_html")
        if getattr(config.option, flag)
    }
    modes = MODES
    if config.option.ts_modes:
        modes = parse_modes_list(config.option.ts_modes, "--ts-modes")
    elif config.getini("ts_modes"):
        modes = parse_modes_list(config.getini("ts_modes"), f"ts_modes in {source}")
    cpp = config.option.ts_cpp or (config.getini("ts_cpp") or "auto").strip()
    if cpp not in ("auto", "off", "require"):
        raise UsageProblem(
            f"ini option ts_cpp = {cpp!r} in {source} is invalid; ts_cpp accepts auto, off or "
            f"require"
        )
    try:
        cpp_timeout = float(config.getini("ts_cpp_timeout"))
        if not 0 < cpp_timeout < float("inf"):
            raise ValueError
    except ValueError:
        raise UsageProblem(
            f"ini option ts_cpp_timeout = {config.getini('ts_cpp_timeout')!r} in {source} is "
            f"invalid; it accepts a number of seconds > 0"
        ) from None
    require_device = config.option.ts_require_device
    if require_device is None:
        require_device = bool(config.getini("ts_require_device"))
    return Settings(
        device,
        device_source,
        artifact_root,
        option_defaults,
        perf=_perf_settings(config, source),
        modes=modes,
        require_device=require_device,
        report_path=outputs.get("ts_report"),
        cpp=cpp,
        cpp_timeout=cpp_timeout,
        html_path=outputs.get("ts_html"),
    )


def _perf_settings(config: pytest.Config, source: str) -> PerfSettings:
    from .files import prepare_output_path

    path = None
    if config.option.ts_baseline:
        path = prepare_output_path(config.option.ts_baseline, "--ts-baseline")
    if config.option.ts_update_baseline and path is None:
        raise UsageProblem(
            "--ts-update-baseline needs --ts-baseline=PATH: the file to write the timings into"
        )
    text, where = config.option.ts_threads, "--ts-threads"
    if text is None:
        text, where = config.getini("ts_threads"), f"ini option ts_threads in {source}"
    try:
        threads = int(text)
        if threads < 1:
            raise ValueError
    except ValueError:
        raise UsageProblem(
            f"{where} = {text!r} is invalid; it accepts a whole number >= 1"
        ) from None
    return PerfSettings(
        path, bool(config.option.ts_update_baseline), bool(config.option.ts_perf_strict), threads
    )


def _require_timing_for_gates(config: pytest.Config, settings: Settings) -> None:
    """A perf gate asked for in a run that times nothing would pass silently: refuse it."""
    perf = settings.perf
    asked = [
        flag
        for flag, on in (
            ("--ts-update-baseline", perf.update_baseline),
            ("--ts-baseline", perf.baseline_path is not None and not perf.update_baseline),
            ("--ts-perf-strict", perf.strict),
        )
        if on
    ]
    if not asked or hasattr(config, "workerinput"):
        return
    reason = timing_blocked(config)
    if reason:
        raise UsageProblem(
            f"{' and '.join(asked)} need timings, but this run times nothing: {reason}"
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
    try:
        state.write_baseline()
    except OSError as error:
        state.write_failures.append(
            f"--ts-baseline={state.settings.perf.baseline_path}: {error.strerror or error}; "
            f"{len(state.new_baseline_entries)} new entries were not written"
        )
    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports
        config.workeroutput["torchscript_checks"] = [r.to_dict() for r in state.reports]
        config.workeroutput["torchscript_notes"] = {
            "device_skipped": state.device_skipped,
            "write_failures": state.write_failures,
            "cpp_notes": state.cpp_notes(),
        }
        return
    checks = state.checks()
    settings = state.settings
    writers = (
        (
            settings.report_path,
            f"--ts-report={config.option.ts_report}",
            lambda path: json_report.write(
                path, json_report.document(checks, exitstatus, settings)
            ),
        ),
        (
            settings.html_path,
            f"--ts-html={config.option.ts_html}",
            lambda path: html_report.write(path, checks, settings),
        ),
    )
    for path, flag, write in writers:
        if path is not None:
            try:
                write(path)
            except OSError as error:  # the other outputs are still written
                state.write_failures.append(f"{flag}: {error.strerror or error}")


class _XdistMerge:
    """On the xdist controller: collect the checks each worker made, so the one summary and
    the one report cover the whole run."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.state.worker_checks.extend(output.get("torchscript_checks", []))
        notes = output.get("torchscript_notes", {})
        self.state.device_skipped = self.state.device_skipped or notes.get("device_skipped")
        self.state.write_failures.extend(notes.get("write_failures", []))
        self.state.worker_cpp_notes.extend(notes.get("cpp_notes", []))


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
        reject_repeated_marks(metafunc.definition)
        options = parse_marker(marks, metafunc.definition.nodeid)
        problem = None
    except UsageProblem as error:
        problem = str(error)
    if problem is not None:  # outside the except: pytest would print the cause a second time
        pytest.fail(problem, pytrace=False)
    modes = options.get("mode")
    if modes == ALL:
        modes = metafunc.config.stash[_STATE].settings.modes
    if isinstance(modes, tuple):
        metafunc.fixturenames.append(_MODE_PARAM)
        metafunc.parametrize(_MODE_PARAM, modes, ids=list(modes))


def reject_repeated_marks(node: Any) -> None:
    """Marks on a class or module are defaults that a closer mark overrides option by option;
    two marks on the same test (or the same class) have no "closer" one, so rather than drop
    one without a word, say so."""
    places: dict[str, int] = {}
    for owner, _ in node.iter_markers_with_node(MARKER):
        places[owner.nodeid] = places.get(owner.nodeid, 0) + 1
    repeated = [place for place, count in places.items() if count > 1]
    if repeated:
        raise UsageProblem(
            f"{node.nodeid}: @pytest.mark.torchscript is applied {places[repeated[0]]} times to "
            f"{repeated[0] or 'the module'}; merge them into one mark (mode=[...] checks several "
            f"modes). A mark on the class or module is a default that the test's own mark "
            f"overrides option by option"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Parse ``--ts-device`` with torch now, once, if any collected test will need it, so a
    device torch cannot parse is a usage error before any test runs."""
    if any(_uses_plugin(item) for item in items):
        state = config.stash[_STATE]
        try:
            reason = state.device.unavailable_reason
        except UsageProblem as problem:
            raise pytest.UsageError(str(problem)) from None
        if reason is not None and state.settings.require_device:
            raise pytest.UsageError(
                f"{reason}, and --ts-require-device (ts_require_device) makes that an error: "
                f"run this job on a machine with the device, or drop the option to skip"
            )


def _uses_plugin(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return FIXTURE in names or "ts_device" in names or item.get_closest_marker(MARKER) is not None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Around the call of a marked test: keep what it returns, so a returned model gets
    checked and a test that checked nothing fails instead of passing silently. Outermost, so
    plugins that run ``async def`` tests (anyio, pytest-asyncio) call our wrapper and the
    coroutine's result is kept too."""
    if pyfuncitem.get_closest_marker(MARKER) is None:
        outcome = yield
        if outcome.excinfo is None and pyfuncitem.get_closest_marker(MARKER) is not None:
            outcome.force_exception(_too_late(pyfuncitem))  # marked by the test itself
        return
    original = pyfuncitem.obj
    returned: list[Any] = []
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def keep_result(*args: Any, **kwargs: Any) -> Any:
            returned.append(await original(*args, **kwargs))

        pyfuncitem.obj = keep_result
    elif inspect.isasyncgenfunction(original):
        pytest.fail(
            f"{pyfuncitem.nodeid}: a marked test cannot be an async generator; return the "
            f"model from an async def test, or call torchscript.check() in it",
            pytrace=False,
        )
    else:

        @functools.wraps(original)
        def keep_result(*args: Any, **kwargs: Any) -> Any:
            returned.append(original(*args, **kwargs))

        pyfuncitem.obj = keep_result
    try:
        outcome = yield
    finally:
        pyfuncitem.obj = original
    if outcome.excinfo is not None:
        return
    checker = pyfuncitem.stash.get(_CHECKER, None)
    if checker is None:  # marked by a fixture after ours ran: nothing could be checked
        outcome.force_exception(_too_late(pyfuncitem))
        return
    try:
        _finish_marked_test(pyfuncitem, checker, returned[0] if returned else None)
    except BaseException as failure:  # noqa: BLE001 - handed to pytest as the test's outcome
        outcome.force_exception(failure)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under ``xfail``, a failing check is an expected failure and a passing one an
    unexpected pass: the summary and reports count them apart from real failures."""
    outcome = yield
    checker = item.stash.get(_CHECKER, None)
    if call.when == "teardown" and checker is not None:
        del item.stash[_CHECKER]  # items live until the session ends; checks must not
        return
    if call.when != "call" or checker is None:
        return
    report = outcome.get_result()
    if hasattr(report, "wasxfail"):
        expected = "xfailed" if report.skipped else "xpassed"
    elif report.failed and call.excinfo is None and item.get_closest_marker("xfail"):
        expected = "xpassed"  # xfail(strict=True) that passed
    else:
        return
    for check in checker.reports:
        if expected == "xpassed" or not check.passed:
            check.expected = expected


def _too_late(item: pytest.Item) -> BaseException:
    return pytest.fail.Exception(
        f"{item.nodeid}: @pytest.mark.torchscript was added after the plugin prepared its "
        f"checks (with request.node.add_marker in a fixture or in the test itself), so "
        f"nothing was checked. Put the mark on the test, or add it in "
        f"pytest_collection_modifyitems",
        pytrace=False,
    )


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
    if request.node.get_closest_marker(MARKER) is None:
        return
    cls = getattr(request.node, "cls", None)
    if cls is not None and issubclass(cls, unittest.TestCase):
        pytest.fail(
            f"{request.node.nodeid}: @pytest.mark.torchscript cannot check a unittest.TestCase "
            f"method: unittest runs it, so pytest never sees a returned model and cannot pass "
            f"it the torchscript fixture. Write the check as a plain pytest test function (or "
            f"a method of a class that does not inherit from unittest.TestCase)",
            pytrace=False,
        )
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
    try:
        reject_repeated_marks(request.node)
        marker_layer = parse_marker(request.node.iter_markers(MARKER), request.node.nodeid)
        problem = None
    except UsageProblem as error:  # a mark added after collection is validated here
        problem = str(error)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    options = options.merged(marker_layer)
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and _MODE_PARAM in callspec.params:
        options = options.merged({"mode": callspec.params[_MODE_PARAM]})
    elif options.mode == ALL and len(state.settings.modes) == 1:  # --ts-modes names one
        options = options.merged({"mode": state.settings.modes[0]})
    elif not isinstance(options.mode, str) or options.mode == ALL:
        pytest.fail(
            f"{request.node.nodeid}: @pytest.mark.torchscript(mode={options.mode!r}) reached "
            f"the test without parametrizing it: the mark was added after collection "
            f"(request.node.add_marker, or pytest_collection_modifyitems), too late to make "
            f"one test per mode. Give a single mode there, or put the mark on the test "
            f"function (or in pytestmark) so the modes become test_x[trace], test_x[script]",
            pytrace=False,
        )
    if options.mode in options.skip:
        pytest.skip(f"mode={options.mode!r} is skipped by the marker: {options.skip[options.mode]}")
    if options.mode in options.xfail:
        request.applymarker(pytest.mark.xfail(reason=options.xfail[options.mode], strict=True))
    if options.fresh_process:
        state.fresh_process().start()  # its torch import overlaps this test's conversion
    checker = TorchScriptChecker(state, request.node, options)
    request.node.stash[_CHECKER] = checker
    return checker


def _available_device(state: SessionState) -> Any:
    __tracebackhide__ = True
    resolved = state.device
    reason = resolved.unavailable_reason
    if reason is not None:
        if state.settings.require_device:
            pytest.fail(f"{reason}, and --ts-require-device makes that an error", pytrace=False)
        state.device_skipped = reason
        pytest.skip(reason)
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
        if option and checks and not any(option in failure for failure in state.write_failures):
            terminalreporter.write_line(f"torchscript: {label} report written to {option}")
    for failure in state.write_failures:
        terminalreporter.write_line(f"torchscript: could not write {failure}", red=True)
    for note in state.cpp_notes():
        terminalreporter.write_line(f"torchscript: {note}")
    if state.device_skipped:
        terminalreporter.write_line(
            f"torchscript: marked tests were skipped: {state.device_skipped} "
            f"(--ts-require-device makes this an error)",
            yellow=True,
        )
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
