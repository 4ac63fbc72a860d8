"""M3DV reader on generated folders (formats, errors, cache, folds) and on the real course data via MEDLIB_DATA.

conftest.py gives each test its own MEDLIB_CACHE under tmp_path, which the cache test relies on.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from synth_m3dv import write_m3dv

from medlib.data.cubes import final_split, kfold_datasets, stratified_folds, stratified_share
from medlib.data.m3dv import list_candidates, load_m3dv, load_sample, read_labels
from medlib.errors import MedlibError
from medlib.ops import apply_mask, crop_cube, mask_centroid

# ---- generated data ----


@pytest.mark.parametrize("header", ["name,label", "name,lable"])
def test_reads_both_headers(tmp_path, header):
    folder, csv = write_m3dv(tmp_path, n=6, header=header)
    assert read_labels(csv) == {f"candidate{2 * i + 1}": (i + 1) % 2 for i in range(6)}
    ds = load_m3dv(folder, crop=16)
    split = ds["all"]
    assert split.X.shape == (6, 1, 16, 16, 16) and split.X.dtype == torch.uint8
    assert split.y.tolist() == [1, 0, 1, 0, 1, 0] and split.y.dtype == torch.int64
    assert ds.meta.task == "binary-class" and ds.meta.size == 16 and ds.meta.dims == 3 and ds.meta.md5


def test_numeric_order_and_unlabelled(tmp_path):
    folder, csv = write_m3dv(tmp_path, n=6)
    assert list_candidates(folder) == [f"candidate{i}" for i in (1, 3, 5, 7, 9, 11)]
    csv.unlink()
    ds = load_m3dv(folder, crop=8)
    assert ds["all"].ids == list_candidates(folder) and (ds["all"].y == -1).all()


def test_crop_matches_numpy_around_the_mask_centroid(tmp_path):
    folder, _ = write_m3dv(tmp_path, n=3, size=30)
    ds = load_m3dv(folder, crop=12, dilate=1)
    for name, x in zip(ds["all"].ids, ds["all"].X):
        voxel, seg = load_sample(folder / f"{name}.npz")
        c = np.floor(mask_centroid(seg) + 0.5).astype(int) - 6
        s = tuple(slice(a, a + 12) for a in c)
        np.testing.assert_array_equal(x[0].numpy(), apply_mask(voxel, seg, dilate=1)[s])
    raw = load_m3dv(folder, crop=12, mask=False, center="volume")
    voxel, _ = load_sample(folder / "candidate1.npz")
    np.testing.assert_array_equal(raw["all"].X[0, 0].numpy(), voxel[9:21, 9:21, 9:21])


def test_cache_is_used_and_invalidated(tmp_path):
    folder, _ = write_m3dv(tmp_path, n=4)
    first = load_m3dv(folder, crop=16)
    cached = list((tmp_path / "cache" / "m3dv").glob("*.npz"))
    assert len(cached) == 1
    assert torch.equal(load_m3dv(folder, crop=16)["all"].X, first["all"].X)
    load_m3dv(folder, crop=8)
    assert len(list((tmp_path / "cache" / "m3dv").glob("*.npz"))) == 2
    # a changed sample file changes the key, so the stale array is not reused
    voxel, seg = load_sample(folder / "candidate1.npz")
    np.savez_compressed(folder / "candidate1.npz", voxel=255 - voxel, seg=seg)
    os.utime(folder / "candidate1.npz", ns=(1, 1))
    assert not torch.equal(load_m3dv(folder, crop=16)["all"].X[0], first["all"].X[0])
    cached[0].write_bytes(b"garbage")  # a damaged cache file is recomputed, not trusted
    assert load_m3dv(folder, crop=16)["all"].X.shape == (4, 1, 16, 16, 16)


def test_any_cube_size(tmp_path):
    for size in (20, 100):
        folder, _ = write_m3dv(tmp_path / str(size), n=2, size=size)
        assert load_m3dv(folder, crop=20)["all"].X.shape == (2, 1, 20, 20, 20)


def _save(folder: Path, name: str, **arrays):
    np.savez_compressed(folder / f"{name}.npz", **arrays)


def test_errors(tmp_path):
    folder, csv = write_m3dv(tmp_path, n=3, size=24)
    voxel, seg = load_sample(folder / "candidate1.npz")

    with pytest.raises(MedlibError, match="smaller than crop=32"):
        load_m3dv(folder, crop=32)
    (folder / "candidate3.npz").unlink()
    with pytest.raises(MedlibError, match=r"1 sample\(s\) listed in .*train_val.csv have no file in .*candidate3"):
        load_m3dv(folder, crop=8)
    _save(folder, "candidate3", voxel=voxel, seg=seg[:-1])
    with pytest.raises(
        MedlibError, match=r"candidate3.npz: voxel shape \(24, 24, 24\) and seg shape \(23, 24, 24\) differ"
    ):
        load_m3dv(folder, crop=8)
    _save(folder, "candidate3", voxel=voxel[:, :20], seg=seg[:, :20])
    with pytest.raises(MedlibError, match="is not a cube"):
        load_m3dv(folder, crop=8)
    _save(folder, "candidate3", voxel=voxel, seg=np.zeros_like(seg))
    with pytest.raises(MedlibError, match="candidate3.npz: the seg mask is empty"):
        load_m3dv(folder, crop=8)
    assert load_m3dv(folder, crop=8, mask=False, center="volume")["all"].X.shape[0] == 3
    _save(folder, "candidate3", voxel=voxel)
    with pytest.raises(MedlibError, match=r"lacks the key\(s\) \['seg'\]"):
        load_m3dv(folder, crop=8)
    data = (folder / "candidate1.npz").read_bytes()
    (folder / "candidate3.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(MedlibError, match="damaged or truncated"):
        load_m3dv(folder, crop=8)
    _save(folder, "candidate3", voxel=voxel.astype(np.int16), seg=seg)
    with pytest.raises(MedlibError, match="expected uint8"):
        load_m3dv(folder, crop=8)

    csv.write_text("name,lable\ncandidate1,1\ncandidate3,2\n")
    with pytest.raises(MedlibError, match="line 3: .*labels must be 0 or 1"):
        read_labels(csv)
    csv.write_text("id,target\ncandidate1,1\n")
    with pytest.raises(MedlibError, match="must start with the header 'name,label'"):
        read_labels(csv)
    csv.write_text("name,label\ncandidate1,1\n")
    with pytest.raises(MedlibError, match=r"have no label in .*candidate5"):
        load_m3dv(folder, ids=["candidate1", "candidate5"], crop=8)
    with pytest.raises(MedlibError, match="center must be one of"):
        load_m3dv(folder, center="middle")
    with pytest.raises(MedlibError, match="only together with mask=True"):
        load_m3dv(folder, mask=False, dilate=2)
    with pytest.raises(MedlibError, match="does not exist"):
        list_candidates(tmp_path / "nowhere")


def test_folds_are_stratified_disjoint_and_cover():
    y = np.array([0] * 17 + [1] * 23)
    folds = stratified_folds(y, k=5, seed=3)
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(40))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for f in folds:
        assert abs(y[f].mean() - y.mean()) < 0.1
    assert all((a == b).all() for a, b in zip(folds, stratified_folds(y, k=5, seed=3)))
    with pytest.raises(MedlibError, match="unlabelled"):
        stratified_folds(np.array([0, 1, -1, 0]), k=2)


def test_kfold_datasets(tmp_path):
    folder, _ = write_m3dv(tmp_path, n=20, size=16)
    ds = load_m3dv(folder, crop=8)
    tests = []
    for fold in range(5):
        kd = kfold_datasets(ds, k=5, fold=fold, val_fraction=0.2, seed=0)
        ids = {s: set(kd[s].ids) for s in ("train", "val", "test")}
        assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
        assert sum(map(len, ids.values())) == 20 and len(ids["test"]) == 4 and len(ids["val"]) == 4
        assert kd["val"].y.sum() == 2  # stratified: 2 of each class
        tests += kd["test"].ids
    assert sorted(tests) == sorted(ds["all"].ids)
    with pytest.raises(MedlibError, match="fold=5 is out of range"):
        kfold_datasets(ds, k=5, fold=5)


def test_final_split_is_a_stratified_share_of_every_sample(tmp_path):
    """The final model's train / val (`--fold all`) is cut by the same stratified share as a fold's val."""
    folder, _ = write_m3dv(tmp_path, n=20, size=16)
    ds = load_m3dv(folder, crop=8)
    fs = final_split(ds, val_fraction=0.2, seed=0)
    assert set(fs.splits) == {"train", "val"} and len(fs["val"]) == 4 and fs["val"].y.sum() == 2
    assert sorted(fs["train"].ids + fs["val"].ids) == sorted(ds["all"].ids)
    y = ds["all"].y.numpy()
    share = stratified_share(y, np.arange(len(y)), 0.2, np.random.default_rng(0))
    assert fs["val"].ids == [ds["all"].ids[i] for i in share]


def test_both_nodule_sources_take_the_recipe_from_cubes():
    from medlib.data import cubes, m3dv, nodules

    for name in ("cube_meta", "check_options", "prepare_sample"):  # cube_meta carries LABEL_NAMES
        assert getattr(m3dv, name) is getattr(cubes, name) is getattr(nodules, name)


# ---- the real course data ----


def _m3dv_root() -> Path:
    root = os.environ.get("MEDLIB_DATA")
    if not root:
        pytest.skip("MEDLIB_DATA is not set; point it at ../shared/data to test on the real M3DV files")
    path = Path(root) / "m3dv"
    if not (path / "train_val").is_dir():
        pytest.skip(f"{path}/train_val is missing, so the real M3DV data cannot be tested")
    return path


@pytest.fixture(scope="module")
def real():
    path = _m3dv_root()
    return path, load_m3dv(path / "train_val", crop=32, cache=False)


@pytest.mark.realdata
def test_real_reader(real):
    path, ds = real
    assert len(ds["all"]) == 372 and int(ds["all"].y.sum()) == 198
    assert ds["all"].X.shape == (372, 1, 32, 32, 32)
    assert ds["all"].ids[:3] == ["candidate1", "candidate2", "candidate5"]
    assert read_labels(path / "train_val.csv") == dict(zip(ds["all"].ids, ds["all"].y.tolist()))


@pytest.mark.realdata
def test_real_both_headers(real, tmp_path):
    path, ds = real
    text = (path / "train_val.csv").read_text()
    assert text.startswith("name,lable")
    fixed = tmp_path / "labels.csv"
    fixed.write_text(text.replace("name,lable", "name,label", 1))
    assert read_labels(fixed) == read_labels(path / "train_val.csv")


@pytest.mark.realdata
def test_real_full_size_crops_like_the_64_cube(real):
    path, ds = real
    names = list_candidates(path / "full_size")
    assert len(names) == 12
    full = load_m3dv(path / "full_size", labels=path / "train_val.csv", ids=names, crop=32, cache=False)
    index = {n: i for i, n in enumerate(ds["all"].ids)}
    inside = []
    for name, x in zip(names, full["all"].X):
        _, seg = load_sample(path / "full_size" / f"{name}.npz")
        if seg[18:82, 18:82, 18:82].sum() != seg.sum():
            continue  # a large nodule: its mask leaves the 64³ window, so its centroid differs there
        inside.append(name)
        assert torch.equal(x, ds["all"].X[index[name]])
    assert len(inside) == 6
    assert full["all"].y.tolist() == [int(ds["all"].y[index[n]]) for n in names]


@pytest.mark.realdata
def test_real_folds(real):
    _, ds = real
    y = ds["all"].y.numpy()
    folds = stratified_folds(y, k=5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(372))
    for f in folds:
        assert abs(y[f].mean() - 198 / 372) < 0.02
    kd = kfold_datasets(ds, k=5, fold=2)
    parts = [set(kd[s].ids) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == 372 and len(set.union(*parts)) == 372
    assert abs(kd["val"].y.float().mean().item() - 198 / 372) < 0.03


@pytest.mark.realdata
def test_real_raw_crop_equals_numpy_slicing(real):
    path, _ = real
    voxel, seg = load_sample(path / "train_val" / "candidate1.npz")
    got = load_m3dv(path / "train_val", ids=["candidate1"], crop=32, mask=False, center="volume", cache=False)
    np.testing.assert_array_equal(got["all"].X[0, 0].numpy(), voxel[16:48, 16:48, 16:48])
    np.testing.assert_array_equal(crop_cube(voxel, 32), voxel[16:48, 16:48, 16:48])
