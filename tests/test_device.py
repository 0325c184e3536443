"""--ts-device: validated at start-up, and unavailable devices skip with the reason."""

import pytest

MARKED = """
import pytest
import torch
from models import Affine

@pytest.mark.torchscript(inputs=torch.randn(2, 4))
def test_marked():
    return Affine().eval()

def test_device_fixture(ts_device):
    assert str(ts_device) == "cpu"

def test_unmarked():
    pass
"""


@pytest.mark.parametrize(
    "option, expected",
    [
        ("--ts-device=GPU!", "ERROR: --ts-device: 'GPU!' is not a torch device; use cpu, cuda*"),
        ("--ts-device=tpu:0", "ERROR: --ts-device: torch cannot parse device 'tpu:0': *"),
    ],
)
def test_device_torch_cannot_parse_is_a_usage_error(suite, option, expected):
    result = suite(MARKED, option)
    result.stderr.fnmatch_lines([expected])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unavailable_device_skips_plugin_tests_with_the_reason(suite):
    result = suite(MARKED, "--ts-device=cuda:0", "-rs")
    if result.parseoutcomes().get("skipped") is None:
        pytest.skip("this machine has a CUDA device, so cuda:0 is available")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED * --ts-device asks for cuda:0, but *"]  # no CUDA build, or no device visible
    )


def test_device_from_ini(suite):
    result = suite(MARKED, ini="[pytest]\nts_device = cpu\n")
    result.assert_outcomes(passed=3)
