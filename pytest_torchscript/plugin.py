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
from .options import ALL, Options, parse_marker
from .session import SessionState
from .settings import Settings, add_options
from .settings import resolve as resolve_settings
from .summary import write_matrix, write_regressions, write_summary

MARKER = "torchscript"
FIXTURE = "torchscript"
_MODE_PARAM = "_torchscript_mode"
_STATE = pytest.StashKey[SessionState]()
_CHECKER = pytest.StashKey[Any]()

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
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_DOC)
    try:
        settings = resolve_settings(config)
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
        config.pluginmanager.register(
            BenchmarkHooks(settings.perf.threads, settings.benchmark_table), "torchscript-benchmark"
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
