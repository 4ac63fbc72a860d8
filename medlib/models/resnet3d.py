"""ResNet-18 in 3D (full 3x3x3 kernels), for comparison with the MedMNIST v2 3D benchmark."""

from __future__ import annotations

import torch
from torch import nn

from ..choices import STEMS
from .conv import Conv3d


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    return Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)  # BN follows, so no bias


class BasicBlock3D(nn.Module):
    """Two 3x3x3 convolutions plus an identity shortcut, or a strided 1x1x1 projection when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = conv3(cin, cout, stride), nn.BatchNorm3d(cout)
        self.conv2, self.bn2 = conv3(cout, cout), nn.BatchNorm3d(cout)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet3D(nn.Module):
    """Stem, four stages, global pool, linear; the two stems of the 2D ResNets, in 3D.

    stem='small': 3x3x3 stride-1 conv, no pool (the MedMNIST v2 benchmark): 28³ stays 28³ into the first
    stage, 106 GFLOP per cube forward + backward, a GPU job. stem='imagenet': 7x7x7 stride-2 conv + 3x3x3
    stride-2 max-pool, so the first stage sees 7³: 2.2 GFLOP, 48x cheaper, affordable on a CPU.
    """

    def __init__(
        self,
        layers=(2, 2, 2, 2),
        widths=(64, 128, 256, 512),
        in_channels: int = 1,
        num_classes: int = 2,
        stem: str = "small",
    ):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, not {stem!r}")
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv3d(in_channels, widths[0], 7, stride=2, padding=3, bias=False),
                nn.BatchNorm3d(widths[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool3d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(conv3(in_channels, widths[0]), nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        stages, cin = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, layers)):
            blocks = [BasicBlock3D(cin if j == 0 else width, width, 2 if i > 0 and j == 0 else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def resnet18_3d(in_channels: int = 1, num_classes: int = 2, stem: str = "small") -> ResNet3D:
    return ResNet3D((2, 2, 2, 2), (64, 128, 256, 512), in_channels, num_classes, stem)
