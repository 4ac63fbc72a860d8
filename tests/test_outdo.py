"""Issue 24's machinery: recipes fixed without the test split, >= 5 seeds, a bootstrap interval, met / not met."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from medlib import metrics, plans, results
from medlib.engine.runs import Run, run_dir
from medlib.report import reference, tables

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_every_outdo_recipe_has_five_seeds_and_m3dv_fifteen_folds():
    labels = [label for label, _ in plans.plan("cpu") if label.startswith("outdo/")]
    for ds in plans.OUTDO:
        assert sum(label.startswith(f"outdo/{ds}/") for label in labels) >= 5, ds
    assert sum(label.startswith("outdo/m3dv/") for label in labels) == 15


def test_3d_recipes_are_the_best_networks_by_validation_auc():
    """The choice in plans.OUTDO rests on the committed 28³ runs' validation AUC, never their test AUC."""
    rec = results.select(results.records(RESULTS), "medmnist3d", size=28)
    agg = results.aggregate(rec, ["dataset", "model"], ["val_auc"])
    for ds in ("adrenalmnist3d", "vesselmnist3d"):
        a = agg[agg["dataset"] == ds]
        assert plans.OUTDO[ds][1]["model"] == a.loc[a["val_auc_mean"].idxmax(), "model"]


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.stack([1 - y * 0.3 - rng.random(400) * 0.7, y * 0.3 + rng.random(400) * 0.7], 1)
    point = roc_auc_score(y, s[:, 1])
    lo, hi = metrics.bootstrap_ci(y, [s], "binary-class", n=300)
    assert lo < point < hi
    lo2, hi2 = metrics.bootstrap_ci(y[:100], [s[:100]], "binary-class", n=300)
    assert hi2 - lo2 > hi - lo


def test_goal_needs_both_the_official_best_and_the_rerun():
    off_auc, _ = reference.official_best("breastmnist")  # 0.901; the rerun 0.907
    assert tables._goal_cells("breastmnist", 0.905, 0.99)["goal met"] == "no"
    assert tables._goal_cells("breastmnist", 0.908, 0.99)["goal met"] == "yes"
    assert tables._goal_cells("breastmnist", 0.908, 0.50)["goal met"] == "no"  # ACC below the official's
    assert off_auc == 0.901


def test_outdo_table_lists_every_set_with_what_is_missing():
    t = tables.outdo_table(results.records(RESULTS))
    assert set(t["dataset"]) == {*plans.OUTDO, "m3dv"}
    for _, row in t[t["test AUC"] == "–"].iterrows():
        assert "reproduce --only 'outdo/" in row["recipe"]


def test_breast_recipe_is_the_cross_validated_choice():
    """BreastMNIST's outdo recipe is the finalist with the best mean 5-fold CV AUC on train + val (the committed
    select/ records), trained as its fold runs were: the same config but for the fold and the seed."""
    import dataclasses

    t = tables.selection_table(results.records(RESULTS))
    assert (t["folds"] == plans.CV_FOLDS).all() and set(t["candidate"]) == set(plans.SELECT_BREAST)
    assert t.loc[t["chosen"] == "yes", "candidate"].tolist() == [plans.SELECTED_BREAST]
    cv = {label: cfg for label, cfg in plans.breast_selection()}[f"select/breastmnist/{plans.SELECTED_BREAST}/cv0"]
    outdo = {label: cfg for label, cfg in plans.outdo(["breastmnist"])}["outdo/breastmnist/resnet18/s0"]
    assert dataclasses.replace(cv, cv_fold=outdo.cv_fold) == outdo


