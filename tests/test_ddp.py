"""DDP: shards are equal and disjoint, and `torchrun -m medlib train` on 2 CPU processes (gloo) makes a complete run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from medlib.engine import distributed

ROOT = Path(__file__).resolve().parents[1]


def test_shards_are_equal_disjoint_and_match_single_process_batches():
    perm = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    world, batch = 4, 8  # global batch 8 -> 2 per rank
    shards = [distributed.shard(perm, r, world) for r in range(world)]
    assert {len(s) for s in shards} == {25}
    seen = torch.cat(shards)
    assert len(set(seen.tolist())) == 100 and set(seen.tolist()) <= set(perm.tolist())
    # global step k holds exactly the samples of single-process batch k
    per_rank = batch // world
    for k in range(100 // batch):
        step = torch.cat([s[k * per_rank : (k + 1) * per_rank] for s in shards])
        assert set(step.tolist()) == set(perm[k * batch : (k + 1) * batch].tolist())


def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cpu = torch.device("cpu")
    assert distributed.setup(cpu, 7) == (cpu, False)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    net = torch.nn.Linear(2, 2)
    assert distributed.wrap(net, cpu) is net and distributed.all_reduce_sum([1.0, 2], cpu) == [1.0, 2]


def test_torchrun_two_processes(real_data, tmp_path):
    epochs, n, batch = 2, 128, 32
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "medlib",
        "train",
        "--dataset",
        "breastmnist",
        "--max-train",
        str(n),
        "--max-eval",
        "64",
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch),
        "--optimizer",
        "adam",
        "--out",
        str(tmp_path / "runs"),
    ]
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert {"run.json", "history.csv", "val_scores.csv", "test_scores.csv", "best.pt", "last.pt"} <= {
        p.name for p in folder.iterdir()
    }
    rec = json.loads((folder / "run.json").read_text())
    assert rec["status"] == "complete" and rec["world_size"] == 2 and rec["data"]["n_train"] == n
    assert len(rec["config"]) and r.stdout.count("split") == 1  # only rank 0 printed the metrics
    # each rank ran n/2 samples in batches of batch/2: the same n/batch optimizer steps per epoch as one process
    ck = torch.load(folder / "last.pt", weights_only=True)
    assert ck["epoch"] + 1 == epochs
    assert all(int(s["step"]) == epochs * n // batch for s in ck["optimizer"]["state"].values())


def test_odd_global_batch_is_refused(monkeypatch):
    import pytest

    from medlib.errors import MedlibError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MedlibError, match="--batch-size 33 is the global batch"):
        distributed.setup(torch.device("cpu"), 33)
