"""3D training speed on this CPU, against its own SGEMM rate, measured in one run.

For each case (model at a cube size, on its real data and recipe) and each mode, a fresh process trains
medlib's real `train_epoch` and reports cubes/s, achieved GFLOP/s (torch's FLOP counter), the fraction of
the SGEMM rate measured in that same process, peak resident memory and system/user CPU time:

    before  glibc's default allocator, contiguous layout, fp32 (medlib 0.1)
    fp32    allocator tuned (engine.hardware.tune_allocator), channels_last_3d, fp32
    auto    as fp32, plus `--amp auto` (bf16 only where the CPU computes it natively)

It also evaluates the whole 1,188-cube AdrenalMNIST3D 64³ train split with the memory-budget batches and
reports that process's peak RSS.

    python benchmarks/cpu3d.py [--out benchmarks/results/cpu3d.json] [--quick] [--cases a,b] [--modes a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# case -> (preset, overrides, samples for the fp32/auto modes, samples for 'before')
CASES = {
    "densenet3d@32": ("report2", {}, 252, 90),
    "baseline3d@28": (
        "official",
        {
            "dataset": "adrenalmnist3d",
            "size": 28,
            "model": "baseline3d",
            "batch_size": 32,
            "flip": True,
            "stem": "small",
        },
        1188,
        1188,
    ),
    "baseline3d@64": (
        "official",
        {
            "dataset": "adrenalmnist3d",
            "size": 64,
            "model": "baseline3d",
            "batch_size": 32,
            "flip": True,
            "stem": "small",
        },
        1188,
        256,
    ),
    "resnet18_3d@28": (
        "official",
        {
            "dataset": "adrenalmnist3d",
            "size": 28,
            "model": "resnet18_3d",
            "batch_size": 32,
            "flip": True,
            "stem": "small",
        },
        64,
        64,
    ),
}
MODES = {
    "before": {"amp": "fp32", "channels_last": "off"},
    "fp32": {"amp": "fp32", "channels_last": "auto"},
    "auto": {"amp": "auto", "channels_last": "auto"},
}


def child_train(case: str, mode: str, samples: int) -> dict:
    """In a fresh process: set up the real run, warm up, time `samples` training cubes."""
    import torch

    from medlib import make_config
    from medlib.engine.cost import flops_per_sample
    from medlib.engine.hardware import allocator_state, sgemm_gflops
    from medlib.engine.loop import train_epoch
    from medlib.engine.splits import load_for_config
    from medlib.engine.training import set_up

    preset, over, _, _ = CASES[case]
    cfg = make_config(preset, **over, **MODES[mode], device="cpu")
    ds = load_for_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        t = set_up(cfg, ds, Path(tmp), resume=False, verbose=False)
    X, y = ds["train"].X, ds["train"].y
    n = min(samples, len(X))
    train_epoch(
        t.net, t.opt, X[: 2 * cfg.batch_size], y[: 2 * cfg.batch_size], cfg, ds.meta, t.device, t.generator, t.how
    )
    sgemm = sgemm_gflops()
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    train_epoch(t.net, t.opt, X[:n], y[:n], cfg, ds.meta, t.device, t.generator, t.how)
    wall, r1 = time.perf_counter() - w0, resource.getrusage(resource.RUSAGE_SELF)
    flops = flops_per_sample(cfg.model, ds.meta.n_channels, ds.meta.n_classes, tuple(X.shape[1:]), cfg.stem)["train"]
    user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    rate = n / wall
    return {
        "case": case,
        "mode": mode,
        "samples": n,
        "batch_size": cfg.batch_size,
        "seconds": round(wall, 2),
        "cubes_per_s": round(rate, 2),
        "gflop_per_cube": round(flops / 1e9, 2),
        "gflops": round(rate * flops / 1e9, 1),
        "sgemm_gflops": round(sgemm, 1),
        "fraction_of_sgemm": round(rate * flops / 1e9 / sgemm, 3),
        "epoch_s": round(len(X) / rate, 1),
        "n_train": len(X),
        "precision": t.how.precision,
        "channels_last": t.how.channels_last,
        "allocator": allocator_state(),
        "peak_rss_gb": round(r1.ru_maxrss / 2**20, 2),
        "sys_over_user": round(sys_ / max(user, 1e-9), 3),
        "threads": torch.get_num_threads(),
    }


def child_eval() -> dict:
    """Evaluate the whole AdrenalMNIST3D 64³ train split with memory-budget batches; report peak RSS."""
    import torch

    from medlib.data import load_medmnist
    from medlib.engine.hardware import tune_allocator
    from medlib.engine.loop import predict
    from medlib.models import build_model

    tune_allocator()
    s = load_medmnist("adrenalmnist3d", 64)["train"]
    net = build_model("baseline3d", 1, 2)
    t = time.perf_counter()
    probs, _ = predict(net, s.X, torch.device("cpu"), "binary-class", 0, s.y)
    return {
        "case": "eval adrenalmnist3d@64 train split",
        "samples": len(probs),
        "seconds": round(time.perf_counter() - t, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def run_child(args: list[str], env_extra: dict) -> dict:
    env = {**os.environ, **env_extra}
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"cpu3d: child {' '.join(args)} failed: {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = "| case | mode | precision | cubes/s | GFLOP/s | of SGEMM | epoch s | peak RSS GB | sys/user |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['mode']} | {r['precision']}{' + CL' if r['channels_last'] else ''} | "
            f"{r['cubes_per_s']:.2f} | {r['gflops']:.0f} | {100 * r['fraction_of_sgemm']:.0f}% | "
            f"{r['epoch_s']:.0f} | {r['peak_rss_gb']:.1f} | {r['sys_over_user']:.2f} |"
        )
    return "\n".join(lines)


def readme_text(rec: dict) -> str:
    """The benchmark's table plus its provenance, as it goes into the README."""
    m, v = rec["machine"], rec["versions"]
    lines = [table(rec["results"]), ""]
    ev = rec.get("eval_memory")
    if ev:
        lines += [
            f"Evaluating the {ev['samples']}-cube AdrenalMNIST3D 64³ train split (baseline3d, memory-budget batches): "
            f"{ev['seconds']} s, peak RSS {ev['peak_rss_gb']} GB.",
            "",
        ]
    lines.append(
        f"<sub>{m['processor']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
        f"capability {m['cpu_capability']}, native bf16: {m['native_bf16']}; torch {v['torch']}; "
        f"{rec['date'][:10]}; `{rec['command']}`. CL = channels_last_3d. Each row is a fresh process; "
        "its fraction of SGEMM uses the SGEMM rate measured in that process.</sub>"
    )
    return "\n".join(lines) + "\n"


