"""Issue 12, "Reliability": medlib used as a hostile or careless user would. Each defect must end in one clear line
and exit 2, leave nothing half-written or stale behind, and never record a garbage run as complete.

Training cases are tiny runs on the real BreastMNIST (`--epochs 1 --max-train 64 --max-eval 32`); the rest use
generated files. The CLI runs in-process (`cli.main`), and once as a real process to check the exit status.
"""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synth_m3dv import write_m3dv
from synth_medmnist import make_arrays

import medlib
from medlib import atomic, cli, metrics
from medlib.config import TrainConfig
from medlib.data import files, m3dv, registry
from medlib.data.base import Meta
from medlib.data.medmnist import load_medmnist
from medlib.engine import checkpoint, runs, training
from medlib.errors import MedlibError
from medlib.models import build_model

ROOT = Path(__file__).resolve().parents[1]
T = ["train", "--dataset", "breastmnist", "--epochs", "1", "--max-train", "64", "--max-eval", "32"]
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def run_cli(capsys, *args):
    """(exit status, stdout, stderr) of `python -m medlib ARGS`, in this process."""
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line(rc, err, *needles):
    assert rc == 2, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert err.startswith("medlib: error: ")
    for n in needles:
        assert n in err, err


@pytest.fixture
def breast_root(real_data, tmp_path, monkeypatch):
    """A data root holding (a link to) the real breastmnist.npz, with MEDLIB_DATA pointing at it."""
    root = tmp_path / "data"
    (root / "medmnist").mkdir(parents=True)
    (root / "medmnist" / "breastmnist.npz").symlink_to(real_data / "medmnist" / "breastmnist.npz")
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    return root


def record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def only_run(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in Path(folder).rglob(f"*{atomic.TEMP_SUFFIX}"))


def fake_checkpoint(
    path: Path,
    *,
    dataset="breastmnist",
    model="resnet18",
    channels=1,
    classes=2,
    dims=2,
    size=28,
    md5=None,
    poison=False,
) -> Path:
    """A medlib checkpoint built without training (an untrained network is enough to exercise the checks)."""
    torch.manual_seed(0)
    cfg = TrainConfig(dataset=dataset, model=model, size=size, crop=16)
    net = build_model(model, channels, classes, stem=cfg.stem)
    if poison:  # what a diverged training leaves behind
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
    meta = Meta(
        name=dataset,
        task="binary-class",
        n_classes=classes,
        n_channels=channels,
        dims=dims,
        size=size,
        md5=md5 if md5 is not None else registry.md5(dataset, size) if dataset != "m3dv" else "0" * 32,
    )
    checkpoint.save(path, model=net, epoch=0, best_score=0.5, best_epoch=1, config=cfg, meta=meta)
    return path


