"""DenseSharp-style 3D DenseNet (Report 2): dense blocks of bottleneck layers joined by compressing transitions."""
from __future__ import annotations

import torch
from torch import nn


def bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1³ (bottleneck·growth) then BN-ReLU-Conv3³ (growth); its output joins its input."""

    def __init__(self, cin: int, growth: int, bottleneck: int):
        super().__init__()
        mid = bottleneck * growth
        self.body = nn.Sequential(
            *bn_relu(cin), nn.Conv3d(cin, mid, 1, bias=False),
            *bn_relu(mid), nn.Conv3d(mid, growth, 3, padding=1),  # Keras DenseSharp keeps this bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet3D(nn.Module):
    """3x3x3 stem, dense blocks with BN-ReLU-Conv1³-AvgPool2 transitions, BN-ReLU, global pool, linear.

    Defaults are Report 2's (growth 16, bottleneck 2, Keras "compression 2" = halve channels, 32 stem
    channels, blocks (4, 4)): 134,834 trainable parameters with 2 outputs. Keras' summary says 136,786
    because it also counts the 1,952 BatchNorm moving means/variances (976 channels x 2), which PyTorch
    keeps as buffers; the trainable counts match exactly. Works for any cube of side >= 2**(blocks-1).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, growth: int = 16, bottleneck: int = 2,
                 compression: float = 0.5, init_channels: int = 32, block_layers=(4, 4)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(in_channels, init_channels, 3, padding=1)]
        c = init_channels
        for i, n in enumerate(block_layers):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bottleneck))
                c += growth
            if i < len(block_layers) - 1:
                cout = int(c * compression)
                layers += [*bn_relu(c), nn.Conv3d(c, cout, 1), nn.AvgPool3d(2)]
                c = cout
        self.features = nn.Sequential(*layers, *bn_relu(c), nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                # Keras' he_uniform with zero biases, as in the report's code
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
