"""Convolutions that skip what reads only zero padding: a 3x3 convolution whose output is one position.

At 28 px with the ImageNet stem (Report 1's ResNets), the last stage runs on 1x1 (2D) or 1³ (3D) maps. There
a 3x3, padding-1 convolution meets data with its centre tap only; the other eight taps read the zero padding.
oneDNN still computes all nine, and its weight gradient at that shape took 22x the forward's time
(benchmarks/cpu2d.py profile, AVX2): a third of ResNet-18's training step. As a matrix product over the taps
that meet data it gives the same output and the same gradients (zero for the taps that read only padding),
with the parameters, their shapes and the state dict unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def single_window(size: tuple[int, ...], kernel, stride, padding) -> tuple[int, ...] | None:
    """Per spatial dimension, how many input positions the one output window covers, or None when the
    output is not a single position."""
    covered = []
    for n, k, s, p in zip(size, kernel, stride, padding):
        if (n + 2 * p - k) // s + 1 != 1 or not 0 <= p < k:
            return None
        covered.append(min(n, k - p))  # the window starts at -p: its taps p .. p + covered - 1 meet data
    return tuple(covered)


class OnePositionAsMatmul:
    """Mixin for nn.Conv2d / nn.Conv3d: a single-position output is computed from the taps that meet data.
    `one_position = False` on a module runs nn.Conv*d's own path (benchmarks' 'before', tests' oracle)."""

    one_position = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = len(self.kernel_size)
        plain = self.groups != 1 or self.padding_mode != "zeros" or any(d != 1 for d in self.dilation)
        plain = plain or not self.one_position or isinstance(self.padding, str)
        covered = None if plain else single_window(tuple(x.shape[-dims:]), self.kernel_size, self.stride, self.padding)
        if covered is None:
            return super().forward(x)
        patch = x[(..., *(slice(0, c) for c in covered))].flatten(1)
        taps = self.weight[(slice(None), slice(None), *(slice(p, p + c) for p, c in zip(self.padding, covered)))]
        out = F.linear(patch, taps.flatten(1), self.bias)
        return out.reshape(len(x), self.out_channels, *(1,) * dims)


class Conv2d(OnePositionAsMatmul, nn.Conv2d):
    """nn.Conv2d; a 1x1 output is a matrix product over the taps that meet data."""


class Conv3d(OnePositionAsMatmul, nn.Conv3d):
    """nn.Conv3d; a 1³ output is a matrix product over the taps that meet data."""
