"""`python -m medlib` as a user runs it: one-line errors, no tracebacks, and the run folder it promises."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def medlib(*args, env=None):
    e = {**os.environ, "CI": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "medlib", *args], capture_output=True, text=True, cwd=ROOT, env=e, timeout=600
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--dataset", "pathmnst"], "Unknown dataset 'pathmnst'. Did you mean 'pathmnist'?"),
        (["train", "--dataset", "breastmnist", "--size", "100"], "Size 100 is not offered for 'breastmnist'"),
        (["train", "--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not one of"),
        (["evaluate", "--checkpoint", "nowhere/best.pt"], "Checkpoint nowhere/best.pt does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    r = medlib(*args, env={"MEDLIB_DATA": str(tmp_path)})
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_missing_file_offline(tmp_path):
    r = medlib(
        "train", "--dataset", "octmnist", env={"MEDLIB_DATA": str(tmp_path), "https_proxy": "http://127.0.0.1:9"}
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "octmnist.npz" in r.stderr and "zenodo.org/records/10519652/files/octmnist.npz" in r.stderr
    assert not (tmp_path / "medmnist" / "octmnist.npz").exists()


def test_info_lists_all_sets_and_md5(real_data):
    r = medlib("info", env={"MEDLIB_DATA": str(real_data)})
    assert r.returncode == 0, r.stderr
    for name in ("pathmnist", "organsmnist", "synapsemnist3d", "m3dv"):
        assert name in r.stdout
    assert "28:ok" in r.stdout and "adrenalmnist3d" in r.stdout


def test_train_then_evaluate_real_breastmnist(real_data, tmp_path):
    r = medlib(
        "train",
        "--dataset",
        "breastmnist",
        "--model",
        "resnet18",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--max-train",
        "256",
        "--optimizer",
        "adam",
        "--out",
        str(tmp_path),
        env={"MEDLIB_DATA": str(real_data)},
    )
    assert r.returncode == 0, r.stderr
    assert "split" in r.stdout and "test" in r.stdout and "run folder:" in r.stdout
    run = Path(r.stdout.split("run folder:")[1].strip())
    rec = json.loads((run / "run.json").read_text())
    assert rec["config"]["max_train"] == 256 and rec["data"]["n_train"] == 256
    e = medlib("evaluate", "--checkpoint", str(run / "best.pt"), "--split", "test", env={"MEDLIB_DATA": str(real_data)})
    assert e.returncode == 0, e.stderr
    auc = float(e.stdout.split("AUC")[1].split()[0])
    assert auc == pytest.approx(rec["metrics"]["test"]["auc"], abs=1e-3)
