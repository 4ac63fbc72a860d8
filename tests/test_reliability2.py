"""Issue 22, "Reliability, second trial": commands that overwrote their inputs, a results layer that trusted every
file, signals and limits. One test (or a parametrized family) per numbered case of the issue, beside the first
trial's tests (test_reliability.py, whose helpers these reuse).

Records cases work on copies of committed run folders (results/), damaged as a careless user would; training cases
are tiny runs on the real BreastMNIST (`--epochs 1 --max-train 64 --max-eval 32`); the rest use generated files.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import test_reliability
import torch
from synth_m3dv import write_m3dv
from test_reliability import ROOT, T, assert_one_line, fake_checkpoint, only_run, record, run_cli

from medlib import results
from medlib.book import notebook
from medlib.config import TrainConfig, make_config
from medlib.data import files
from medlib.engine import checkpoint, cost, hardware, memory, runs, training
from medlib.errors import MedlibError, MedlibWarning
from medlib.experiments import cv, reproduce
from medlib.flags import add_config_flags, config_from_args
from medlib.report import tables

BREAST = [
    "breastmnist_28-resnet18-s0-87cb9c87d0",
    "breastmnist_28-resnet18-s1-98da1fdb9e",
    "breastmnist_28-resnet18-s2-843e76493b",
]  # report1/breastmnist/resnet18, seeds 0-2
FOLDS = [
    "m3dv-densenet3d-f0-s0-756c000cc9",
    "m3dv-densenet3d-f1-s0-0fc43367e6",
    "m3dv-densenet3d-f2-s0-328b2a99ab",
    "m3dv-densenet3d-f3-s0-8669a72a6b",
    "m3dv-densenet3d-f4-s0-b3600457df",
]  # report2/densenet3d/mixup0.2


def copy_runs(dest: Path, names) -> Path:
    """Copies of committed run folders under `dest` (a records folder to damage)."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copytree(ROOT / "results" / n, dest / n)
    return dest


breast = test_reliability.breast_root  # the fixture: a data root holding the real BreastMNIST, MEDLIB_DATA at it


@pytest.fixture
def three(tmp_path) -> Path:
    return copy_runs(tmp_path / "results", BREAST)


def read_quietly(*folders):
    """records() with its warnings caught: (DataFrame, warning texts)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = results.records(*folders)
    return df, [str(w.message) for w in caught if issubclass(w.category, MedlibWarning)]


def run_results(capsys, *args):
    """run_cli for `results`, with other libraries' warnings (pandas deprecations in table code) silenced: the
    cases check medlib's own lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_cli(capsys, "results", *args)


def breast_table(df) -> pd.Series:
    """Report 1's BreastMNIST ResNet-18 row of the README table."""
    t = tables.report1_table(df)
    return t[(t["dataset"] == "breastmnist") & (t["model"] == "resnet18")].iloc[0]


def edit_json(path: Path, **changes) -> None:
    rec = json.loads(path.read_text())
    for k, v in changes.items():
        if "." in k:
            outer, inner = k.split(".")
            rec[outer][inner] = v
        else:
            rec[k] = v
    path.write_text(json.dumps(rec))


def m3dv_checkpoint(tmp_path, crop=16) -> Path:
    """An untrained M3DV baseline3d checkpoint (enough for predict's checks)."""
    torch.manual_seed(0)
    from medlib.data.base import Meta
    from medlib.models import build_model

    cfg = TrainConfig(dataset="m3dv", model="baseline3d", crop=crop)
    meta = Meta(name="m3dv", task="binary-class", n_classes=2, n_channels=1, dims=3, size=crop, md5="0" * 32)
    path = tmp_path / "ck" / "best.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(
        path, model=build_model("baseline3d", 1, 2), epoch=0, best_score=0.5, best_epoch=1, config=cfg, meta=meta
    )
    return path


def t_config(*flags) -> TrainConfig:
    """The config `train` builds from T + flags."""
    import argparse

    p = argparse.ArgumentParser()
    add_config_flags(p)
    return config_from_args(p.parse_args([a for a in (T + list(flags))[1:]]))


