"""Hand-built ResNets against published parameter counts and the shapes of Report 1's Figure 2."""

import pytest
import torch

from medlib.models import BasicBlock, Bottleneck, build_model, count_parameters, resnet18, resnet50


def test_published_parameter_counts():
    # torchvision's ResNet-18 / ResNet-50 at 3 inputs and 1000 classes
    assert count_parameters(resnet18(3, 1000, "imagenet")) == 11_689_512
    assert count_parameters(resnet50(3, 1000, "imagenet")) == 25_557_032


@pytest.mark.parametrize("size,stem,spatial", [(224, "imagenet", 7), (28, "imagenet", 1), (28, "small", 4)])
def test_stage_output_sizes(size, stem, spatial):
    net = resnet18(1, 2, stem).eval()
    x = torch.randn(1, 1, size, size)
    with torch.no_grad():
        f = net.layer4(net.layer3(net.layer2(net.layer1(net.stem(x)))))
    assert f.shape[-1] == spatial


def test_shortcuts_identity_or_projection():
    assert isinstance(BasicBlock(64, 64, 1).shortcut, torch.nn.Identity)
    proj = BasicBlock(64, 128, 2).shortcut
    assert isinstance(proj[0], torch.nn.Conv2d) and proj[0].stride == (2, 2) and proj[0].kernel_size == (1, 1)
    assert not isinstance(Bottleneck(64, 64, 1).shortcut, torch.nn.Identity)  # 64 -> 256 channels
    assert isinstance(Bottleneck(256, 64, 1).shortcut, torch.nn.Identity)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("cin,k", [(1, 2), (3, 9), (1, 14)])
def test_any_channels_and_classes(name, cin, k):
    net = build_model(name, cin, k, stem="small")
    out = net(torch.randn(2, cin, 28, 28))
    assert out.shape == (2, k)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_stem_changes_only_the_first_conv():
    a, b = resnet18(3, 10, "imagenet"), resnet18(3, 10, "small")
    assert count_parameters(a) - count_parameters(b) == 64 * 3 * (7 * 7 - 3 * 3)
