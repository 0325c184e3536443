"""mode="compile": torch.compile checked on every input set, its graph breaks named at the user's
line with their kind, its recompiles with the guard that failed, gates on both, fullgraph, the
compile-cache round trip (in this process and in a fresh one), and what a machine or a model
that cannot take part says. Dynamo is under test, not Inductor: the suites compile with
backend="aot_eager" (milliseconds), except the one test of the default Inductor backend."""

from __future__ import annotations

import json
import textwrap

from conftest import assert_no_plugin_traceback, expect_lines, line_of

HAZARDS = '''
import torch


class Branch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.linear(x)
        if y.sum() > 0:
            return y * 2
        return y - 5


class Printing(torch.nn.Module):
    def forward(self, x):
        print("total", x.sum())
        return x.relu()


class Item(torch.nn.Module):
    def forward(self, x):
        return x * float(x.abs().max().item())


class Masked(torch.nn.Module):
    def forward(self, x):
        return x[x > 0].sum() + x.mean()


class Plain(torch.nn.Module):
    def forward(self, x):
        return {"out": x.relu() * 2}


class Clean(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return {"out": self.linear(x).relu(), "sum": x.sum(1)}
'''

AOT = "compile_options={'backend': 'aot_eager'}"


def _suite(pytester, suite, source, *args, **kwargs):
    pytester.makepyfile(hazards=HAZARDS)
    return suite(source, *args, **kwargs)


def _report(pytester):
    return {
        check["test_id"].split("::")[-1]: check
        for check in json.loads((pytester.path / "report.json").read_text())["checks"]
    }