# ---- 1. predict --out never overwrites an input ----


@pytest.mark.parametrize("target", ["checkpoint", "sample", "labels", "other file"])
def test_1_predict_out_that_is_an_input_is_refused(target, tmp_path, capsys):
    folder, labels = write_m3dv(tmp_path / "data", n=4, size=24)
    ck = m3dv_checkpoint(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    out = {"checkpoint": ck, "sample": folder / "candidate1.npz", "labels": labels, "other file": other}[target]
    before = out.read_bytes()
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--labels", labels, "--out", out)
    assert_one_line(rc, err, "--out", str(out))
    assert out.read_bytes() == before


def test_1_predict_may_replace_its_own_submission_csv(tmp_path, capsys):
    folder, _ = write_m3dv(tmp_path / "data", n=4, size=24)
    ck = m3dv_checkpoint(tmp_path)
    out = tmp_path / "sub.csv"
    out.write_text("id,Predicted\ncandidate1,0.5\n")
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", out)
    assert rc == 0, err
    assert len(pd.read_csv(out)) == 4
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", folder / "sub.csv")
    assert_one_line(rc, err, "lies inside --input")


# ---- 2. --write-readme never replaces the tables with nothing ----


def readme_copy(tmp_path) -> Path:
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    return readme


def test_2_write_readme_from_a_mistyped_folder_keeps_the_tables(tmp_path, capsys):
    readme = readme_copy(tmp_path)
    before = readme.read_bytes()
    rc, _, err = run_cli(capsys, "results", "--write-readme", readme, tmp_path / "reslts")
    assert_one_line(rc, err, "reslts does not exist")
    (tmp_path / "empty").mkdir()
    rc, _, err = run_results(capsys, "--write-readme", readme, tmp_path / "empty")
    assert_one_line(rc, err, "keeps its tables", "on none")
    assert readme.read_bytes() == before


def test_2_write_readme_from_a_folder_without_results(tmp_path, capsys, monkeypatch):
    readme = readme_copy(tmp_path)
    before = readme.read_bytes()
    monkeypatch.chdir(tmp_path)  # no ./results here
    monkeypatch.delenv("MEDLIB_RESULTS", raising=False)
    rc, _, err = run_cli(capsys, "results", "--write-readme", readme)
    assert_one_line(rc, err, "Records folder results does not exist")
    assert readme.read_bytes() == before


# ---- 3. report --in-place writes back only what ran ----


def test_3_report_in_place_keeps_a_notebook_whose_execution_fails(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "print('kept')", execution_count=1, outputs=[nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
        ),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb" / "00_fails.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    before = path.read_bytes()
    rc, out, err = run_cli(capsys, "report", "--in-place", "--notebooks", path.parent, "--profile", "quick")
    assert_one_line(rc, err, "left as they were", "00_fails", "boom")
    assert "pages" not in err
    assert path.read_bytes() == before


# ---- 4. a .lock that is a symlink is never followed ----


def test_4_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / runs.LOCK_NAME).symlink_to(target)
    with pytest.raises(MedlibError, match="is a symbolic link.*Delete the link"):
        runs.claim(folder)
    assert target.read_text() == "keep me\n"


# ---- 5. a backup copy of a run folder is not another seed ----


def test_5_a_copied_run_folder_counts_once(three):
    good, _ = read_quietly(three)
    shutil.copytree(three / BREAST[0], three / (BREAST[0] + ".bak"))
    shutil.copytree(three / BREAST[1], three / ("copy of " + BREAST[1]))
    df, said = read_quietly(three)
    assert len(df) == 3 and sorted(df["dir"]) == sorted(good["dir"])
    assert any(BREAST[0] + ".bak" in w and "counted once" in w for w in said), said
    assert any("copy of " + BREAST[1] in w for w in said), said
    assert breast_table(df)["test AUC"] == breast_table(good)["test AUC"]
    assert breast_table(df)["seeds"] == 3


# ---- 6. a damaged run.json is named, skipped, and the dry run says so ----


def _truncate(p):
    p.write_text(p.read_text()[:40])


def _not_utf8(p):
    p.write_bytes(b"\xff\xfe" + p.read_bytes())


def _folder(p):
    p.unlink()
    p.mkdir()


def _loop(p):
    p.unlink()
    p.symlink_to(p.name)  # run.json -> run.json


@pytest.mark.parametrize(
    "damage", [_truncate, _not_utf8, _folder, _loop], ids=["truncated", "not-utf8", "folder", "loop"]
)
def test_6_a_damaged_run_json_is_named_and_skipped(damage, three, monkeypatch):
    path = three / BREAST[0] / "run.json"
    damage(path)
    df, said = read_quietly(three)
    assert len(df) == 2
    assert any(str(path) in w and "skipped" in w for w in said), said
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: 200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = reproduce.schedule("cpu", "report1/breastmnist/resnet18/*", three, torch.device("cpu"))
    status = {r["folder"].name: r["status"] for r in rows}
    assert status[BREAST[0]] == "damaged" and status[BREAST[1]] == "complete"


def test_6_the_tables_and_their_provenance_agree_after_a_skip(three, capsys):
    _truncate(three / BREAST[2] / "run.json")
    rc, out, err = run_cli(capsys, "results", "--markdown", three)
    assert rc == 0
    assert f"medlib: warning: {three / BREAST[2] / 'run.json'} is skipped" in err
    assert "seeds 0,1;" in out and "seeds 0,1,2" not in out


# ---- 7. score files are checked against their record ----


def _cut_half(p):
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[: len(lines) // 2]) + "\n")


def _rename_label(p):
    p.write_text(p.read_text().replace("label,", "truth,", 1))


@pytest.mark.parametrize("damage", [_cut_half, _rename_label], ids=["cut", "renamed-label"])
def test_7_damaged_scores_are_named_and_left_out(damage, tmp_path):
    folds = copy_runs(tmp_path / "results", FOLDS)
    whole, _ = read_quietly(folds)
    four = results.pooled(whole[~whole["dir"].str.contains(FOLDS[2])])
    path = folds / FOLDS[2] / "test_scores.csv"
    damage(path)
    with pytest.raises(MedlibError, match=str(path)):
        runs.Run(folds / FOLDS[2]).scores("test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pooled = results.pooled(whole)
    assert pooled == four
    assert any(str(path) in str(w.message) and "left out" in str(w.message) for w in caught)
    df, said = read_quietly(folds)
    assert len(df) == 4 and any(str(path) in w for w in said)


# ---- 8. impossible metrics are not averaged ----


@pytest.mark.parametrize(
    "change",
    [
        {"metrics.test": {"auc": 1.7, "acc": 0.8, "loss": 0.3, "n": 156}},
        {"metrics.test": {"auc": float("nan"), "acc": 0.8, "loss": 0.3, "n": 156}},
        {"config.dataset": None},
    ],
    ids=["auc-1.7", "auc-nan", "dataset-null"],
)
def test_8_impossible_metrics_are_skipped_not_averaged(change, three):
    good, _ = read_quietly(three)
    edit_json(three / BREAST[0] / "run.json", **change)
    df, said = read_quietly(three)
    assert len(df) == 2 and df["dataset"].notna().all()
    assert any(BREAST[0] in w for w in said), said
    row = breast_table(df)
    assert row["seeds"] == 2
    mean = good[good["seed"] != 0]["test_auc"].mean()
    assert row["test AUC"].startswith(f"{mean:.3f} ± ")


# ---- 9. a shift that blanks every image is refused ----


@pytest.mark.parametrize(
    "flags,most",
    [
        (["--shift", "1000"], 13),
        (["--shift", "14"], 13),
        (["--dataset", "m3dv", "--model", "baseline3d", "--shift", "16"], 15),
    ],
)
def test_9_a_shift_that_moves_images_out_of_frame_is_refused(flags, most, tmp_path, capsys):
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs", *flags)
    assert_one_line(rc, err, f"--shift {flags[-1]}", f"use at most {most}")
    assert not (tmp_path / "runs").exists()
    make_config("report2")  # Report 2's shift 5 on 32³ cubes stays valid
    make_config("tuned", dataset="breastmnist")


# ---- 10 and 18. resume only this config's own last.pt ----


def plant_last(folder: Path, cfg: TrainConfig, model: str = "resnet18") -> None:
    """A last.pt saved by `cfg` (weights of `model`) in an interrupted run folder."""
    from medlib.data.base import Meta
    from medlib.models import build_model

    folder.mkdir(parents=True, exist_ok=True)
    meta = Meta(name="breastmnist", task="binary-class", n_classes=2, n_channels=1, dims=2, size=28, md5=None)
    net = build_model(model, 1, 2, stem=cfg.stem)
    opt = training.make_optimizer(cfg, net.parameters())
    checkpoint.save(
        folder / "last.pt",
        model=net,
        optimizer=opt,
        epoch=0,
        best_score=0.5,
        best_epoch=1,
        config=cfg,
        meta=meta,
        history=[{"epoch": 1}],
    )
    (folder / "run.json").write_text(json.dumps({"status": "interrupted", "config": {}, "epochs_saved": 1}))


@pytest.mark.parametrize("theirs", [dict(seed=7), dict(model="resnet50"), dict(lr=0.1)], ids=["seed", "arch", "lr"])
def test_10_18_a_last_pt_of_another_config_is_not_resumed(theirs, breast, tmp_path, capsys):
    cfg = t_config()
    folder = runs.run_dir(cfg, tmp_path / "runs")
    plant_last(folder, cfg.replace(**theirs), theirs.get("model", "resnet18"))
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, f"{folder / 'last.pt'} belongs to another config", "--fresh")
    assert torch.load(folder / "last.pt", weights_only=True)["config"]["seed"] == theirs.get("seed", 0)  # kept


def test_18_a_last_pt_whose_weights_do_not_fit_is_one_line(breast, tmp_path, capsys):
    cfg = t_config()
    folder = runs.run_dir(cfg, tmp_path / "runs")
    plant_last(folder, cfg, model="resnet50")  # this config's key, another network's weights
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "does not fit this run's resnet18", "--fresh")


# ---- 11. flags that do not apply are refused, hashes of existing configs unchanged ----


@pytest.mark.parametrize(
    "flags", [["--fold", "3"], ["--crop", "5"], ["--dilate", "2"], ["--no-mask"], ["--folds", "3"]]
)
def test_11_cube_flags_on_a_2d_set_are_refused(flags, tmp_path, capsys):
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs", *flags)
    assert_one_line(rc, err, flags[0], "only apply to the nodule cubes", "breastmnist")
    assert not (tmp_path / "runs").exists()


def test_11_the_committed_run_folders_keep_their_names():
    df, said = read_quietly(ROOT / "results")
    assert not said
    for d, key in zip(df["dir"], df["key"]):
        assert Path(d).name.endswith(key)
    planned = dict(reproduce.plan("cpu"))
    assert [planned[f"report1/breastmnist/resnet18/s{s}"].key() for s in range(3)] == [b[-10:] for b in BREAST]


# ---- 12. predict reads every sample, with its exact name ----


@pytest.mark.parametrize(
    "bad,fix", [("candidate9.NPZ", "rename it to candidate9.npz"), ("candidate3 .npz", "rename it to candidate3.npz")]
)
def test_12_a_sample_predict_would_misread_is_refused(bad, fix, tmp_path, capsys):
    folder, _ = write_m3dv(tmp_path / "data", n=4, size=24)
    shutil.copy(folder / "candidate1.npz", folder / bad)
    ck = m3dv_checkpoint(tmp_path)
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", tmp_path / "s.csv")
    assert_one_line(rc, err, fix)
    assert not (tmp_path / "s.csv").exists()


# ---- 13. one malformed record never crashes a table ----


def _history(text):
    return lambda run: (run / "history.csv").write_text(text)


def _scores(text):
    return lambda run: (run / "test_scores.csv").write_text(text)


MALFORMED = {
    "list": lambda run: (run / "run.json").write_text("[]"),
    "null": lambda run: (run / "run.json").write_text("null"),
    "no-config": lambda run: edit_json(run / "run.json", config=None),
    "no-task": lambda run: edit_json(run / "run.json", **{"data.task": None}),
    "fifty-epochs": lambda run: edit_json(run / "run.json", **{"config.epochs": "fifty"}),
    "epochs-saved-abc": lambda run: edit_json(run / "run.json", epochs_saved="abc"),
    "junk-history": _history("\x00\x01garbage\n"),
    "empty-history": _history(""),
    "junk-scores": _scores("a;b\n1;2\n"),
    "empty-scores": _scores(""),
    "no-history": lambda run: (run / "history.csv").unlink(),
}


@pytest.mark.parametrize("damage", list(MALFORMED.values()), ids=list(MALFORMED))
def test_13_a_malformed_record_is_named_and_skipped_by_every_reader(damage, three, tmp_path, capsys, monkeypatch):
    damage(three / BREAST[1])
    rc, out, err = run_cli(capsys, "results", three)
    assert rc == 0 and "Traceback" not in err
    assert f"medlib: warning: {three / BREAST[1]}" in err and "skipped" in err
    row = [line for line in out.splitlines() if "breastmnist resnet18" in line][0]
    assert " 2 " in row
    readme = tmp_path / "R.md"
    readme.write_text(f"{results.README_BEGIN}\nold\n{results.README_END}\n")
    rc, _, err = run_cli(capsys, "results", "--write-readme", readme, three)
    assert rc == 0 and "2 runs on" in readme.read_text()
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: 200.0)
    rc, out, err = run_cli(
        capsys, "reproduce", "--plan", "cpu", "--only", "report1/breastmnist/resnet18/*", "--dry-run", "--out", three
    )
    assert rc == 0 and "Traceback" not in err


