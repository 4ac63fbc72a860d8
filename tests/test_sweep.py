"""sweep(): a grid of tiny real runs, reused on a second call; collect/summarize agree with numpy on the records."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medlib import make_config
from medlib.engine import training
from medlib.errors import MedlibError
from medlib.experiments.sweep import collect, grid_configs, summarize, sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="resnet18", epochs=1, batch_size=32, max_train=64, max_eval=32)
GRID = {"dataset": ["breastmnist", "pneumoniamnist"], "model": ["resnet18"], "seed": [0, 1]}


def test_grid_is_the_cartesian_product_without_duplicates():
    cfgs = grid_configs({"dataset": ["BreastMNIST", "breastmnist"], "seed": [0, 1, 1]}, make_config(**TINY))
    assert [(c.dataset, c.seed) for c in cfgs] == [("breastmnist", 0), ("breastmnist", 1)]
    with pytest.raises(MedlibError, match="non-empty list"):
        grid_configs({"seed": []}, make_config())
    with pytest.raises(MedlibError, match="Unknown config field"):
        grid_configs({"seeds": [0]}, make_config())


def test_sweep_collect_summarize(real_data, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    df = sweep(GRID, make_config(**TINY), out=out, parallel=2, verbose=False)
    assert len(df) == 4 and set(df["dataset"]) == {"breastmnist", "pneumoniamnist"} and set(df["seed"]) == {0, 1}
    assert df[["train_auc", "val_auc", "test_auc", "test_acc", "wall_time_s"]].notna().all().all()

    # complete runs are reused, not trained again
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: pytest.fail("trained again"))
    again = sweep(GRID, make_config(**TINY), out=out, verbose=False)
    assert sorted(again["key"]) == sorted(df["key"])
    assert len(collect(out, dataset="breastmnist")) == 2 and len(collect(out, seed=[1])) == 2

    summary = summarize(collect(out))
    assert list(summary[["dataset", "model", "n"]].itertuples(index=False, name=None)) == [
        ("breastmnist", "resnet18", 2),
        ("pneumoniamnist", "resnet18", 2),
    ]
    for row in summary.itertuples():
        records = [json.loads(p.read_text()) for p in out.glob(f"{row.dataset}_28-*/run.json")]
        for split in ("val", "test"):
            for metric in ("auc", "acc"):
                x = np.array([r["metrics"][split][metric] for r in records])
                assert getattr(row, f"{split}_{metric}_mean") == pytest.approx(x.mean())
                assert getattr(row, f"{split}_{metric}_std") == pytest.approx(x.std(ddof=1))


def test_sweep_command_writes_summary(real_data, tmp_path):
    args = [
        "sweep",
        "--datasets",
        "breastmnist",
        "--models",
        "resnet18",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--max-train",
        "64",
        "--max-eval",
        "32",
        "--out",
        str(tmp_path),
    ]
    r = subprocess.run(
        [sys.executable, "-m", "medlib", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CI": "1"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "breastmnist" in r.stdout and "±" in r.stdout
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("dataset,model,n,") and summary[1].startswith("breastmnist,resnet18,2,")
