"""`reproduce --shard K/N`: N processes given the same plan share one results folder, each run trained once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synth_m3dv import write_m3dv
from synth_medmnist import write_npz

from medlib.errors import MedlibError
from medlib.experiments import reproduce

ROOT = Path(__file__).resolve().parents[1]


def test_shards_partition_the_plan_whatever_its_status():
    rows = [{"label": f"r{i}", "status": "complete" if i % 3 == 0 else "todo"} for i in range(10)]
    parts = [reproduce.take_shard(rows, (k, 3)) for k in (1, 2, 3)]
    labels = [r["label"] for p in parts for r in p]
    assert sorted(labels) == sorted(r["label"] for r in rows) and len(set(labels)) == len(rows)
    assert [len(p) for p in parts] == [4, 3, 3] and reproduce.take_shard(rows, None) == rows


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0", ""])
def test_a_bad_shard_is_one_clear_error(bad):
    with pytest.raises(MedlibError, match="--shard"):
        reproduce.parse_shard(bad)


def test_two_processes_share_one_results_folder(tmp_path):
    """The quick plan (2-epoch runs on generated data) by two processes at once, shards 1/2 and 2/2: every run is
    recorded once, each by the shard that owns it, and neither process reports a failure."""
    data, out = tmp_path / "data", tmp_path / "results"
    write_npz(data, "breastmnist", n=(96, 48, 48))
    write_m3dv(data / "m3dv", n=40, size=44)
    env = {
        **os.environ,
        "MEDLIB_DATA": str(data),
        "MEDLIB_VERIFY_MD5": "0",
        "MEDLIB_CACHE": str(tmp_path / "c"),
        "MEDLIB_RUNS": str(tmp_path / "runs"),
        "OMP_NUM_THREADS": "1",
        "CI": "1",
    }
    cmd = [sys.executable, "-m", "medlib", "reproduce", "--plan", "quick", "--device", "cpu", "--out", str(out)]
    procs = [
        subprocess.Popen(
            [*cmd, "--shard", f"{k}/2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for k in (1, 2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    plan = [label for label, _ in reproduce.plan("quick")]
    for k, log in enumerate(logs):
        mine = plan[k::2]
        trained = [line.split(":")[0] for line in log.splitlines() if ": test AUC" in line]
        assert sorted(trained) == sorted(mine), log  # each shard trained exactly its own runs
    folders = [p for p in out.iterdir() if (p / "run.json").is_file()]
    assert len(folders) == len(plan)
    assert all(json.loads((p / "run.json").read_text())["status"] == "complete" for p in folders)