# ---- 14. a README that is not UTF-8 ----


def test_14_write_readme_on_a_file_that_is_not_utf8(three, tmp_path, capsys):
    readme = tmp_path / "R.md"
    readme.write_bytes(f"{results.README_BEGIN}\n\xe9\n{results.README_END}\n".encode("latin-1"))
    before = readme.read_bytes()
    rc, _, err = run_results(capsys, "--write-readme", readme, three)
    assert_one_line(rc, err, f"{readme} is not UTF-8", "save it as UTF-8")
    assert readme.read_bytes() == before


# ---- 15. a bad MEDLIB_CHECKPOINT_SECONDS ----


def test_15_a_bad_checkpoint_interval_breaks_no_import_and_names_the_variable(tmp_path, capsys, monkeypatch):
    env = {**os.environ, "MEDLIB_CHECKPOINT_SECONDS": "abc", "CI": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "medlib", "info", "--no-md5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    monkeypatch.setenv("MEDLIB_CHECKPOINT_SECONDS", "abc")
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "MEDLIB_CHECKPOINT_SECONDS='abc'", "unset it")
    assert not (tmp_path / "runs").exists()


# ---- 16. WORLD_SIZE without torchrun ----


def test_16_world_size_without_torchrun_is_one_line_and_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for v in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "WORLD_SIZE=2", "torchrun --nproc-per-node 2", "unset WORLD_SIZE")
    assert not (tmp_path / "runs").exists()


