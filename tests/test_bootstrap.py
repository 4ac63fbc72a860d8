"""scripts/bootstrap.sh picks the torch index: PyTorch's CPU index without an NVIDIA GPU, the default one with
a GPU, when the CPU index is unreachable, or when installing from it fails. Run against a fake virtualenv
whose `python` only logs what it is asked to do, so the test is quick and offline."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
  -) cat > /dev/null; exit "${FAKE_REACHABLE_RC:-1}" ;;   # the reachability check reads its script on stdin
  -c) exit 1 ;;                                           # `import torchvision` must fail
  -m) if [[ "$*" == *--index-url* && -n "${FAKE_INDEX_FAILS:-}" ]]; then exit 1; fi; exit 0 ;;
esac
"""


def _gpu_here() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def _run(tmp_path, gpu: bool = False, **env):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if gpu:
        (bindir / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        (bindir / "nvidia-smi").chmod(0o755)
    log = tmp_path / "log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDLIB_TORCH", "FAKE_"))}
    full_env.update(PATH=f"{bindir}:/usr/bin:/bin", MEDLIB_VENV=str(venv), FAKE_LOG=str(log), **env)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")], env=full_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert (venv / ".medlib-bootstrap").exists()
    pip = [
        line
        for line in log.read_text().splitlines()
        if line.startswith("-m pip") and "torch" in line and "-e" not in line.split()
    ]
    return pip, proc.stdout + proc.stderr, log.read_text()


needs_no_gpu = pytest.mark.skipif(_gpu_here(), reason="this machine has an NVIDIA GPU: the CPU-index path is not taken")


@needs_no_gpu
def test_no_gpu_takes_the_cpu_index(tmp_path):
    pip, out, _ = _run(tmp_path, FAKE_REACHABLE_RC="0")
    assert len(pip) == 1 and f"--index-url {CPU_INDEX} torch==2.13.0" in pip[0]


@needs_no_gpu
def test_unreachable_cpu_index_falls_back_to_the_default_index(tmp_path):
    pip, out, log = _run(tmp_path, FAKE_REACHABLE_RC="1")
    assert pip == ["-m pip -q --disable-pip-version-check install torch==2.13.0"]
    assert "unreachable" in out and f"- {CPU_INDEX}/" in log  # it did try the index first


@needs_no_gpu
def test_failed_install_from_the_cpu_index_falls_back(tmp_path):
    pip, out, _ = _run(tmp_path, FAKE_REACHABLE_RC="0", FAKE_INDEX_FAILS="1")
    assert len(pip) == 2 and "--index-url" in pip[0] and pip[1].endswith("install torch==2.13.0")
    assert "using the default index" in out


def test_gpu_uses_the_default_index_without_probing(tmp_path):
    pip, _, log = _run(tmp_path, gpu=True, FAKE_REACHABLE_RC="0")
    assert pip == ["-m pip -q --disable-pip-version-check install torch==2.13.0"]
    assert "\n- " not in "\n" + log  # no reachability check


def test_overrides(tmp_path):
    pip, _, _ = _run(tmp_path, MEDLIB_TORCH="torch==2.12.1", MEDLIB_TORCH_INDEX="", FAKE_REACHABLE_RC="0")
    assert pip == ["-m pip -q --disable-pip-version-check install torch==2.12.1"]
    other = tmp_path / "other"
    other.mkdir()
    pip, _, _ = _run(other, MEDLIB_TORCH_INDEX="http://mirror.example/whl", FAKE_REACHABLE_RC="0")
    assert "--index-url http://mirror.example/whl torch==2.13.0" in pip[0]
