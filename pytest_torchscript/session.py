"""State shared by every check of one pytest process: settings, device, fresh process, reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .devices import ResolvedDevice, resolve_device
from .fresh_process import FreshProcess
from .report import CheckReport


@dataclass(frozen=True)
class Settings:
    """Run-wide settings, resolved once from the command line > ini > defaults."""

    device: str = "cpu"
    device_source: str = "--ts-device"
    artifact_root: Path | None = None
    option_defaults: dict[str, Any] = field(default_factory=dict)


class SessionState:
    def __init__(self, settings: Settings, user_roots: list[str]) -> None:
        self.settings = settings
        self.reports: list[CheckReport] = []
        self.temp_root: Path | None = None
        self._user_roots = user_roots
        self._device: ResolvedDevice | None = None
        self._fresh: FreshProcess | None = None
        self.warned_train_mode: set[type] = set()  # TrainModeWarning: once per model class

    @property
    def device(self) -> ResolvedDevice:
        """The ``--ts-device``, parsed by torch on first use (so unmarked suites never pay)."""
        if self._device is None:
            self._device = resolve_device(self.settings.device, self.settings.device_source)
        return self._device

    def fresh_process(self) -> FreshProcess:
        if self._fresh is None:
            self._fresh = FreshProcess(self._user_roots)
        return self._fresh

    def artifact_root(self) -> Path:
        root = self.settings.artifact_root or self.temp_root
        assert root is not None, "the torchscript fixture sets temp_root before any check"
        return root

    def close(self) -> None:
        if self._fresh is not None:
            self._fresh.close()
            self._fresh = None
