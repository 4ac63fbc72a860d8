"""Scores written in MedMNIST's evaluation format are read back and re-scored by medmnist's own Evaluator."""

import numpy as np
import pandas as pd
import pytest
from medmnist import Evaluator

from medlib.data import load_medmnist
from medlib.errors import MedlibError
from medlib.evalformat import evaluator_file_name, write_evaluator_csv
from medlib.metrics import evaluate


def _noisy_scores(labels: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """Softmax scores that lean towards the true class, so AUC and ACC are neither 0.5 nor 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(labels), n_classes))
    logits[np.arange(len(labels)), labels] += 1.0
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture
def evaluator_root(monkeypatch, real_data):
    """parse_and_evaluate has no root argument: it builds `Evaluator(flag, split, size)`, whose root
    default was fixed at import time (~/.medmnist). Point that default at the real data."""
    root = str(real_data / "medmnist")
    monkeypatch.setattr(Evaluator.__init__, "__defaults__", (None, root))
    return root


@pytest.mark.parametrize("flag,size", [("breastmnist", 28), ("adrenalmnist3d", 64)])
def test_official_parser_rescores_our_file(tmp_path, evaluator_root, real_data, flag, size):
    ds = load_medmnist(flag, size, root=real_data, download=False)
    y = ds["test"].y.numpy()
    probs = _noisy_scores(y, ds.meta.n_classes)
    ours = evaluate(y, probs, ds.meta.task)
    assert 0.55 < ours["auc"] < 0.99  # a result worth checking, not a degenerate one

    out = tmp_path / "run"
    path = write_evaluator_csv(out, flag, size, "test", probs, ours["auc"], ours["acc"], run_id="s0-abc")
    assert path.name == evaluator_file_name(flag, size, "test", ours["auc"], ours["acc"], "s0-abc")
    assert path.name.startswith(f"{flag}_64_test_[AUC]" if size == 64 else f"{flag}_test_[AUC]")

    official = Evaluator.parse_and_evaluate(str(path))
    assert official.AUC == pytest.approx(ours["auc"], abs=1e-12)
    assert official.ACC == pytest.approx(ours["acc"], abs=1e-12)
    # The Evaluator writes its own verdict file beside ours; equal metrics give the very same name.
    assert [p.name for p in out.iterdir()] == [path.name]


def test_body_is_index_then_scores_without_header(tmp_path):
    probs = np.linspace(0, 1, 156 * 2).reshape(156, 2)
    path = write_evaluator_csv(tmp_path, "BreastMNIST", 28, "test", probs, 0.87654, 0.1234, run_id=3)
    assert path.name == "breastmnist_test_[AUC]0.877_[ACC]0.123@3.csv"
    lines = path.read_text().splitlines()
    assert len(lines) == 156 and lines[0].split(",")[0] == "0" and lines[-1].split(",")[0] == "155"
    back = pd.read_csv(path, index_col=0, header=None).sort_index().values
    np.testing.assert_array_equal(back, probs)  # full precision, nothing rounded away


def test_run_id_cannot_break_the_parser():
    name = evaluator_file_name("breastmnist", 28, "val", 0.5, 0.5, "run.v2@home/x")
    assert name.count("@") == 1 and name.split("@")[-1].split(".")[0] == "run-v2-home-x"


@pytest.mark.parametrize("flag,size,n", [("m3dv", 28, 156), ("breastmnist", 28, 100), ("nodulemnist3d", 32, 310)])
def test_files_the_evaluator_cannot_check_are_not_written(tmp_path, flag, size, n):
    """M3DV is no MedMNIST flag; a quick-profile subset has fewer rows than the official split; a 32³ crop of
    NoduleMNIST3D has no official file to compare with."""
    assert write_evaluator_csv(tmp_path / "run", flag, size, "test", np.zeros((n, 2)), 0.5, 0.5, run_id=0) is None
    assert not (tmp_path / "run").exists()


def test_sizes_follow_the_registry():
    assert evaluator_file_name("organmnist3d", 64, "train", 0.5, 0.5, 1).startswith("organmnist3d_64_train_")
    with pytest.raises(MedlibError, match="Size 128"):
        evaluator_file_name("adrenalmnist3d", 128, "test", 0.5, 0.5, 0)


def test_fit_leaves_files_the_official_parser_accepts(tmp_path, evaluator_root, real_data):
    """A real (tiny) training run: its val/test files re-score, in medmnist's hands, to the run's own numbers."""
    import json

    import medlib
    from medlib.engine import fit

    cfg = medlib.make_config(
        dataset="breastmnist", model="resnet18", stem="small", epochs=1, batch_size=32, optimizer="adam", max_train=64
    )
    run = fit(cfg, out=tmp_path / "runs", verbose=False)
    rec = json.loads((run.dir / "run.json").read_text())
    assert not list(run.dir.glob("breastmnist_train_*"))  # train is a subset here: nothing to check it against
    for split in ("val", "test"):
        [path] = run.dir.glob(f"breastmnist_{split}_[[]AUC[]]*@*.csv")
        official = Evaluator.parse_and_evaluate(str(path))
        assert official.AUC == pytest.approx(rec["metrics"][split]["auc"], abs=1e-9)
        assert official.ACC == pytest.approx(rec["metrics"][split]["acc"], abs=1e-9)
