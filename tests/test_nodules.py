"""Report 2's pipeline through the engine: M3DV folds without leaks, CV summary, ensembles, predict CSV."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from synth_m3dv import TINY_CUBES

import medlib
from medlib import ensemble, results
from medlib.data.cubes import ALL_FOLDS
from medlib.engine import training
from medlib.errors import MedlibError
from medlib.experiments import cv
from medlib.submission import predict_folder

TINY = TINY_CUBES


def _digests(X):
    return {hashlib.md5(x.numpy().tobytes()).hexdigest() for x in X}


def test_no_validation_or_test_voxels_reach_training(m3dv_root, tmp_path, monkeypatch):
    seen = []
    real = training.train_epoch
    monkeypatch.setattr(
        training, "train_epoch", lambda net, opt, X, *a, **k: seen.append(X.clone()) or real(net, opt, X, *a, **k)
    )
    run = medlib.fit(medlib.make_config(**TINY), out=tmp_path / "runs", verbose=False)
    from medlib.engine.splits import load_for_config

    ds = load_for_config(run.config)
    trained = _digests(seen[0])
    assert trained == _digests(ds["train"].X)
    assert not trained & _digests(ds["val"].X) and not trained & _digests(ds["test"].X)
    assert not set(ds["train"].ids) & (set(ds["val"].ids) | set(ds["test"].ids))


def test_cross_validation_covers_every_sample_once(m3dv_root, tmp_path):
    runs, table = cv.cross_validate(medlib.make_config(**TINY), out=tmp_path / "runs")
    assert list(table["fold"]) == [0, 1, 2]
    ids = pd.concat([r.scores("test") for r in runs])["id"]
    assert len(ids) == 30 and ids.is_unique
    pooled = results.pooled(runs)
    assert pooled["n"] == 30 and 0 <= pooled["auc"] <= 1
    s = cv.summary(table)
    assert s["test_auc"] == f"{table['test_auc'].mean():.3f} ± {table['test_auc'].std(ddof=1):.3f}"
    # the pooled AUC is the AUC of the concatenated held-out scores, as sklearn computes it
    from sklearn.metrics import roc_auc_score

    scores = pd.concat([r.scores("test") for r in runs])
    assert pooled["auc"] == pytest.approx(roc_auc_score(scores["label"], scores["score_1"]))


def test_ensemble_average_and_weights():
    a, b = np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.4, 0.6], [0.2, 0.8]])
    np.testing.assert_allclose(ensemble.average([a, b]), (a + b) / 2)
    np.testing.assert_allclose(ensemble.average([a, b], [3, 1]), 0.75 * a + 0.25 * b)
    with pytest.raises(MedlibError, match="weights"):
        ensemble.average([a, b], [1])
    with pytest.raises(MedlibError, match="disagree on the prediction shape"):
        ensemble.average([a, b[:1]])


def test_predict_writes_submission_for_every_file(m3dv_root, tmp_path):
    runs = [medlib.fit(medlib.make_config(**{**TINY, "seed": s}), out=tmp_path / "runs", verbose=False) for s in (0, 1)]
    ckpts = [r.best_checkpoint for r in runs]
    out = tmp_path / "sub.csv"
    df = predict_folder(ckpts, m3dv_root / "train_val", out, labels=m3dv_root / "train_val.csv")
    written = pd.read_csv(out)
    assert list(written.columns) == ["id", "Predicted"] and len(written) == 30
    assert written["id"].tolist() == [f"candidate{2 * i + 1}" for i in range(30)]
    assert written["Predicted"].between(0, 1).all() and df.attrs["metrics"]["n"] == 30
    # the ensemble is the mean of the members' P(class 1)
    single = [predict_folder([c], m3dv_root / "train_val")["Predicted"] for c in ckpts]
    np.testing.assert_allclose(written["Predicted"], (single[0] + single[1]) / 2, atol=1e-6)
    # the same crop/mask as training comes from the checkpoint's config
    assert torch.load(ckpts[0], weights_only=True)["config"]["crop"] == 16


def test_predict_cli_errors(m3dv_root, tmp_path):
    from medlib.cli import main

    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "no.pt"),
                "--input",
                str(m3dv_root / "train_val"),
                "--out",
                str(tmp_path / "s.csv"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.slow
def test_short_cpu_training_on_real_m3dv_beats_chance(real_data, tmp_path, monkeypatch):
    """Baseline3D, 6 epochs on fold 0 of the real 372 (CPU, ~1 min): measured test AUC in the note."""
    if not (real_data / "m3dv" / "train_val").is_dir():
        pytest.skip("M3DV not under MEDLIB_DATA")
    cfg = medlib.make_config(
        dataset="m3dv",
        model="baseline3d",
        epochs=6,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        flip=True,
        shift=3,
        rot90=True,
    )
    run = medlib.fit(cfg, out=tmp_path, verbose=False)
    assert run.metrics["test"]["n"] == 75
    assert run.metrics["test"]["auc"] > 0.6, run.metrics
    rec = run.record
    assert rec["model"]["parameters"] == 69_906 and rec["seconds_per_epoch"] > 0 and rec["model"]["weights_mb"] > 0
    # the submission for the 12 full-size 100³ cubes: same crop/mask as training, one row per file
    full = real_data / "m3dv" / "full_size"
    sub = predict_folder([run.best_checkpoint], full, tmp_path / "sub.csv", labels=real_data / "m3dv" / "train_val.csv")
    assert sorted(pd.read_csv(tmp_path / "sub.csv")["id"]) == sorted(p.stem for p in full.glob("candidate*.npz"))
    assert len(sub) == 12 and sub.attrs["metrics"]["n"] == 12


def test_final_model_trains_on_every_labelled_cube_and_predicts(m3dv_root, tmp_path):
    """`--fold all`: no test fold, a stratified validation share only picks the checkpoint; predict takes it as is."""
    run = medlib.fit(medlib.make_config(**{**TINY, "fold": ALL_FOLDS}), out=tmp_path / "runs", verbose=False)
    assert run.dir.name.startswith("m3dv-baseline3d-fall-") and "test" not in run.metrics
    n = run.record["data"]
    assert n["n_train"] + n["n_val"] == 30 and n["n_val"] == round(0.15 * 15) * 2  # 15 per class, 15% of each
    ids = set(run.scores("val")["id"])
    assert len(ids) == n["n_val"]
    sub = predict_folder([run.best_checkpoint], m3dv_root / "train_val", labels=m3dv_root / "train_val.csv")
    assert len(sub) == 30 and sub["Predicted"].between(0, 1).all()


def test_a_same_size_rewrite_of_a_sample_is_not_reused(m3dv_root, tmp_path):
    """M3DV's content hash: a sample rewritten with the same size (and mtime) is other data, so the run is refused."""
    import os

    sample = m3dv_root / "train_val" / "candidate1.npz"
    with np.load(sample) as f:
        voxel, seg = f["voxel"], f["seg"]
    np.savez(sample, voxel=voxel, seg=seg)  # uncompressed: the size depends on the shapes only
    cfg = medlib.make_config(**{**TINY, "epochs": 1})
    run = medlib.fit(cfg, out=tmp_path / "runs", verbose=False)
    assert run.record["data"]["content_md5"]
    stat = sample.stat()
    np.savez(sample, voxel=255 - voxel, seg=seg)
    os.utime(sample, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sample.stat().st_size == stat.st_size
    with pytest.raises(MedlibError, match="MD5"):
        medlib.fit(cfg, out=tmp_path / "runs", verbose=False)


def test_split_sizes_are_the_loaded_ones_per_fold_and_for_the_final_model(m3dv_root):
    """engine.splits.split_sizes (reproduce's and the notebooks' estimates) counts what load_for_config gives."""
    from medlib.engine.splits import load_for_config, split_sizes

    for fold, val_split in ((0, "before"), (0, "after"), (1, "before"), (ALL_FOLDS, "before")):
        cfg = medlib.make_config(**{**TINY, "fold": fold, "val_split": val_split})
        ds = load_for_config(cfg)
        want = (len(ds["train"]), sum(len(s) for k, s in ds.splits.items() if k != "train"))
        assert split_sizes(cfg)[1:] == want
        if fold == ALL_FOLDS:  # one load serves a set's folds; the final model's split is its own view
            assert split_sizes(cfg, per_fold=False, check=False)[1:] == want
