import pytest
import torch
from example_models.vision import build_classifier


def images():
    """A single image and a batch: the batch dimension must stay dynamic when exported."""
    generator = torch.Generator().manual_seed(0)
    return [
        torch.randn(1, 3, 96, 96, generator=generator),
        torch.randn(4, 3, 96, 96, generator=generator),
    ]


@pytest.mark.torchscript(mode="all", inputs=images)
def test_resnet18_converts():
    return build_classifier("resnet18").eval()


@pytest.mark.torchscript(mode="all", inputs=images)
def test_mobilenet_converts():
    return build_classifier("mobilenet_v3_small").eval()


@pytest.mark.torchscript(mode="aoti", inputs=images)
def test_resnet18_deploys_with_aoti():
    """The C++ deployment PyTorch recommends now: an AOTInductor package, checked in Python, in
    a fresh process and in a C++ process. It compiles for about a minute, so one model here."""
    return build_classifier("resnet18").eval()


@pytest.mark.torchscript(mode="tvm", inputs=images)
def test_mobilenet_deploys_with_tvm():
    """Apache TVM's ahead-of-time build (Relax, an untuned llvm build): one library for both
    batch sizes, checked here and in a fresh process that never imports this project."""
    return build_classifier("mobilenet_v3_small").eval()
