"""Grad-CAM drawn over its images (matplotlib): 2D overlays, and the model-randomisation check (Adebayo et al. 2018)
that shows a map depends on what the network learnt. The maps are computed by `analysis.saliency`."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..analysis.saliency import grad_cam, pick_cases, randomized_copy, rank_correlation, spatial_layer
from ..errors import MedlibError


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


def sanity_figure(
    net: nn.Module, images: torch.Tensor, labels, class_names=None, n: int = 3, cmap: str = "jet"
) -> tuple[Figure, np.ndarray]:
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
            im = ax.imshow(
                (cam[j][cam.shape[1] // 2] if x.ndim == 5 else cam[j]).numpy(), cmap=cmap, alpha=0.45, vmin=0, vmax=1
            )
            ax.set_axis_off()
            if i == 0:
                ax.set_title(
                    f"{verdict}: true {name(y[j])}\npred {name(pred[idx[j]])} (p {conf[idx[j]]:.2f})", fontsize=8
                )
            else:
                ax.set_title(f"{row}: ρ = {rho[j]:+.2f}", fontsize=8)
    side = f" ({'x'.join(map(str, shape))} map)" if shape else ""
    where = ", middle slice of each cube" if x.ndim == 5 else ""
    fig.colorbar(im, ax=axes, shrink=0.7, label=f"Grad-CAM at {layer_name}{side}{where}, scaled to its peak")
    return fig, rho
