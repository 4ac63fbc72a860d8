"""Report 2's "3-conv-layer" network: a small 3D CNN baseline (it scored about 0.64 AUC, DenseNet 0.66)."""

from __future__ import annotations

import torch
from torch import nn


class Baseline3D(nn.Module):
    """Three Conv3³-BN-ReLU-MaxPool2 stages (width, 2·width, 4·width), global average pool, linear. Cubes >= 8.
    norm=False drops the BatchNorms (the convs get biases): the loss-curve lesson of what BN protects against."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 16, norm: bool = True):
        super().__init__()
        stages, c = [], in_channels
        for w in (width, 2 * width, 4 * width):
            # with BN after it, the conv needs no bias
            conv = nn.Conv3d(c, w, 3, padding=1, bias=not norm)
            stages += [conv, nn.BatchNorm3d(w)] if norm else [conv]
            stages += [nn.ReLU(inplace=True), nn.MaxPool3d(2)]
            c = w
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def baseline3d_plain(in_channels: int = 1, num_classes: int = 2, width: int = 16) -> Baseline3D:
    """The 3-conv baseline without BatchNorm."""
    return Baseline3D(in_channels, num_classes, width, norm=False)
