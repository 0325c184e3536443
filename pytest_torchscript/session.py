"""State shared by every check of one pytest process: settings, device, fresh process, reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .check.report import CheckReport
from .config.devices import ResolvedDevice, resolve_device
from .config.settings import Settings
from .deploy.fresh_process import FreshProcess
from .perf import baseline


class SessionState:
    def __init__(
        self, settings: Settings, user_roots: list[str], timing_off: Callable[[], str | None]
    ) -> None:
        self.settings = settings
        self._timing_off = timing_off
        self._timing_off_reason: str | None = None
        self._timing_off_known = False
        self.reports: list[CheckReport] = []
        self._attempted: set[str] = set()  # tests that have had a checker in this session
        self.temp_root: Path | None = None
        self._user_roots = user_roots
        self._device: ResolvedDevice | None = None
        self._fresh: FreshProcess | None = None
        self.warned_train_mode: set[type] = set()  # TrainModeWarning: once per model class
        self.worker_checks: list[dict] = []  # from xdist workers, on the controller
        self.device_skipped: str | None = None  # why marked tests skipped, for the summary
        self.write_failures: list[str] = []  # end-of-run outputs that could not be written
        # artifacts this run published under --ts-artifacts: never taken for an earlier run's
        self.published_artifacts: set[Path] = set()
        self._cpp_runners: dict[str, Any] = {}  # device type -> Runner, or why there is none
        self._cpp_servers: dict[Path, Any] = {}  # runner binary -> its CppServer process
        self.worker_cpp_notes: list[str] = []  # from xdist workers, on the controller
        self.baseline_entries: dict[str, dict] = {}
        # checks that set max_regression in a run without --ts-baseline: said at the end
        self.regression_gates_without_baseline: list[str] = []
        self.new_baseline_entries: dict[str, dict] = {}
        # --ts-extend-baseline: the entries that took no run (new ones, and old ones that
        # could not take another)
        self.extension = baseline.Extension([], [])
        if settings.perf.baseline_path is not None:
            self.baseline_entries = baseline.load(settings.perf.baseline_path)

    @property
    def device(self) -> ResolvedDevice:
        """The ``--ts-device``, parsed by torch on first use (so unmarked suites never pay)."""
        if self._device is None:
            self._device = resolve_device(self.settings.device, self.settings.device_source)
        return self._device

    def forget_earlier_attempt(self, test_id: str) -> None:
        """A test run again in this session (pytest-rerunfailures' ``--reruns``, a flaky
        retry) is judged by its last attempt, as pytest counts it: the checks and baseline
        entries of an earlier attempt would be counted, tabled and recorded twice."""
        if test_id not in self._attempted:  # the usual case: a first attempt, nothing to drop
            self._attempted.add(test_id)
            return
        self.reports = [report for report in self.reports if report.test_id != test_id]
        prefix = f"{test_id} | "
        for key in [key for key in self.new_baseline_entries if key.startswith(prefix)]:
            del self.new_baseline_entries[key]

    def checks(self) -> list[dict]:
        """Every check of the run as report dicts: this process's and the xdist workers'."""
        return [report.to_dict() for report in self.reports] + self.worker_checks

    @property
    def timing_off(self) -> str | None:
        """Why pytest-benchmark says not to time anything (--benchmark-disable, xdist...).
        Asked on first use: pytest-benchmark sets itself up after this plugin configures."""
        if not self._timing_off_known:
            self._timing_off_reason = self._timing_off()
            self._timing_off_known = True
        return self._timing_off_reason

    def fresh_process(self) -> FreshProcess:
        if self._fresh is None:
            self._fresh = FreshProcess(self._user_roots, self.settings.deploy_imports)
        return self._fresh

    def private_root(self) -> Path:
        """This run's own folder (pytest's temporary directory): artifacts are saved and
        loaded there, and only copied to ``--ts-artifacts``, which other runs may share."""
        assert self.temp_root is not None, "the torchscript fixture sets temp_root first"
        return self.temp_root

    def write_baseline(self) -> Path | None:
        """With --ts-update-baseline, merge this run's entries into the baseline file (with
        --ts-extend-baseline, into the entries' recordings: ``extension`` keeps the keys
        that were new, and those whose old entry could not take another run)."""
        path = self.settings.perf.baseline_path
        if not self.settings.perf.update_baseline or not self.new_baseline_entries:
            return None
        self.extension = baseline.update(
            path, self.new_baseline_entries, extend=self.settings.perf.extend_baseline
        )
        return path

    def cpp_runner(self, device_type: str) -> Any:
        """The C++ runner for this device type, built (or found in the cache) once per
        session; raises ``CppUnavailable`` with the reason where none can be built."""
        from .deploy.cpp_runner import CppUnavailable, runner

        if device_type not in self._cpp_runners:
            try:
                self._cpp_runners[device_type] = runner(device_type)
            except CppUnavailable as missing:
                self._cpp_runners[device_type] = missing
        found = self._cpp_runners[device_type]
        if isinstance(found, CppUnavailable):
            raise found
        return found

    def cpp_server(self, built: Any) -> Any:
        """The session's process of the runner ``built`` (started on its first request)."""
        from .deploy.cpp_runner import CppServer

        if built.path not in self._cpp_servers:
            self._cpp_servers[built.path] = CppServer(built.path, self.private_root() / "cpp")
        return self._cpp_servers[built.path]

    def cpp_notes(self) -> list[str]:
        """What the summary says of the C++ runner: built (and how long it took), or why not."""
        notes = list(self.worker_cpp_notes)
        for device_type, found in self._cpp_runners.items():
            if isinstance(found, Exception):
                notes.append(f"C++ round trip skipped ({device_type}): {found}")
            elif found.built_seconds:
                notes.append(
                    f"C++ runner built in {found.built_seconds:.1f} s, cached as {found.path}"
                )
        return list(dict.fromkeys(notes))

    def close(self) -> None:
        if self._fresh is not None:
            self._fresh.close()
            self._fresh = None
        for server in self._cpp_servers.values():
            server.close()
        self._cpp_servers.clear()