# ---- 17. memory limits: RLIMIT_AS, cgroups, out of memory, an explicit evaluation batch ----


def test_17_cgroup_limits_v2_and_v1_are_read(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "job").mkdir(parents=True)
    (v2 / "job" / "memory.max").write_text(f"{3 << 30}\n")
    (v2 / "job" / "memory.current").write_text(f"{1 << 30}\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job\n")
    assert hardware.cgroup_limit(str(v2), str(proc)) == (3 << 30, 1 << 30)
    (v2 / "job" / "memory.max").write_text("max\n")
    assert hardware.cgroup_limit(str(v2), str(proc)) is None
    v1 = tmp_path / "v1"
    (v1 / "memory" / "slurm").mkdir(parents=True)
    (v1 / "memory" / "slurm" / "memory.limit_in_bytes").write_text(f"{2 << 30}\n")
    (v1 / "memory" / "slurm" / "memory.usage_in_bytes").write_text(f"{1 << 29}\n")
    proc.write_text("4:memory:/slurm\n1:cpu:/\n")
    assert hardware.cgroup_limit(str(v1), str(proc)) == (2 << 30, 1 << 29)


def test_17_rlimit_as_lowers_the_memory_the_checks_see(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda what: (6 << 30, resource.RLIM_INFINITY))
    monkeypatch.setattr(hardware, "_self_vm_bytes", lambda: 5 << 30)
    monkeypatch.setattr(hardware, "cgroup_limit", lambda *a: None)
    cpu = torch.device("cpu")
    assert hardware.address_limit() == (6 << 30, 5 << 30)
    assert hardware.total_bytes(cpu) <= 6 << 30 and hardware.available_bytes(cpu) <= 1 << 30