def test_bootstrap_interval_is_sklearns_auc_on_each_drawn_resample():
    """The counting AUC behind bootstrap_ci against sklearn on the drawn samples themselves (the same draws),
    for a binary, a multi-class and a multi-label task, with tied scores and resamples missing a class."""
    rng = np.random.default_rng(1)
    m = 60
    cases = {
        "binary-class": (rng.integers(0, 2, m), [np.round(rng.random((m, 2)), 1) for _ in range(2)]),
        "multi-class": (rng.integers(0, 4, m), [rng.dirichlet(np.ones(4), m).round(2) for _ in range(3)]),
        "multi-label, binary-class": (rng.integers(0, 2, (m, 3)), [np.round(rng.random((m, 3)), 1)]),
    }
    for task, (y, members) in cases.items():
        draw = np.random.default_rng(7)
        stats = []
        for _ in range(200):
            idx = draw.integers(0, m, m)
            vals = [metrics.auc(y[idx], s[idx], task) for s in members]
            if np.isfinite(vals).all():
                stats.append(np.mean(vals))
        expected = np.percentile(stats, [2.5, 97.5])
        got = metrics.bootstrap_ci(y, members, task, n=200, seed=7)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=task)


def test_fold_bootstrap_interval_is_sklearns_mean_fold_auc_on_each_drawn_resample():
    """fold_bootstrap_ci against sklearn on the drawn samples: every fold resampled on its own (the same draws, fold
    after fold), the statistic the mean over folds of the members' mean AUC; one fold is bootstrap_ci."""
    rng = np.random.default_rng(2)
    folds = []
    for m in (23, 31, 17):
        y = rng.integers(0, 2, m)
        folds.append((y, [np.stack([1 - p, p], 1) for p in (np.round(0.3 * y + 0.7 * rng.random(m), 1),) * 2]))
    draw = np.random.default_rng(5)
    per_fold = []
    for y, members in folds:
        aucs = []
        for _ in range(300):
            idx = draw.integers(0, len(y), len(y))
            aucs.append(np.mean([metrics.auc(y[idx], s[idx], "binary-class") for s in members]))
        per_fold.append(aucs)
    stats = np.mean(per_fold, axis=0)
    expected = np.percentile(stats[np.isfinite(stats)], [2.5, 97.5])
    got = metrics.fold_bootstrap_ci(folds, "binary-class", n=300, seed=5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    y, members = folds[0]
    assert metrics.fold_bootstrap_ci([folds[0]], "binary-class", n=50) == metrics.bootstrap_ci(
        y, members, "binary-class", n=50
    )


def _m3dv_repeated_cv(tmp_path: Path) -> tuple[pd.DataFrame, dict]:
    """The 15 outdo/m3dv fold runs, made from the committed seed-0 fold records: each seed's test scores generated
    (leaning to the true label), its test AUC / ACC recomputed with sklearn. Returns the records and those scores."""
    real = results.select(results.records(RESULTS), "outdo", dataset="m3dv")
    rng = np.random.default_rng(3)
    made = {}
    for _, cfg in plans.outdo_m3dv():
        src = Path(real[(real["seed"] == 0) & (real["fold"] == cfg.fold)]["dir"].iloc[0])
        dst = run_dir(cfg, tmp_path)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.pt", ".lock", "tta_*"))
        record = json.loads((dst / "run.json").read_text())
        record.update(config=dataclasses.asdict(cfg), key=cfg.key())
        record.pop("weights", None)
        test = Run(src).scores("test")
        y = test["label"].to_numpy()
        p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, len(y)), 0.01, 0.99)
        test["score_0"], test["score_1"] = 1 - p, p
        for old in dst.glob("test_scores.csv*"):
            old.unlink()
        test.to_csv(dst / "test_scores.csv", index=False)
        record["metrics"]["test"].update(auc=roc_auc_score(y, p), acc=float(((p > 0.5) == y).mean()))
        (dst / "run.json").write_text(json.dumps(record))
        made[(cfg.seed, cfg.fold)] = (y, p)
    return results.records(tmp_path), made


