"""Grey images as 3 channels (`as_rgb`), and finding an existing download in MedMNIST's flat layout."""

from pathlib import Path

import numpy as np
import pytest
import torch
from synth_medmnist import make_arrays, write_npz

from medlib.data import files, load_medmnist
from medlib.data.files import candidate_paths
from medlib.errors import MedlibError


def _write_flat(folder: Path, name: str, size: int = 28, seed: int = 0) -> Path:
    """A file in the `medmnist` package's layout: `<folder>/<flag>[_<size>].npz`, no `medmnist/` level."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.npz" if size == 28 else f"{name}_{size}.npz")
    np.savez_compressed(path, **make_arrays(name, size, n=(6, 3, 3), seed=seed))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home folder (for `~/.medmnist`) and no MEDMNIST_ROOT, whatever this machine holds."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)
    return h


@pytest.mark.parametrize("name,dims", [("breastmnist", 2), ("organmnist3d", 3)])
def test_as_rgb_repeats_the_grey_channel(synth_root, name, dims):
    write_npz(synth_root, name, n=(6, 3, 3))
    grey, rgb = load_medmnist(name), load_medmnist(name, as_rgb=True)
    assert grey.meta.n_channels == 1 and rgb.meta.n_channels == 3
    for split in ("train", "val", "test"):
        X = rgb[split].X
        assert X.dtype == torch.uint8 and X.shape == (len(grey[split]), 3) + (28,) * dims
        for c in range(3):
            assert torch.equal(X[:, c], grey[split].X[:, 0])
        assert torch.equal(rgb[split].y, grey[split].y)


def test_as_rgb_leaves_colour_sets_alone(synth_root):
    write_npz(synth_root, "pathmnist", n=(6, 3, 3))
    a, b = load_medmnist("pathmnist"), load_medmnist("pathmnist", as_rgb=True)
    assert b.meta.n_channels == 3 and torch.equal(a["train"].X, b["train"].X)


def test_as_rgb_set_feeds_a_three_channel_network(synth_root):
    from medlib.models import build_model

    write_npz(synth_root, "breastmnist", n=(6, 3, 3))
    ds = load_medmnist("breastmnist", as_rgb=True)
    net = build_model("resnet18", in_channels=ds.meta.n_channels, num_classes=ds.meta.n_classes)
    assert net(ds["train"].X[:2].float()).shape == (2, 2)


def test_search_order_is_medlib_then_flat_then_medmnist_root_then_home(synth_root, home, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path / "mroot"))
    home_file = _write_flat(home / ".medmnist", "breastmnist")
    assert load_medmnist("breastmnist").meta.source == str(home_file)
    env_file = _write_flat(tmp_path / "mroot", "breastmnist")
    assert load_medmnist("breastmnist").meta.source == str(env_file)
    flat_file = _write_flat(synth_root, "breastmnist")
    assert load_medmnist("breastmnist").meta.source == str(flat_file)
    ours = write_npz(synth_root, "breastmnist", n=(6, 3, 3))
    assert load_medmnist("breastmnist").meta.source == str(ours)
    assert candidate_paths("breastmnist") == [ours, flat_file, env_file, home_file]


def test_sizes_use_the_official_file_names(synth_root, home):
    path = _write_flat(home / ".medmnist", "organmnist3d", size=64)
    ds = load_medmnist("organmnist3d", 64)
    assert ds.meta.source == str(path) and ds["train"].X.shape[-3:] == (64, 64, 64)


def test_an_explicit_root_is_searched_alone(synth_root, home, tmp_path):
    _write_flat(home / ".medmnist", "breastmnist")
    other = tmp_path / "other"
    assert candidate_paths("breastmnist", root=other) == [other / "medmnist/breastmnist.npz", other / "breastmnist.npz"]
    with pytest.raises(MedlibError, match="breastmnist.npz is not under"):
        load_medmnist("breastmnist", root=other, download=False)
    flat = _write_flat(other, "breastmnist")
    assert load_medmnist("breastmnist", root=other).meta.source == str(flat)


def test_a_missing_file_downloads_into_medlibs_layout(synth_root, home, monkeypatch):
    got = {}

    def fake_download(url, dest, expected_md5=None, progress=True):
        got["dest"] = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(dest, **make_arrays("breastmnist", n=(6, 3, 3)))
        return dest

    monkeypatch.setattr(files, "download", fake_download)
    load_medmnist("breastmnist")
    assert got["dest"] == synth_root / "medmnist" / "breastmnist.npz"


def test_info_lists_files_found_in_the_flat_layouts(synth_root, home, tmp_path, monkeypatch):
    from medlib.data.info import info_table

    _write_flat(home / ".medmnist", "breastmnist")
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path / "mroot"))
    _write_flat(tmp_path / "mroot", "organmnist3d", size=64)
    table = info_table(check_md5=False).set_index("dataset")
    assert table.at["breastmnist", "present"] == "28" and table.at["organmnist3d", "present"] == "64"
    assert table.at["pathmnist", "present"] == "-"
