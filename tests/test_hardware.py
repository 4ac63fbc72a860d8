"""Per-machine choices and memory bounds: allocator, precision, budgeted batches, FLOP counts, honest records."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import medlib
from medlib.engine import cost, hardware, memory, training
from medlib.engine.loop import train_epoch
from medlib.errors import MedlibError

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(dataset="breastmnist", epochs=2, batch_size=32, max_train=64, max_eval=32, optimizer="adam")


def test_activation_bytes_counts_leaf_outputs_exactly():
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2), nn.Flatten(), nn.Linear(4 * 64, 2))
    b = memory.activation_bytes(net, (1, 8, 8, 8))
    conv = 4 * 8**3 * 4  # bytes per sample of the conv output, the same again for ReLU
    assert b["sum"] == conv + conv + 4 * 64 * 4 + 4 * 64 * 4 + 2 * 4
    assert b["max"] == conv + conv  # ReLU: its input and output
    assert next(net.parameters()).device.type == "cpu"  # measured on a meta copy, the net is untouched


def test_resnet50_activations_match_the_known_figure():
    # ResNet-50 at 224 px keeps about 104 MB of fp32 activations per image for backward (a well-known figure)
    net = medlib.models.build_model("resnet50", 3, 1000, stem="imagenet")
    assert 95 < memory.activation_bytes(net, (3, 224, 224))["sum"] / 2**20 < 115


def test_eval_batch_shrinks_with_the_input_and_fits_the_budget(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * memory.GiB)
    net = medlib.models.build_model("baseline3d", 1, 2)
    cpu = torch.device("cpu")
    small, large = memory.eval_batch_size(net, (1, 28, 28, 28), cpu), memory.eval_batch_size(net, (1, 64, 64, 64), cpu)
    assert large < small
    per = 2 * memory.activation_bytes(net, (1, 64, 64, 64))["max"]
    assert large * per <= memory.EVAL_BUDGET_CAP < (large + 1) * per
    assert memory.eval_batch_size(net, (1, 64, 64, 64), cpu, requested=7) == 7


def test_a_training_batch_that_cannot_fit_is_refused_with_the_largest_that_would(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: memory.GiB)
    monkeypatch.setattr(memory, "total_bytes", lambda device: memory.GiB)
    net = medlib.models.build_model("densenet3d", 1, 2)
    with pytest.raises(
        MedlibError, match=r"--batch-size 64 needs up to .* the largest batch that fits is about (\d+)"
    ) as e:
        memory.check_train_batch(net, (1, 32, 32, 32), 64, torch.device("cpu"))
    fits = int(str(e.value).split("pass --batch-size ")[1].split()[0])
    assert 1 <= fits < 64
    memory.check_train_batch(net, (1, 32, 32, 32), fits, torch.device("cpu"))  # the advice itself is accepted


def test_a_batch_that_fits_the_machine_but_not_the_free_memory_only_warns(monkeypatch):
    """Free memory moves with other processes: it once refused 4 of 5 folds of a batch that had just trained."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: memory.GiB)
    monkeypatch.setattr(memory, "total_bytes", lambda device: 64 * memory.GiB)
    net = medlib.models.build_model("densenet3d", 1, 2)
    with pytest.warns(UserWarning, match=r"--batch-size 64 may need up to .* GiB is free on cpu now; training goes on"):
        need = memory.check_train_batch(net, (1, 32, 32, 32), 64, torch.device("cpu"))
    assert memory.GiB < need < 64 * memory.GiB


