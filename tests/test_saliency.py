"""Grad-CAM on medlib's networks: shapes, non-negativity, the CAM identity, and a map that finds the region."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medlib.analysis.saliency import default_layer, grad_cam, heat_volume
from medlib.errors import MedlibError
from medlib.models import build_model
from medlib.report.heatmaps import overlay
from medlib.report.nodule3d import nodule_figure


def _manual_cam(net, x, layer, target):
    """Zhou et al.'s class activation map: ReLU(sum_c fc.weight[target, c] * A_c), upsampled, peak 1. For a
    network that ends in global average pool + one linear layer, Grad-CAM must give exactly this."""
    store = {}
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach().clone()))
    with torch.no_grad():
        net.eval()(x)
    h.remove()
    a = store["a"]
    cam = torch.relu(torch.einsum("c,nc...->n...", net.fc.weight[target].detach(), a))[:, None]
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    cam = F.interpolate(cam, size=x.shape[2:], mode=mode, align_corners=False)[:, 0]
    return cam / cam.flatten(1).amax(1).clamp_min(1e-12).reshape((-1,) + (1,) * (cam.ndim - 1))


@pytest.mark.parametrize(
    "name,stem,shape",
    [
        ("resnet18", "small", (3, 1, 28, 28)),
        ("resnet18", "imagenet", (2, 3, 64, 64)),
        ("resnet50", "small", (2, 1, 28, 28)),
        ("densenet3d", "small", (2, 1, 32, 32, 32)),
    ],
)
def test_cam_on_medlib_networks_is_the_class_activation_map(name, stem, shape):
    torch.manual_seed(0)
    net = build_model(name, shape[1], 3, stem=stem)
    with torch.no_grad():  # most features speak for class 2, so no map is all zero (random weights may do that)
        net.fc.weight[2] += net.fc.weight[2].abs().mean()
    x = torch.randn(shape)
    cam = grad_cam(net, x, target=2)
    assert cam.shape == (shape[0],) + shape[2:] and cam.dtype == torch.float32
    assert (cam >= 0).all() and torch.allclose(cam.flatten(1).amax(1), torch.ones(shape[0]))
    assert (cam.flatten(1).std(1) > 0.02).all()  # not flat: some places matter more than others
    layer = default_layer(net)
    assert layer is (net.layer4 if name.startswith("resnet") else net.features[-3])
    torch.testing.assert_close(cam, _manual_cam(net, x, layer, 2), atol=1e-4, rtol=1e-4)


def test_default_target_is_the_predicted_class_and_mode_is_restored():
    torch.manual_seed(1)
    net = build_model("resnet18", 1, 4).train()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        pred = net.eval()(x).argmax(1)
    net.train()
    assert torch.equal(grad_cam(net, x), grad_cam(net, x, target=pred))
    assert net.training


def test_uint8_input_is_scaled_as_in_training():
    torch.manual_seed(2)
    net = build_model("resnet18", 1, 2)
    x8 = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(grad_cam(net, x8, target=1), grad_cam(net, x8.float() * 2 / 255 - 1, target=1))


class RegionNet(nn.Module):
    """Sees only a box of the input: everything outside is zeroed before the first convolution."""

    def __init__(self, dims: int, size: int, box: tuple):
        super().__init__()
        mask = torch.zeros((1, 1) + (size,) * dims)
        mask[(slice(None), slice(None)) + box] = 1
        self.register_buffer("mask", mask)
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv = conv(1, 8, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.body = nn.Sequential(conv(8, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 2)
        with torch.no_grad():
            self.fc.weight.abs_()  # every feature speaks for class 1

    def forward(self, x):
        x = self.relu(self.conv(x * self.mask))
        return self.fc(self.pool(self.body(x)).flatten(1))


@pytest.mark.parametrize("dims", [2, 3])
def test_cam_peaks_in_the_only_region_the_network_sees(dims):
    torch.manual_seed(3)
    size = 24 if dims == 2 else 16
    box = (slice(3, 9),) * dims  # a corner box, far from the centre
    net = RegionNet(dims, size, box)
    x = torch.rand((4, 1) + (size,) * dims) + 0.5  # bright everywhere: only the mask makes the box special
    cam = grad_cam(net, x, target=1, layer=net.relu)
    inside = torch.zeros((size,) * dims, dtype=torch.bool)
    inside[box] = True
    for c in cam:
        peak = np.unravel_index(int(c.argmax()), c.shape)
        assert all(2 <= p <= 9 for p in peak)  # the box, give or take the conv's reach
        far = (
            ~F.max_pool2d(inside[None, None].float(), 5, 1, 2)[0, 0].bool()
            if dims == 2
            else ~F.max_pool3d(inside[None, None].float(), 5, 1, 2)[0, 0].bool()
        )
        assert c[inside].mean() > 0.1 and c[far].max() < 1e-6  # the map is in the box; nothing far from it


def test_heat_volume_draws_on_the_nodule_figure():
    torch.manual_seed(4)
    net = build_model("densenet3d", 1, 2)
    z, y, x = np.mgrid[:32, :32, :32]
    seg = (z - 16) ** 2 + (y - 16) ** 2 + (x - 16) ** 2 < 49
    voxel = np.where(seg, 200, 40).astype(np.uint8)
    heat = heat_volume(net, torch.from_numpy(voxel)[None])
    assert heat.shape == (32, 32, 32) and heat.dtype == np.float32 and heat.min() >= 0 and heat.max() == 1
    fig = nodule_figure(voxel, seg, heat=heat)
    assert fig.data[-1].type == "volume"
    with pytest.raises(MedlibError, match="one cube"):
        heat_volume(net, torch.zeros(2, 1, 8, 8, 8))


def test_overlay_draws_each_image_with_its_map(tmp_path):
    torch.manual_seed(5)
    net = build_model("resnet18", 3, 2)
    x = torch.randint(0, 256, (3, 3, 28, 28), dtype=torch.uint8)
    fig = overlay(x, grad_cam(net, x), titles=["a", "b", "c"])
    axes = fig.get_axes()
    assert len(axes) == 3 and all(len(ax.images) == 2 for ax in axes) and axes[1].get_title() == "b"
    assert axes[0].images[0].get_array().shape == (28, 28, 3)  # colour image, channels last
    fig.savefig(tmp_path / "cam.png")
    assert len(overlay(x[0, :1], grad_cam(net, x[:1])[0]).get_axes()) == 1
    with pytest.raises(MedlibError, match="one map per image"):
        overlay(x, grad_cam(net, x[:2]))


def test_bad_input_is_one_clear_error():
    net = build_model("resnet18", 1, 2)
    with pytest.raises(MedlibError, match="needs a batch"):
        grad_cam(net, torch.zeros(1, 28, 28))
    with pytest.raises(MedlibError, match="spatial"):
        grad_cam(net, torch.zeros(1, 1, 28, 28), layer=net.fc)


@pytest.mark.parametrize("name", ["baseline3d", "resnet18_3d"])
def test_other_3d_networks_find_their_last_spatial_layer(name):
    torch.manual_seed(6)
    net = build_model(name, 1, 2)
    x = torch.randn(2, 1, 16, 16, 16)
    layer = default_layer(net, x)
    store = {}
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    net.eval()(x)
    h.remove()
    assert store["a"].ndim == 5 and not isinstance(layer, nn.AdaptiveAvgPool3d)
    cam = grad_cam(net, x)
    assert cam.shape == (2, 16, 16, 16) and (cam >= 0).all() and cam.max() <= 1
    with pytest.raises(MedlibError, match="pass layer="):
        default_layer(net)  # without an input there is nothing to trace