def test_17_a_batch_beyond_the_container_limit_is_refused_before_training(breast, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "process_limits", lambda: [(16 << 20, 0)])  # a 16 MiB container
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs", "--batch-size", "64")
    assert_one_line(rc, err, "--batch-size 64 needs up to", "0.0 GiB in all", "pass --batch-size")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # case 27: no empty folder


def test_17_out_of_memory_mid_run_is_one_line_naming_the_batch(breast, tmp_path, capsys, monkeypatch):
    def oom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9999999999 bytes.")

    monkeypatch.setattr(training, "train_epoch", oom)
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "ran out of memory", "smaller --batch-size", "--eval-batch-size")
    assert record(only_run(tmp_path / "runs"))["status"] == "failed"


def test_17_out_of_memory_in_evaluate_is_one_line(breast, tmp_path, capsys, monkeypatch):
    def oom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore lines")

    monkeypatch.setattr(training, "predict", oom)  # evaluate scores through training.score_split
    ck = fake_checkpoint(tmp_path / "b.pt")
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", ck)
    assert_one_line(rc, err, "out of memory (CUDA out of memory. Tried to allocate 20.00 GiB)", "free memory")


def test_17_an_explicit_eval_batch_is_capped(monkeypatch, capsys):
    from medlib.models import build_model

    net, cpu = build_model("resnet18", 1, 2, stem="imagenet"), torch.device("cpu")
    assert training.fitting_eval_batch(net, (1, 28, 28), cpu, 100_000_000, largest=32) == 32
    per_sample = 2 * memory.activation_bytes(net, (1, 28, 28))["max"]
    monkeypatch.setattr(training, "available_bytes", lambda device: 10 * per_sample)
    assert training.fitting_eval_batch(net, (1, 28, 28), cpu, 100_000_000, largest=5000) == 9
    assert "evaluating 9 at a time" in capsys.readouterr().out


