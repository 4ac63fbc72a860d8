"""fit(): the run folder, best-validation-AUC selection, honest checkpoints, reuse and exact resume."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from synth_medmnist import write_npz

import medlib
from medlib import metrics
from medlib.config import TrainConfig
from medlib.engine import checkpoint, fit, load_run, training

TINY = dict(model="resnet18", stem="imagenet", epochs=3, batch_size=16, optimizer="adam", lr=1e-3)


@pytest.fixture
def breast(synth_root):
    write_npz(synth_root, "breastmnist", n=(48, 24, 24))
    return synth_root


def test_run_folder_is_complete_and_consistent(breast, tmp_path):
    cfg = medlib.make_config(dataset="breastmnist", **TINY)
    run = fit(cfg, out=tmp_path / "runs", verbose=False)
    names = {p.name for p in run.dir.iterdir()}
    assert {"run.json", "history.csv", "val_scores.csv", "test_scores.csv", "best.pt", "last.pt"} <= names
    rec = json.loads((run.dir / "run.json").read_text())
    assert rec["status"] == "complete" and rec["config"] == medlib.TrainConfig(**rec["config"]).__dict__
    for key in ("versions", "device", "wall_time_s", "seconds_per_epoch", "data", "model"):
        assert key in rec
    assert rec["data"]["md5"] == "750601b1f35ba3300ea97c75c52ff8f6" and rec["versions"]["torch"] == torch.__version__
    hist = run.history
    assert (
        list(hist.columns[:9])
        == ["epoch", "lr", "train_loss", "train_auc", "train_acc", "val_loss", "val_auc", "val_acc", "seconds"]
        and len(hist) == 3
    )
    # the kept model is the best validation AUC, and its recorded val metrics are reproducible
    best = int(hist["val_auc"].idxmax()) + 1
    assert rec["best_epoch"] == best
    assert rec["metrics"]["val"]["auc"] == pytest.approx(hist.loc[best - 1, "val_auc"], abs=1e-6)
    val = run.scores("val")
    assert metrics.auc(
        val["label"].to_numpy(), val[["score_0", "score_1"]].to_numpy(), "binary-class"
    ) == pytest.approx(rec["metrics"]["val"]["auc"], abs=1e-9)
    ck = torch.load(run.dir / "best.pt", weights_only=True)
    assert ck["epoch"] + 1 == best and ck["best_epoch"] == best and ck["config"]["dataset"] == "breastmnist"
    assert torch.load(run.dir / "last.pt", weights_only=True)["epoch"] == 2


def test_same_config_reuses_the_run(breast, tmp_path, monkeypatch):
    cfg = medlib.make_config(dataset="breastmnist", **TINY)
    first = fit(cfg, out=tmp_path, verbose=False)
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: pytest.fail("trained again"))
    again = fit(cfg, out=tmp_path, verbose=False)
    assert again.dir == first.dir


def test_interrupted_run_resumes_to_the_same_weights(breast, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0)  # checkpoint every epoch, so the resume is mid-run
    cfg = medlib.make_config(dataset="breastmnist", flip=True, shift=2, **TINY)
    whole = fit(cfg, out=tmp_path / "a", verbose=False)
    real = training.train_epoch
    calls = {"n": 0}

    def crash_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(training, "train_epoch", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, out=tmp_path / "b", verbose=False)
    assert not load_run(whole.dir.parent.parent / "b" / whole.dir.name).complete
    monkeypatch.setattr(training, "train_epoch", real)
    resumed = fit(cfg, out=tmp_path / "b", verbose=False)
    assert resumed.record["epochs_this_session"] == TINY["epochs"] - 2
    a = torch.load(whole.dir / "last.pt", weights_only=True)["model"]
    b = torch.load(resumed.dir / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(whole.history.drop(columns="seconds"), resumed.history.drop(columns="seconds"))


def test_multilabel_uses_bce_and_evaluates(synth_root, tmp_path):
    write_npz(synth_root, "chestmnist", n=(48, 24, 24))
    cfg = medlib.make_config(dataset="chestmnist", **TINY)
    run = fit(cfg, out=tmp_path, verbose=False)
    val = run.scores("val")
    assert [c for c in val.columns if c.startswith("label_")] == [f"label_{i}" for i in range(14)]
    assert 0 <= run.metrics["test"]["acc"] <= 1


def test_load_model_rebuilds_from_checkpoint_alone(breast, tmp_path):
    run = fit(medlib.make_config(dataset="breastmnist", **TINY), out=tmp_path, verbose=False)
    net, cfg, meta = checkpoint.load_model(run.best_checkpoint)
    assert cfg.dataset == "breastmnist" and meta.n_classes == 2 and not net.training


def test_augmented_training_draws_new_augmentations_each_epoch(breast, tmp_path, monkeypatch):
    from medlib.engine import loop

    seen = []
    real = loop.augment_batch
    monkeypatch.setattr(loop, "augment_batch", lambda x, **k: seen.append(out := real(x, **k)) or out)
    fit(
        medlib.make_config(dataset="breastmnist", flip=True, shift=3, **{**TINY, "epochs": 2, "batch_size": 48}),
        out=tmp_path,
        verbose=False,
    )
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])


def test_bad_options_are_clear(breast):
    from medlib.errors import MedlibError

    with pytest.raises(MedlibError, match="--optimizer 'rmsprop' is not one of sgd, adam"):
        medlib.make_config(optimizer="rmsprop")
    with pytest.raises(MedlibError, match="Unknown config field"):
        medlib.make_config(epoch=3)
    with pytest.raises(MedlibError, match="--model densenet3d is a 3D network but breastmnist is 2D"):
        fit(medlib.make_config(dataset="breastmnist", model="densenet3d", epochs=1), out="/tmp/never", verbose=False)


@pytest.mark.slow
def test_resnet18_learns_real_breastmnist(real_data, tmp_path, monkeypatch):
    """A few CPU epochs on real BreastMNIST: measured test AUC 0.75 (seed 0); chance is 0.5."""
    monkeypatch.setenv("MEDLIB_DATA", str(real_data))
    cfg = medlib.make_config(
        dataset="breastmnist", model="resnet18", stem="imagenet", optimizer="adam", lr=1e-3, batch_size=32, epochs=6
    )
    run = fit(cfg, out=tmp_path, verbose=False)
    assert run.metrics["test"]["auc"] > 0.68, run.metrics
    assert run.record["data"]["md5"] == "750601b1f35ba3300ea97c75c52ff8f6"


def test_a_run_being_trained_elsewhere_is_not_trained_twice(breast, tmp_path):
    import subprocess
    import sys

    from medlib.engine.runs import run_dir
    from medlib.errors import MedlibError

    cfg = medlib.make_config(dataset="breastmnist", **TINY)
    folder = run_dir(cfg, tmp_path)
    folder.mkdir(parents=True)
    holder = (
        f"import sys, time; from medlib.engine.runs import claim; lock = claim({str(folder)!r}); "
        "print(1, flush=True); time.sleep(30)"
    )
    other = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "1"  # it holds the lock now
        with pytest.raises(MedlibError, match=rf"being trained by another process \(pid {other.pid} on "):
            fit(cfg, out=tmp_path, verbose=False)
    finally:
        other.kill()
        other.wait()
    run = fit(cfg, out=tmp_path, verbose=False)  # a killed holder's lock is gone with it
    assert run.complete and not (folder / ".lock").exists()


def test_range_schedule_climbs_geometrically_from_lr_to_lr_end():
    """The learning-rate range test: epoch k trains at lr·(lr_end/lr)^(k/(epochs-1)); geomspace is the oracle."""
    cfg = TrainConfig(schedule="range", lr=1e-3, lr_end=10.0, epochs=5).validate()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched, lrs = training.make_scheduler(cfg, opt), []
    for _ in range(cfg.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(np.geomspace(1e-3, 10.0, 5).tolist())
    # a field added later is hashed only when set, so earlier run folders keep their names
    assert TrainConfig().key() == TrainConfig(lr_end=0.0).key() != TrainConfig(lr_end=1.0).key()
