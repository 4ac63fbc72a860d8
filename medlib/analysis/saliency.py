"""Grad-CAM (Selvaraju et al. 2017): where in the image a network looked for its answer, in 2D and 3D.

The map is the ReLU of the feature maps of one layer weighted by the gradient of the class score, averaged
over space, then upsampled to the input. The default layer is the last one that still has a spatial map:
ResNet's `layer4`, the DenseNet-3D's final BN-ReLU, else the last module whose output keeps the input's
number of dimensions. For these networks (global average pool, then one linear layer) Grad-CAM equals the
older class activation map: the final features weighted by the class's row of `fc`.

The maps drawn over their images (2D overlays, the randomisation check) are `report.heatmaps`; in 3D,
`report.nodule3d.nodule_figure(..., heat=heat_volume(...))`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import normalize
from ..errors import MedlibError
from ..models.densenet3d import DenseNet3D
from ..models.resnet import ResNet

_POOLS = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


def _unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") and isinstance(net.module, nn.Module) else net


def _prepare(x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """uint8 images are scaled as in training ([-1, 1]); floats are taken as already scaled."""
    x = torch.as_tensor(x)
    device = next(net.parameters()).device
    x = normalize(x.to(device)) if x.dtype == torch.uint8 else x.to(device, torch.float32)
    return x


def default_layer(net: nn.Module, x: torch.Tensor | None = None) -> nn.Module:
    """The last layer with a spatial map: ResNet `layer4`, DenseNet-3D's final ReLU, else found by a forward pass."""
    net = _unwrap(net)
    if isinstance(net, ResNet):
        return net.layer4
    if isinstance(net, DenseNet3D):
        return net.features[-3]  # BN-ReLU after the last dense block, before the global pool
    if x is None:
        raise MedlibError(f"No default Grad-CAM layer known for {type(net).__name__}; pass layer= or an input x.")
    order, hooks = [], []
    for m in net.modules():
        if m is not net and not isinstance(m, _POOLS):
            hooks.append(m.register_forward_hook(lambda mod, i, o: order.append((mod, o))))
    try:
        with torch.no_grad():
            net(x[:1])
    finally:
        for h in hooks:
            h.remove()
    spatial = [m for m, o in order if isinstance(o, torch.Tensor) and o.ndim == x.ndim]
    if not spatial:
        raise MedlibError(f"{type(net).__name__} has no layer with a spatial output; pass layer=.")
    return spatial[-1]


def grad_cam(
    net: nn.Module, x: torch.Tensor, target=None, layer: nn.Module | None = None, normalize_each: bool = True
) -> torch.Tensor:
    """Grad-CAM maps of a batch, upsampled to the input: (N, H, W) for images, (N, D, H, W) for volumes.

    x: (N, C, *spatial), uint8 as stored (scaled as in training) or float already scaled. target: the class
    per sample (int, sequence or tensor); None takes each sample's predicted class. normalize_each scales
    every map to a peak of 1 (an all-zero map stays zero). The network is run in eval mode and left in the
    mode it was in.
    """
    x = torch.as_tensor(x)
    if x.ndim not in (4, 5):
        raise MedlibError(f"grad_cam needs a batch (N, C, H, W) or (N, C, D, H, W), not shape {tuple(x.shape)}.")
    was_training = net.training
    net.eval()
    xin = _prepare(x, net).requires_grad_(True)  # so a graph exists even with frozen weights
    layer = layer if layer is not None else default_layer(net, xin)
    store = {}
    hook = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            logits = net(xin)
            acts = store.get("a")
            if acts is None or acts.ndim != xin.ndim:
                raise MedlibError(
                    f"Layer {type(layer).__name__} gave no spatial map for Grad-CAM; pick an earlier layer."
                )
            if target is None:
                idx = logits.argmax(1)
            else:
                idx = torch.as_tensor(target, device=logits.device).long().reshape(-1).expand(len(logits))
            score = logits.gather(1, idx[:, None]).sum()
            grads = torch.autograd.grad(score, acts)[0]
    finally:
        hook.remove()
        net.train(was_training)
    dims = tuple(range(2, acts.ndim))
    weights = grads.mean(dim=dims, keepdim=True)
    cam = torch.relu((weights * acts).sum(1, keepdim=True)).detach()
    mode = "bilinear" if cam.ndim == 4 else "trilinear"
    cam = F.interpolate(cam, size=tuple(x.shape[2:]), mode=mode, align_corners=False)[:, 0]
    if normalize_each:
        peak = cam.flatten(1).amax(1).clamp_min(1e-12).reshape((-1,) + (1,) * (cam.ndim - 1))
        cam = cam / peak
    return cam.cpu()


