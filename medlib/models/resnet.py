"""ResNet-18 and ResNet-50 written out by hand (He et al. 2016), as in Report 1, with two stems."""

from __future__ import annotations

import torch
from torch import nn

from ..choices import STEMS
from .conv import Conv2d


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)  # BN follows, so no bias


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return Conv2d(cin, cout, 1, stride=stride, bias=False)


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match; otherwise a 1x1 projection (Report 1's 'dashed line' block)."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus the shortcut: the unit of ResNet-18/34."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = conv3x3(cin, width, stride), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, cout), nn.BatchNorm2d(cout)
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) plus the shortcut: the unit of ResNet-50 and deeper."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = conv1x1(cin, width), nn.BatchNorm2d(width)
        # stride sits on the 3x3 (torchvision's "ResNet v1.5"), which is what the published count assumes
        self.conv2, self.bn2 = conv3x3(width, width, stride), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, cout), nn.BatchNorm2d(cout)
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, four stages (conv2_x..conv5_x) of blocks, global average pool, linear classifier.

    stem='imagenet': 7x7 stride-2 conv + 3x3 stride-2 max-pool (Report 1, torchvision, 224 px).
    stem='small': 3x3 stride-1 conv, no pool (the MedMNIST benchmark's 28-px ResNets), so a
    28x28 image is not shrunk to 7x7 before the first block.
    """

    def __init__(self, block, layers, in_channels: int = 3, num_classes: int = 1000, stem: str = "imagenet"):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, not {stem!r}")
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        cin, stages = 64, []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(cin, width, stride))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet18(in_channels: int = 3, num_classes: int = 1000, stem: str = "imagenet") -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels, num_classes, stem)


def resnet50(in_channels: int = 3, num_classes: int = 1000, stem: str = "imagenet") -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), in_channels, num_classes, stem)
