"""Choosing a 2D recipe by k-fold cross-validation on train + val (--cv-fold): the folds against sklearn's
stratification, the test split never read, the flag refused where it means nothing."""

import numpy as np
import pytest
from synth_medmnist import make_arrays, write_npz

from medlib.config import make_config
from medlib.data import load_medmnist
from medlib.engine.runs import run_dir
from medlib.engine.splits import load_for_config, selection_split, split_sizes
from medlib.engine.training import fit
from medlib.errors import MedlibError

N = (60, 24, 20)  # train, val, test


def _pool_labels(name):
    a = make_arrays(name, 28, n=N)
    return np.concatenate([a["train_labels"], a["val_labels"]]).ravel()


@pytest.mark.parametrize("name", ["breastmnist", "bloodmnist"])
def test_folds_partition_the_pool_stratified_like_sklearn(synth_root, name):
    from sklearn.model_selection import StratifiedKFold

    write_npz(synth_root, name, 28, n=N)
    ds = load_medmnist(name, 28)
    y = _pool_labels(name)
    k = 5
    seen = []
    oracle = [
        np.bincount(y[test], minlength=y.max() + 1)
        for _, test in StratifiedKFold(k, shuffle=True, random_state=0).split(np.zeros(len(y)), y)
    ]
    for fold in range(k):
        d = selection_split(ds, k, fold)
        assert set(d.splits) == {"train", "val"}  # no test: the choice cannot see it
        assert len(d["train"]) + len(d["val"]) == len(y)
        counts = np.bincount(d["val"].y.numpy(), minlength=y.max() + 1)
        # sklearn's folds hold each class to within one sample of n_c / k; ours must too
        assert np.all(np.abs(counts - np.bincount(y, minlength=y.max() + 1) / k) < 1 + 1e-9)
        assert np.all(np.abs(counts - oracle[fold]) <= 1)
        seen.append(d["val"].X.reshape(len(d["val"]), -1).numpy())
    pool = np.concatenate([ds["train"].X, ds["val"].X]).reshape(len(y), -1)
    rows = np.concatenate(seen)
    assert len(rows) == len(pool)  # every pooled image is held out exactly once over the k folds
    assert sorted(map(bytes, rows)) == sorted(map(bytes, pool))


def test_config_and_loader(synth_root):
    write_npz(synth_root, "breastmnist", 28, n=N)
    base = make_config("report1", dataset="breastmnist")
    cfg = make_config("report1", dataset="breastmnist", cv_fold=2)
    assert base.key() == make_config("report1", dataset="breastmnist", cv_fold=-1).key()  # old folders stay valid
    assert cfg.key() != base.key() and "-cv2-" in run_dir(cfg).name and "-cv" not in run_dir(base).name
    ds = load_for_config(cfg)
    assert set(ds.splits) == {"train", "val"} and len(ds["val"]) == 17  # 84 pooled, dealt to 5 folds: 17 x 4, 16
    assert make_config("report1", dataset="breastmnist", cv_fold=0, folds=3).folds == 3  # --folds applies here


@pytest.mark.parametrize("fold", [0, 4])
def test_estimate_matches_the_loaded_real_split(real_data, monkeypatch, fold):
    monkeypatch.setenv("MEDLIB_DATA", str(real_data))
    cfg = make_config("report1", dataset="breastmnist", cv_fold=fold)
    ds = load_for_config(cfg)
    _, n_train, n_eval = split_sizes(cfg)  # from INFO's counts, nothing read
    assert (n_train, n_eval) == (len(ds["train"]), len(ds["val"])) and n_train + n_eval == 546 + 78


@pytest.mark.parametrize(
    "kw,words",
    [
        (dict(dataset="breastmnist", cv_fold=5), "--cv-fold 5 must be in 0..4"),
        (dict(dataset="breastmnist", cv_fold=-2), "--cv-fold must be >= -1"),
        (dict(dataset="m3dv", cv_fold=0), "drop --cv-fold"),
        (dict(dataset="breastmnist", folds=3), "--folds only apply to the nodule cubes"),
    ],
)
def test_refused_in_one_line(kw, words):
    with pytest.raises(MedlibError, match=words.replace("(", r"\(")):
        make_config("report1", **kw)


def test_multilabel_refused(synth_root):
    write_npz(synth_root, "chestmnist", 28, n=(10, 5, 5))
    with pytest.raises(MedlibError, match="chestmnist is multi-label"):
        load_for_config(make_config("report1", dataset="chestmnist", cv_fold=0))


def test_a_fold_run_records_validation_only(synth_root, tmp_path):
    write_npz(synth_root, "breastmnist", 28, n=N)
    cfg = make_config("report1", dataset="breastmnist", cv_fold=1, epochs=1, batch_size=16, model="resnet18")
    run = fit(cfg, out=tmp_path / "runs", progress=False, verbose=False)
    record = run.record
    assert record["status"] == "complete" and "val" in record["metrics"] and "test" not in record["metrics"]
    assert record["metrics"]["val"]["n"] == 17
