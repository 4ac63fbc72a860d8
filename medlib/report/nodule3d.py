"""Pictures of one nodule: an interactive 3D surface (plotly) and orthogonal slices with the mask (matplotlib).

The 3D figure works with no kernel and no network: view buttons and a slice slider are plotly's own (`restyle`
buttons, and `animate` steps through frames held in the figure). Where no plotly.js runs (GitHub, nbviewer,
`nbconvert --to html`), its output still shows a picture: the figure carries a static PNG of three slices, drawn
by matplotlib from the same volume."""

from __future__ import annotations

import base64
import io
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
    return go.Mesh3d(
        x=verts[:, 0],
        y=verts[:, 1],
        z=verts[:, 2],
        i=faces[:, 0],
        j=faces[:, 1],
        k=faces[:, 2],
        showlegend=True,
        **style,
    )


def heat_trace(
    heat: np.ndarray, name: str = "Grad-CAM", levels: int = 4, opacity: float = 0.15, max_side: int = 48
) -> go.Volume:
    """A saliency volume (e.g. `saliency.heat_volume`) as translucent nested shells in the nodule's voxel
    coordinates, from 30 % of its peak upwards; sides above `max_side` are subsampled to keep the HTML light."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 3:
        raise MedlibError(f"heat must be a 3D volume, not shape {heat.shape}.")
    step = max(1, int(np.ceil(max(heat.shape) / max_side)))
    h = heat[::step, ::step, ::step]
    i, j, k = np.mgrid[: heat.shape[0] : step, : heat.shape[1] : step, : heat.shape[2] : step]
    peak = float(h.max()) or 1.0
    return go.Volume(
        x=i.ravel(),
        y=j.ravel(),
        z=k.ravel(),
        value=h.ravel(),
        isomin=0.3 * peak,
        isomax=peak,
        surface_count=levels,
        opacity=opacity,
        colorscale="Hot",
        reversescale=True,
        name=name,
        showlegend=True,
        colorbar=dict(title=name, len=0.6),
    )


class NoduleFigure(go.Figure):
    """A plotly figure that also hands Jupyter a static PNG (`still`) beside its JSON: frontends that draw plotly
    show the figure, the others (GitHub, nbviewer, nbconvert's HTML) the picture."""

    def _still_png(self) -> str | None:
        make = getattr(self, "_still", None)
        return make() if make is not None else None

    def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
        bundle = super()._repr_mimebundle_(include, exclude, validate, **kwargs)
        png = self._still_png() if bundle else None
        return {**bundle, "image/png": png} if png else bundle

    def _ipython_display_(self):
        import plotly.io as pio
        from IPython.display import display

        bundle = self._repr_mimebundle_() if pio.renderers.render_on_display and pio.renderers.default else {}
        if not bundle:  # no renderer, or one outside the notebook (a browser tab): plotly's own way
            return super()._ipython_display_()
        display(bundle, raw=True)


def still_png(voxel: np.ndarray, seg: np.ndarray | None = None, heat: np.ndarray | None = None, title: str = "") -> str:
    """Three orthogonal slices through the nodule (mask centroid, else the centre) with the mask's contour and,
    given, the heat above 30 % of its peak: a base64 PNG, the static stand-in for the 3D figure."""
    voxel = np.asarray(voxel)
    has_mask = seg is not None and np.asarray(seg).any()
    c = np.floor(mask_centroid(np.asarray(seg, bool)) + 0.5).astype(int) if has_mask else np.array(voxel.shape) // 2
    fig = Figure(figsize=(7.5, 2.9), dpi=80, layout="constrained")
    for a, ax in enumerate(fig.subplots(1, 3)):
        cut = None if seg is None else np.asarray(seg, bool).take(c[a], axis=a)
        _show(ax, voxel.take(c[a], axis=a), cut, float(voxel.min()), float(voxel.max()), f"axis {a} = {c[a]}")
        if heat is not None:
            h = np.asarray(heat, np.float32).take(c[a], axis=a)
            ax.imshow(np.ma.masked_less(h, 0.3 * (float(np.max(heat)) or 1.0)), cmap="hot", alpha=0.5)
    if title:
        fig.suptitle(f"{title} (a static view; the interactive 3D figure needs plotly.js)", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def slice_trace(voxel: np.ndarray, index: int, max_side: int = 48) -> go.Surface:
    """A grey plane showing slice `index` of axis 0 in the nodule's voxel coordinates (sides above `max_side`
    subsampled, so each slider step stays light)."""
    step = max(1, int(np.ceil(max(voxel.shape[1:]) / max_side)))
    j, k = np.mgrid[: voxel.shape[1] : step, : voxel.shape[2] : step]
    return go.Surface(
        x=np.full(j.shape, index),
        y=j,
        z=k,
        surfacecolor=voxel[index, ::step, ::step],
        cmin=float(voxel.min()),
        cmax=float(voxel.max()),
        colorscale="gray",
        showscale=False,
        opacity=0.9,
        name="slice (axis 0)",
        showlegend=True,
        hoverinfo="skip",
    )


def _slider(voxel: np.ndarray, trace: int, start: int, step_size: int, max_side: int = 48) -> tuple[dict, list]:
    """A plotly slider whose steps move the slice plane (trace number `trace`) along axis 0, and its frames: each
    frame holds only the plane's position and colours (as compact typed arrays), so the figure stays light and
    works offline, without a kernel."""
    step = max(1, int(np.ceil(max(voxel.shape[1:]) / max_side)))
    shape = voxel[0, ::step, ::step].shape
    positions = list(range(0, voxel.shape[0], step_size))
    frames = [
        go.Frame(
            name=str(i),
            traces=[trace],
            data=[go.Surface(x=np.full(shape, i, dtype=np.int16), surfacecolor=voxel[i, ::step, ::step])],
        )
        for i in positions
    ]
    now = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    steps = [dict(method="animate", label=str(i), args=[[str(i)], now]) for i in positions]
    active = min(range(len(positions)), key=lambda n: abs(positions[n] - start))
    slider = dict(
        active=active, steps=steps, currentvalue=dict(prefix="slice, axis 0 = "), pad=dict(t=10), len=0.9, x=0.05
    )
    return slider, frames


def _add_view_buttons(fig, kept: list[str], n_extra: int) -> None:
    """Buttons that switch between the raw + mask, masked and mask-only surfaces (the `n_extra` traces after them,
    the slice plane and the heat shells, stay visible); the first view is shown."""
    views = {"raw + mask": ("raw", "mask"), "masked": ("masked",), "mask only": ("mask",)}
    buttons = [
        dict(label=label, method="restyle", args=[{"visible": [k in shown for k in kept] + [True] * n_extra}])
        for label, shown in views.items()
        if any(k in kept for k in shown)
    ]
    # the buttons sit on the plot's top edge, below the title (both in the top margin), so neither hides the other
    menu = dict(type="buttons", direction="right", x=0, y=1, xanchor="left", yanchor="bottom", pad=dict(b=4))
    fig.update_layout(updatemenus=[dict(**menu, buttons=buttons)])
    for trace, shown in zip(fig.data, buttons[0]["args"][0]["visible"]):
        trace.visible = shown


def nodule_figure(
    voxel: np.ndarray,
    seg: np.ndarray | None = None,
    level: float | None = None,
    step_size: int = 2,
    mask_opacity: float = 0.5,
    title: str = "",
    heat: np.ndarray | None = None,
    slices: bool = True,
) -> NoduleFigure:
    """3D surfaces of the volume at `level` (default Otsu's) and, given a mask, of the masked volume and the mask.

    Buttons switch between raw + mask, masked and mask-only views; `step_size` > 1 coarsens the meshes (and the
    slider's steps) so the saved HTML stays small. With `slices`, a grey plane shows one slice of the volume and
    a slider moves it along axis 0 (plotly steps: works offline, without a kernel). `heat`, a volume of the same
    shape (e.g. a Grad-CAM from `medlib.analysis.saliency.heat_volume`), adds translucent shells. The plane and
    the shells stay visible in every view. In Jupyter the figure carries a static PNG (`still_png`) too.
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
        traces["mask"] = _mesh(
            seg.astype(np.float32), 0.5, step_size, name="mask", color="crimson", opacity=mask_opacity
        )
    kept = {k: t for k, t in traces.items() if t is not None}
    if not kept:
        raise MedlibError(
            f"No surface to draw: nothing in the volume crosses level={level:g}; pass a level inside its range."
        )
    if heat is not None and np.shape(heat) != voxel.shape:
        raise MedlibError(f"heat shape {np.shape(heat)} differs from volume shape {voxel.shape}.")
    centre = int(np.floor(mask_centroid(seg)[0] + 0.5)) if seg is not None and seg.any() else voxel.shape[0] // 2
    plane = [slice_trace(voxel, centre)] if slices else []
    extra = plane + ([heat_trace(heat)] if heat is not None else [])
    fig = NoduleFigure(list(kept.values()) + extra)
    fig._still = lambda: still_png(voxel, seg, heat, title)
    if plane:
        slider, frames = _slider(voxel, len(kept), centre, step_size)
        fig.frames = frames
        fig.update_layout(sliders=[slider])
    if len(kept) > 1:
        _add_view_buttons(fig, list(kept), len(extra))
    axes = {f"{name}axis": dict(title=f"axis {a}") for a, name in enumerate("xyz")}
    top = (45 if title else 10) + (40 if len(kept) > 1 else 0)
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", y=0.99, yanchor="top"),
        height=600 + (70 if plane else 0),
        margin=dict(l=0, r=0, t=top, b=70 if plane else 0),
        scene=dict(aspectmode="data", **axes),
    )
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
    lo, hi = np.flatnonzero(seg.any(axis=(1, 2)))[[0, -1]] if has_mask else (0, volume.shape[0] - 1)
    for ax, i in zip(np.atleast_1d(bottom.subplots(1, n)), np.linspace(lo, hi, n).round().astype(int)):
        show(ax, 0, i)
    return fig


def save_html(fig: go.Figure, path) -> Path:
    """Write a standalone HTML file (plotly.js embedded, works offline), atomically."""
    path = Path(path)
    atomic.write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return path