def test_a_clean_model_passes_on_every_set_with_its_recompile_named_and_the_cache_round_trip(
    suite, pytester
):
    result = _suite(
        pytester,
        suite,
        f"""
        import pytest
        import torch
        from hazards import Clean

        @pytest.mark.torchscript(mode="compile", {AOT},
                                 inputs=[torch.randn(2, 4), torch.randn(5, 4), torch.randn(7, 4)])
        def test_clean():
            return Clean().eval()

        @pytest.mark.torchscript(mode="compile", inputs=[torch.randn(2, 4), torch.randn(5, 4)],
                                 compile_options={{"backend": "aot_eager", "dynamic": True}},
                                 max_graph_breaks=0, max_recompiles=0)
        def test_dynamic_from_the_start():
            return Clean().eval()
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=2)
    expect_lines(
        result,
        [
            "passed*compile*ok ok*test_user.py::test_clean",
            "  test_user.py::test_clean (compile):",
            "    recompiled on input set 1: x.size(0) changed 2 -> 5 under a static shape guard",
        ],
    )
    checks = _report(pytester)
    clean = checks["test_clean"]
    # the default dynamic=None recompiles once, then the batch is dynamic: 7 compiles nothing
    assert [r["input_index"] for r in clean["compile"]["recompiles"]] == [1]
    assert clean["compile"]["graph_breaks"] == [] and clean["compile"]["graphs"] == 1
    assert [rt["where"] for rt in clean["roundtrips"]] == ["in-process", "fresh process"]
    assert all(rt["ok"] and len(rt["parity"]) == 3 for rt in clean["roundtrips"])
    assert sorted(clean["compile"]["warm_seconds"]) == ["0", "1", "2"]
    assert len(clean["parity"]) == 3 and all(p["ok"] for p in clean["parity"])
    assert checks["test_dynamic_from_the_start"]["compile"]["recompiles"] == []
    assert "test_dynamic_from_the_start (compile)" not in result.stdout.str()  # nothing to say


def test_graph_breaks_are_named_at_the_users_line_with_their_kind_and_gated(suite, pytester):
    source = f"""
        import pytest
        import torch
        from hazards import Branch, Item, Masked, Printing

        @pytest.mark.parametrize("model", [Branch, Printing, Item, Masked])
        @pytest.mark.torchscript(mode="compile", {AOT}, inputs=torch.randn(2, 4))
        def test_reported(model):
            return model().eval()

        @pytest.mark.torchscript(mode="compile", {AOT}, inputs=torch.randn(2, 4),
                                 max_graph_breaks=0)
        def test_gated():
            return Branch().eval()
        """
    result = _suite(pytester, suite, source, "--ts-report=report.json")
    result.assert_outcomes(passed=4, failed=1)
    branch = line_of(HAZARDS, "if y.sum() > 0:")
    expect_lines(
        result,
        [
            "torchscript check of Branch failed at graph-breaks (mode='compile', device=cpu)",
            "torch.compile broke the model into 2 graphs at 1 graph break(s), above "
            "max_graph_breaks=0; the code between them runs in Python, uncompiled:",
            f"  hazards.py:{branch}: data-dependent branch (an `if` on a tensor's value): "
            f"`if y.sum() > 0:`",
            "hint: express a branch on tensor values with torch.where or torch.cond(*",
        ],
    )
    expect_lines(
        result,
        [
            "  test_user.py::test_reported[Branch] (compile):",
            f"    graph breaks in your code (2 graphs): hazards.py:{branch} data-dependent branch*",
        ],
    )
    kinds = {
        name: [b["kind"] for b in check["compile"]["graph_breaks"]]
        for name, check in _report(pytester).items()
        if check["compile"]
    }
    assert kinds["test_reported[Printing]"] == ["print() call"]
    assert kinds["test_reported[Item]"] == ["tensor turned into a Python number (.item())"]
    assert kinds["test_reported[Masked]"] == ["operator whose output shape depends on the data"]
    located = _report(pytester)["test_reported[Printing]"]["compile"]["graph_breaks"][0]
    assert located["location"] == f"hazards.py:{line_of(HAZARDS, 'print(')}"
    assert located["in_user_code"] is True
    assert_no_plugin_traceback(result)


def test_recompiles_are_gated_with_the_guard_in_words_and_the_fix(suite, pytester):
    result = _suite(
        pytester,
        suite,
        f"""
        import pytest
        import torch
        from hazards import Clean, Plain

        @pytest.mark.torchscript(mode="compile", {AOT}, max_recompiles=0,
                                 inputs=[torch.randn(2, 4), torch.randn(3, 4)])
        def test_static_shape():
            return Clean().eval()

        @pytest.mark.torchscript(mode="compile", {AOT}, max_recompiles=0,
                                 inputs=[torch.randn(2, 4), torch.randn(2, 4).double()])
        def test_dtype():
            return Plain().eval()
        """,
    )
    result.assert_outcomes(failed=2)
    expect_lines(
        result,
        [
            "torchscript check of Clean failed at recompiles (mode='compile', device=cpu)",
            "torch.compile compiled the model again 1 time(s) over the input sets, above "
            "max_recompiles=0; in deployment each recompile stalls a request:",
            "  input set 1: x.size(0) changed 2 -> 3 under a static shape guard, recompiling "
            "forward (hazards.py:*)",
            "hint: a new size under a static shape guard compiles the model again*"
            "compile_options={'dynamic': True}, or mark the dimension before the first call: "
            "torch._dynamo.mark_dynamic(x, 0)",
        ],
    )
    expect_lines(
        result,
        [
            "  input set 1: x's dtype changed Float -> Double, recompiling forward*",
            "hint: each dtype gets a graph of its own*",
        ],
    )


def test_fullgraph_makes_a_break_a_conversion_failure_at_the_line(suite, pytester):
    result = _suite(
        pytester,
        suite,
        """
        import pytest
        import torch
        from hazards import Branch

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4),
                                 compile_options={"backend": "aot_eager", "fullgraph": True})
        def test_fullgraph():
            return Branch().eval()
        """,
    )
    result.assert_outcomes(failed=1)
    expect_lines(
        result,
        [
            "torchscript check of Branch failed at conversion (mode='compile', device=cpu)",
            "torch.compile could not convert Branch (mode='compile')",
            f"  at hazards.py:{line_of(HAZARDS, 'if y.sum() > 0:')}: if y.sum() > 0:",
            "  Unsupported: Data-dependent branching",
            "hint: fullgraph=True makes every graph break an error, and this is a data-dependent "
            "branch*torch.cond(*",
        ],
    )
    assert all(len(line) <= 170 for line in result.outlines if "hazards.py" in line)
    assert_no_plugin_traceback(result)


def test_bad_compile_options_and_a_compiled_model_are_usage_errors(suite, pytester):
    result = _suite(
        pytester,
        suite,
        """
        import pytest
        import torch
        from hazards import Clean

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4),
                                 compile_options={"fullgrpah": True})
        def test_typo():
            return Clean().eval()

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4), max_recompiles=-1)
        def test_negative():
            return Clean().eval()
        """,
    )
    result.assert_outcomes(errors=1)
    expect_lines(
        result,
        [
            "*test_user.py::test_typo: @pytest.mark.torchscript: option compile_options="
            "{'fullgrpah': True} is invalid ('fullgrpah' is not a torch.compile keyword (it "
            "takes backend, mode, dynamic, fullgraph, options, disable)); compile_options "
            "accepts a dict of torch.compile keywords*",
            "*test_user.py::test_negative: @pytest.mark.torchscript: option max_recompiles=-1 is "
            "invalid (-1 is not a whole number >= 0)*",
        ],
    )
    compiled = suite(
        """
        import torch
        from models import Affine

        def test_compiled(torchscript):
            torchscript.check(torch.compile(Affine()), torch.randn(2, 4), mode="compile")
        """,
        "test_compiled.py",
        name="test_compiled",
    )
    compiled.assert_outcomes(failed=1)
    expect_lines(compiled, ["*the model is a torch.compile wrapper*mode='compile' compiles it "
                            "itself (compile_options= passes torch.compile's keywords)"])


def test_a_model_the_fresh_process_cannot_import_says_skip_with_why(suite, pytester):
    result = suite(
        """
        import torch

        def test_local(torchscript):
            class Local(torch.nn.Module):
                def forward(self, x):
                    return x * 2

            report = torchscript.check(Local(), torch.randn(2, 3), mode="compile",
                                       compile_options={"backend": "aot_eager"})
            fresh = report.roundtrips[1]
            assert fresh.skipped and not fresh.parity
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=1)
    expect_lines(
        result,
        [
            "passed*compile*ok skip*test_user.py::test_local",
            "  skipped in a fresh process (test_user.py::test_local): the model cannot be handed "
            "to a fresh process (*): define its class, and any backend callable in "
            "compile_options, at the top level of a module",
        ],
    )