# ---- 1. garbage recorded as a result ----


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--lr", "nan"], "--lr must be a finite number, not nan"),
        (["--lr", "inf"], "--lr must be a finite number, not inf"),
        (["--batch-size", "1"], "--batch-size must be >= 2, not 1 (BatchNorm"),
        (["--momentum", "-1"], "--momentum must be in [0, 1], not -1.0"),
        (["--weight-decay", "-0.5"], "--weight-decay must be >= 0, not -0.5"),
        (["--mixup-alpha", "-0.2"], "--mixup-alpha must be >= 0, not -0.2"),
        (["--max-train", "-5"], "--max-train must be >= 0, not -5"),
        (["--max-train", "1"], "--max-train 1 keeps a single sample"),
        (["--seed", str(2**64)], f"--seed must be in [0, {2**63 - 1}], not {2**64}"),
        (["--device", "tpu"], "--device 'tpu' is not a device medlib can use"),
        (["--out", ""], "--out is empty"),
        (
            ["--dataset", "m3dv", "--model", "densenet3d", "--dilate", "2", "--no-mask"],
            "--dilate 2 grows the nodule mask",
        ),
        (["--schedule", "range"], "--schedule range needs --lr-end"),
        (["--lr-end", "1"], "and --lr-end is used by no other schedule"),
        (["--schedule", "range", "--lr", "0.1", "--lr-end", "0.01"], "--lr-end 0.01 must be above --lr 0.1"),
    ],
)
def test_bad_numbers_and_names_are_refused_before_anything_runs(flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --out "" used to write to ./runs: nothing may appear here
    args = T + flags if "--out" in flags else T + ["--out", "runs"] + flags
    rc, out, err = run_cli(capsys, *args)
    assert_one_line(rc, err, message)
    assert list(tmp_path.iterdir()) == []


def test_exit_status_of_the_real_process(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "medlib", *T, "--lr", "nan", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1"},
        timeout=300,
    )
    assert r.returncode == 2 and r.stderr.strip() == "medlib: error: --lr must be a finite number, not nan."


def test_nan_scores_are_refused_not_ranked():
    y = np.array([0, 1, 0, 1])
    s = np.array([[0.9, 0.1], [np.nan, np.nan], [0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(MedlibError, match="2 of 8 scores are NaN or infinite.*smaller --lr"):
        metrics.evaluate(y, s, "binary-class")
    s[1] = [np.inf, 0]
    with pytest.raises(MedlibError, match="NaN or infinite"):
        metrics.evaluate(y, s, "binary-class")
    s[1] = [0.4, 0.6]
    assert metrics.evaluate(y, s, "binary-class")["auc"] == 1.0


def test_diverged_checkpoint_is_not_evaluated(breast_root, tmp_path, capsys):
    ck = fake_checkpoint(tmp_path / "nan.pt", poison=True)
    rc, out, err = run_cli(capsys, "evaluate", "--checkpoint", ck, "--split", "test")
    assert_one_line(rc, err, "scores are NaN or infinite")
    assert "AUC" not in out


def test_single_class_training_is_refused(synth_root, tmp_path, capsys):
    arrays = make_arrays("breastmnist", n=(40, 16, 16))
    arrays["train_labels"][:] = 0  # every training label is one class
    path = files.medmnist_path("breastmnist", 28, synth_root)
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    rc, out, err = run_cli(capsys, "train", "--dataset", "breastmnist", "--epochs", "1", "--out", tmp_path / "runs")
    assert_one_line(rc, err, "The train split (40 samples) cannot train a classifier: every label is 0")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("run.json"))


def test_val_split_without_both_classes_is_refused():
    with pytest.raises(MedlibError, match=r"val split \(5 samples\) cannot give an AUC: every label is 1"):
        metrics.check_classes(np.ones(5, int), "binary-class", 2, "val")
    with pytest.raises(MedlibError, match=r"class\(es\) \[2\] is missing"):
        metrics.check_classes(np.array([0, 1, 1, 0]), "multi-class", 3, "val")
    metrics.check_classes(np.array([0, 1, 1, 0]), "multi-class", 3, "train", every=False)
    with pytest.raises(MedlibError, match=r"label\(s\) \[1\] is all 0 or all 1"):
        metrics.check_classes(np.array([[0, 1], [1, 1]]), "multi-label, binary-class", 2, "test")


@pytest.mark.parametrize(
    "weights,message",
    [
        (["nan", "1"], "must be 2 finite, non-negative numbers"),
        (["inf", "1"], "finite"),
        (["-1", "2"], "non-negative"),
        (["1"], "must be 2 finite"),
    ],
)
def test_bad_ensemble_weights_write_no_csv(weights, message, tmp_path, capsys):
    folder, _ = write_m3dv(tmp_path, n=4, size=24)
    ck = fake_checkpoint(tmp_path / "m.pt", dataset="m3dv", model="baseline3d", dims=3, size=16)
    out = tmp_path / "sub.csv"
    rc, _, err = run_cli(
        capsys, "predict", "--checkpoint", ck, ck, "--input", folder, "--out", out, "--weights", *weights
    )
    assert_one_line(rc, err, message)
    assert not out.exists() and leftovers(tmp_path) == []


# ---- 2. the MD5 check cannot be bypassed; labels are range-checked ----


def test_md5_cache_sees_a_rewrite_with_size_and_mtime_restored(tmp_path):
    path = tmp_path / "breastmnist.npz"
    np.savez(path, **make_arrays("breastmnist", n=(8, 4, 4)))
    good = files.file_md5(path)
    assert files.md5_status(path, good) == "ok"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime put back
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert files.md5_status(path, good) == "mismatch"


@pytest.mark.parametrize("content", ["null", "[1, 2]", '{"x": null}', '{"x": {"status": 3}}', "{bad json"])
def test_a_damaged_verdict_cache_is_ignored_and_repaired(content, tmp_path):
    path = tmp_path / "f.npz"
    path.write_bytes(b"hello")
    cache = files.cache_dir() / "md5_verdicts.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)
    assert files.md5_status(path, files.file_md5(path)) == "ok"
    assert isinstance(json.loads(cache.read_text()), dict)  # rewritten whole, so later runs work too
    assert files.md5_status(path, files.file_md5(path)) == "ok"


@pytest.mark.parametrize("label", [7, -1])
def test_labels_out_of_range_are_refused_when_loading(label, synth_root):
    arrays = make_arrays("breastmnist", n=(12, 6, 6))
    arrays["train_labels"] = arrays["train_labels"].astype(np.int16)
    arrays["train_labels"][3] = label
    path = files.medmnist_path("breastmnist", 28, synth_root)
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    with pytest.raises(MedlibError, match=rf"train_labels holds the label {label}, outside 0..1 .*download it again"):
        load_medmnist("breastmnist")


def test_multilabel_labels_must_be_flags(synth_root):
    arrays = make_arrays("chestmnist", n=(12, 6, 6))
    arrays["val_labels"][0, 0] = 2
    path = files.medmnist_path("chestmnist", 28, synth_root)
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    with pytest.raises(MedlibError, match=r"val_labels holds the label 2, outside 0..1"):
        load_medmnist("chestmnist")


# ---- 3. no stale reuse ----


def test_no_reuse_trains_again_from_scratch(breast_root, tmp_path, capsys):
    out = tmp_path / "runs"
    rc, _, err = run_cli(capsys, *T, "--out", out)
    assert rc == 0, err
    folder = only_run(out)
    first = record(folder)
    rc, stdout, err = run_cli(capsys, *T, "--out", out, "--no-reuse")
    assert rc == 0, err
    again = record(folder)
    assert "resuming" not in stdout
    assert again["epochs_this_session"] == 1 and again["wall_time_s"] > 0 and again["finished"] >= first["finished"]
    assert len(runs.Run(folder).history) == 1


def test_fresh_discards_a_damaged_last_checkpoint(breast_root, tmp_path, capsys):
    out = tmp_path / "runs"
    assert run_cli(capsys, *T, "--out", out)[0] == 0
    folder = only_run(out)
    (folder / "last.pt").write_bytes(b"\x00garbage")
    atomic.write_json(folder / "run.json", {"status": "failed", "config": record(folder)["config"]})
    rc, _, err = run_cli(capsys, *T, "--out", out)
    assert_one_line(rc, err, "last.pt cannot be read", "--fresh")
    rc, _, err = run_cli(capsys, *T, "--out", out, "--fresh")
    assert rc == 0, err
    assert record(folder)["status"] == "complete" and record(folder)["epochs_this_session"] == 1
    torch.load(folder / "last.pt", weights_only=True)


def m3dv_config(**kw):
    return medlib.make_config(preset="report2", epochs=1, crop=16, batch_size=4, folds=3, **kw)


def test_reuse_refuses_a_run_made_from_other_m3dv_data(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_m3dv(root / "m3dv", n=9, size=24)
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    cfg = m3dv_config()
    folder = runs.run_dir(cfg, tmp_path / "runs")
    atomic.write_json(
        folder / "run.json", {"status": "complete", "config": cfg.__dict__, "data": {"md5": "f" * 32}, "metrics": {}}
    )
    with pytest.raises(MedlibError, match=f"trained on m3dv data with MD5 {'f' * 32}.*--no-reuse"):
        medlib.fit(cfg, out=tmp_path / "runs", verbose=False)
    # the data it was made from: reused as before
    atomic.write_json(
        folder / "run.json",
        {"status": "complete", "config": cfg.__dict__, "data": {"md5": m3dv.folder_md5()}, "metrics": {}},
    )
    assert medlib.fit(cfg, out=tmp_path / "runs", verbose=False).dir == folder


def test_folder_md5_is_what_load_m3dv_records(tmp_path):
    folder, csv = write_m3dv(tmp_path, n=5, size=24)
    assert m3dv.folder_md5(folder) == m3dv.load_m3dv(folder, crop=8).meta.md5
    csv.write_text(csv.read_text().replace("candidate1,1", "candidate1,0"))
    assert m3dv.folder_md5(folder) == m3dv.load_m3dv(folder, crop=8).meta.md5


def test_an_interrupted_run_does_not_resume_on_other_data(breast_root, tmp_path, capsys):
    out = tmp_path / "runs"
    assert run_cli(capsys, *T, "--out", out)[0] == 0
    folder = only_run(out)
    ck = torch.load(folder / "last.pt", weights_only=True)
    ck["meta"]["md5"] = "d" * 32  # as if trained on other data
    torch.save(ck, folder / "last.pt")
    atomic.write_json(folder / "run.json", {"status": "interrupted", "config": record(folder)["config"]})
    rc, _, err = run_cli(capsys, *T, "--out", out)
    assert_one_line(rc, err, f"last.pt was trained on data with MD5 {'d' * 32}", "pass --fresh")
    assert record(folder)["status"] != "complete"


def test_resume_refuses_a_checkpoint_of_other_data():
    meta = Meta(name="m3dv", task="binary-class", n_classes=2, n_channels=1, dims=3, size=16, md5="b" * 32)
    with pytest.raises(MedlibError, match="pass --fresh"):
        runs.check_resume({"meta": {"md5": "a" * 32}}, meta, Path("last.pt"))
    runs.check_resume({"meta": {"md5": "b" * 32}}, meta, Path("last.pt"))


# ---- 4. locks ----


def _race(folder, barrier, outcomes, slot, hold):
    barrier.wait()
    try:
        lock = runs.claim(folder)
        outcomes[slot] = 1
        hold.wait(10)  # keep it while the other one tries
        lock.release()
    except MedlibError:
        outcomes[slot] = 2
    os._exit(0)


def test_claim_is_atomic_under_a_race(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(30):
        barrier, outcomes, hold = ctx.Barrier(2), ctx.Array("i", 2), ctx.Event()
        procs = [ctx.Process(target=_race, args=(tmp_path / f"run{trial}", barrier, outcomes, i, hold)) for i in (0, 1)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 30
        while 0 in outcomes[:] and time.monotonic() < deadline:
            time.sleep(0.01)
        hold.set()
        for p in procs:
            p.join(30)
        assert sorted(outcomes[:]) == [1, 2], f"trial {trial}: {outcomes[:]} (1 = won, 2 = lost)"


def test_a_held_lock_names_its_holder_and_is_released(tmp_path):
    lock = runs.claim(tmp_path)
    holder = json.loads((tmp_path / ".lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] and holder["started"]
    with pytest.raises(MedlibError, match=rf"being trained by another process \(pid {os.getpid()} on "):
        runs.claim(tmp_path)
    lock.release()
    assert not (tmp_path / ".lock").exists()
    runs.claim(tmp_path).release()


def test_a_dead_or_reused_pid_never_blocks(tmp_path):
    (tmp_path / ".lock").write_text(str(os.getppid()))  # an old-style lock naming a live, unrelated process
    runs.claim(tmp_path).release()
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=lambda: (runs.claim(tmp_path), os._exit(0)))  # dies holding the lock, never releasing
    p.start()
    p.join(30)
    assert (tmp_path / ".lock").exists()
    runs.claim(tmp_path).release()


def test_a_failed_run_releases_its_lock(breast_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: (_ for _ in ()).throw(MedlibError("boom")))
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "boom")
    folder = only_run(tmp_path / "runs")
    assert not (folder / ".lock").exists() and record(folder)["status"] != "complete"
    runs.claim(folder).release()


# ---- 5. temp files ----


def test_starting_over_discards_old_outputs(tmp_path):
    for name in runs.OUTPUTS + ("run.json", "notes.txt", "breastmnist_test_[AUC]0.900_[ACC]0.800@r.csv"):
        (tmp_path / name).write_text("old")
    assert "test_scores.csv.xz" in runs.OUTPUTS and "val_scores.csv.gz" in runs.OUTPUTS  # packed ones too
    runs.discard_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run.json"]


def test_stale_temp_files_are_cleaned_on_the_next_start(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    pid = os.fork()
    if pid == 0:  # a writer killed in the middle of a checkpoint
        with atomic.atomic_path(folder / "best.pt") as tmp:
            tmp.write_bytes(b"x" * 4096)
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    assert len(leftovers(folder)) == 1 and not (folder / "best.pt").exists()
    (folder / "keep.tmp").write_text("not ours")  # only the atomic writer's `.<name>.<random>.tmp` files go
    runs.claim(folder).release()
    assert leftovers(folder) == ["keep.tmp"]


# ---- 6. one line instead of a traceback ----


def test_out_that_is_a_file(breast_root, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "file")
    assert_one_line(rc, err, "Cannot write", "a file is in the way")


def test_out_that_cannot_be_created(breast_root, capsys):
    rc, _, err = run_cli(capsys, *T, "--out", "/proc/medlib-runs")
    assert_one_line(rc, err, "Cannot write /proc/medlib-runs")


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system (tmpfs), and a read-only one beside it; skipped where mounting is not allowed."""
    disks = {"full": tmp_path / "full", "ro": tmp_path / "ro"}
    mounted = []
    for name, opts in (("full", "size=256k"), ("ro", "ro,size=64k")):
        disks[name].mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(disks[name])]
        if subprocess.run(mount, capture_output=True).returncode:
            for d in mounted:
                subprocess.run(["umount", str(d)])
            pytest.skip("needs permission to mount a tmpfs (root in a container that allows it)")
        mounted.append(disks[name])
    yield disks
    for d in mounted:
        subprocess.run(["umount", str(d)])


def test_a_full_disk_is_one_line_and_never_complete(breast_root, small_disk, capsys):
    out = small_disk["full"] / "runs"
    rc, _, err = run_cli(capsys, *T, "--out", out)
    assert_one_line(rc, err, "the disk may be full")  # the write that failed first is named (a checkpoint, or run.json)
    assert leftovers(out) == [] and not any(record(f).get("status") == "complete" for f in out.iterdir())


def test_a_read_only_out(breast_root, small_disk, capsys):
    rc, _, err = run_cli(capsys, *T, "--out", small_disk["ro"] / "runs")
    assert_one_line(rc, err, "Read-only file system", "not writable")


def test_read_only_folder(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(atomic.WriteError, match="Read-only file system.*not writable; pass a writable one"):
        atomic.write_text(tmp_path / "a.txt", "x")


def test_full_disk_during_a_checkpoint_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def full(obj, f):
        Path(f).write_bytes(b"PK" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4416 vs 4312")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(
        MedlibError, match=r"Cannot write .*best.pt \(\[enforce fail.*the disk may be full \(\d+ MB free"
    ):
        atomic.torch_save({"a": 1}, tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []


def test_predict_out_that_is_a_folder(tmp_path, capsys):
    folder, _ = write_m3dv(tmp_path, n=4, size=24)
    ck = fake_checkpoint(tmp_path / "m.pt", dataset="m3dv", model="baseline3d", dims=3, size=16)
    rc, _, err = run_cli(capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", tmp_path)
    assert_one_line(rc, err, "is a folder; pass the CSV file")


def test_npz_path_that_is_a_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "medmnist" / "breastmnist.npz").mkdir(parents=True)
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "breastmnist.npz is a folder, not an .npz file")


def test_evaluate_device_tpu(tmp_path, capsys):
    ck = fake_checkpoint(tmp_path / "b.pt")
    assert_one_line(*run_cli(capsys, "evaluate", "--checkpoint", ck, "--device", "tpu")[::2], "--device 'tpu'")


@pytest.mark.parametrize(
    "content,message",
    [
        ("state_dict", "only weights (a plain state_dict)"),
        ("tensor", "holds a Tensor, not a medlib checkpoint"),
        ("wrong_arch", "its weights do not fit the resnet18"),
        ("garbage", "cannot be read"),
        ("folder", "is a folder"),
    ],
)
def test_checkpoints_that_are_not_medlib_checkpoints(content, message, tmp_path, capsys):
    path = tmp_path / "x.pt"
    if content == "state_dict":
        torch.save(build_model("resnet18", 1, 2).state_dict(), path)
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "wrong_arch":
        fake_checkpoint(path)
        ck = torch.load(path, weights_only=True)
        ck["model"] = build_model("resnet50", 1, 2).state_dict()
        torch.save(ck, path)
    elif content == "garbage":
        path.write_bytes(b"\x00not a zip")
    else:
        path.mkdir()
    assert_one_line(*run_cli(capsys, "evaluate", "--checkpoint", path)[::2], message)


def test_2d_checkpoint_on_m3dv_and_grey_checkpoint_on_colour(tmp_path, monkeypatch, capsys, real_data):
    root = tmp_path / "data"
    write_m3dv(root / "m3dv", n=9, size=24)
    (root / "medmnist").mkdir()
    (root / "medmnist" / "retinamnist.npz").symlink_to(real_data / "medmnist" / "retinamnist.npz")
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    ck = fake_checkpoint(tmp_path / "b.pt")
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", ck, "--dataset", "m3dv")
    assert_one_line(rc, err, "trained on breastmnist (dimensions: 2) but m3dv has dimensions 3")
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", ck, "--dataset", "retinamnist")
    assert_one_line(rc, err, "trained on breastmnist (channels: 1) but retinamnist has channels 3")


def test_null_verdict_cache_does_not_break_later_runs(breast_root, capsys):
    cache = files.cache_dir() / "md5_verdicts.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("null")
    rc, out, err = run_cli(capsys, "info")
    assert rc == 0 and "breastmnist" in out and "Traceback" not in err


# ---- 7. clearer messages ----


def test_bom_labels_csv_is_accepted(tmp_path):
    folder, csv = write_m3dv(tmp_path, n=4, size=24)
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())  # Excel's "CSV UTF-8"
    assert m3dv.read_labels(csv) == {"candidate1": 1, "candidate3": 0, "candidate5": 1, "candidate7": 0}


def test_header_only_csv_says_so(tmp_path):
    folder, csv = write_m3dv(tmp_path, n=2, size=24)
    csv.write_text("name,label\n")
    with pytest.raises(MedlibError, match="holds only its header and no samples"):
        m3dv.load_m3dv(folder, crop=8)


def test_messages_name_cli_flags_not_library_arguments(tmp_path, capsys, monkeypatch):
    folder, _ = write_m3dv(tmp_path, n=4, size=24)
    ck = fake_checkpoint(tmp_path / "m.pt", dataset="m3dv", model="baseline3d", dims=3, size=16)
    out = tmp_path / "sub.csv"
    rc, _, err = run_cli(
        capsys, "predict", "--checkpoint", ck, "--input", folder, "--out", out, "--labels", tmp_path / "missing.csv"
    )
    assert_one_line(rc, err, "Cannot read the labels CSV", "missing.csv")
    assert not out.exists()  # checked before anything is written
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, "train", "--preset", "report2", "--epochs", "1", "--out", tmp_path / "runs")
    assert_one_line(rc, err, "M3DV folder", "point MEDLIB_DATA at")
    for e in (err,):
        assert "labels=None" not in e and "folder=" not in e and "ids=" not in e


def test_mistyped_data_root_leaves_no_folders(tmp_path, capsys, monkeypatch):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    typo = tmp_path / "dtaa"
    monkeypatch.setenv("MEDLIB_DATA", str(typo))
    rc, _, err = run_cli(capsys, *T, "--out", tmp_path / "runs")
    assert_one_line(rc, err, "Could not download breastmnist.npz", f"{typo} did not exist before")
    assert not typo.exists() and not (tmp_path / "runs").exists()


def test_m3dv_checkpoint_on_other_m3dv_data(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    write_m3dv(root / "m3dv", n=9, size=24)
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    cfg = dict(dataset="m3dv", model="baseline3d", dims=3, size=16)
    other = fake_checkpoint(tmp_path / "other.pt", md5="e" * 32, **cfg)
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", other)
    assert_one_line(rc, err, f"trained on M3DV data with MD5 {'e' * 32}", "would mix training samples")
    same = fake_checkpoint(tmp_path / "same.pt", md5=m3dv.folder_md5(), **cfg)
    rc, out, err = run_cli(capsys, "evaluate", "--checkpoint", same)
    assert rc == 0 and "m3dv test" in out, err
