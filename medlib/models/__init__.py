"""Networks by name: 2D ResNet-18/50 (two stems), 3D DenseNet, the 3-conv baseline, 3D ResNet-18."""

from __future__ import annotations

import importlib

from torch import nn

from ..errors import MedlibError
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50

# name -> (module, factory, spatial dims); 3D modules load lazily
_MODELS = {
    "resnet18": ("resnet", "resnet18", 2),
    "resnet50": ("resnet", "resnet50", 2),
    "densenet3d": ("densenet3d", "DenseNet3D", 3),
    "baseline3d": ("baseline3d", "Baseline3D", 3),
    "baseline3d_plain": ("baseline3d", "baseline3d_plain", 3),  # without BatchNorm (loss-curve lesson)
    "resnet18_3d": ("resnet3d", "resnet18_3d", 3),
}
MODELS = tuple(_MODELS)


def model_dims(name: str) -> int:
    if name not in _MODELS:
        raise MedlibError(f"Unknown model '{name}'; choose one of {', '.join(_MODELS)}.")
    return _MODELS[name][2]


def build_model(name: str, in_channels: int, num_classes: int, stem: str = "small", **kw) -> nn.Module:
    """Instantiate a network; `stem` applies to the ResNets (2D and 3D) only."""
    model_dims(name)  # one clear error for an unknown name
    module, factory, _ = _MODELS[name]
    fn = getattr(importlib.import_module(f"{__name__}.{module}"), factory)
    if module.startswith("resnet"):
        return fn(in_channels=in_channels, num_classes=num_classes, stem=stem, **kw)
    return fn(in_channels=in_channels, num_classes=num_classes, **kw)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet50",
    "build_model",
    "count_parameters",
    "model_dims",
    "MODELS",
]
