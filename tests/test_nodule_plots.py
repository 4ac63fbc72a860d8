"""Nodule pictures: meshes and view buttons, slice montage, standalone offline HTML."""

import numpy as np
import pytest
from synth_m3dv import ellipsoid_sample

from medlib.errors import MedlibError
from medlib.report.nodule3d import nodule_figure, save_html, slice_montage


@pytest.fixture
def nodule():
    return ellipsoid_sample(32, np.random.default_rng(0), 6.0)


def test_nodule_figure_has_three_meshes_and_view_buttons(nodule):
    voxel, seg = nodule
    fig = nodule_figure(voxel, seg, level=120, slices=False)
    assert [t.type for t in fig.data] == ["mesh3d"] * 3
    assert [t.name for t in fig.data][1:] == ["masked volume", "mask"]
    assert [t.visible for t in fig.data] == [True, False, True]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["raw + mask", "masked", "mask only"]
    assert [b.args[0]["visible"] for b in buttons] == [[True, False, True], [False, True, False], [False, False, True]]
    with_plane = nodule_figure(voxel, seg, level=120)  # the default: a slice plane, visible in every view
    assert [t.type for t in with_plane.data] == ["mesh3d"] * 3 + ["surface"]
    assert [b.args[0]["visible"][-1] for b in with_plane.layout.updatemenus[0].buttons] == [True] * 3
    mask_mesh = fig.data[2]
    xyz = np.stack([mask_mesh.x, mask_mesh.y, mask_mesh.z], 1)
    idx = np.argwhere(seg)
    assert (xyz.min(0) >= idx.min(0) - 1).all() and (xyz.max(0) <= idx.max(0) + 1).all()  # the mesh wraps the mask


def test_nodule_figure_without_mask_and_bad_level(nodule):
    voxel, _ = nodule
    fig = nodule_figure(voxel, slices=False)
    assert len(fig.data) == 1 and not fig.layout.updatemenus
    with pytest.raises(MedlibError, match="level=999"):
        nodule_figure(voxel, level=999)
    with pytest.raises(MedlibError, match="3D volume"):
        nodule_figure(voxel[0])


def test_step_size_keeps_meshes_light(nodule):
    voxel, seg = nodule
    fine, coarse = nodule_figure(voxel, seg, step_size=1), nodule_figure(voxel, seg, step_size=3)
    assert len(coarse.data[0].x) < len(fine.data[0].x) / 4


def test_save_html_is_standalone(nodule, tmp_path):
    voxel, seg = nodule
    path = save_html(nodule_figure(voxel, seg, step_size=3), tmp_path / "sub" / "nodule.html")
    html = path.read_text()
    assert "<html>" in html[:100] and 'src="http' not in html and "Plotly.newPlot" in html  # plotly.js inline
    assert 3e6 < path.stat().st_size < 8e6  # plotly.js (~4.7 MB) plus light meshes
    assert [p.name for p in path.parent.iterdir()] == ["nodule.html"]  # no temp file left behind


def test_slice_montage(nodule, tmp_path):
    voxel, seg = nodule
    fig = slice_montage(voxel, seg, n=5)
    axes = [ax for ax in fig.get_axes() if ax.images]
    assert len(axes) == 3 + 5
    assert all(ax.collections for ax in axes[:3])  # the mask contour is drawn on the orthogonal slices
    fig.savefig(tmp_path / "m.png")
    assert len(slice_montage(voxel, n=1).get_axes()) == 4
    with pytest.raises(MedlibError, match="differs"):
        slice_montage(voxel, seg[:-1])


def test_title_and_buttons_do_not_overlap(nodule):
    voxel, seg = nodule
    fig = nodule_figure(voxel, seg, title="candidate 1")
    menu = fig.layout.updatemenus[0]
    # buttons stand on the plot's top edge; the title hangs from the figure's top: the margin holds both
    assert (menu.y, menu.yanchor) == (1, "bottom") and (fig.layout.title.y, fig.layout.title.yanchor) == (0.99, "top")
    assert fig.layout.margin.t >= 80
    assert nodule_figure(voxel).layout.margin.t < 20  # no title, no buttons: no empty band


def test_heat_volume_adds_a_trace_visible_in_every_view(nodule):
    voxel, seg = nodule
    heat = np.zeros(voxel.shape, np.float32)
    heat[12:20, 12:20, 12:20] = 1.0
    fig = nodule_figure(voxel, seg, heat=heat)
    assert [t.type for t in fig.data] == ["mesh3d"] * 3 + ["surface", "volume"]
    assert all(b.args[0]["visible"][-1] is True for b in fig.layout.updatemenus[0].buttons)
    vol = fig.data[-1]
    hot = np.stack([vol.x, vol.y, vol.z], 1)[np.asarray(vol.value) > 0.5]
    assert hot.min() >= 12 and hot.max() <= 19  # the shells sit where the heat is, in voxel coordinates
    with pytest.raises(MedlibError, match="heat shape"):
        nodule_figure(voxel, seg, heat=heat[:-1])


def test_slice_slider_moves_the_plane_without_a_kernel(nodule):
    voxel, seg = nodule
    fig = nodule_figure(voxel, seg, step_size=2)
    plane, slider = fig.data[3], fig.layout.sliders[0]
    assert plane.type == "surface" and np.asarray(plane.surfacecolor).shape == voxel.shape[1:]
    positions = [str(i) for i in range(0, voxel.shape[0], 2)]
    assert [s.label for s in slider.steps] == positions == [f.name for f in fig.frames]
    assert all(s.method == "animate" and list(s.args[0]) == [s.label] for s in slider.steps)
    i = 10
    frame = fig.frames[i // 2]
    assert list(frame.traces) == [3]  # each frame moves the plane only
    assert np.all(np.asarray(frame.data[0].x) == i)
    assert np.array_equal(np.asarray(frame.data[0].surfacecolor), voxel[i])
    centre = int(np.floor(np.argwhere(seg)[:, 0].mean() + 0.5))
    assert abs(int(slider.steps[slider.active].label) - centre) <= 1  # it starts at the nodule
    assert abs(int(np.asarray(plane.x)[0, 0]) - centre) <= 1
    html = fig.to_html(include_plotlyjs=False)
    assert '"sliders"' in html and '"bdata"' in html and len(html) < 600_000  # frames as compact typed arrays


def test_figure_carries_a_static_png_beside_its_json(nodule):
    import base64

    import plotly.io as pio

    voxel, seg = nodule
    fig = nodule_figure(voxel, seg, heat=voxel.astype(np.float32), title="a nodule")
    old = pio.renderers.default
    try:
        pio.renderers.default = "plotly_mimetype"
        bundle = fig._repr_mimebundle_()
    finally:
        pio.renderers.default = old
    assert "application/vnd.plotly.v1+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(png) < 200_000