# ---- 19. cv --only ----


@pytest.mark.parametrize(
    "only,message",
    [
        ("a", "--only 'a' must be comma-separated fold numbers"),
        ("0,9", "--only 9: the folds are 0..4"),
        ("", "comma-separated"),
    ],
)
def test_19_27_cv_only_is_checked_before_any_fold_trains(only, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cv, "fit", lambda *a, **k: pytest.fail("a fold trained before --only was checked"))
    rc, _, err = run_cli(
        capsys, "cv", "--model", "baseline3d", "--epochs", "1", "--only", only, "--out", tmp_path / "runs"
    )
    assert_one_line(rc, err, message)


# ---- 20. reproduce --only '' ----


@pytest.mark.parametrize("only", ["", " ", "report1/*,,loss-bce/*"])
def test_20_an_empty_only_pattern_is_refused(only, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "fit", lambda *a, **k: pytest.fail("reproduce trained a run"))
    rc, _, err = run_cli(capsys, "reproduce", "--plan", "cpu", "--only", only, "--out", tmp_path / "out")
    assert_one_line(rc, err, "empty pattern", "whole plan")


# ---- 21. a run that another process is training is not a failure ----


def test_21_a_run_trained_by_another_process_is_reported_as_such(breast, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    label, cfg = reproduce.plan("quick")[0]
    lock = runs.claim(runs.run_dir(cfg, out))  # "another process" holds the run
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: 200.0)
    try:
        rc, out_text, err = run_cli(capsys, "reproduce", "--plan", "quick", "--only", label, "--out", out)
    finally:
        lock.release()
    assert rc == 0, err
    assert "trained by another process" in out_text + err and "failed" not in out_text + err


