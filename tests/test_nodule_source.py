"""Report 2 without the course data: M3DV when present, else NoduleMNIST3D with auto-masks, in M3DV's shape."""
import numpy as np
import pytest
import torch
from synth_m3dv import write_m3dv

from medlib.data import registry
from medlib.data.m3dv import kfold_datasets, load_m3dv
from medlib.data.nodules import load_nodules, m3dv_present
from medlib.errors import MedlibError

N = (6, 3, 4)  # train, val, test


@pytest.fixture(autouse=True)
def _no_other_downloads(tmp_path, monkeypatch):
    """Only the generated data root counts, whatever ~/.medmnist or $MEDMNIST_ROOT hold on this machine."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)


def _ball(center, radius: float, side: int) -> np.ndarray:
    grid = np.indices((side,) * 3, dtype=np.float32)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius ** 2


def write_nodulemnist3d(root, size: int = 28, seed: int = 0):
    """nodulemnist3d[_64].npz with the official keys, shapes and dtypes: (N, s, s, s) uint8 images, (N, 1) uint8
    labels. Each volume: a bright ball off centre (the nodule) and a bright slab in a corner (not the nodule)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), N):
        imgs = []
        for _ in range(n):
            c = (size - 1) / 2 + rng.uniform(-3, 3, 3)
            vol = rng.normal(30, 5, (size,) * 3)
            vol[_ball(c, size / 7, size)] = 200
            vol[:3, :3, :] = 220  # a bright structure far from the centre: auto_mask must leave it out
            imgs.append(np.clip(vol, 0, 255).astype(np.uint8))
        arrays[f"{split}_images"] = np.stack(imgs)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
    path = root / "medmnist" / registry.file_name("nodulemnist3d", size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path, arrays


def test_without_m3dv_nodulemnist3d_comes_in_m3dvs_shape(synth_root):
    path, arrays = write_nodulemnist3d(synth_root)
    assert not m3dv_present()
    ds = load_nodules(crop=16)
    assert ds.meta.name == "nodulemnist3d" and ds.meta.source == str(path)
    assert ds.meta.md5 == registry.md5("nodulemnist3d") and ds.meta.size == 16 and ds.meta.dims == 3
    assert list(ds.splits) == ["all"]
    s = ds["all"]
    assert s.X.dtype == torch.uint8 and s.X.shape == (sum(N), 1, 16, 16, 16)
    assert s.y.dtype == torch.int64
    want = np.concatenate([arrays[f"{k}_labels"][:, 0] for k in ("train", "val", "test")])
    np.testing.assert_array_equal(s.y.numpy(), want)
    assert s.ids[:2] == ["train_0", "train_1"] and s.ids[-1] == f"test_{N[2] - 1}"
    # the same kind of dataset as load_m3dv: cross-validation folds take it unchanged
    fold = kfold_datasets(ds, k=3, fold=0)
    assert sum(len(fold[k]) for k in ("train", "val", "test")) == sum(N)


def test_auto_mask_crops_around_the_nodule_and_masks_the_rest(synth_root):
    _, arrays = write_nodulemnist3d(synth_root)
    ds = load_nodules(crop=16)
    vol = ds["all"].X[0, 0].numpy()
    # masked: only the ball survives, the bright corner slab is gone, and the ball sits at the crop's centre
    assert set(np.unique(vol)) <= {0, 200}
    fg = np.argwhere(vol > 0).mean(0)
    np.testing.assert_allclose(fg, (16 - 1) / 2, atol=1.0)
    unmasked = load_nodules(crop=28, mask=False, center="volume")["all"].X[0, 0].numpy()
    np.testing.assert_array_equal(unmasked, arrays["train_images"][0])  # no mask, centre crop of 28: the file itself


def test_official_splits_and_64px(synth_root):
    write_nodulemnist3d(synth_root, size=64)
    from medlib.data.nodules import load_nodulemnist3d

    ds = load_nodulemnist3d(size=64, crop=32, official_splits=True)
    assert {k: len(v) for k, v in ds.splits.items()} == dict(zip(("train", "val", "test"), N))
    assert ds["val"].X.shape[1:] == (1, 32, 32, 32) and ds["val"].ids[0] == "val_0"


def test_m3dv_wins_when_present(synth_root):
    write_nodulemnist3d(synth_root)
    write_m3dv(synth_root / "m3dv", n=6)
    assert m3dv_present()
    ds = load_nodules(crop=16)
    ref = load_m3dv(crop=16)
    assert ds.meta.name == "m3dv" and ds.meta.source == ref.meta.source
    assert torch.equal(ds["all"].X, ref["all"].X) and ds["all"].ids == ref["all"].ids
    assert load_nodules("nodulemnist3d", crop=16).meta.name == "nodulemnist3d"  # asked for by name


def test_clear_errors(synth_root):
    with pytest.raises(MedlibError, match="source must be one of"):
        load_nodules("luna16")
    with pytest.raises(MedlibError, match="M3DV folder"):
        load_nodules("m3dv")
    with pytest.raises(MedlibError, match="nodulemnist3d.npz is not under"):
        load_nodules(download=False)
