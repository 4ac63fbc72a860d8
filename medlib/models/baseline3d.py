"""Report 2's "3-conv-layer" network: a small 3D CNN baseline (it scored about 0.64 AUC, DenseNet 0.66)."""
from __future__ import annotations

import torch
from torch import nn


class Baseline3D(nn.Module):
    """Three Conv3³-BN-ReLU-MaxPool2 stages (width, 2·width, 4·width), global average pool, linear. Cubes >= 8."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 16):
        super().__init__()
        stages, c = [], in_channels
        for w in (width, 2 * width, 4 * width):
            # BN follows, so the conv needs no bias
            stages += [nn.Conv3d(c, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU(inplace=True),
                       nn.MaxPool3d(2)]
            c = w
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