# ---- 22. SIGTERM is handled like SIGINT ----


def test_22_sigterm_records_the_run_as_interrupted_and_releases_it(breast, tmp_path):
    out = tmp_path / "runs"
    args = [*T[:3], "--epochs", "300", *T[5:], "--out", str(out)]
    env = {**os.environ, "CI": "1", "MEDLIB_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "medlib", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list(out.glob("*/last.pt")) if out.exists() else []
        if found:
            break
        time.sleep(0.5)
    assert found, "no epoch was saved in time"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "Traceback" not in err
    folder = only_run(out)
    rec = record(folder)
    assert rec["status"] == "interrupted" and "SIGTERM" in rec["reason"]
    assert not (folder / runs.LOCK_NAME).exists()


# ---- 23. results on a missing folder ----


def test_23_results_on_a_missing_folder_says_so(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "results", tmp_path / "missing")
    assert_one_line(rc, err, f"{tmp_path / 'missing'} does not exist")
    assert "No reproduction records yet" not in out


# ---- 24. a missing history.csv or test_scores.csv is named ----


@pytest.mark.parametrize("name", ["history.csv", "test_scores.csv"])
def test_24_a_missing_run_file_is_named_without_blaming_the_paths_passed(name, three):
    (three / BREAST[0] / name).unlink()
    run = runs.Run(three / BREAST[0])
    with pytest.raises(MedlibError, match=re.escape(f"{three / BREAST[0] / name} is missing")) as e:
        run.history if name == "history.csv" else run.scores("test")
    assert "paths you passed" not in str(e.value)
    _, said = read_quietly(three)
    assert any(f"{three / BREAST[0] / name} is missing" in w for w in said), said


# ---- 25. notebook 00 checks the data root in its first cells ----


def test_25_notebook_00_stops_at_once_on_a_wrong_data_root(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "00_data_tour.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "nowhere"))
    namespace: dict = {}
    exec(code[0].source, namespace)  # noqa: S102 - the notebook's parameters cell
    with pytest.raises(MedlibError, match=r"nowhere \(\$MEDLIB_DATA\) does not exist; set MEDLIB_DATA"):
        exec(code[1].source, namespace)  # noqa: S102 - the cell right after it
    (tmp_path / "root" / "medmnist").mkdir(parents=True)
    assert notebook.check_data_root(str(tmp_path / "root")) == (tmp_path / "root").resolve()
    assert os.environ["MEDLIB_DATA"] == str(tmp_path / "root")  # DATA given: every later cell reads it
    (tmp_path / "bare").mkdir()
    with pytest.raises(MedlibError, match="holds neither medmnist/ nor m3dv/"):
        notebook.check_data_root(str(tmp_path / "bare"))


# ---- 26. advice that fits the command; errors that name the checkpoint; permission denied ----


def test_26_predict_on_samples_smaller_than_the_checkpoint_crop(tmp_path, capsys):
    folder, _ = write_m3dv(tmp_path / "data", n=4, size=24)
    ck = m3dv_checkpoint(tmp_path, crop=32)
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", tmp_path / "s.csv")
    assert_one_line(rc, err, f"checkpoint {ck} was trained on 32³ cubes")
    assert "pass a smaller --crop" not in err


def test_26_evaluate_names_the_checkpoint_whose_data_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(files, "download", lambda *a, **k: (_ for _ in ()).throw(MedlibError("no network here")))
    ck = fake_checkpoint(tmp_path / "b.pt", dataset="breastmnist", md5="0" * 32)
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", ck)
    assert_one_line(rc, err, f"Checkpoint {ck} (trained on breastmnist)")


def test_26_an_unreadable_checkpoint_is_not_called_damaged(tmp_path, capsys, monkeypatch):
    ck = fake_checkpoint(tmp_path / "b.pt")
    if os.geteuid() == 0:  # root reads a chmod 000 file: make the OS answer as it would to a user

        def denied(*a, **k):
            raise PermissionError(13, "Permission denied", str(ck))

        monkeypatch.setattr(torch, "load", denied)
    else:
        ck.chmod(0)
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", ck)
    assert_one_line(rc, err, "permission denied", "chmod")
    assert "damaged" not in err


@pytest.mark.parametrize("kind", ["m3dv sample", "medmnist file"])
def test_26_an_unreadable_data_file_is_not_called_damaged(kind, tmp_path, monkeypatch):
    from medlib.data import m3dv, medmnist

    folder, _ = write_m3dv(tmp_path / "data", n=2, size=24)
    path = folder / "candidate1.npz"

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "load", denied)  # what a chmod 000 file gives a user who is not root
    with pytest.raises(MedlibError, match="permission denied.*chmod") as e:
        m3dv.load_sample(path) if kind == "m3dv sample" else medmnist.read_npz(path, "breastmnist", 28)
    assert "damaged" not in str(e.value)


# ---- 27. odd numbers and leftovers ----


def test_27_a_bad_epoch_count_in_a_record_is_damaged_not_negative(three, monkeypatch):
    edit_json(three / BREAST[0] / "run.json", status="interrupted", epochs_saved=-5)
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: 200.0)
    rows = reproduce.schedule("cpu", "report1/breastmnist/resnet18/s0", three, torch.device("cpu"))
    assert rows[0]["status"] == "damaged" and not rows[0]["epochs"].startswith("-")