def test_m3dv_rows_are_the_fold_runs_mean_and_their_per_fold_seed_average(tmp_path):
    """The oracle is sklearn on the generated scores: the repeated-CV row is the mean of the 15 fold runs' AUCs,
    the ensemble row the mean over folds of the AUC of the seeds' averaged P; each interval holds its estimate."""
    df, made = _m3dv_repeated_cv(tmp_path)
    t = tables.outdo_table(df)
    rows = t[t["dataset"] == "m3dv"].set_index("row")
    cv, ens = rows.loc["repeated 5-fold CV"], rows.loc["3-seed ensemble, per fold"]
    fold_aucs = [roc_auc_score(y, p) for y, p in made.values()]
    averaged = [
        roc_auc_score(made[(0, f)][0], np.mean([made[(s, f)][1] for s in plans.OUTDO_CV_SEEDS], axis=0))
        for f in range(5)
    ]
    for row, values in ((cv, fold_aucs), (ens, averaged)):
        mean = np.mean(values)
        assert row["test AUC"] == f"{mean:.3f} ± {np.std(values, ddof=1):.3f}"
        lo, hi = (float(x) for x in row["95% CI"].split("–"))
        assert lo < mean < hi
        assert row["goal met"] == ("yes" if mean >= reference.best_known("m3dv")[0] else "no")
    assert cv["seeds"] == 3 and "Report 2" in cv["official best AUC / ACC"]


def test_verdict_is_read_from_the_table():
    """The sentence under the outdo table names what the table's goal column says, each shortfall by what falls
    short, with the table's own mean beside the goal (BreastMNIST's: the rerun's 0.907, above the official 0.901;
    RetinaMNIST's ACC: the official ResNet-50's 0.528), and where the goal's AUC falls against the interval."""
    e = results.EMPTY
    rows = [
        ("breastmnist", "medlib recipe", "0.854 ± 0.021", "0.786–0.904", "0.821 ± 0.020", "no"),
        ("breastmnist", "5-seed ensemble", "0.910", "0.850–0.950", "0.870", "yes"),
        ("pneumoniamnist", "medlib recipe", "0.946 ± 0.007", "0.929–0.962", "0.833 ± 0.010", "no"),
        ("retinamnist", "medlib recipe", "0.735 ± 0.013", "0.703–0.773", "0.520 ± 0.024", "no"),
        ("adrenalmnist3d", "medlib recipe", "0.887 ± 0.008", "0.851–0.923", "0.826 ± 0.019", "yes"),
        ("adrenalmnist3d", "5-seed ensemble", "0.892", "0.857–0.929", "0.836", "yes"),
        ("vesselmnist3d", "medlib recipe", e, e, e, e),
        ("m3dv", "repeated 5-fold CV", e, e, e, e),
    ]
    t = pd.DataFrame(rows, columns=["dataset", "row", "test AUC", "95% CI", "test ACC", "goal met"])
    assert tables.outdo_goal("breastmnist") == (0.907, 0.863)
    assert tables.outdo_goal("m3dv")[0] == reference.best_known("m3dv")[0]
    text = tables.outdo_verdict(t)
    assert text.startswith("Goal met by medlib's recipe on 1 of the 4 sets with all their runs (adrenalmnist3d).")
    assert "Only the seeds' ensemble meets it on breastmnist." in text
    assert "breastmnist, AUC 0.854 against 0.907;" in text
    assert "retinamnist, AUC 0.735 reaches 0.729 but ACC 0.520 is below 0.528." in text
    # 0.948 lies in 0.929-0.962, 0.907 above 0.904; retina's shortfall is its ACC, so its AUC interval is not read
    assert ("The goal's AUC lies inside the recipe's 95 % interval on pneumoniamnist: a gap their test split "
            "cannot resolve; above it on breastmnist.") in text  # fmt: skip
    t.loc[t["dataset"] == "pneumoniamnist", "95% CI"] = "0.929–0.947"
    above = "The goal's AUC lies above the recipe's 95 % interval on breastmnist, pneumoniamnist."
    assert above in tables.outdo_verdict(t)
    assert text.endswith("Still short of their runs: vesselmnist3d, m3dv.")