def heat_volume(net: nn.Module, volume, target=None, layer: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM of one cube as a (D, H, W) float32 array in [0, 1], in the cube's voxel coordinates: pass it as
    `nodule_figure(voxel, seg, heat=...)` to draw it over the nodule. `volume`: (C, D, H, W) or (1, C, D, H, W)."""
    v = torch.as_tensor(np.asarray(volume) if not isinstance(volume, torch.Tensor) else volume)
    if v.ndim == 4:
        v = v[None]
    if v.ndim != 5 or len(v) != 1:
        raise MedlibError(f"heat_volume needs one cube (C, D, H, W), not shape {tuple(v.shape)}.")
    return grad_cam(net, v, target, layer)[0].numpy().astype(np.float32)


def randomized_copy(net: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every weight re-drawn from its initialiser: the model-randomisation check of
    Adebayo et al. (2018). A saliency method whose maps survive this does not explain the trained network."""
    twin = copy.deepcopy(_unwrap(net))
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for m in twin.modules():
            if hasattr(m, "reset_parameters") and m is not twin:
                m.reset_parameters()
    finally:
        torch.random.set_rng_state(gen_state)
    return twin.eval()


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (N, ...) x (N, ...): how alike two saliency maps are."""

    def ranks(t):
        flat = torch.as_tensor(t).flatten(1).double()
        return flat.argsort(1).argsort(1).double()

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return ((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)).numpy()


def pick_cases(net: nn.Module, images: torch.Tensor, labels, n: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the first n correctly and n wrongly classified images, with each image's predicted class and
    its probability (single-label tasks, argmax)."""
    net.eval()
    with torch.no_grad():
        probs = torch.softmax(net(_prepare(images, net)).float(), 1).cpu()
    pred = probs.argmax(1).numpy()
    y = np.asarray(labels).reshape(-1)
    right, wrong = np.flatnonzero(pred == y)[:n], np.flatnonzero(pred != y)[:n]
    return np.concatenate([right, wrong]), pred, probs.max(1).values.numpy()


def spatial_layer(net: nn.Module, x: torch.Tensor, min_side: int = 4) -> tuple[nn.Module, str, tuple]:
    """The deepest ResNet stage whose feature map is at least min_side on each side, its name and map shape:
    at 28 px the ImageNet stem leaves layer4 a 1x1 map, where Grad-CAM is one number spread over the image."""
    net = _unwrap(net)
    if not isinstance(net, ResNet):
        layer = default_layer(net, _prepare(torch.as_tensor(x)[:1], net))  # found by a forward pass: scaled input
        return layer, type(layer).__name__, ()
    shapes, hooks = {}, []
    for name in ("layer1", "layer2", "layer3", "layer4"):
        hooks.append(
            getattr(net, name).register_forward_hook(
                lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[2:]))
            )
        )
    try:
        with torch.no_grad():
            net.eval()(_prepare(torch.as_tensor(x)[:1], net))
    finally:
        for h in hooks:
            h.remove()
    name = (
        [n for n, sh in shapes.items() if min(sh) >= min_side][-1]
        if any(min(sh) >= min_side for sh in shapes.values())
        else "layer1"
    )
    return getattr(net, name), name, shapes[name]
