"""Report 1's ten sets in every plan and table; the confusion matrix against sklearn; reference labels from the CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from medlib import metrics, plans
from medlib.data import registry
from medlib.report import reference, tables


def test_report1_sets_are_reports_ten_in_its_order():
    assert list(plans.REPORT1_SETS) == reference.REPORT1_DATASETS
    assert set(reference.report1()["dataset"]) == set(plans.REPORT1_SETS)


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_every_plan_covers_report1s_ten_sets_with_both_networks(name):
    got = {(cfg.dataset, cfg.model) for label, cfg in plans.plan(name) if label.startswith("report1/")}
    assert got == {(d, m) for d in reference.REPORT1_DATASETS for m in ("resnet18", "resnet50")}
    for label, cfg in plans.plan(name):
        if label.startswith("report1/"):
            assert cfg.epochs == plans.report1_epochs(cfg.dataset)
            assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.batch_size) == ("sgd", 1e-3, 0.9, 128)


def test_epochs_follow_the_written_size_rule_except_the_flagged_departures():
    for ds, epochs in plans.REPORT1_SETS.items():
        n = registry.info(ds)["n_samples"]["train"]
        rule = 50 if n < 2_000 else 10 if n > 30_000 else 25
        assert epochs == rule or ds in plans.REPORT1_DEPARTURES, ds
    assert plans.REPORT1_SETS["breastmnist"] == plans.REPORT1_SETS["retinamnist"] == 50  # the two the report names


def test_plan_labels_are_unique():
    for name in ("cpu", "gpu", "quick"):
        labels = [label for label, _ in plans.plan(name)]
        assert len(labels) == len(set(labels)), name


def test_organ_views_are_never_flipped_by_medlibs_recipe():
    for ds in plans.NO_FLIP_SETS:
        assert plans.tuned_recipe(ds)["flip"] is False
    assert any(c.dataset == "organamnist" and not c.flip for lb, c in plans.plan("cpu") if lb.startswith("tuned/"))


def test_report1_table_always_shows_ten_sets_per_network():
    t = tables.report1_table(pd.DataFrame(columns=["study", "label", "key", "dataset", "model"]))
    assert len(t) == 20 and t["seeds"].eq(0).all()
    assert all(f"--only 'report1/{ds}/*'" in note for ds, note in zip(reference.REPORT1_DATASETS * 2, t["note"]))
    assert t.loc[t["dataset"].str.startswith("organamnist"), "dataset"].iloc[0] == "organamnist (organmnist_axial)"
    row = t[(t["dataset"] == "breastmnist") & (t["model"] == "resnet50")].iloc[0]
    assert row["Report 1 AUC / ACC"] == "0.871 / 0.833" and row["official AUC / ACC"] == "0.857 / 0.812"
    pneu = t[t["dataset"] == "pneumoniamnist"]["note"]
    assert pneu.str.contains(plans.REPORT1_DEPARTURES["pneumoniamnist"], regex=False).all()


def test_official_bests_are_read_from_the_benchmark_csv():
    off = reference.official()
    for ds in ("adrenalmnist3d", "vesselmnist3d", "breastmnist"):
        auc, name = reference.official_best(ds)
        rows = off[(off["dataset"] == ds) & off["method"].str.startswith("resnet") & ~off["method"].str.endswith("224")]
        assert auc == rows["test_auc"].max()
    assert reference.official_best("adrenalmnist3d") == (0.839, "ResNet-18+ACS")
    assert reference.official_best("vesselmnist3d") == (0.930, "ResNet-18+ACS")
    assert reference.method_name("resnet50_2.5d") == "ResNet-50+2.5D"


def test_goal_is_the_best_of_report1_and_the_official_28px_resnets():
    assert tables.goal_auc("breastmnist") == 0.901  # official ResNet-18 beats Report 1's 0.871
    assert tables.goal_auc("bloodmnist") == 0.998  # not in Report 1: the official number alone
    r1 = reference.report1()
    organ = r1[(r1["dataset"] == "organamnist") & (r1["split"] == "test") & (r1["metric"] == "AUC")]["value"].max()
    assert tables.goal_auc("organamnist") == max(organ, 0.997)


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 11, 500)
    s = rng.random((500, 11))
    s[np.arange(500), y] += rng.random(500)  # better than chance, not perfect
    np.testing.assert_array_equal(metrics.confusion_matrix(y, s, 11), sk_confusion(y, s.argmax(1), labels=range(11)))
    p = rng.random(100)
    yb = rng.integers(0, 2, 100)
    two = np.stack([1 - p, p], 1)
    np.testing.assert_array_equal(metrics.confusion_matrix(yb, two), sk_confusion(yb, (p > 0.5).astype(int)))