def write_readme(json_path: str, readme: str) -> int:
    from medlib.results import write_readme as replace

    rec = json.loads(Path(json_path).read_text())
    replace(readme, readme_text(rec), "<!-- cpu3d:begin -->", "<!-- cpu3d:end -->")
    print(f"{readme}: cpu3d table from {json_path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cpu3d.json")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--quick", action="store_true", help="a few batches per case (a smoke test, not a measurement)")
    p.add_argument("--no-eval", action="store_true", help="skip the 64³ evaluation-memory case")
    p.add_argument(
        "--write-readme",
        metavar="README",
        default=None,
        help="put the table of --out (already measured) between this README's cpu3d markers",
    )
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        out = child_eval() if args.child == ["eval"] else child_train(args.child[0], args.child[1], int(args.child[2]))
        print(json.dumps(out))
        return 0
    if args.write_readme:
        return write_readme(args.out, args.write_readme)
    cases, modes = args.cases.split(","), args.modes.split(",")
    bad = [c for c in cases if c not in CASES] + [m for m in modes if m not in MODES]
    if bad:
        print(
            f"cpu3d: unknown case/mode {', '.join(bad)}; cases: {', '.join(CASES)}; modes: {', '.join(MODES)}",
            file=sys.stderr,
        )
        return 2
    rows = []
    for case in cases:
        for mode in modes:
            _, _, n_after, n_before = CASES[case]
            n = 64 if args.quick else (n_before if mode == "before" else n_after)
            env = {"MEDLIB_MALLOC": "system"} if mode == "before" else {}
            rows.append(run_child([case, mode, str(n)], env))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    ev = None if args.no_eval or args.quick else run_child(["eval"], {})
    import torch

    from medlib.engine.device import versions
    from medlib.engine.hardware import cpu_has_native_bf16

    rec = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_native_bf16(),
        },
        "versions": versions(),
        "results": rows,
        "eval_memory": ev,
        "note": "each row is a fresh process; its fraction of SGEMM uses the SGEMM rate measured in that process",
    }
    from medlib import atomic

    atomic.write_json(args.out, rec)
    print("\n" + table(rows))
    if ev:
        print(f"\n{ev['case']}: {ev['samples']} cubes in {ev['seconds']} s, peak RSS {ev['peak_rss_gb']} GB")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
