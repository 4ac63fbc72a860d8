"""Report 2's code flaws as switches (config.mixup_labels, scaling, val_split): each does what the report's code
did, is off by default, leaves every existing run folder's hash alone, and is refused where it means nothing."""

import numpy as np
import pytest
import torch

import medlib
from medlib import plans
from medlib.config import TrainConfig
from medlib.data.base import Dataset, Split, normalize
from medlib.data.cubes import LEAKY_COPIES, kfold_datasets
from medlib.engine.hardware import StepSettings
from medlib.engine.loop import prepare
from medlib.errors import MedlibError
from medlib.ops.mixup import hard_targets, mixup, soft_targets


def test_hard_targets_are_the_larger_shares_label():
    y = soft_targets(torch.tensor([0, 1, 1, 0]), "binary-class", 2)
    x = torch.randn(4, 1, 4, 4)
    _, soft, lam = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    hard = hard_targets(soft)
    assert torch.equal(hard.sum(1), torch.ones(4)) and set(hard.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hard.argmax(1), soft.argmax(1))
    assert torch.equal(hard_targets(torch.tensor([[0.5, 0.5]])), torch.tensor([[1.0, 0.0]]))  # a tie: first class


def test_report2_scaling_is_x_over_127_and_reaches_the_network():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.allclose(normalize(x.clone(), "report2"), x.float() / 127)
    assert torch.allclose(normalize(x.clone()), x.float() / 127.5 - 1, atol=1e-6)
    fed = prepare(x, torch.device("cpu"), StepSettings(scaling="report2"))
    assert float(fed.max()) == pytest.approx(255 / 127) and float(fed.min()) == 0.0


def test_leaky_split_puts_views_of_training_nodules_in_validation(tmp_path):
    n = 40
    X = torch.randint(0, 255, (n, 1, 8, 8, 8), dtype=torch.uint8)
    y = torch.tensor([i % 2 for i in range(n)])
    ds = Dataset(None, {"all": Split(X, y, [f"c{i}" for i in range(n)])})
    clean = kfold_datasets(ds, fold=1)
    leaky = kfold_datasets(ds, fold=1, val_split="after")
    assert leaky["test"].ids == clean["test"].ids  # the test fold stays clean
    rest = len(clean["train"]) + len(clean["val"])
    assert len(leaky["train"]) + len(leaky["val"]) == LEAKY_COPIES * rest
    base = {s: {i.split("#")[0] for i in leaky[s].ids} for s in ("train", "val", "test")}
    assert base["val"] & base["train"]  # the leak Report 2's code had
    assert not (base["train"] | base["val"]) & base["test"]
    assert not set(clean["val"].ids) & set(clean["train"].ids)


def test_the_switches_are_off_by_default_and_leave_hashes_alone():
    for label, cfg in plans.plan("cpu"):
        if not label.startswith("report2-flaws/"):
            assert (cfg.mixup_labels, cfg.scaling, cfg.val_split) == ("soft", "centered", "before"), label
    base = medlib.make_config("report2")
    assert base.key() == TrainConfig(**{**base.__dict__}).key()
    keys = {
        base.replace(**{k: v}).key()
        for k, v in (("mixup_labels", "hard"), ("scaling", "report2"), ("val_split", "after"))
    }
    assert len(keys) == 3 and base.key() not in keys
    assert len({cfg.key() for _, cfg in plans.report2_flaws()}) == 15


def test_the_switches_are_refused_where_they_mean_nothing():
    with pytest.raises(MedlibError, match="--mixup-alpha"):
        medlib.make_config("report2", mixup_alpha=0.0, mixup_labels="hard").validate()
    with pytest.raises(MedlibError, match="--fold all"):
        medlib.make_config("report2", fold=-1, val_split="after").validate()
    with pytest.raises(MedlibError, match="--val-split"):
        medlib.make_config(dataset="breastmnist", val_split="after").validate()
    with pytest.raises(MedlibError, match="scaling"):
        medlib.make_config(dataset="breastmnist", scaling="255").validate()


def test_a_leaky_run_trains_and_records_views(m3dv_root, tmp_path):
    cfg = medlib.make_config(
        dataset="m3dv",
        model="baseline3d",
        crop=16,
        epochs=1,
        batch_size=8,
        folds=3,
        mixup_alpha=0.2,
        mixup_labels="hard",
        scaling="report2",
        val_split="after",
    )
    run = medlib.fit(cfg, out=tmp_path / "runs", verbose=False)
    n = run.record["data"]
    assert n["n_train"] + n["n_val"] == LEAKY_COPIES * 20 and n["n_test"] == 10
    assert all("#" in i for i in run.scores("val")["id"]) and not any("#" in i for i in run.scores("test")["id"])
    assert np.isfinite(run.metrics["test"]["auc"])
