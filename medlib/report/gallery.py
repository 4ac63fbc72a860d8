"""Pictures of the data (matplotlib): a grid of samples per class for 2D sets, slices of volumes, batches of cubes."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure


def _image(x: torch.Tensor | np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) uint8 -> what imshow wants: (H, W) with a grey map, or (H, W, 3)."""
    x = np.asarray(x)
    if x.shape[0] == 1:
        return x[0], "gray"
    return np.moveaxis(x, 0, -1), None


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def class_montage(ds, split: str = "train", per_class: int = 8, seed: int = 0) -> Figure:
    """One row per class (per label for multi-label sets), `per_class` random samples of it."""
    s = ds[split]
    meta = ds.meta
    g = np.random.default_rng(seed)
    y = s.y.numpy()
    names = meta.label_names or {str(i): str(i) for i in range(meta.n_classes)}
    fig = Figure(figsize=(1.05 * per_class + 1.6, 1.1 * len(names) + 0.4), layout="constrained")
    axes = fig.subplots(len(names), per_class, squeeze=False)
    for r, (key, name) in enumerate(names.items()):
        idx = np.flatnonzero(y[:, int(key)] > 0 if y.ndim == 2 else y == int(key))
        pick = g.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(pick):
                img, cmap = _image(s.X[pick[c]])
                ax.imshow(img, cmap=cmap, vmin=0, vmax=255)
        axes[r, 0].set_ylabel(
            f"{key}: {_short(name)}\n(n={len(idx):,})", rotation=0, ha="right", va="center", fontsize=8
        )
    fig.suptitle(f"{meta.name} {meta.size}px, {split}: {per_class} random samples per class", fontsize=10)
    return fig


def volume_slices(ds, split: str = "train", per_class: int = 2, seed: int = 0) -> Figure:
    """For a 3D set: `per_class` samples per class, each as its three central orthogonal slices."""
    s = ds[split]
    meta = ds.meta
    g = np.random.default_rng(seed)
    y = s.y.numpy()
    names = meta.label_names or {"0": "0", "1": "1"}
    rows = [
        (key, name, i)
        for key, name in names.items()
        for i in g.choice(np.flatnonzero(y == int(key)), min(per_class, int((y == int(key)).sum())), replace=False)
    ]
    fig = Figure(figsize=(6.5, 2.0 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, (key, name, i) in enumerate(rows):
        v = s.X[i, 0].numpy()
        c = np.array(v.shape) // 2
        for a, ax in enumerate(axes[r]):
            ax.imshow(v.take(c[a], axis=a), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"central slice, axis {a}", fontsize=8)
        axes[r, 0].set_ylabel(f"{key}: {_short(name, 20)}", fontsize=8)
    fig.suptitle(f"{meta.name} {meta.size}³, {split}", fontsize=10)
    return fig


def batch_slices(X, titles=None, axis: int = 0, ncols: int = 8, title: str = "") -> Figure:
    """The central slice (along `axis`) of each volume of a batch (N, 1, D, H, W) or (N, D, H, W), in a grid."""
    X = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X)
    if X.ndim == 5:
        X = X[:, 0]
    n = len(X)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(1.5 * ncols, 1.65 * nrows + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    lo, hi = float(X.min()), float(X.max())
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            ax.imshow(X[i].take(X.shape[1 + axis] // 2, axis=axis), cmap="gray", vmin=lo, vmax=hi)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
