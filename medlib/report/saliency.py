"""Grad-CAM (Selvaraju et al. 2017): where in the image a network looked for its answer, in 2D and 3D.

The map is the ReLU of the feature maps of one layer weighted by the gradient of the class score, averaged
over space, then upsampled to the input. The default layer is the last one that still has a spatial map:
ResNet's `layer4`, the DenseNet-3D's final BN-ReLU, else the last module whose output keeps the input's
number of dimensions. For these networks (global average pool, then one linear layer) Grad-CAM equals the
older class activation map: the final features weighted by the class's row of `fc`.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..data.base import normalize
from ..errors import MedlibError
from ..models.densenet3d import DenseNet3D
from ..models.resnet import ResNet

_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


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


def grad_cam(net: nn.Module, x: torch.Tensor, target=None, layer: nn.Module | None = None,
             normalize_each: bool = True) -> torch.Tensor:
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
                raise MedlibError(f"Layer {type(layer).__name__} gave no spatial map for Grad-CAM; "
                                  "pick an earlier layer.")
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


def _as_display(image) -> np.ndarray:
    """(H, W), (1, H, W) or (3, H, W), uint8 or float -> something imshow draws: (H, W) or (H, W, 3) in [0, 1]."""
    img = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def overlay(images, cams, titles=None, alpha: float = 0.45, cmap: str = "jet", size: float = 2.4) -> Figure:
    """A row of 2D images with their Grad-CAM maps laid over them. images: (N, C, H, W) or one (C, H, W) /
    (H, W); cams: (N, H, W) or one (H, W), as from `grad_cam`. Returns a matplotlib Figure."""
    images = images if isinstance(images, (list, tuple)) else list(images) if np.ndim(images) == 4 else [images]
    cams = cams if isinstance(cams, (list, tuple)) else list(cams) if np.ndim(cams) == 3 else [cams]
    if len(images) != len(cams):
        raise MedlibError(f"{len(images)} image(s) but {len(cams)} map(s); give one map per image.")
    titles = list(titles) if titles is not None else [""] * len(images)
    fig = Figure(figsize=(size * len(images), size + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, img, cam, title in zip(axes, images, cams, titles):
        disp = _as_display(img)
        ax.imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0, vmax=1)
        heat = np.asarray(cam.detach().cpu() if isinstance(cam, torch.Tensor) else cam, dtype=np.float32)
        peak = max(float(heat.max()), 1e-12)
        # opacity grows with the heat, so cold places show the image, not a blue wash
        ax.imshow(heat, cmap=cmap, alpha=np.clip(alpha * heat / peak * 1.5, 0, alpha), vmin=0, vmax=peak)
        ax.set_title(str(title), fontsize=9)
        ax.set_axis_off()
    return fig


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
        hooks.append(getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[2:]))))
    try:
        with torch.no_grad():
            net.eval()(_prepare(torch.as_tensor(x)[:1], net))
    finally:
        for h in hooks:
            h.remove()
    name = [n for n, sh in shapes.items() if min(sh) >= min_side][-1] if any(
        min(sh) >= min_side for sh in shapes.values()) else "layer1"
    return getattr(net, name), name, shapes[name]


def sanity_figure(net: nn.Module, images: torch.Tensor, labels, class_names=None, n: int = 3,
                  cmap: str = "jet") -> tuple[Figure, np.ndarray]:
    """Grad-CAM of the trained network on n correct and n wrong test images (top; cubes: their middle slice), and
    of the same network with random weights (bottom), each over its image with a colour bar; returns the figure
    and, per image, the rank correlation between the two maps (near 0: the map depends on what was learnt)."""
    idx, pred, conf = pick_cases(net, images, labels, n)
    if len(idx) == 0:
        raise MedlibError("No images to show: pass a non-empty batch.")
    x = torch.as_tensor(images)[idx]
    y = np.asarray(labels).reshape(-1)[idx]
    layer, layer_name, shape = spatial_layer(net, x)
    twin = randomized_copy(net)
    trained = grad_cam(net, x, layer=layer)
    random_ = grad_cam(twin, x, target=torch.as_tensor(pred[idx]), layer=getattr(twin, layer_name, None))
    rho = rank_correlation(trained, random_)
    name = (lambda k: class_names[int(k)]) if class_names is not None else str
    fig = Figure(figsize=(2.3 * len(idx) + 0.8, 5.2), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(idx), squeeze=False))
    im = None
    for j in range(len(idx)):
        verdict = "right" if pred[idx[j]] == y[j] else "wrong"
        for i, (cam, row) in enumerate(((trained, "trained"), (random_, "random weights"))):
            ax = axes[i, j]
            disp = _as_display(x[j][:, x.shape[2] // 2] if x.ndim == 5 else x[j])  # a cube: its middle slice
            ax.imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0, vmax=1)
            im = ax.imshow((cam[j][cam.shape[1] // 2] if x.ndim == 5 else cam[j]).numpy(), cmap=cmap, alpha=0.45,
                           vmin=0, vmax=1)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(f"{verdict}: true {name(y[j])}\npred {name(pred[idx[j]])} (p {conf[idx[j]]:.2f})",
                             fontsize=8)
            else:
                ax.set_title(f"{row}: ρ = {rho[j]:+.2f}", fontsize=8)
    side = f" ({'x'.join(map(str, shape))} map)" if shape else ""
    where = ", middle slice of each cube" if x.ndim == 5 else ""
    fig.colorbar(im, ax=axes, shrink=0.7, label=f"Grad-CAM at {layer_name}{side}{where}, scaled to its peak")
    return fig, rho
