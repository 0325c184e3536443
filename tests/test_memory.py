"""Nothing of a finished check stays alive: a suite of many checks must not grow in memory.

The model carries 16 MB of weights, so a check that kept its model, its converted module or
its outputs would grow resident memory by 16 MB or more per check; the bound is generous
(6 MB per check, fitted over the later checks) so allocator noise cannot fail it.

Resident memory is read after ``malloc_trim(0)`` where the C library has it (glibc): glibc
serves a freed 16 MB block's size from its heap afterwards and may keep the freed blocks
rather than return them (measured: one run of the whole suite under ``-n 2``, and 1 of 27
runs of these checks alone three at a time, grew 16 MB per check with every model already
collected; at the end of runs that did not grow, the trim still gave back 16-66 MB). That
is the allocator's, not a check's, so the test asks the allocator to give back what is free,
and also asks directly that every model is gone.
"""

import json

from conftest import expect_lines

CHECKS = 24


def test_resident_memory_stays_flat_over_many_checks(suite, pytester):
    pytester.makeconftest(
        """
        import ctypes
        import ctypes.util
        import gc
        import json
        import os

        SIZES = []
        ALIVE = []
        LIBC = ctypes.CDLL(ctypes.util.find_library("c"))

        def _resident_bytes():
            if hasattr(LIBC, "malloc_trim"):
                LIBC.malloc_trim(0)  # give back what the allocator holds free
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        def pytest_runtest_teardown(item, nextitem):
            gc.collect()
            SIZES.append(_resident_bytes())
            ALIVE.append(sum(model() is not None for model in item.module.MODELS))

        def pytest_sessionfinish(session):
            with open("rss.json", "w") as out:
                json.dump({"sizes": SIZES, "alive": ALIVE}, out)
        """
    )
    result = suite(
        f"""
        import weakref

        import pytest
        import torch

        MODELS = []

        @pytest.mark.parametrize("index", range({CHECKS}))
        @pytest.mark.torchscript(inputs=[torch.randn(4, 2048), torch.randn(8, 2048)])
        def test_big(index):
            model = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU()).eval()
            MODELS.append(weakref.ref(model))
            return model
        """
    )
    result.assert_outcomes(passed=CHECKS)
    expect_lines(result, [f"{CHECKS} check(s): {CHECKS} passed, 0 failed*"])
    measured = json.loads((pytester.path / "rss.json").read_text())
    assert measured["alive"] == [0] * CHECKS, f"checked models still alive: {measured['alive']}"
    sizes = measured["sizes"]
    later = sizes[CHECKS // 3 :]  # after torch's own caches have warmed up
    count = len(later)
    mean_x = (count - 1) / 2
    mean_y = sum(later) / count
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(later)) / sum(
        (x - mean_x) ** 2 for x in range(count)
    )
    assert slope < 6e6, f"resident memory grows {slope / 1e6:.1f} MB per check: {sizes}"


def test_scripted_classes_are_forgotten_when_the_test_ends(suite):
    # TorchScript keeps every scripted Python class in a process-wide registry until the
    # process ends; like transformers' own tests, the plugin drops it after each test that
    # scripted, and a later test scripts the same classes again without trouble.
    result = suite(
        """
        import pytest
        import torch

        @torch.jit.script
        class Pair:
            def __init__(self, a: torch.Tensor, b: torch.Tensor):
                self.a = a
                self.b = b

        class UsesPair(torch.nn.Module):
            def forward(self, x):
                pair = Pair(x, x + 1)
                return pair.a * pair.b

        @pytest.mark.torchscript(mode="script", inputs=torch.randn(3), roundtrip=False)
        def test_a_scripts():
            return UsesPair()

        def test_b_sees_an_empty_registry():
            assert not torch.jit._state._script_classes

        @pytest.mark.torchscript(mode="script", inputs=torch.randn(3), roundtrip=False)
        def test_c_scripts_again():
            return UsesPair()
        """
    )
    result.assert_outcomes(passed=3)