def test_without_a_cxx_compiler_inductor_skips_and_aot_eager_still_runs(suite, pytester):
    pytester.makeconftest(
        """
        import pytest_torchscript.modes.compile as compile_mode

        compile_mode._COMPILERS = ("no-such-c++",)
        """
    )
    pytester.makepyfile(hazards=HAZARDS)
    result = suite(
        """
        import pytest
        import torch
        from torch._inductor import config
        from hazards import Clean

        config.cpp.cxx = ("no-such-c++",)

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4))
        def test_inductor():
            return Clean().eval()

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4),
                                 compile_options={"backend": "aot_eager"}, roundtrip=False)
        def test_aot_eager():
            return Clean().eval()
        """,
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=1)
    expect_lines(
        result,
        [
            "SKIPPED*test_user.py:*: mode='compile' with the Inductor backend builds CPU kernels "
            "with a C++ compiler, and none was found*compile_options={'backend': 'aot_eager'}",
        ],
    )


def test_inductor_itself_on_a_dict_output_model(suite, pytester):
    """The default backend, end to end once: compiled kernels, the cache saved (it holds
    Inductor's artifacts) and compiled again from it in a fresh process."""
    result = _suite(
        pytester,
        suite,
        """
        import pytest
        import torch
        from hazards import Clean

        @pytest.mark.torchscript(mode="compile", inputs=[torch.randn(2, 4), torch.randn(2, 4)])
        def test_inductor():
            return Clean().eval()
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=1)
    check = _report(pytester)["test_inductor"]
    assert check["compile"]["cache_kinds"].get("inductor", 0) >= 1, check["compile"]
    assert [rt["ok"] for rt in check["roundtrips"]] == [True, True]
    assert check["artifact_bytes"] > 0
    expect_lines(
        result,
        [
            "    compile cache (aot_autograd *, inductor *): the first call took * in a fresh "
            "process with it, * cold here"
        ],
    )


def test_the_report_and_matrix_carry_the_compile_mode(suite, pytester):
    result = _suite(
        pytester,
        suite,
        textwrap.dedent(
            f"""
            import pytest
            import torch
            from models import Branchy

            @pytest.mark.torchscript(mode=["trace", "compile"], {AOT},
                                     inputs=[torch.ones(2, 4), -torch.ones(2, 4)])
            def test_both():
                return Branchy().eval()
            """
        ),
        "--ts-html=report.html",
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "migration matrix (per model: a verdict for each mode):",
            "  trace*compile*model",
            "  FAIL parity*pass*Branchy (test_user.py)",
        ],
    )
    page = (pytester.path / "report.html").read_text()
    assert "test_both[compile]" in page


def test_a_break_inside_a_library_is_counted_for_it_with_the_users_line_that_led_there(
    suite, pytester
):
    """A break in an installed library's code (torchvision, transformers) is not the user's to
    fix: it is counted per library, not listed among the user's lines. (Dynamo reports such a
    break in the library function's own frame; where its stack also holds the user's line that
    led there, that line is kept as ``user_frame``.)"""
    library = pytester.path / "vendor" / "site-packages" / "fancylib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(
        "def noisy_norm(x):\n    print('norm', x.sum())\n    return x / x.abs().max()\n"
    )
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(library.parent)!r})\n")
    result = suite(
        """
        import pytest
        import torch
        import fancylib

        class UsesLibrary(torch.nn.Module):
            def forward(self, x):
                return fancylib.noisy_norm(x) * 2

        @pytest.mark.torchscript(mode="compile", inputs=torch.randn(2, 4), roundtrip=False,
                                 compile_options={"backend": "aot_eager"})
        def test_library_break():
            return UsesLibrary().eval()
        """,
        "--ts-report=report.json",
    )
    result.assert_outcomes(passed=1)
    expect_lines(result, ["    graph breaks in libraries (not your code): fancylib 1"])
    (found,) = _report(pytester)["test_library_break"]["compile"]["graph_breaks"]
    assert found["library"] == "fancylib" and not found["in_user_code"]
    assert found["kind"] == "print() call"
    assert found["location"].endswith("site-packages/fancylib/__init__.py:2")


def test_the_fixtures_single_steps_round_trip_a_compile_cache_or_say_why_not(suite, pytester):
    """torchscript.roundtrip() of what torchscript.convert() returned: a compile cache reloads
    by compiling its model again; a mode that cannot reload from the artifact alone (onnx
    needs the eager model's signature) fails the test saying so, never a plugin traceback."""
    result = suite(
        """
        import pytest
        import torch
        from models import Affine

        @pytest.mark.torchscript(mode="compile", compile_options={"backend": "aot_eager"})
        def test_compile_steps(torchscript):
            model = Affine().eval()
            reloaded = torchscript.roundtrip(torchscript.convert(model, torch.randn(2, 4)))
            torchscript.assert_parity(model, reloaded, [torch.randn(3, 4)])

        @pytest.mark.torchscript(mode="onnx")
        def test_onnx_steps(torchscript):
            model = Affine().eval()
            torchscript.roundtrip(torchscript.convert(model, torch.randn(2, 4)))
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    expect_lines(
        result,
        [
            "*test_user.py::test_onnx_steps: torchscript.roundtrip() saved onnx.onnx but could "
            "not load it back (mode='onnx'): AttributeError:*",
            "*hint: torchscript.check(model, inputs, mode='onnx') converts and round-trips with "
            "everything the mode needs",
        ],
    )
    assert_no_plugin_traceback(result)