EVAL_64 = """
import resource, sys, torch
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
from medlib.data import load_medmnist
from medlib.engine.hardware import tune_allocator
from medlib.engine.loop import predict
from medlib.models import build_model
tune_allocator()
s = load_medmnist("adrenalmnist3d", 64)["train"]
net = build_model("baseline3d", 1, 2)
probs, _ = predict(net, s.X, torch.device("cpu"), "binary-class", batch_size=int(sys.argv[1]), y=s.y)
print(len(probs), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_the_64_cube_train_split_evaluates_within_6_gb(real_data, tmp_path):
    """1,188 AdrenalMNIST3D cubes at 64³ under a 6 GB address-space cap; the old fixed batch of 1024 cannot."""
    script = tmp_path / "eval64.py"
    script.write_text(EVAL_64)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    ok = subprocess.run(
        [sys.executable, str(script), "0"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    n, rss_mb = map(int, ok.stdout.split())
    assert n == 1188 and rss_mb < 6 * 1024
    old = subprocess.run(
        [sys.executable, str(script), "1024"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    assert old.returncode != 0  # the cap is real: the fixed batch of 1024 asks for far more


def test_precision_is_chosen_per_machine(monkeypatch):
    cpu = torch.device("cpu")
    assert hardware.resolve_precision("fp32", cpu) == "fp32"
    hardware.cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert hardware.resolve_precision("auto", cpu) == "fp32"  # emulated bf16 (AVX2) would be slower
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert hardware.resolve_precision("auto", cpu) == "bf16"
    assert hardware.resolve_precision("bf16", cpu) == "bf16"  # asked for explicitly
    # records written before precision was a choice stored a bool
    assert medlib.TrainConfig(amp=True).amp == "auto" and medlib.TrainConfig(amp=False).amp == "fp32"
    with pytest.raises(MedlibError, match="--amp 'fp16' is not one of auto, bf16, fp32"):
        medlib.TrainConfig(amp="fp16")


def test_channels_last_auto_means_on_for_cpu_2d_and_3d():
    cpu = torch.device("cpu")
    assert hardware.use_channels_last("auto", cpu, 3) and hardware.use_channels_last("auto", cpu, 2)
    assert not hardware.use_channels_last("off", cpu, 3) and hardware.use_channels_last("on", cpu, 2)


def test_allocator_tuning_can_be_switched_off():
    code = "from medlib.engine.hardware import tune_allocator; print(tune_allocator())"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    off = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MEDLIB_MALLOC": "system"},
    )
    assert off.stdout.strip() == "False"
    assert on.stdout.strip() == ("True" if sys.platform == "linux" else "False")


def test_flop_counts_match_published_figures():
    # ResNet-18 at 224 px: 1.81 G multiply-adds forward (He et al. 2016 / torchvision) = 3.63 GFLOP
    f = cost.flops_per_sample("resnet18", 3, 1000, (3, 224, 224), "imagenet")
    assert f["eval"] == pytest.approx(3.63e9, rel=0.01)
    assert 2.5 < f["train"] / f["eval"] < 3.5  # backward costs about twice the forward


def test_a_cpu_is_told_what_it_cannot_finish():
    from medlib.data.base import Meta

    meta = Meta("adrenalmnist3d", "binary-class", 2, 1, 3, 28)
    cfg = medlib.make_config(dataset="adrenalmnist3d", model="resnet18_3d", stem="small", epochs=30)
    slow = cost.estimate_seconds(cfg, meta, 1188, 396, torch.device("cpu"))
    fast = cost.estimate_seconds(cfg.replace(model="baseline3d"), meta, 1188, 396, torch.device("cpu"))
    assert slow > 200 * fast
    cheap = cost.estimate_seconds(cfg.replace(stem="imagenet"), meta, 1188, 396, torch.device("cpu"))
    assert 40 < slow / cheap < 60  # the ImageNet stem shrinks 28³ to 7³ before the first stage
    assert "GPU job" in cost.too_slow_message(slow, "resnet18_3d") and cost.too_slow_message(fast, "x") is None
    assert cost.estimate_seconds(cfg, meta, 1188, 396, torch.device("meta")) is None  # GPU speed is not modelled


def test_progress_advances_by_every_trained_sample(real_data):
    cfg = medlib.make_config(**TINY)
    ds = medlib.engine.splits.load_for_config(cfg)
    net = medlib.models.build_model("resnet18", 1, 2, stem="imagenet")

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    train_epoch(
        net,
        torch.optim.Adam(net.parameters()),
        ds["train"].X,
        ds["train"].y,
        cfg,
        ds.meta,
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        bar=bar,
    )
    assert bar.n == len(ds["train"])


def test_a_run_that_fails_leaves_an_honest_record_and_resumes(real_data, tmp_path, monkeypatch):
    real, calls = training.train_epoch, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise MedlibError("disk on fire")
        return real(*a, **k)

    monkeypatch.setattr(training, "train_epoch", flaky)
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0)  # save after every epoch
    cfg = medlib.make_config(**TINY)
    with pytest.raises(MedlibError, match="disk on fire"):
        medlib.fit(cfg, out=tmp_path, verbose=False)
    folder = medlib.engine.run_dir(cfg, tmp_path)
    rec = json.loads((folder / "run.json").read_text())
    assert rec["status"] == "failed" and rec["epochs_saved"] == 1 and rec["reason"] == "disk on fire"
    run = medlib.fit(cfg, out=tmp_path, verbose=False)  # the lock was released: it resumes at epoch 2 and completes
    assert run.complete and len(run.history) == 2 and run.record["epochs_this_session"] == 1


def test_cgroup_quota_v2_and_v1_and_unlimited(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "job").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "job" / "cpu.max").write_text("150000 100000\n")
    proc = tmp_path / "cgroup2"
    proc.write_text("0::/job\n")
    assert hardware._cgroup_cpu_quota(str(v2), str(proc)) == 1.5
    (v2 / "job" / "cpu.max").write_text("max 100000\n")
    assert hardware._cgroup_cpu_quota(str(v2), str(proc)) is None
    v1 = tmp_path / "v1" / "cpu" / "box"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    proc.write_text("4:memory:/box\n1:cpu:/box\n")
    assert hardware._cgroup_cpu_quota(str(tmp_path / "v1"), str(proc)) == 0.5
    assert hardware._cgroup_cpu_quota(str(tmp_path), str(tmp_path / "absent")) is None


def test_threads_follow_the_quota_and_are_only_lowered(monkeypatch):
    from medlib.engine import device

    monkeypatch.setattr(hardware, "_cgroup_cpu_quota", lambda: 1.5)
    assert hardware.usable_cpus() == 1  # half a CPU more is not a thread's worth
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("MEDLIB_THREADS", raising=False)
        monkeypatch.setattr(device, "usable_cpus", lambda: 1)
        assert device.set_cpu_threads() == 1
        monkeypatch.setattr(device, "usable_cpus", lambda: 64)
        assert device.set_cpu_threads() == 1  # never raised above what a caller set
        monkeypatch.setenv("MEDLIB_THREADS", "2")
        assert device.set_cpu_threads() == 2
        monkeypatch.setenv("MEDLIB_THREADS", "two")
        with pytest.raises(MedlibError, match="MEDLIB_THREADS='two' must be a whole number"):
            device.set_cpu_threads()
    finally:
        torch.set_num_threads(before)


def test_tcmalloc_relaunch_is_asked_for_once_and_only_when_wanted(tmp_path):
    lib = "/opt/lib/libtcmalloc_minimal.so.4"
    env = hardware.tcmalloc_relaunch_env({"LD_PRELOAD": "/x/libfoo.so"}, lib)
    if platform.system() != "Linux":
        assert env is None
        return
    assert env["LD_PRELOAD"] == f"{lib}:/x/libfoo.so" and env["MEDLIB_MALLOC_RELAUNCHED"] == "1"
    assert env["TCMALLOC_RELEASE_RATE"] == "10"
    assert hardware.tcmalloc_relaunch_env({**env}, lib) is None  # relaunched once: never a loop
    assert hardware.tcmalloc_relaunch_env({"MEDLIB_MALLOC": "glibc"}, lib) is None
    assert hardware.tcmalloc_relaunch_env({"MEDLIB_MALLOC": "system"}, lib) is None
    assert hardware.tcmalloc_relaunch_env({}, None) is None  # none installed
    with pytest.raises(MedlibError, match="MEDLIB_MALLOC='jemalloc' is not one of auto, glibc, system"):
        hardware.tcmalloc_relaunch_env({"MEDLIB_MALLOC": "jemalloc"}, lib)


def test_find_tcmalloc_looks_in_this_pythons_lib_first(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libtcmalloc_minimal.so.4").write_bytes(b"")
    assert hardware.find_tcmalloc(str(tmp_path)) == str(tmp_path / "lib" / "libtcmalloc_minimal.so.4")


@pytest.mark.skipif(not hardware.find_tcmalloc() or platform.system() != "Linux", reason="no tcmalloc installed")
@pytest.mark.parametrize(
    "choice, allocator", [("", "tcmalloc (LD_PRELOAD)"), ("glibc", "glibc mallopt (keep freed memory)")]
)
def test_a_training_command_runs_under_tcmalloc_unless_told(choice, allocator, real_data, tmp_path):
    """`python -m medlib train` starts again with tcmalloc preloaded; the run records the allocator it trained with."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MEDLIB_MALLOC_RELAUNCHED")}
    env.update(MEDLIB_DATA=str(real_data), MEDLIB_MALLOC=choice, CI="1")
    args = ["train", "--dataset", "breastmnist", "--epochs", "1", "--max-train", "64", "--out", str(tmp_path)]
    r = subprocess.run([sys.executable, "-m", "medlib", *args], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    run = Path(r.stdout.split("run folder:")[1].strip())
    assert json.loads((run / "run.json").read_text())["allocator"] == allocator


def test_kernel_spec_preloads_the_library(tmp_path):
    from medlib.book import kernel

    path = kernel.install(tmp_path, library="/opt/lib/libtcmalloc_minimal.so.4")
    spec = json.loads(path.read_text())
    assert path == tmp_path / "medlib" / "kernel.json"
    assert spec["env"]["LD_PRELOAD"] == "/opt/lib/libtcmalloc_minimal.so.4" and spec["argv"][0] == sys.executable
    assert "{connection_file}" in spec["argv"]


def test_kernel_without_tcmalloc_says_how_to_install_it(tmp_path, monkeypatch):
    from medlib.book import kernel

    monkeypatch.setattr(kernel, "find_tcmalloc", lambda: None)
    with pytest.raises(MedlibError, match="No tcmalloc library found to preload: install it"):
        kernel.install(tmp_path)
    assert not (tmp_path / "medlib").exists()
