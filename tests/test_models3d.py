"""3D networks: parameter counts pinned to the measured (and, for DenseNet3D, Keras') values; shapes; backward."""

from functools import partial

import pytest
import torch

from medlib.models import build_model
from medlib.models.baseline3d import Baseline3D
from medlib.models.densenet3d import DenseNet3D
from medlib.models.resnet3d import resnet18_3d


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_densenet3d_matches_report2_keras_count():
    net = DenseNet3D()
    bn_stats = sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert n_params(net) == 134_834  # Keras "Trainable params" of Report 2's model
    assert n_params(net) + bn_stats == 136_786  # Keras "Total params" also counts BN moving mean / variance


def test_other_counts():
    assert n_params(Baseline3D()) == 69_906
    assert n_params(resnet18_3d()) == 33_140_802
    # the ImageNet stem swaps the 3³x64 stem conv for a 7³x64 one; nothing else changes
    assert n_params(resnet18_3d(stem="imagenet")) == 33_140_802 - 27 * 64 + 343 * 64
    assert n_params(DenseNet3D(num_classes=1)) == 134_834 - 113


@pytest.mark.parametrize(
    "make",
    [DenseNet3D, Baseline3D, resnet18_3d, partial(resnet18_3d, stem="imagenet")],
    ids=["densenet3d", "baseline3d", "resnet18_3d", "resnet18_3d_imagenet_stem"],
)
def test_forward_backward_shapes(make):
    torch.manual_seed(0)
    net = make(in_channels=1, num_classes=3)
    for side in (32, 28):
        x = torch.randn(2, 1, side, side, side)
        out = net(x)
        assert out.shape == (2, 3)
        out.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        net.zero_grad()


@pytest.mark.parametrize("side", [8, 9, 64])
def test_small_and_large_cubes(side):
    for net in (DenseNet3D(), Baseline3D()):
        with torch.no_grad():
            assert net.eval()(torch.zeros(1, 1, side, side, side)).shape == (1, 2)


def test_baseline3d_without_batchnorm_has_biases_instead():
    """Known counts: convs 1→16→32→64 (3³ kernels) and the 64→2 linear; BN adds 2 per channel, or biases 1."""
    convs, channels, fc = 27 * (1 * 16 + 16 * 32 + 32 * 64), 16 + 32 + 64, 64 * 2 + 2
    with_bn, plain = Baseline3D(), build_model("baseline3d_plain", 1, 2)
    assert sum(p.numel() for p in with_bn.parameters()) == convs + 2 * channels + fc == 69_906
    assert sum(p.numel() for p in plain.parameters()) == convs + channels + fc
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in plain.modules())
    assert plain(torch.randn(2, 1, 28, 28, 28)).shape == (2, 2)
