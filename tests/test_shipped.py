"""Shipped weights (weights.pt beside run.json) and test-time augmentation: the file re-scores to the record's own
per-sample scores, is refused when altered, and `predict` takes it as it is; the view sets are the cube's symmetries.
The committed records that ship weights are re-scored on the real data too."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from synth_m3dv import TINY_CUBES

import medlib
from medlib import results, tta
from medlib.engine import checkpoint
from medlib.engine.runs import ship_weights
from medlib.errors import MedlibError
from medlib.ops.augment import rotate, rotations
from medlib.submission import predict_folder

TINY = TINY_CUBES


@pytest.fixture
def shipped_run(m3dv_root, tmp_path):
    run = medlib.fit(medlib.make_config(**TINY), out=tmp_path / "runs", verbose=False)
    entry = ship_weights(run.dir)
    return run, entry


def test_shipped_weights_rescore_to_the_recorded_scores(shipped_run):
    run, entry = shipped_run
    rec = json.loads((run.dir / "run.json").read_text())
    assert rec["weights"] == entry and entry["file"] == "weights.pt"
    assert entry["bytes"] == (run.dir / "weights.pt").stat().st_size < run.best_checkpoint.stat().st_size
    ck = torch.load(run.dir / "weights.pt", weights_only=True)
    assert "optimizer" not in ck and "history" not in ck and ck["config"] == rec["config"]
    for split in ("val", "test"):
        r = results.rescore(run.dir, split)
        assert len(r) == rec["data"][f"n_{split}"]
        np.testing.assert_allclose(r["rescored"], r["recorded"], atol=1e-6)
    # the records reader sees which runs ship weights, and the table still validates the record
    df = results.records(run.dir.parent)
    assert results.shipped(df)["dir"].tolist() == [str(run.dir)]


def test_altered_or_missing_weights_are_refused(shipped_run):
    run, _ = shipped_run
    w = run.dir / "weights.pt"
    ck = torch.load(w, weights_only=True)
    ck["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, w)
    with pytest.raises(MedlibError, match="SHA-256"):
        results.load_weights(run.dir)
    w.unlink()
    with pytest.raises(MedlibError, match="missing"):
        results.load_weights(run.dir)


def test_weights_of_another_run_are_refused(shipped_run, tmp_path):
    run, _ = shipped_run
    other = medlib.fit(medlib.make_config(**{**TINY, "seed": 1}), out=tmp_path / "runs", verbose=False)
    ship_weights(other.dir)
    shutil.copy(other.dir / "weights.pt", run.dir / "weights.pt")  # the right size could pass; the hash cannot
    rec = json.loads((run.dir / "run.json").read_text())
    rec["weights"] = json.loads((other.dir / "run.json").read_text())["weights"]  # and a matching hash: the key
    (run.dir / "run.json").write_text(json.dumps(rec))
    with pytest.raises(MedlibError, match="another config"):
        results.load_weights(run.dir)


def test_a_run_without_best_or_weights_says_so(shipped_run):
    run, _ = shipped_run
    run.best_checkpoint.unlink()
    with pytest.raises(MedlibError, match="no best.pt"):
        ship_weights(run.dir)
    rec = json.loads((run.dir / "run.json").read_text())
    del rec["weights"]
    (run.dir / "run.json").write_text(json.dumps(rec))
    with pytest.raises(MedlibError, match="ships no weights"):
        results.load_weights(run.dir)


def test_predict_takes_the_shipped_file_as_it_is(shipped_run, m3dv_root, tmp_path):
    run, _ = shipped_run
    folder = m3dv_root / "train_val"
    a = predict_folder([run.dir / "weights.pt"], folder, tmp_path / "a.csv")
    b = predict_folder([run.best_checkpoint], folder)
    assert len(pd.read_csv(tmp_path / "a.csv")) == 30 == len(list(folder.glob("*.npz")))
    np.testing.assert_allclose(a["Predicted"], b["Predicted"], atol=1e-7)
    net, cfg, meta = checkpoint.load_model(run.dir / "weights.pt")
    assert cfg.key() == run.config.key() and not net.training


@pytest.mark.parametrize("kind, n", [("none", 1), ("flips", 8), ("rotations", 24), ("all", 48)])
def test_view_sets_are_distinct_symmetries_of_the_cube(kind, n):
    x = torch.randn(1, 1, 5, 5, 5)
    vs = tta.views(kind, 3)
    outs = {rotate(x, p, f).numpy().tobytes() for p, f in vs}
    assert len(vs) == n == len(outs) and vs[0] == ((0, 1, 2), ())
    if kind == "rotations":
        assert vs == list(rotations(3))
    with pytest.raises(MedlibError, match="unknown"):
        tta.views("spin", 3)


def test_tta_is_the_mean_over_views_and_none_is_plain_scoring(shipped_run):
    run, _ = shipped_run
    from medlib.engine.splits import load_for_config
    from medlib.engine.training import score_split

    net, cfg, meta = results.load_weights(run)
    X = load_for_config(cfg, check=False)["test"].X
    plain, _ = score_split(net, cfg, meta, X)
    np.testing.assert_allclose(tta.tta_scores(net, cfg, meta, X, "none"), plain, atol=1e-7)
    by_view = [score_split(net, cfg, meta, rotate(X, p, f).contiguous())[0] for p, f in tta.views("flips", 3)]
    np.testing.assert_allclose(tta.tta_scores(net, cfg, meta, X, "flips"), np.mean(by_view, axis=0), atol=1e-6)


def test_committed_shipped_weights_rescore_to_their_records(real_data, monkeypatch):
    """Every committed record that ships weights: scored again on its own split of the real data in its precision,
    the per-sample scores and the AUC agree with run.json (bf16 rounding allowed where the run used bf16)."""
    if not (real_data / "m3dv" / "train_val").is_dir():
        pytest.skip("M3DV not under MEDLIB_DATA")
    monkeypatch.setenv("MEDLIB_DATA", str(real_data))
    df = results.shipped(results.records())
    if df.empty:
        pytest.skip("no committed record ships weights")
    for _, row in df.iterrows():
        split = "test" if row["fold"] != -1 else "val"
        r = results.rescore(row, split)
        tol = 0.02 if row["precision"] == "bf16" else 1e-5
        assert np.abs(r["rescored"] - r["recorded"]).max() <= tol, row["dir"]
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(r["label"], r["rescored"]) == pytest.approx(row[f"{split}_auc"], abs=0.01), row["dir"]


def test_sanity_figure_draws_cubes_by_their_middle_slice(shipped_run):
    from medlib.analysis import saliency
    from medlib.engine.splits import load_for_config
    from medlib.report import heatmaps

    run, _ = shipped_run
    net, cfg, meta = results.load_weights(run)
    test = load_for_config(cfg, check=False)["test"]
    fig, rho = heatmaps.sanity_figure(net, test.X, test.y.numpy(), n=2)
    idx, pred, _ = saliency.pick_cases(net, test.X, test.y.numpy(), 2)
    assert len(rho) == len(idx) == len(fig.axes[: 2 * len(idx)]) // 2 and np.all(np.abs(rho) <= 1)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == tuple(test.X.shape[3:])  # (H, W) of the middle slice, not the cube
    assert "middle slice" in fig.axes[-1].get_ylabel()


def test_tta_table_on_shipped_fold_models(m3dv_root, tmp_path, monkeypatch):
    """tta_table on a records folder whose fold models keep their per-view scores: one row per view set, 'none'
    unchanged against itself and equal to the AUC of the records' own test scores (sklearn on run.json's run);
    kept scores that disagree with the run's own are refused."""
    from sklearn.metrics import roc_auc_score

    from medlib.engine.splits import load_for_config
    from medlib.experiments.cv import cross_validate
    from medlib.report import tables

    runs, _ = cross_validate(medlib.make_config(**TINY), out=tmp_path / "runs")
    for r in runs:
        ship_weights(r.dir)
        net, cfg, meta = results.load_weights(r)
        s = load_for_config(cfg, check=False)["test"]
        tta.write_view_scores(r.dir, net, cfg, meta, s.X, s.ids, s.y.numpy())
    kept = tta.read_view_scores(runs[0].dir)
    assert kept.shape[1] == 2 + 28  # id, label and the 28 distinct views of none, flips and rotations
    df = results.records(tmp_path / "runs")
    monkeypatch.setattr(tables, "select", lambda d, study=None, **w: d)  # records made outside a plan have no study
    t = tables.tta_table(df)
    assert t["views"].tolist() == list(tta.VIEW_SETS) and t["per cube"].tolist() == [1, 8, 24]
    assert t["change against none (per fold)"].iloc[0] == "+0.000 ± 0.000"
    own = [roc_auc_score(r.scores("test")["label"], r.scores("test")["score_1"]) for r in runs]
    assert t["test AUC (per fold)"].iloc[0] == results.fmt(np.mean(own), np.std(own, ddof=1), len(own))
    reading = tables.tta_reading(t)
    gain = np.mean(np.subtract(t.attrs["per_fold"]["rotations"], own))
    assert f"changed the test AUC by {gain:+.3f}" in reading and "24 rotations" in reading
    kept["012-f"] = 1 - kept["012-f"]
    kept.to_csv(runs[0].dir / tta.VIEW_SCORES, index=False, compression="gzip")
    with pytest.raises(MedlibError, match="does not match the run's own test scores"):
        tables.tta_table(df)


