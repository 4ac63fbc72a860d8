"""Report 2 without the course data: M3DV when present, else NoduleMNIST3D with auto-masks, in M3DV's shape."""

import numpy as np
import pytest
import torch
from synth_m3dv import write_m3dv
from synth_nodules import N, write_nodulemnist3d

from medlib.data import registry
from medlib.data.cubes import kfold_datasets
from medlib.data.m3dv import load_m3dv
from medlib.data.nodules import load_nodules, m3dv_present
from medlib.errors import MedlibError


@pytest.fixture(autouse=True)
def _no_other_downloads(tmp_path, monkeypatch):
    """Only the generated data root counts, whatever ~/.medmnist or $MEDMNIST_ROOT hold on this machine."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)


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


def test_notebook_helpers_without_m3dv(synth_root):
    """What notebooks 00 / 03 / 04 show when M3DV is absent: NoduleMNIST3D ids, labels, masks, and no 100³ cube."""
    from medlib.data import nodules
    from medlib.ops import auto_mask

    _, arrays = write_nodulemnist3d(synth_root)
    assert nodules.source() == "nodulemnist3d" and nodules.training_dataset() == "nodulemnist3d-cubes"
    assert "NoduleMNIST3D" in nodules.notice() and "auto_mask" in nodules.notice()
    labels = nodules.raw_labels()
    want = np.concatenate([arrays[f"{k}_labels"][:, 0] for k in ("train", "val", "test")])
    assert list(labels.values()) == want.tolist() and len(labels) == sum(N)
    benign, malignant = nodules.examples("candidate1", "candidate2")  # M3DV's names mean nothing here
    assert (labels[benign], labels[malignant]) == (0, 1) and benign.startswith("train_")
    voxel, seg = nodules.raw_sample("val_2")
    np.testing.assert_array_equal(voxel, arrays["val_images"][2])
    np.testing.assert_array_equal(seg, auto_mask(arrays["val_images"][2]))
    assert nodules.full_size_sample(benign) is None and nodules.full_size_folder() is None
    with pytest.raises(MedlibError, match="not a NoduleMNIST3D id"):
        nodules.raw_sample("candidate1")
    with pytest.raises(MedlibError, match="not a NoduleMNIST3D id"):
        nodules.raw_sample(f"test_{N[2]}")  # one past the end


def test_notebook_helpers_with_m3dv(synth_root):
    from medlib.data import nodules
    from medlib.data.m3dv import load_sample, read_labels

    folder, csv = write_m3dv(synth_root / "m3dv", n=6)
    full = synth_root / "m3dv" / "full_size"
    full.mkdir()
    (full / "candidate1.npz").write_bytes((folder / "candidate1.npz").read_bytes())
    assert nodules.source() == "m3dv" and nodules.training_dataset() == "m3dv" and "M3DV" in nodules.notice()
    assert nodules.raw_labels() == read_labels(csv) and nodules.examples() == ("candidate1", "candidate2")
    voxel, seg = nodules.raw_sample("candidate3")
    ref = load_sample(folder / "candidate3.npz")
    np.testing.assert_array_equal(voxel, ref[0]) and np.testing.assert_array_equal(seg, ref[1])
    assert nodules.full_size_folder() == full and nodules.full_size_sample("candidate1") is not None
    assert nodules.full_size_sample("candidate3") is None and nodules.labels_csv() == csv


def test_report2_recipe_trains_on_nodulemnist3d_cubes(synth_root, tmp_path):
    """`--dataset nodulemnist3d-cubes`: Report 2's folds and crops on NoduleMNIST3D, its own run folders and MD5."""
    from medlib.config import make_config
    from medlib.engine.runs import current_data_md5, run_dir
    from medlib.engine.splits import load_for_config

    write_nodulemnist3d(synth_root, counts=(30, 6, 8))
    cfg = make_config("report2", dataset="NoduleMNIST3D-Cubes", crop=16, fold=1, folds=2)
    assert cfg.dataset == "nodulemnist3d-cubes"
    assert run_dir(cfg, tmp_path).name.startswith("nodulemnist3d-cubes_28-densenet3d-f1-s0-")
    assert current_data_md5(cfg) == registry.md5("nodulemnist3d", 28)
    ds = load_for_config(cfg)
    ref = kfold_datasets(load_nodules("nodulemnist3d", crop=16), k=2, fold=1)
    for s in ("train", "val", "test"):
        assert torch.equal(ds[s].X, ref[s].X) and ds[s].ids == ref[s].ids
    assert len(ds["train"]) + len(ds["val"]) + len(ds["test"]) == 44  # every cube in exactly one split
    assert len(set(ds["train"].ids) | set(ds["val"].ids) | set(ds["test"].ids)) == 44
    with pytest.raises(MedlibError, match="Size 128 is not offered"):
        make_config("report2", dataset="nodulemnist3d-cubes", size=128)


def test_unverified_files_only_when_asked(synth_root, monkeypatch):
    """A generated file fails the official MD5; MEDLIB_VERIFY_MD5=0 reads it anyway, with a warning."""
    import medlib.data.files as files
    from medlib.data import load_medmnist

    monkeypatch.undo()  # the real MD5 check, not synth_root's stand-in
    monkeypatch.setenv("MEDLIB_DATA", str(synth_root))
    monkeypatch.setenv("HOME", str(synth_root.parent / "home"))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)
    write_nodulemnist3d(synth_root)
    with pytest.raises(MedlibError, match="wrong MD5"):
        load_medmnist("nodulemnist3d")
    monkeypatch.setenv(files.ENV_VERIFY, "0")
    with pytest.warns(UserWarning, match="MD5 not checked"):
        assert len(load_medmnist("nodulemnist3d")["train"]) == N[0]
