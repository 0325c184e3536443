"""pytest hooks and fixtures of pytest-torchscript; the work itself lives in other modules.

Importing this module never imports torch: a suite with no marked test pays nothing. torch is
imported when the first test that uses the plugin is collected (to validate ``--ts-device``).
"""

from __future__ import annotations

import unittest
from pathlib import Path
from typing import Any

import pytest

from .config.marks import (
    MARKER,
    MARKER_DOC,
    MODE_PARAM,
    finish_marked_test,
    options_for_test,
    reject_reasons_for_unchecked_modes,
    reject_repeated_marks,
    result_keeper,
    too_late,
)
from .config.options import ALL, Options, parse_marker
from .config.settings import Settings, add_options
from .config.settings import resolve as resolve_settings
from .errors import UsageProblem
from .modes import MODES, backend
from .perf.benchmark_bridge import (
    BenchmarkHooks,
    run_under_benchmark_only,
    timing_blocked,
    timing_off_reason,
)
from .reporting.run_end import (
    merge_worker_output,
    worker_output,
    write_baseline,
    write_reports,
    write_terminal,
)
from .session import SessionState

FIXTURE = "torchscript"
_STATE = pytest.StashKey[SessionState]()
_CHECKER = pytest.StashKey[Any]()
_BAD_MARKS = pytest.StashKey[dict[str, list[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
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
            (perf.record_flag, perf.update_baseline),
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
            f"{' and '.join(asked)} {'need' if len(asked) > 1 else 'needs'} timings, but this "
            f"run times nothing: {reason}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    write_baseline(state)
    if hasattr(config, "workerinput"):  # an xdist worker: the controller writes the reports
        config.workeroutput.update(worker_output(state))
        return
    write_reports(state, exitstatus, _report_flags(config))


def _report_flags(config: pytest.Config) -> dict[str, str]:
    return {"report": config.option.ts_report, "html": config.option.ts_html}


class _XdistMerge:
    """On the xdist controller: collect the checks each worker made, so the one summary and
    the one report cover the whole run."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        merge_worker_output(self.state, getattr(node, "workeroutput", None) or {})


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Validate the marker at collection, request the fixture, and parametrize mode lists."""
    marks = list(metafunc.definition.iter_markers(MARKER))
    if not marks:
        return
    settings = metafunc.config.stash[_STATE].settings
    try:
        reject_repeated_marks(metafunc.definition)
        options = parse_marker(marks, metafunc.definition.nodeid)
        modes = options.get("mode", Options().merged(settings.option_defaults).mode)
        reject_reasons_for_unchecked_modes(  # "all" may name any mode: --ts-modes varies by job
            metafunc.definition,
            MODES if modes == ALL else modes if isinstance(modes, tuple) else (modes,),
            "torchscript" in metafunc.fixturenames,
        )
        problem = None
    except UsageProblem as error:
        problem = str(error)
    if problem is not None:  # the collector fails once it has seen all its tests' marks
        collector = metafunc.definition.parent
        key = collector.nodeid if collector is not None else metafunc.definition.nodeid
        metafunc.config.stash.setdefault(_BAD_MARKS, {}).setdefault(key, []).append(problem)
        return
    if modes == ALL:
        modes = settings.modes
    if isinstance(modes, tuple):
        metafunc.fixturenames.append(MODE_PARAM)
        metafunc.parametrize(MODE_PARAM, modes, ids=list(modes))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Fail a module (or class) whose tests have bad marks with one error that lists them
    all, rather than stopping at the first: a user fixing a suite sees every typo at once."""
    outcome = yield
    problems = collector.config.stash.get(_BAD_MARKS, {}).pop(collector.nodeid, None)
    if not problems or outcome.get_result().outcome != "passed":
        return
    message = "\n".join(problems)
    if len(problems) > 1:
        message = f"{len(problems)} tests have a bad @pytest.mark.{MARKER}:\n{message}"
    try:  # raised and caught for a traceback, which pytest's failure report needs
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception:
        longrepr = collector.repr_failure(pytest.ExceptionInfo.from_current())
    outcome.force_result(pytest.CollectReport(collector.nodeid, "failed", longrepr, []))


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's, whose --benchmark-only skips we undo
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Parse ``--ts-device`` with torch now, once, if any collected test will need it, so a
    device torch cannot parse is a usage error before any test runs. Checks time their
    models, so ``--benchmark-only`` runs them."""
    ours = [item for item in items if _uses_plugin(item)]
    run_under_benchmark_only(config, ours)
    if ours:
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
            outcome.force_exception(too_late(pyfuncitem))  # marked by the test itself
        return
    original = pyfuncitem.obj
    returned: list[Any] = []
    pyfuncitem.obj = result_keeper(pyfuncitem, returned)
    try:
        outcome = yield
    finally:
        pyfuncitem.obj = original
    if outcome.excinfo is not None:
        return
    checker = pyfuncitem.stash.get(_CHECKER, None)
    if checker is None:  # marked by a fixture after ours ran: nothing could be checked
        outcome.force_exception(too_late(pyfuncitem))
        return
    try:
        finish_marked_test(pyfuncitem, checker, returned[0] if returned else None)
    except BaseException as failure:  # noqa: BLE001 - handed to pytest as the test's outcome
        outcome.force_exception(failure)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under ``xfail``, a failing check is an expected failure and a passing one an
    unexpected pass: the summary and reports count them apart from real failures. So is a
    failed check in a test that passed: the test expected it (``pytest.raises``), and the
    summary must not report a failure where pytest reports none."""
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
    elif report.passed:  # a failed check the test caught (pytest.raises(CheckFailed))
        expected = "xfailed"
    else:
        return
    for check in checker.reports:
        if expected == "xpassed" or not check.passed:
            check.expected = expected


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
    from .check.checker import TorchScriptChecker

    state = request.config.stash[_STATE]
    _available_device(state)
    if state.temp_root is None:
        state.temp_root = _torchscript_temp_root
    try:
        options = options_for_test(
            request.node, state.settings.option_defaults, state.settings.modes
        )
        problem = None
    except UsageProblem as error:  # a mark added after collection is validated here
        problem = str(error)
    if problem is not None:  # outside the except: pytest would print the cause a second time
        pytest.fail(problem, pytrace=False)
    if options.mode in options.skip:
        pytest.skip(f"mode={options.mode!r} is skipped by the marker: {options.skip[options.mode]}")
    if options.mode in options.xfail:
        request.applymarker(pytest.mark.xfail(reason=options.xfail[options.mode], strict=True))
    if options.fresh_process and backend(options.mode).shared_fresh_worker:
        state.fresh_process().start()  # its torch import overlaps this test's conversion
    state.forget_earlier_attempt(request.node.nodeid)
    checker = TorchScriptChecker(state, request.node, options)
    request.node.stash[_CHECKER] = checker
    yield checker
    checker.release()


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
    write_terminal(terminalreporter, state, _report_flags(config))
