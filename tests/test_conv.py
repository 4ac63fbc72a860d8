"""The one-position convolution (models.conv) against torch's own nn.Conv2d / nn.Conv3d: same outputs, same
gradients, in float64, wherever the shortcut applies and wherever it does not."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from medlib.engine.cost import flops_per_sample, network_flops
from medlib.models import build_model
from medlib.models.conv import Conv2d, Conv3d, OnePositionAsMatmul, single_window

GRID = [
    (k, s, p, n, cl, bias)
    for k, s, p, n, cl, bias in itertools.product((1, 3, 7), (1, 2), (0, 1, 3), (1, 2, 3), (False, True), (False, True))
    if p < k and (n + 2 * p - k) // s + 1 >= 1
]


@pytest.mark.parametrize("dims", [2, 3])
def test_outputs_and_gradients_match_torch_conv(dims):
    torch.manual_seed(0)
    ours_cls, ref_cls = (Conv2d, nn.Conv2d) if dims == 2 else (Conv3d, nn.Conv3d)
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    shortcut_taken = 0
    for k, s, p, n, cl, bias in GRID:
        ref = ref_cls(5, 4, k, stride=s, padding=p, bias=bias).double()
        ours = ours_cls(5, 4, k, stride=s, padding=p, bias=bias).double()
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(3, 5, *(n,) * dims, dtype=torch.double)
        x = x.to(memory_format=fmt) if cl else x
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ref(xa), ours(xb)
        g = torch.randn_like(ya)
        ya.backward(g)
        yb.backward(g)
        pairs = [(ya, yb), (xa.grad, xb.grad), (ref.weight.grad, ours.weight.grad)]
        pairs += [(ref.bias.grad, ours.bias.grad)] if bias else []
        for a, b in pairs:
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12), (k, s, p, n, cl, bias)
        shortcut_taken += single_window((n,) * dims, (k,) * dims, (s,) * dims, (p,) * dims) is not None
    assert shortcut_taken >= 20  # the grid exercises the shortcut, not only the fallback


def test_single_window_covers_the_taps_that_meet_data():
    assert single_window((1, 1), (3, 3), (1, 1), (1, 1)) == (1, 1)  # centre tap only
    assert single_window((2, 2), (3, 3), (2, 2), (1, 1)) == (2, 2)  # stride 2 from 2x2: taps 1..2
    assert single_window((2, 2), (3, 3), (1, 1), (1, 1)) is None  # a 2x2 output: nn.Conv2d's own path
    assert single_window((2, 2), (1, 1), (2, 2), (0, 0)) == (1, 1)  # a strided 1x1 projection reads one pixel


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_at_28_px_trains_as_with_torch_convolutions(arch):
    """Report 1's ResNets at 28 px (ImageNet stem) reach 1x1 in their last stage; with the shortcut switched off
    every convolution is nn.Conv2d's own, and logits and every parameter's gradient agree."""
    torch.manual_seed(1)
    net = build_model(arch, 3, 5, stem="imagenet").double()
    x, y = torch.randn(4, 3, 28, 28, dtype=torch.double), torch.tensor([0, 1, 2, 4])
    grads = []
    for on in (True, False):
        for m in net.modules():
            if isinstance(m, OnePositionAsMatmul):
                m.one_position = on
        net.zero_grad()
        logits = net(x)
        nn.functional.cross_entropy(logits, y).backward()
        grads.append((logits.detach(), [q.grad.clone() for q in net.parameters()]))
    (la, ga), (lb, gb) = grads
    assert torch.allclose(la, lb, atol=1e-10)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(ga, gb))


def test_flop_count_drops_by_the_padding_taps_it_skips():
    """ResNet-18 at 28 px: three 3x3, 512 -> 512 convolutions see a 1x1 map (layer4 but its first, strided one,
    which reads a 2x2 map through 4 taps); each skips 8 of 9 taps, stride-2 one 5 of 9 (counted exactly)."""
    shape = (3, 28, 28)
    ours = flops_per_sample("resnet18", 3, 10, shape, "imagenet")
    net = build_model("resnet18", 3, 10, stem="imagenet")
    for m in net.modules():
        if isinstance(m, OnePositionAsMatmul):
            m.one_position = False
    full = network_flops(net, shape)
    # forward, per sample: 3 x 512*512*8 skipped taps, the strided one 512*256*5, its 1x1 projection none
    skipped_macs = 3 * 512 * 512 * 8 + 512 * 256 * 5
    assert full["eval"] - ours["eval"] == 2 * skipped_macs
    assert ours["train"] < full["train"]
