"""Conversion failures and bad input: clear messages naming the test and the fix, no tracebacks
from inside the plugin, never a silent pass."""

import pytest
from conftest import assert_no_plugin_traceback, expect_lines


def test_unscriptable_model_names_the_source_line_and_suggests_trace(suite):
    result = suite(
        """
        import pytest
        import torch

        class Unscriptable(torch.nn.Module):
            def forward(self, x):
                return torch.stack([x * i for i in range(len(x))]).sum(0) + set([1]).pop()

        @pytest.mark.torchscript(mode="script", inputs=torch.ones(2))
        def test_script():
            return Unscriptable().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Unscriptable failed at conversion (mode='script', device=cpu)",
            "torch.jit.script could not convert Unscriptable (mode='script')",
            "  at test_user.py:*: return torch.stack(*",
            "  *Error: *",
            "hint: mode='trace' records the operations that one input actually runs and may "
            "work where script cannot*",
        ],
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    assert_no_plugin_traceback(result)


def test_model_that_raises_in_eager_is_reported_as_its_own_error(suite):
    result = suite(
        """
        import torch

        class Broken(torch.nn.Module):
            def forward(self, x):
                return x @ torch.ones(7, 2)

        def test_broken(torchscript):
            torchscript.check(Broken(), [torch.ones(2, 7), torch.ones(2, 3)])

        def test_broken_export(torchscript):  # not read by export as a dimension that varies
            torchscript.check(Broken(), [torch.ones(2, 7), torch.ones(2, 3)], mode="export")
        """
    )
    result.assert_outcomes(failed=2)
    for mode in ("trace", "export"):
        expect_lines(
            result,
            [
                "E *pytest_torchscript.errors.CheckFailed: torchscript check of Broken failed "
                f"at eager (mode='{mode}', device=cpu)",
                "E *the model raised in eager mode on input set 1 (float32[2, 3]), before any "
                "conversion: RuntimeError: *",
            ],
        )
    # The user's own frame is shown as the cause, so they can debug their forward.
    expect_lines(result, ["*return x @ torch.ones(7, 2)*"])
    assert_no_plugin_traceback(result)
    # A library model's error has no frame in the test file for pytest to cut the cause's
    # traceback at: the plugin's frame at its root must still not be shown.
    result = suite(
        """
        import torch

        def test_library_model(torchscript):
            torchscript.check(torch.nn.Linear(3, 2), torch.ones(2, 5))
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(result, ["E *RuntimeError: mat1 and mat2 shapes cannot be multiplied*"])
    assert_no_plugin_traceback(result)


@pytest.mark.parametrize(
    "call, expected",
    [
        (
            "torchscript.check(42, torch.ones(2))",
            "the model to check is int 42; pass a torch.nn.Module instance (or a function of "
            "tensors)",
        ),
        (
            "torchscript.check(Affine, torch.ones(1, 4))",
            "the model to check is the class Affine, not an instance; return Affine(...).eval()",
        ),
        (
            "torchscript.check((Affine(), torch.ones(1, 4)), torch.ones(1, 4))",
            "the model to check is a tuple holding a module ((Affine( *); return the model "
            "alone and give its input sets on the marker*",
        ),
        (
            "torchscript.check(torch.compile(Affine()), torch.ones(1, 4))",
            "the model is a torch.compile wrapper, which is not a deployable module*; return "
            "the module before torch.compile*",
        ),
        (
            "torchscript.check(torch.export.export(Affine(), (torch.ones(1, 4),)), "
            "torch.ones(1, 4))",
            "the model is an ExportedProgram; return the nn.Module it was exported from*",
        ),
        (
            "torchscript.check(Affine())",
            "no inputs to check the model with; pass inputs=... to @pytest.mark.torchscript or "
            "to torchscript.check(model, inputs)",
        ),
        (
            "torchscript.check(Affine(), [])",
            "inputs is an empty list; give at least one input set",
        ),
        (
            "torchscript.check(Affine(), [(torch.ones(1, 4),), 'text'])",
            "input set 1 is str 'text'; an input set is a tensor, a tuple of positional "
            "arguments or a dict of keyword arguments",
        ),
        (
            "torchscript.check(Affine(), (object(),))",
            "input set 0, argument 0 is object <object object at *>; arguments must be "
            "tensors, Python scalars, or tuples, lists and dicts of them",
        ),
        (
            "torchscript.check(Affine(), __import__('numpy').ones((1, 4), 'float32'))",
            "input set 0 is ndarray array(*; an input set is a tensor, a tuple of positional "
            "arguments or a dict of keyword arguments (a NumPy array: pass "
            "torch.from_numpy(array))",
        ),
        (
            "torchscript.check(Affine(), (torch.ones(1, 4), __import__('numpy').float32(2)))",
            "input set 0, argument 1 is float32 *; arguments must be tensors, Python scalars, "
            "or tuples, lists and dicts of them (a NumPy scalar: pass value.item(), or "
            "torch.tensor(value) to vary it)",
        ),
        (
            "torchscript.check(Affine(), lambda: 1 / 0)",
            "the inputs callable test_bad.<locals>.<lambda> raised ZeroDivisionError: "
            "division by zero",
        ),
        (
            "torchscript.check(Affine(), (torch.ones(n, 4) for n in (1, 2)))",
            "inputs is a generator, which can be read only once (and every "
            "mode and re-run of the test reads the inputs again); pass a list*",
        ),
        (
            "torchscript.check(Affine(), torch.ones(1, 4), rtol=-1)",
            "torchscript.check(): option rtol=-1 is invalid (-1 is not a finite number >= 0); "
            "rtol accepts a number >= 0 (relative tolerance)",
        ),
    ],
    ids=[
        "not-a-model",
        "a-class",
        "model-and-inputs",
        "compiled",
        "exported-program",
        "no-inputs",
        "empty",
        "bad-set",
        "bad-argument",
        "numpy-array",
        "numpy-scalar",
        "raising-callable",
        "generator",
        "bad-option",
    ],
)
def test_bad_input_is_a_clear_error_naming_the_test(suite, call, expected):
    result = suite(
        f"""
        import torch
        from models import Affine

        def test_bad(torchscript):
            {call}
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(result, [f"E *UsageProblem: test_user.py::test_bad: {expected}"])
    assert_no_plugin_traceback(result)


def test_inputs_shaped_as_the_other_container_get_the_container_that_fits(suite):
    """A tuple is one input set of positional arguments, a list several input sets: the
    commonest mix-up, caught at forward's own TypeError."""
    result = suite(
        """
        import pytest
        import torch

        class Masked(torch.nn.Module):
            def forward(self, x, mask):
                return x * mask

        @pytest.mark.torchscript(inputs=(torch.randn(2, 4), torch.randn(3, 4)))
        def test_tuple_meant_as_sets():
            return torch.nn.Linear(4, 2)

        @pytest.mark.torchscript(inputs=[torch.randn(2, 4), torch.ones(2, 4)])
        def test_list_meant_as_arguments():
            return Masked()
        """
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "*TypeError: Linear.forward() takes 2 positional arguments but 3 were given",
            "hint: a tuple is one input set of 2 positional arguments; if you meant 2 input "
            "sets, pass a list: inputs=[a, b]",
        ],
    )
    expect_lines(
        result,
        [
            "*TypeError: Masked.forward() missing 1 required positional argument: 'mask'",
            "hint: a tensor is an input set of one argument, and each item of a list an input "
            "set of its own; to pass several positional arguments in one set, use a tuple*",
        ],
    )


def test_output_the_plugin_cannot_compare_is_named(suite):
    result = suite(
        """
        import torch

        class Odd:
            pass

        def returns_object(x):
            return {"score": x.sum(), "meta": Odd()}

        def test_odd(torchscript):
            torchscript.assert_parity(returns_object, returns_object, torch.ones(2))
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "E *CheckFailed: input set 0: output['meta'] is a test_user.Odd (<test_user.Odd "
            "object at *>), which the plugin cannot compare; return tensors, tuples, lists, "
            "dicts, dataclasses, None or Python scalars from the model",
        ],
    )
    assert_no_plugin_traceback(result)


def test_suite_running_with_warnings_as_errors_still_passes(suite):
    result = suite(
        """
        import warnings
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(2, 4))
        def test_affine():
            return Affine().eval()

        def test_warnings_are_in_the_report(torchscript):
            report = torchscript.check(Affine().eval(), torch.ones(3, 4), mode="script")
            categories = {warning.category for warning in report.warnings}
            assert categories & {"FutureWarning", "DeprecationWarning"}
        """,
        "-W",
        "error",
        ini="""
        [pytest]
        filterwarnings = error
        """,
    )
    result.assert_outcomes(passed=3)


def test_train_mode_warning_under_warnings_as_errors_says_how_to_fix(suite):
    result = suite(
        """
        import pytest
        import torch

        @pytest.mark.torchscript(inputs=torch.randn(2, 4))
        def test_train_mode():
            return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout())
        """,
        "-W",
        "error::pytest_torchscript.TrainModeWarning",
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "TrainModeWarning (raised as an error by a warnings filter): Sequential was in "
            "train mode, where its Dropout behave differently; * (call model.eval() in the "
            "test to silence this warning)",
        ],
    )
    # The warning comes once the check is complete: the round trip still ran.
    expect_lines(result, ["failed (warning)*ok ok*test_user.py::test_train_mode"])
    assert_no_plugin_traceback(result)


def test_a_scripted_torchvision_detector_returning_losses_too_gets_the_wrapper_that_fixes_it(
    suite,
):
    # As torchvision's detection models do (their warning, their contract), without the
    # cost of one: scripted, forward returns (losses, detections); in eager, detections.
    result = suite(
        """
        import warnings
        from typing import Dict, List, Tuple

        import pytest
        import torch

        class Detector(torch.nn.Module):
            def forward(self, images: List[torch.Tensor]):
                detections = [{"boxes": image[:1, :4]} for image in images]
                if torch.jit.is_scripting():
                    warnings.warn("RCNN always returns a (Losses, Detections) tuple in scripting")
                    losses: Dict[str, torch.Tensor] = {}
                    return losses, detections
                return detections

        @pytest.mark.torchscript(mode="script", inputs=[([torch.randn(3, 8)],)])
        def test_detector():
            return Detector().eval()
        """
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Detector failed at parity (mode='script', device=cpu)",
            "*eager returned 1 items, converted 2:*",
            "hint: torchvision's detection models return (losses, detections) when scripted "
            "and only the detections in eager (torchvision warned: 'RCNN always returns a "
            "(Losses, Detections) tuple in scripting'); check a wrapper that returns the "
            "detections in both*",
        ],
    )


def test_input_sets_calling_forward_another_way_say_the_conversion_fixed_the_arguments(suite):
    result = suite(
        """
        from typing import Optional

        import pytest
        import torch

        class WithBias(torch.nn.Module):
            def forward(self, x, bias: Optional[torch.Tensor] = None):
                return x if bias is None else x + bias

        @pytest.mark.torchscript(mode=["trace", "script"],
                                 inputs=[(torch.randn(2, 4),), (torch.randn(2, 4), torch.ones(4))])
        def test_optional():
            return WithBias().eval()
        """
    )
    result.assert_outcomes(passed=1, failed=1)  # script keeps the optional argument
    expect_lines(
        result,
        [
            "torchscript check of WithBias failed at parity (mode='trace', device=cpu)",
            "the converted module raised on input set 1 (float32[2, 4], float32[4]), where "
            "eager did not: *",
            "the module was converted with input set 0 (float32[2, 4])",
            "hint: input set 1 calls forward with other arguments than input set 0 (an "
            "optional argument given or left out, other keywords), and torch.jit.trace fixes "
            "the arguments of the example it converts; *",
        ],
    )
