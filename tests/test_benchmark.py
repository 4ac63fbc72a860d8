"""benchmarks/train_speed.py runs in a tiny mode and records both recipes (no timing assertions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medlib.engine.hardware import find_tcmalloc

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_tiny_run(real_data, tmp_path):
    out = tmp_path / "speed.json"
    cmd = [
        sys.executable,
        "benchmarks/train_speed.py",
        "--cpu-quick",
        "--models",
        "resnet18,densenet3d",
        "--batches",
        "1",
        "--repeats",
        "1",
        "--batch-size",
        "8",
        "--batch-size-3d",
        "2",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CI": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert {"command", "date", "device", "torch", "python", "results"} <= set(rec)
    assert "train_speed.py" in rec["command"] and rec["device"].startswith("cpu")
    assert [row["model"] for row in rec["results"]] == ["resnet18", "densenet3d"]
    for row in rec["results"]:
        assert row["official"]["images_per_s"] > 0 and row["medlib"]["images_per_s"] > 0 and row["ratio"] > 0
        assert row["official"]["images"] == row["medlib"]["images"]
    assert "ratio" in r.stdout


def test_benchmark_bad_flag_is_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "benchmarks/train_speed.py", "--batches", "0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2 and "--batches must be at least 1" in r.stderr and "Traceback" not in r.stderr


def host_has(flag: str) -> bool:
    try:
        return f" {flag}" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_cpu3d_quick_records_every_measure(real_data, tmp_path):
    out = tmp_path / "cpu3d.json"
    cmd = [
        sys.executable,
        "benchmarks/cpu3d.py",
        "--quick",
        "--cases",
        "baseline3d@28",
        "--modes",
        "before,fp32",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CI": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    before, tuned = rec["results"]
    assert (before["mode"], before["allocator"], before["channels_last"]) == ("before", "system default", False)
    assert tuned["allocator"].startswith("glibc") and tuned["channels_last"] and tuned["precision"] == "fp32"
    for row in rec["results"]:
        assert row["per_s"] > 0 and row["peak_rss_gb"] > 0 and row["sys_over_user"] >= 0
        assert row["sgemm_gflops"] > 0 and row["capability"] == rec["machine"]["cpu_capability"]
        assert row["fraction_of_sgemm"] == pytest.approx(row["gflops"] / row["sgemm_gflops"], abs=0.01)
    m = rec["machine"]
    assert m["native_bf16"] in (True, False) and m["isa"] == "native" and m["onednn_isa"]
    assert "cpu3d.py" in rec["command"]


@pytest.mark.skipif(not find_tcmalloc(), reason="no tcmalloc installed")
def test_tcmalloc_mode_runs_preloaded_and_before_computes_every_tap(real_data, tmp_path):
    out = tmp_path / "cpu2d.json"
    cmd = [
        sys.executable,
        "benchmarks/cpu2d.py",
        "--quick",
        "--samples",
        "16",
        "--modes",
        "before,fp32",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    before, fp32 = json.loads(out.read_text())["results"]
    assert before["gflop_per_sample"] > fp32["gflop_per_sample"]  # the padding taps of layer4's 1x1 maps
    assert (before["channels_last"], fp32["channels_last"]) == (False, True)
    out3 = tmp_path / "cpu3d.json"
    cmd = [sys.executable, "benchmarks/cpu3d.py", "--quick", "--cases", "baseline3d@28", "--modes", "tcmalloc"]
    r = subprocess.run([*cmd, "--out", str(out3)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(out3.read_text())["results"][0]["allocator"] == "tcmalloc (LD_PRELOAD)"


@pytest.mark.skipif(not host_has("avx512f"), reason="capping at AVX2 is checked on an AVX-512 CPU")
def test_cpu2d_isa_cap_takes_effect_and_appends(real_data, tmp_path):
    out = tmp_path / "cpu2d.json"
    base = [sys.executable, "benchmarks/cpu2d.py", "--quick", "--isa", "avx2", "--samples", "16", "--out", str(out)]
    for extra in (["--modes", "fp32"], ["--modes", "contiguous", "--append", "--load", "1", "--threads", "1"]):
        r = subprocess.run(base + extra, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    m = rec["machine"]
    assert m["cpu_capability"] == "AVX2" and "avx2" in m["onednn_isa"] and m["native_bf16"] is False
    assert m["isa_label"] == "AVX2 (ISA capped on an AVX-512 CPU)"
    assert [r["mode"] for r in rec["results"]] == ["fp32", "contiguous", "fp32"]
    assert all(r["capability"] == "AVX2" and r["mkl_instructions"] == "AVX2" for r in rec["results"])
    loaded = rec["results"][-1]
    assert loaded["competing_processes"] == 1 and loaded["threads"] == 1


def test_readme_benchmark_tables_are_the_committed_json():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import cpu2d
    import cpu3d

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, unit in ((cpu3d.NAME, cpu3d.UNIT), (cpu2d.NAME, cpu2d.UNIT)):
        files = cpu3d.result_files(name)
        assert {f.stem for f in files} >= {f"{name}-native", f"{name}-avx2"}  # one row set per capability
        assert cpu3d.readme_block(name, unit) in readme


def test_readme_densenet_ceiling_sentence_is_the_committed_avx2_row():
    """The README says DenseNet-3D's conv-only ceiling on AVX2 is under 60 % and that the measured fraction is
    below the issue's 50 %: both read from the committed AVX2 JSON's rows (every timed fp32 mode)."""
    rec = json.loads((ROOT / "benchmarks" / "results" / "cpu3d-avx2.json").read_text())
    rows = [r for r in rec["results"] if r["case"] == "densenet3d@32" and r["mode"] in ("plain", "fp32", "tcmalloc")]
    assert rows and all(r["conv_only_fraction"] < 0.60 for r in rows)
    assert all(r["fraction_of_sgemm"] < 0.50 for r in rows)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "ceiling, in\nthe table below, is under 60 %" in readme


def test_readme_kernel_sentence_is_the_committed_native_rows():
    """The notebook-kernel paragraph's two peak-RSS figures are the native JSON's tcmalloc and fp32 rows."""
    import re

    rec = json.loads((ROOT / "benchmarks" / "results" / "cpu3d-native.json").read_text())
    peak = {
        r["mode"]: r["peak_rss_gb"] for r in rec["results"] if r["case"] == "densenet3d@32" and not r.get("batch_row")
    }
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"peaked at ([\d.]+) GiB instead of glibc's ([\d.]+) \(fp32,\s+AVX-512", readme)
    assert m, "the kernel paragraph's sentence moved"
    assert (float(m[1]), float(m[2])) == (peak["tcmalloc"], peak["fp32"])
