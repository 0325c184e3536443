"""What a ``@pytest.mark.torchscript`` on a test means: the options it gives the test's checks
(layered over ini settings, with the mode its parametrization chose), the marks it refuses
(repeated, or added too late to act on), and what the test must do (return a model, or call
the fixture): never a mark dropped or a test passed without a check."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest

from ..errors import CheckFailed, TorchScriptWarning, UsageProblem
from .options import ALL, Options, parse_marker

MARKER = "torchscript"
MODE_PARAM = "_torchscript_mode"  # the parameter a mode list parametrizes
MARKER_DOC = (
    "torchscript(mode='trace', *, inputs=None, rtol=None, atol=None, roundtrip=True, ...): "
    "check that the test's model converts (mode 'trace', 'script', 'export', 'onnx' or 'aoti', "
    "a list of them to parametrize the test, or 'all') and matches eager on every input set; "
    "the test returns the model or calls the torchscript fixture's check(model, inputs)."
)
_HOW_TO = (
    "{test} is marked @pytest.mark.torchscript but neither returned a model nor used the "
    "torchscript fixture, so nothing was checked. Either return the model from the test "
    "(with inputs=... on the marker), or request the torchscript fixture and call "
    "torchscript.check(model, inputs)."
)


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


def reject_reasons_for_unchecked_modes(
    definition: Any, modes: tuple[str, ...], uses_fixture: bool
) -> None:
    """``xfail=`` / ``skip=`` on the test's own mark naming a mode the test does not check
    (``modes``) would be ignored: the user expected that mode to be checked. Marks on a class
    or module are defaults for many tests and may name modes some of them do not check; a test
    that calls the fixture chooses its modes at run time."""
    if uses_fixture:
        return
    for mark in definition.own_markers:
        if mark.name != MARKER:
            continue
        for option in ("xfail", "skip"):
            named = mark.kwargs.get(option) or {}
            unchecked = [mode for mode in named if mode not in modes]
            if unchecked:
                raise UsageProblem(
                    f"{definition.nodeid}: @pytest.mark.torchscript: {option}= names "
                    f"mode {unchecked[0]!r}, which this test does not check (its modes: "
                    f"{', '.join(modes)}); add {unchecked[0]!r} to mode=[...] or drop it from "
                    f"{option}="
                )


def options_for_test(node: Any, defaults: dict[str, Any], modes: tuple[str, ...]) -> Options:
    """The test's options: ini ``defaults`` < its marks < the mode its parametrization chose
    (``modes``: what mode="all" stands for). Raises ``UsageProblem`` for a bad mark, or one
    added after collection with several modes (too late to parametrize)."""
    reject_repeated_marks(node)
    options = (
        Options().merged(defaults).merged(parse_marker(node.iter_markers(MARKER), node.nodeid))
    )
    callspec = getattr(node, "callspec", None)
    if callspec is not None and MODE_PARAM in callspec.params:
        return options.merged({"mode": callspec.params[MODE_PARAM]})
    if options.mode == ALL and len(modes) == 1:  # --ts-modes names one
        return options.merged({"mode": modes[0]})
    if not isinstance(options.mode, str) or options.mode == ALL:
        raise UsageProblem(
            f"{node.nodeid}: @pytest.mark.torchscript(mode={options.mode!r}) reached "
            f"the test without parametrizing it: the mark was added after collection "
            f"(request.node.add_marker, or pytest_collection_modifyitems), too late to make "
            f"one test per mode. Give a single mode there, or put the mark on the test "
            f"function (or in pytestmark) so the modes become test_x[trace], test_x[script]"
        )
    return options


def result_keeper(item: Any, returned: list[Any]) -> Any:
    """The test function wrapped so that what it returns (awaited, for ``async def``) lands in
    ``returned``."""
    original = item.obj
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def keep_result(*args: Any, **kwargs: Any) -> Any:
            returned.append(await original(*args, **kwargs))

        return keep_result
    if inspect.isasyncgenfunction(original):
        pytest.fail(
            f"{item.nodeid}: a marked test cannot be an async generator; return the "
            f"model from an async def test, or call torchscript.check() in it",
            pytrace=False,
        )

    @functools.wraps(original)
    def keep_result(*args: Any, **kwargs: Any) -> Any:
        returned.append(original(*args, **kwargs))

    return keep_result


def too_late(item: Any) -> BaseException:
    """The outcome of a test marked after the plugin prepared its checks."""
    return pytest.fail.Exception(
        f"{item.nodeid}: @pytest.mark.torchscript was added after the plugin prepared its "
        f"checks (with request.node.add_marker in a fixture or in the test itself), so "
        f"nothing was checked. Put the mark on the test, or add it in "
        f"pytest_collection_modifyitems",
        pytrace=False,
    )


def finish_marked_test(item: Any, checker: Any, returned: Any) -> None:
    """Check the returned model; fail a test that neither returned one nor used the fixture."""
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
