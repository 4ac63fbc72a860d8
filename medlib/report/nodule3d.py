"""Pictures of one nodule: an interactive 3D surface (plotly) and orthogonal slices with the mask (matplotlib)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure

from .. import io
from ..errors import MedlibError
from ..ops.crop import mask_centroid


def _mesh(volume: np.ndarray, level: float, step: int, **style) -> go.Mesh3d | None:
    """The `level` iso-surface as a Mesh3d, or None when nothing crosses it."""
    from skimage.measure import marching_cubes

    vol = volume.astype(np.float32)
    if not vol.min() < level < vol.max():
        return None
    # a one-voxel border below the level closes surfaces that touch the volume's edge
    vol = np.pad(vol, 1, constant_values=vol.min())
    verts, faces, _, _ = marching_cubes(vol, level, step_size=step)
    verts = (verts - 1).astype(np.float32)
    faces = faces.astype(np.int32)
    return go.Mesh3d(x=verts[:, 0], y=verts[:, 1], z=verts[:, 2], i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
                     showlegend=True, **style)


def nodule_figure(voxel: np.ndarray, seg: np.ndarray | None = None, level: float | None = None,
                  step_size: int = 2, mask_opacity: float = 0.5, title: str = "") -> go.Figure:
    """3D surfaces of the volume at `level` (default Otsu's) and, given a mask, of the masked volume and the mask.

    Buttons switch between raw + mask, masked and mask-only views; `step_size` > 1 coarsens the meshes so
    the saved HTML stays small.
    """
    from skimage.filters import threshold_otsu

    voxel = np.asarray(voxel)
    if voxel.ndim != 3:
        raise MedlibError(f"nodule_figure needs a 3D volume, not shape {voxel.shape}.")
    if seg is not None and np.shape(seg) != voxel.shape:
        raise MedlibError(f"Mask shape {np.shape(seg)} differs from volume shape {voxel.shape}.")
    level = float(threshold_otsu(voxel)) if level is None else float(level)
    traces = {"raw": _mesh(voxel, level, step_size, name=f"volume > {level:g}", color="lightgray", opacity=0.3)}
    if seg is not None:
        seg = np.asarray(seg, dtype=bool)
        traces["masked"] = _mesh(voxel * seg, level, step_size, name="masked volume", color="lightskyblue", opacity=1.0)
        traces["mask"] = _mesh(seg.astype(np.float32), 0.5, step_size, name="mask", color="crimson", opacity=mask_opacity)
    kept = {k: t for k, t in traces.items() if t is not None}
    if not kept:
        raise MedlibError(f"No surface to draw: nothing in the volume crosses level={level:g}; pass a level inside its range.")
    fig = go.Figure(list(kept.values()))
    views = {"raw + mask": ("raw", "mask"), "masked": ("masked",), "mask only": ("mask",)}
    if len(kept) > 1:
        buttons = [dict(label=label, method="restyle", args=[{"visible": [k in shown for k in kept]}])
                   for label, shown in views.items() if any(k in kept for k in shown)]
        fig.update_layout(updatemenus=[dict(type="buttons", direction="right", x=0, y=1.08, xanchor="left", buttons=buttons)])
        for trace, shown in zip(fig.data, buttons[0]["args"][0]["visible"]):
            trace.visible = shown
    axes = {f"{name}axis": dict(title=f"axis {a}") for a, name in enumerate("xyz")}
    fig.update_layout(title=title, height=600, margin=dict(l=0, r=0, t=60, b=0), scene=dict(aspectmode="data", **axes))
    return fig


def _show(ax, image: np.ndarray, mask: np.ndarray | None, vmin: float, vmax: float, title: str) -> None:
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax)
    if mask is not None and mask.any() and not mask.all():
        ax.contour(mask, levels=[0.5], colors="red", linewidths=1)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def slice_montage(volume: np.ndarray, seg: np.ndarray | None = None, n: int = 8) -> Figure:
    """Top: three orthogonal slices through the nodule (mask centroid, else volume centre). Bottom: n slices
    along axis 0 across the mask's extent (else the whole volume). The mask is drawn as a red contour."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise MedlibError(f"slice_montage needs a 3D volume, not shape {volume.shape}.")
    if seg is not None and np.shape(seg) != volume.shape:
        raise MedlibError(f"Mask shape {np.shape(seg)} differs from volume shape {volume.shape}.")
    if n < 1:
        raise MedlibError(f"n={n}: the montage needs at least one slice.")
    seg = None if seg is None else np.asarray(seg, dtype=bool)
    has_mask = seg is not None and seg.any()
    c = np.floor(mask_centroid(seg) + 0.5).astype(int) if has_mask else np.array(volume.shape) // 2
    vmin, vmax = float(volume.min()), float(volume.max())

    def show(ax, a: int, i: int) -> None:
        _show(ax, volume.take(i, axis=a), None if seg is None else seg.take(i, axis=a), vmin, vmax, f"axis {a} = {i}")

    fig = Figure(figsize=(max(9.0, 1.4 * n), 6.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2, 1])
    for a, ax in enumerate(top.subplots(1, 3)):
        show(ax, a, c[a])
    lo, hi = (np.flatnonzero(seg.any(axis=(1, 2)))[[0, -1]] if has_mask else (0, volume.shape[0] - 1))
    for ax, i in zip(np.atleast_1d(bottom.subplots(1, n)), np.linspace(lo, hi, n).round().astype(int)):
        show(ax, 0, i)
    return fig


def save_html(fig: go.Figure, path) -> Path:
    """Write a standalone HTML file (plotly.js embedded, works offline), atomically."""
    path = Path(path)
    io.write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return path