def test_27_an_empty_home_keeps_the_cache_out_of_the_root(monkeypatch):
    monkeypatch.delenv("MEDLIB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "")
    assert files.cache_dir() != Path("/.cache/medlib") and files.cache_dir().is_absolute()
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert files.cache_dir() != Path("/medlib")


def test_27_a_batch_above_the_training_set_is_checked_as_the_batch_it_is(breast, tmp_path, capsys, monkeypatch):
    seen = []
    real = training.check_train_batch
    monkeypatch.setattr(
        training,
        "check_train_batch",
        lambda net, shape, batch, *a: (seen.append(batch), real(net, shape, batch, *a))[1],
    )
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs", "--batch-size", "100000")
    assert rc == 0, err
    assert seen == [64]


def test_27_the_pickle_refusal_does_not_advise_loading_it_anyway(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    ck = tmp_path / "evil.pt"
    torch.save({"model": Evil(), "config": {}, "meta": {}}, ck)
    rc, out, err = run_cli(capsys, "evaluate", "--checkpoint", ck)
    assert_one_line(rc, err, "holds Python objects other than tensors", "must not be")
    assert "weights_only" not in err and "this ran" not in out


# ---- whether a run is a "GPU job" depends on the rate, which a test injects ----


@pytest.mark.parametrize("gflops,status", [(200.0, "todo"), (2.0, "skip (GPU job)")])
def test_the_gpu_job_cut_follows_the_injected_rate(gflops, status, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(cost, "sgemm_gflops", lambda: gflops)
    rows = reproduce.schedule("gpu", "medmnist3d/vesselmnist3d_64/baseline3d/s0", tmp_path / "out", torch.device("cpu"))
    assert rows[0]["status"] == status
