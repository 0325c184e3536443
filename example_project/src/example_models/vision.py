"""Image classifiers built on torchvision backbones (random weights: nothing is downloaded)."""

import torch
import torchvision

ARCHITECTURES = ("resnet18", "mobilenet_v3_small")


def build_classifier(arch: str, num_classes: int = 10) -> torch.nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
