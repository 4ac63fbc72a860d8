"""Loading, verifying and downloading MedMNIST files; every kind of bad input gives one clear error."""

import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from synth_medmnist import make_arrays, write_npz

from medlib.data import files, load_medmnist, registry
from medlib.errors import MedlibError


@pytest.mark.parametrize("name", registry.names())
def test_every_set_loads_with_task_shaped_labels(synth_root, name):
    size = 28
    arrays = make_arrays(name, size)
    write_npz(synth_root, name, size)
    ds = load_medmnist(name, size)
    inf = registry.info(name)
    assert ds.meta.task == inf["task"] and ds.meta.n_channels == inf["n_channels"]
    assert ds.meta.n_classes == len(inf["label"]) and ds.meta.dims == (3 if name.endswith("3d") else 2)
    for split in ("train", "val", "test"):
        s = ds[split]
        assert s.X.dtype == torch.uint8
        assert s.X.shape == (len(s), inf["n_channels"]) + (size,) * ds.meta.dims
        img = arrays[f"{split}_images"]
        back = s.X.numpy().transpose(0, 2, 3, 1) if img.ndim == 4 and img.shape[-1] == 3 else s.X.numpy()[:, 0]
        np.testing.assert_array_equal(back, img)  # channels-first without touching a value
        if ds.meta.multilabel:
            assert s.y.dtype == torch.float32 and s.y.shape == (len(s), len(inf["label"]))
        else:
            assert s.y.dtype == torch.int64 and s.y.shape == (len(s),)
        np.testing.assert_array_equal(s.y.numpy().reshape(len(s), -1), arrays[f"{split}_labels"])


@pytest.mark.parametrize("name,size", [("pathmnist", 64), ("chestmnist", 128), ("organmnist3d", 64)])
def test_larger_sizes(synth_root, name, size):
    write_npz(synth_root, name, size, n=(4, 2, 2))
    ds = load_medmnist(name, size)
    assert ds["train"].X.shape[-1] == size and ds.meta.size == size


def test_v1_alias_loads_the_v2_file(synth_root):
    write_npz(synth_root, "organamnist")
    assert load_medmnist("organmnist_axial").meta.name == "organamnist"


def test_real_files_verify_and_match_official_counts(real_data):
    for name in ("breastmnist", "pneumoniamnist", "retinamnist"):
        path = files.medmnist_path(name, 28, real_data)
        assert files.md5_status(path, registry.md5(name)) == "ok"
        ds = load_medmnist(name, root=real_data)
        assert {s: len(v) for s, v in ds.splits.items()} == registry.info(name)["n_samples"]


def test_md5_verdict_is_cached(real_data, monkeypatch):
    path = files.medmnist_path("breastmnist", 28, real_data)
    assert files.md5_status(path, registry.md5("breastmnist")) == "ok"
    monkeypatch.setattr(files, "file_md5", lambda p: pytest.fail("re-hashed a file whose verdict is cached"))
    assert files.md5_status(path, registry.md5("breastmnist")) == "ok"


def test_md5_mismatch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    path = write_npz(tmp_path, "breastmnist")
    with pytest.raises(
        MedlibError, match=r"breastmnist.npz has the wrong MD5 \(expected 750601b1f35ba3300ea97c75c52ff8f6\)"
    ):
        load_medmnist("breastmnist")
    assert path.exists()  # nothing of the user's is deleted


def test_truncated_npz(synth_root):
    path = write_npz(synth_root, "breastmnist")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MedlibError, match=r"breastmnist.npz cannot be read as an npz .* truncated or damaged"):
        load_medmnist("breastmnist")


def test_wrong_keys(synth_root):
    path = synth_root / "medmnist" / "breastmnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(MedlibError, match=r"lacks the keys train_images.*it has x_train.*not a MedMNIST file"):
        load_medmnist("breastmnist")


def test_wrong_image_shape(synth_root):
    arrays = make_arrays("breastmnist", 64)
    path = synth_root / "medmnist" / "breastmnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    with pytest.raises(
        MedlibError, match=r"train_images is uint8\(40, 64, 64\).*Is this the 28-px file of breastmnist"
    ):
        load_medmnist("breastmnist")


def test_missing_file_offline_names_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(MedlibError) as e:
        load_medmnist("dermamnist", 64)
    msg = str(e.value)
    assert "dermamnist_64.npz" in msg and registry.url("dermamnist", 64) in msg
    assert str(tmp_path / "medmnist" / "dermamnist_64.npz") in msg
    assert not list((tmp_path / "medmnist").glob("*")), "no partial file may remain"


def test_download_checks_md5_then_renames(tmp_path, monkeypatch):
    src = write_npz(tmp_path / "remote", "breastmnist")
    good = files.file_md5(src)
    root = tmp_path / "root"
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    monkeypatch.setattr(registry, "url", lambda name, size=28: src.as_uri())
    # a wrong checksum: refused, nothing left behind
    monkeypatch.setattr(registry, "md5", lambda name, size=28: "0" * 32)
    with pytest.raises(MedlibError, match="its MD5 is .*nothing was saved"):
        load_medmnist("breastmnist")
    assert not (root / "medmnist").exists() or not list((root / "medmnist").iterdir())
    # the right checksum: downloaded into place and loaded
    monkeypatch.setattr(registry, "md5", lambda name, size=28: good)
    ds = load_medmnist("breastmnist")
    assert len(ds["train"]) == 40 and files.file_md5(root / "medmnist" / "breastmnist.npz") == good
