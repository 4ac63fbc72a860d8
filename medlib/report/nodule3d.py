"""Pictures of one nodule: an interactive 3D surface (plotly) and orthogonal slices with the mask (matplotlib)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure

from .. import atomic
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


def heat_trace(heat: np.ndarray, name: str = "Grad-CAM", levels: int = 4, opacity: float = 0.15,
               max_side: int = 48) -> go.Volume:
    """A saliency volume (e.g. `saliency.heat_volume`) as translucent nested shells in the nodule's voxel
    coordinates, from 30 % of its peak upwards; sides above `max_side` are subsampled to keep the HTML light."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 3:
        raise MedlibError(f"heat must be a 3D volume, not shape {heat.shape}.")
    step = max(1, int(np.ceil(max(heat.shape) / max_side)))
    h = heat[::step, ::step, ::step]
    i, j, k = np.mgrid[: heat.shape[0] : step, : heat.shape[1] : step, : heat.shape[2] : step]
    peak = float(h.max()) or 1.0
    return go.Volume(x=i.ravel(), y=j.ravel(), z=k.ravel(), value=h.ravel(), isomin=0.3 * peak, isomax=peak,
                     surface_count=levels, opacity=opacity, colorscale="Hot", reversescale=True, name=name,
                     showlegend=True, colorbar=dict(title=name, len=0.6))


def nodule_figure(voxel: np.ndarray, seg: np.ndarray | None = None, level: float | None = None,
                  step_size: int = 2, mask_opacity: float = 0.5, title: str = "",
                  heat: np.ndarray | None = None) -> go.Figure:
    """3D surfaces of the volume at `level` (default Otsu's) and, given a mask, of the masked volume and the mask.

    Buttons switch between raw + mask, masked and mask-only views; `step_size` > 1 coarsens the meshes so
    the saved HTML stays small. `heat`, a volume of the same shape (e.g. a Grad-CAM from
    `medlib.report.saliency.heat_volume`), adds translucent shells that stay visible in every view.
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
        traces["masked"] = _mesh(voxel * seg, level, step_size, name="masked volume", color="lightskyblue",
                                 opacity=1.0)
        traces["mask"] = _mesh(seg.astype(np.float32), 0.5, step_size, name="mask", color="crimson",
                               opacity=mask_opacity)
    kept = {k: t for k, t in traces.items() if t is not None}
    if not kept:
        raise MedlibError(f"No surface to draw: nothing in the volume crosses level={level:g}; "
                          "pass a level inside its range.")
    if heat is not None and np.shape(heat) != voxel.shape:
        raise MedlibError(f"heat shape {np.shape(heat)} differs from volume shape {voxel.shape}.")
    extra = [heat_trace(heat)] if heat is not None else []
    fig = go.Figure(list(kept.values()) + extra)
    views = {"raw + mask": ("raw", "mask"), "masked": ("masked",), "mask only": ("mask",)}
    if len(kept) > 1:
        buttons = [dict(label=label, method="restyle",
                        args=[{"visible": [k in shown for k in kept] + [True] * len(extra)}])
                   for label, shown in views.items() if any(k in kept for k in shown)]
        # the buttons sit on the plot's top edge, below the title (both in the top margin), so neither hides the other
        fig.update_layout(updatemenus=[dict(type="buttons", direction="right", x=0, y=1, xanchor="left",
                                            yanchor="bottom", pad=dict(b=4), buttons=buttons)])
        for trace, shown in zip(fig.data, buttons[0]["args"][0]["visible"]):
            trace.visible = shown
    axes = {f"{name}axis": dict(title=f"axis {a}") for a, name in enumerate("xyz")}
    top = (45 if title else 10) + (40 if len(kept) > 1 else 0)
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", y=0.99, yanchor="top"), height=600,
                      margin=dict(l=0, r=0, t=top, b=0), scene=dict(aspectmode="data", **axes))
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
    atomic.write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return path
