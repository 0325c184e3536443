"""The ``torchscript`` fixture object: runs a whole check, or its single steps, for one test.

``check`` layers the options (ini < marker < ``check()`` keywords < the mode's defaults),
skips a mode this installation cannot run, builds the check's context and hands it to
``pipeline.run_check``, which runs the stages in order. ``convert``, ``assert_parity`` and
``roundtrip`` are those steps alone, for tests that want to drive them by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..config.options import Options, parse_check_options
from ..deploy import artifacts
from ..deploy.roundtrips import save
from ..errors import CheckFailed, TrainModeWarning, UsageProblem
from ..modes import ConversionFailed, Target, backend, owner_of
from ..session import SessionState
from ..text import first_lines, model_name
from .inputs import normalize_inputs
from .jit_warnings import import_torch
from .parity import ParityResult
from .parity_stage import parity_all
from .pipeline import CheckContext, run_check
from .report import CheckReport, describe_mismatch
from .stages import Stop, evaluation, run_eager
from .train_mode import modes_that_matter


class TorchScriptChecker:
    """Checks that models convert and behave like eager; see ``check``."""

    def __init__(self, session: SessionState, item: Any, options: Options) -> None:
        self._session = session
        self._item = item
        self._test_id = item.nodeid
        self._options = options
        self._artifact_counts: dict[str, int] = {}  # per mode: names the saved artifacts
        self._check_counts: dict[str, int] = {}  # per mode: keys the baseline entry of each check
        self.reports: list[CheckReport] = []
        self.used = False

    @property
    def mode(self) -> str:
        """The conversion mode of this test (from the marker; ``trace`` without one)."""
        return self._options.mode

    @property
    def device(self) -> Any:
        """The ``torch.device`` every check of this run uses (``--ts-device``)."""
        return self._session.device.device

    def __repr__(self) -> str:  # pytest shows it among a failed test's arguments
        return f"<torchscript checker of {self._test_id} (mode={self._options.mode!r})>"

    def check(self, model: Any, inputs: Any = None, **options: Any) -> CheckReport:
        """Convert ``model``, compare it with eager on every input set, round-trip it, and
        return the report; raise ``CheckFailed`` (with ``.report``) at the first failure.

        ``options`` (mode, rtol, atol, roundtrip, inputs) override the marker's, which
        override the ini settings.
        """
        __tracebackhide__ = True
        self.used = True
        try:
            layer = parse_check_options(options, self._test_id)
        except UsageProblem as problem:
            raise problem.with_traceback(None) from None
        if inputs is not None:
            layer["inputs"] = inputs
        resolved = self._options.merged(layer)
        mode = backend(resolved.mode)
        reason = mode.missing_reason(resolved, str(self.device))
        if reason:  # a mode this installation cannot run: a skip that says why, in the matrix
            skipped = CheckReport(
                self._test_id, resolved.mode, str(self.device), model_name(model), skipped=reason
            )
            self._session.reports.append(skipped)
            raise skip_at_test(reason)
        # A mode's own tolerances (onnx's) are a floor under each dtype's defaults, not a
        # replacement: bfloat16 keeps its looser rtol, TF32 its output-scaled atol.
        resolved = resolved.merged({"tolerance_floor": dict(mode.tolerances)})
        report = CheckReport(
            test_id=self._test_id,
            mode=resolved.mode,
            device=str(self.device),
            model=model_name(model),
            threads=self._session.settings.perf.threads,
        )
        self._check_counts[resolved.mode] = self._check_counts.get(resolved.mode, 0) + 1
        self.reports.append(report)
        self._session.reports.append(report)
        ctx = CheckContext(
            self._session,
            self._item,
            resolved,
            mode,
            report,
            check_number=self._check_counts[resolved.mode],
            artifact_counts=self._artifact_counts,
        )
        self._warn_if_training(model, ctx)
        return run_check(ctx, model)

    def release(self) -> None:
        """At the end of the test: the modes it used drop their process-wide caches."""
        used = {report.mode for report in self.reports} | ({self.mode} if self.used else set())
        for mode in used:
            backend(mode).release()

    def _warn_if_training(self, model: Any, ctx: CheckContext) -> None:
        """Warn, once per model class, when train mode would have changed the outputs."""
        torch = import_torch()
        report = ctx.report
        if not isinstance(model, torch.nn.Module):
            return
        modules = list(model.modules())
        report.was_training = any(module.training for module in modules)
        behaves_differently = modes_that_matter(modules) if report.was_training else []
        if behaves_differently and type(model) not in self._session.warned_train_mode:
            self._session.warned_train_mode.add(type(model))
            ctx.pending_warnings.append(
                (
                    f"{report.model} was in train mode, where its "
                    f"{', '.join(behaves_differently)} behave differently; pytest-torchscript "
                    f"checked it in eval mode, as it is deployed (call model.eval() in the test "
                    f"to silence this warning)",
                    TrainModeWarning,
                )
            )

    def _context(self, model: Any = None, mode: Any = None) -> CheckContext:
        """A context for the single steps below (nothing of it reaches the run's report)."""
        chosen = mode or backend(self.mode)
        scratch = CheckReport(self._test_id, chosen.name, str(self.device), model_name(model))
        return CheckContext(
            self._session, self._item, self._options, chosen, scratch,
            artifact_counts=self._artifact_counts,
        )  # fmt: skip

    def convert(self, model: Any, example: Any) -> Any:
        """Convert ``model`` in this test's mode with ``example`` (an input set) and return the
        TorchScript module (mode="export": the ExportedProgram); raise ``CheckFailed`` with the
        converter's explanation."""
        __tracebackhide__ = True
        self.used = True
        input_set = self._input_sets(example)[0]
        ctx = self._context(model)
        with evaluation(model, self.device):
            args, kwargs = input_set.copy_to(self.device)
            try:
                target = Target(self.device, self._session.settings.perf.threads)
                return ctx.backend.convert(model, args, kwargs, target).artifact
            except ConversionFailed as failure:
                raise CheckFailed(str(failure)) from None

    def assert_parity(
        self, reference: Any, converted: Any, inputs: Any, rtol=None, atol=None
    ) -> list[ParityResult]:
        """Compare ``converted`` with ``reference`` on every input set; raise ``CheckFailed``
        saying where and by how much they differ."""
        __tracebackhide__ = True
        self.used = True
        options = self._options.merged({"rtol": rtol, "atol": atol})
        input_sets = self._input_sets(inputs)
        torch = import_torch()
        if isinstance(converted, torch.export.ExportedProgram):
            converted = converted.module()
        ctx = self._context(reference)
        try:
            with evaluation(reference, self.device):
                eager = [run_eager(ctx, reference, s, i) for i, s in enumerate(input_sets)]
                results = parity_all(ctx, converted, input_sets, eager, options, [])
        except Stop as stop:
            raise CheckFailed(stop.message) from stop.__cause__
        if not all(result.ok for result in results):
            raise CheckFailed(describe_mismatch(results, len(input_sets), "the converted module"))
        return results

    def _input_sets(self, value: Any) -> list:
        """``normalize_inputs``, its usage error raised from here: the test's line shows,
        not the plugin's frames."""
        __tracebackhide__ = True
        try:
            return normalize_inputs(value, self._test_id)
        except UsageProblem as problem:
            raise problem.with_traceback(None) from None

    def roundtrip(self, converted: Any) -> Any:
        """Save ``converted`` (kept under ``--ts-artifacts`` when given) and load it back."""
        __tracebackhide__ = True
        self.used = True
        owner = owner_of(converted)
        if owner is None:
            raise UsageProblem(
                f"{self._test_id}: torchscript.roundtrip() takes what torchscript.convert() "
                f"returns (a TorchScript module, an ExportedProgram, an ONNX program or an "
                f"AOTInductor package), got {type(converted).__name__}; convert it first: "
                f"torchscript.roundtrip(torchscript.convert(model, example))"
            )
        ctx = self._context(mode=owner)
        try:
            path = save(ctx, converted, owner)
        except Stop as stop:
            raise CheckFailed(stop.message) from None
        try:  # ``converted`` is what some modes reload by (a compile cache: its model)
            return artifacts.load(path, self.device, ctx.report.warnings, owner, converted)
        except Exception as error:  # said as the test's failure, never a plugin traceback
            raise CheckFailed(
                f"{self._test_id}: torchscript.roundtrip() saved {path.name} but could not load "
                f"it back (mode={owner.name!r}): {type(error).__name__}: "
                f"{first_lines(str(error), 3)}\nhint: torchscript.check(model, inputs, "
                f"mode={owner.name!r}) converts and round-trips with everything the mode needs"
            ) from None


def skip_at_test(reason: str) -> BaseException:
    """A skip reported at the test's location rather than inside the plugin (pytest's own
    skip markers do the same; the keyword is not public, so fall back if it goes away)."""
    try:
        return pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:
        return pytest.skip.Exception(reason)