def test_committed_view_scores_are_the_shipped_weights(real_data, monkeypatch):
    """Two kept test-time views of one committed fold model, scored again from its weights.pt: the kept columns
    agree (bf16 rounding allowed)."""
    from medlib.engine.splits import load_for_config
    from medlib.ops.augment import rotate

    if not (real_data / "m3dv" / "train_val").is_dir():
        pytest.skip("M3DV not under MEDLIB_DATA")
    monkeypatch.setenv("MEDLIB_DATA", str(real_data))
    df = results.shipped(results.select(results.records(), "report2"))
    kept = tta.read_view_scores(df.iloc[0]["dir"]) if not df.empty else None
    if kept is None:
        pytest.skip("no committed fold model keeps view scores")
    net, cfg, meta = results.load_weights(df.iloc[0])
    X = load_for_config(cfg, check=False)["test"].X
    for v in (tta.views("flips", 3)[5], tta.views("rotations", 3)[7]):
        from medlib.engine.training import score_split

        p = score_split(net, cfg, meta, rotate(X, *v).contiguous(), precision=df.iloc[0]["precision"])[0][:, 1]
        assert np.abs(p - kept[tta.view_name(v)].to_numpy()).max() <= 0.02


def test_predict_on_the_shipped_final_model_writes_every_cube(real_data, tmp_path):
    """`python -m medlib predict` with the committed final model's weights.pt as it is: one row per cube of a
    folder (the 12 full-size cubes), probabilities in [0, 1], the shipped file checked against its SHA-256."""
    from medlib.cli import main

    full = real_data / "m3dv" / "full_size"
    if not full.is_dir():
        pytest.skip("M3DV not under MEDLIB_DATA")
    final = results.shipped(results.select(results.records(), "report2-final"))
    if final.empty:
        pytest.skip("no committed final model ships weights")
    results.load_weights(final.iloc[0])  # the hash holds
    out = tmp_path / "submission.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(Path(final.iloc[0]["dir"]) / "weights.pt"),
                "--input",
                str(full),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["id", "Predicted"] and sorted(sub["id"]) == sorted(p.stem for p in full.glob("*.npz"))
    assert sub["Predicted"].between(0, 1).all()
