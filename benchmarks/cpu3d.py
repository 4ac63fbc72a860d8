"""Training speed on this CPU against its own SGEMM rate, per instruction set, measured in one run.

For each case (a model on its real data and recipe) and each mode, a fresh process trains medlib's real
`train_epoch` and reports samples/s, achieved GFLOP/s (torch's FLOP counter: the network's own forward +
backward, not what DenseNet3D recomputes), the fraction of the SGEMM rate measured in that same process,
the convolutions' share of a step and the fraction of SGEMM they reach alone (torch.profiler over two more
batches: the ceiling if everything else cost nothing), peak resident memory and system/user CPU time:

    before  glibc's default allocator, contiguous layout, fp32, every convolution tap computed (medlib 0.1)
    plain   as fp32, but DenseNet3D keeps every activation as the plain network did (no recomputation)
    fp32    glibc tuned to keep freed memory (engine.hardware.tune_allocator), channels_last, fp32
    tcmalloc  as fp32 with tcmalloc preloaded (what `python -m medlib train` starts with where it is installed)
    auto    as fp32, plus `--amp auto` (bf16 only where the CPU computes it natively)
    sysmalloc  as fp32 with glibc's default allocator: the least memory, more kernel time

--isa avx2 runs the children with their kernels capped at AVX2 (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
MKL_ENABLE_INSTRUCTIONS), checked in each child: torch's capability, the oneDNN kernel a convolution ran
(ONEDNN_VERBOSE) and the SGEMM rate. --batches adds peak-RSS rows at other batch sizes; --load N --threads
1,2 adds rows trained beside N busy processes, one per thread count. Results go to
benchmarks/results/<name>-<isa>.json, one file per instruction set; --write-readme puts every file's
table between the README's markers.

    python benchmarks/cpu3d.py [--isa native|avx2] [--quick] [--cases a,b] [--modes a,b] [--batches 8,16,64]
        [--load 2 --threads 1,2] [--out FILE] [--write-readme README.md]
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
NAME = "cpu3d"
MARKERS = ("<!-- cpu3d:begin -->", "<!-- cpu3d:end -->")
UNIT = "cubes"
# The instruction-set caps a child runs under; "native" is the machine as it is.
ISA = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
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
    "plain": {"amp": "fp32", "channels_last": "auto"},
    "fp32": {"amp": "fp32", "channels_last": "auto"},
    "auto": {"amp": "auto", "channels_last": "auto"},
    "sysmalloc": {"amp": "fp32", "channels_last": "auto"},
    "tcmalloc": {"amp": "fp32", "channels_last": "auto"},
}
SYSTEM_MALLOC = ("before", "sysmalloc")  # modes run with glibc's default allocator (MEDLIB_MALLOC=system)
TCMALLOC = ("tcmalloc",)  # modes run with tcmalloc preloaded; every other mode with none
DEFAULT_CASES, DEFAULT_MODES = "densenet3d@32", "plain,fp32,auto"


def onednn_isa() -> str:
    """The ISA of the oneDNN kernel a small fp32 convolution runs with in this process's environment."""
    code = (
        "import torch; torch.nn.functional.conv3d(torch.randn(2, 8, 8, 8, 8), torch.randn(16, 8, 3, 3, 3), padding=1)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "ONEDNN_VERBOSE": "1"},
        timeout=120,
    )
    fields = [line.split(",") for line in r.stdout.splitlines() if line.startswith("onednn_verbose,")]
    impls = [f[6] for f in fields if len(f) > 6 and f[3] == "exec" and f[5] == "convolution"]
    return impls[-1] if impls else "unknown"


def isa_label(isa: str, capability: str) -> str:
    if isa == "native":
        return capability
    return f"{isa.upper()} (ISA capped on an {'AVX-512' if 'avx512' in host_flags() else 'other'} CPU)"


def host_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def child_train(case: str, mode: str, samples: int, cases=None, modes=None) -> dict:
    """In a fresh process: set up the real run, warm up, time `samples` training cubes."""
    import torch

    from medlib import make_config
    from medlib.engine.cost import network_flops
    from medlib.engine.hardware import allocator_state, sgemm_gflops
    from medlib.engine.loop import train_epoch
    from medlib.engine.splits import load_for_config
    from medlib.engine.training import set_up

    preset, over, _, _ = (cases or CASES)[case]
    batch = int(os.environ.get("CPU3D_BATCH", "0"))
    sized = {"batch_size": batch} if batch else {}
    cfg = make_config(preset, **over, **(modes or MODES)[mode], device="cpu", **sized)
    ds = load_for_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        t = set_up(cfg, ds, Path(tmp), resume=False, verbose=False)
    for m in t.net.modules():
        if hasattr(m, "memory_efficient"):  # DenseNet3D: 'plain' keeps every activation, as before issue 26
            m.memory_efficient = mode not in ("plain", "before")
        if hasattr(m, "one_position"):  # models.conv: 'before' computes every tap, padding included
            m.one_position = mode != "before"
    X, y = ds["train"].X, ds["train"].y
    n = min(samples, len(X))
    train_epoch(
        t.net, t.opt, X[: 2 * cfg.batch_size], y[: 2 * cfg.batch_size], cfg, ds.meta, t.device, t.generator, t.how
    )
    sgemm = sgemm_gflops()
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    train_epoch(t.net, t.opt, X[:n], y[:n], cfg, ds.meta, t.device, t.generator, t.how)
    wall, r1 = time.perf_counter() - w0, resource.getrusage(resource.RUSAGE_SELF)
    flops = network_flops(t.net, tuple(X.shape[1:]))["train"]  # what this mode's network computes
    k = 2 * cfg.batch_size  # two more batches under torch.profiler: how much of a step the convolutions take
    conv_s, prof_wall = conv_seconds(
        lambda: train_epoch(t.net, t.opt, X[:k], y[:k], cfg, ds.meta, t.device, t.generator, t.how)
    )
    # (on the meta device DenseNet3D runs its plain path: the count is the network's work, not its recomputation)
    user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    rate = n / wall
    return {
        "case": case,
        "mode": mode,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_isa": os.environ.get("CPU3D_ONEDNN_ISA", ""),
        "mkl_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "native"),
        "competing_processes": int(os.environ.get("CPU3D_LOAD", "0")),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),  # other work on the machine while this row ran
        "samples": n,
        "batch_size": cfg.batch_size,
        "seconds": round(wall, 2),
        "per_s": round(rate, 2),
        "gflop_per_sample": round(flops / 1e9, 3),
        "gflops": round(rate * flops / 1e9, 1),
        "sgemm_gflops": round(sgemm, 1),
        "fraction_of_sgemm": round(rate * flops / 1e9 / sgemm, 3),
        "epoch_s": round(len(X) / rate, 1),
        "n_train": len(X),
        "precision": t.how.precision,
        "channels_last": t.how.channels_last,
        "allocator": allocator_state(),
        "conv_share": round(conv_s / prof_wall, 3),
        "conv_only_fraction": round(k * flops / conv_s / 1e9 / sgemm, 3),  # the ceiling if all else were free
        "peak_rss_gb": round(r1.ru_maxrss / 2**20, 2),
        "sys_over_user": round(sys_ / max(user, 1e-9), 3),
        "threads": torch.get_num_threads(),
    }


# The kernels that do a network's multiply-adds: oneDNN's convolutions (forward and backward), the slow
# paths where oneDNN is off, and the matrix products (models.conv's one-position convolutions, the head).
CONV_OPS = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::_slow_conv2d_forward",
    "aten::_slow_conv2d_backward",
    "aten::slow_conv3d_forward",
    "aten::mm",
    "aten::addmm",
)


def conv_seconds(step) -> tuple[float, float]:
    """(seconds inside CONV_OPS, wall seconds) of one call of `step` under torch.profiler. Their ratio is the
    convolutions' share of a step; the rest (BatchNorm, ReLU, copies, the optimiser) is what fusion could save."""
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    wall = time.perf_counter() - t0
    return sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in CONV_OPS) / 1e6, wall


def child_eval() -> dict:
    """Evaluate the whole AdrenalMNIST3D 64³ train split with memory-budget batches; report peak RSS."""
    import torch

    from medlib.data import load_medmnist
    from medlib.engine.hardware import tune_allocator
    from medlib.engine.loop import predict
    from medlib.models import build_model
    from medlib.tasks import BINARY

    tune_allocator()
    s = load_medmnist("adrenalmnist3d", 64)["train"]
    net = build_model("baseline3d", 1, 2)
    t = time.perf_counter()
    probs, _ = predict(net, s.X, torch.device("cpu"), BINARY, y=s.y)
    return {
        "case": "eval adrenalmnist3d@64 train split",
        "samples": len(probs),
        "seconds": round(time.perf_counter() - t, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def allocator_env(mode: str) -> dict:
    """The allocator a mode's child runs with: glibc's defaults, tcmalloc preloaded, or glibc tuned."""
    if mode in SYSTEM_MALLOC:
        return {"MEDLIB_MALLOC": "system", "LD_PRELOAD": ""}
    if mode not in TCMALLOC:
        return {"LD_PRELOAD": ""}
    from medlib.engine.hardware import TCMALLOC_ENV, find_tcmalloc

    library = find_tcmalloc()
    if not library:
        raise SystemExit(f"mode {mode}: no tcmalloc installed (apt install libtcmalloc-minimal4, or conda gperftools)")
    return {"LD_PRELOAD": library, **TCMALLOC_ENV}


def run_child(script: str, args: list[str], env_extra: dict, load: int = 0) -> dict:
    """One measurement in a fresh process; `load` busy processes spin beside it for its whole life."""
    env = {**os.environ, **env_extra}
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        r = subprocess.run(
            [sys.executable, script, "--child", *args], capture_output=True, text=True, env=env, cwd=ROOT
        )
    finally:
        for p in spin:
            p.kill()
            p.wait()
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{Path(script).stem}: child {' '.join(args)} failed: {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def row_mode(r: dict) -> str:
    extra = [f"batch {r['batch_size']}"] if r.get("batch_row") else []
    if r.get("competing_processes"):
        extra.append(f"{r['competing_processes']} busy processes, {r['threads']} thread{'s' * (r['threads'] > 1)}")
    return r["mode"] + (f" ({'; '.join(extra)})" if extra else "")


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def table(rows: list[dict], unit: str = UNIT) -> str:
    head = (
        f"| case | mode | precision | batch | {unit}/s | GFLOP/s | SGEMM GFLOP/s | of SGEMM | conv share | "
        "conv-only ceiling | epoch s | peak RSS GiB | sys/user |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(
            f"| {r['case']} | {row_mode(r)} | {r['precision']}{' + CL' if r['channels_last'] else ''} | "
            f"{r['batch_size']} | {r['per_s']:.2f} | {r['gflops']:.0f} | {r['sgemm_gflops']:.0f} | "
            f"{100 * r['fraction_of_sgemm']:.0f}% | {pct(r.get('conv_share'))} | {pct(r.get('conv_only_fraction'))} | "
            f"{r['epoch_s']:.0f} | {r['peak_rss_gb']:.2f} | "
            f"{r['sys_over_user']:.2f} |"
        )
    return "\n".join(lines)


def ceiling_sentence(rows: list[dict]) -> str:
    """What the convolutions alone allow, from the row that `train` runs (tcmalloc where measured, else fp32)."""
    timed = [
        r for r in rows if r.get("conv_only_fraction") and not r.get("batch_row") and not r.get("competing_processes")
    ]
    for mode in ("tcmalloc", "fp32"):
        for r in (r for r in timed if r["mode"] == mode):
            rest = 1 - r["conv_share"]
            return (
                f"{r['case']}, {mode}: the convolutions take {pct(r['conv_share'])} of a step and reach "
                f"{pct(r['conv_only_fraction'])} of SGEMM by themselves, the ceiling if everything else cost "
                f"nothing; the other {pct(rest)} (BatchNorm, ReLU, copies, sums, the optimiser, the batch's "
                "augmentation) is what fusing them into the convolutions would have to remove."
            )
    return ""


def readme_text(record: dict, unit: str = UNIT) -> str:
    """One capability's table plus its provenance, as it goes into the README."""
    m, v = record["machine"], record["versions"]
    lines = [f"**{m['isa_label']}** (oneDNN kernels: {m['onednn_isa']})", "", table(record["results"], unit), ""]
    ceiling = ceiling_sentence(record["results"])
    if ceiling:
        lines += [ceiling, ""]
    ev = record.get("eval_memory")
    if ev:
        lines += [
            f"Evaluating the {ev['samples']}-cube AdrenalMNIST3D 64³ train split (baseline3d, memory-budget batches): "
            f"{ev['seconds']} s, peak RSS {ev['peak_rss_gb']} GB.",
            "",
        ]
    lines.append(
        f"<sub>{m['processor']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
        f"capability {m['cpu_capability']}, native bf16: {m['native_bf16']}; torch {v['torch']}; "
        f"{record['date'][:10]}; `{record['command']}`. CL = channels_last. Each row is a fresh process; its fraction "
        "of SGEMM uses the SGEMM rate measured in that process.</sub>"
    )
    return "\n".join(lines) + "\n"


def result_files(name: str = NAME) -> list[Path]:
    """benchmarks/results/<name>-<isa>.json, native first."""
    files = sorted((ROOT / "benchmarks" / "results").glob(f"{name}-*.json"))
    return sorted(files, key=lambda f: (not f.stem.endswith("-native"), f.stem))


def readme_block(name: str = NAME, unit: str = UNIT) -> str:
    return "\n".join(readme_text(json.loads(f.read_text()), unit) for f in result_files(name))


def write_readme(readme: str, name: str = NAME, unit: str = UNIT, markers=MARKERS) -> int:
    from medlib.results import write_readme as replace

    replace(readme, readme_block(name, unit), *markers)
    print(f"{readme}: {name} tables from {', '.join(f.name for f in result_files(name))}")
    return 0


def measure(
    script: str,
    name: str,
    cases: dict,
    modes: dict,
    default_cases: str,
    default_modes: str,
    child,
    argv=None,
    unit: str = UNIT,
    markers=MARKERS,
) -> int:
    """The command line shared by cpu3d.py and cpu2d.py."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--isa", default="native", choices=sorted(ISA), help="cap the children's kernels (avx2)")
    p.add_argument("--out", default=None, help=f"default benchmarks/results/{name}-<isa>.json")
    p.add_argument("--cases", default=default_cases)
    p.add_argument("--modes", default=default_modes)
    p.add_argument("--batches", default="", help="peak-RSS rows at these batch sizes (2 batches each)")
    p.add_argument("--batch-mode", default="fp32", help="the mode of the --batches rows (e.g. tcmalloc)")
    p.add_argument("--load", type=int, default=0, help="busy processes beside the --threads rows")
    p.add_argument("--threads", default="", help="with --load: one fp32 row per thread count, e.g. 1,2")
    p.add_argument("--samples", type=int, default=0, help="timed samples per row (default the case's)")
    p.add_argument("--quick", action="store_true", help="a few batches per case (a smoke test, not a measurement)")
    p.add_argument("--append", action="store_true", help="add these rows to --out's (same instruction set)")
    p.add_argument("--eval", action="store_true", help="add the 64³ evaluation-memory case (3D)")
    p.add_argument(
        "--write-readme",
        metavar="README",
        default=None,
        help="put the tables of every committed result file between this README's markers",
    )
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        import medlib  # noqa: F401  (before torch, as in `python -m medlib`: it sets OpenMP's spin-wait first)

        out = child_eval() if args.child == ["eval"] else child(args.child[0], args.child[1], int(args.child[2]))
        print(json.dumps(out))
        return 0
    if args.write_readme:
        return write_readme(args.write_readme, name, unit, markers)
    picked, picked_modes = args.cases.split(","), [m for m in args.modes.split(",") if m]
    bad = [c for c in picked if c not in cases] + [m for m in [*picked_modes, args.batch_mode] if m not in modes]
    if bad:
        print(
            f"{name}: unknown case/mode {', '.join(bad)}; cases: {', '.join(cases)}; modes: {', '.join(modes)}",
            file=sys.stderr,
        )
        return 2
    env_isa = dict(ISA[args.isa])
    os.environ.update(env_isa)  # this process's own record (capability, bf16) sees the same caps
    kernel = onednn_isa()
    env_isa["CPU3D_ONEDNN_ISA"] = kernel
    jobs = []  # (args, env, load, extra fields)
    for case in picked:
        _, _, n_after, n_before = cases[case]
        for mode in picked_modes:
            n = args.samples or (64 if args.quick else (n_before if mode == "before" else n_after))
            jobs.append(([case, mode, str(n)], allocator_env(mode), 0, {}))
        for b in [int(b) for b in args.batches.split(",") if b]:
            env = {**allocator_env(args.batch_mode), "CPU3D_BATCH": str(b)}
            jobs.append(([case, args.batch_mode, str(2 * b)], env, 0, {"batch_row": True}))
        for th in [int(t) for t in args.threads.split(",") if t]:
            n = args.samples or (64 if args.quick else n_before)
            jobs.append(
                ([case, "fp32", str(n)], {"MEDLIB_THREADS": str(th), "CPU3D_LOAD": str(args.load)}, args.load, {})
            )
    out = args.out or str(ROOT / "benchmarks" / "results" / f"{name}-{args.isa}.json")
    old = json.loads(Path(out).read_text()) if args.append and Path(out).exists() else None
    if old and old["machine"]["isa"] != args.isa:
        print(f"{name}: {out} holds --isa {old['machine']['isa']} rows, not {args.isa}", file=sys.stderr)
        return 2
    rows = []
    for child_args, env, load, extra in jobs:
        rows.append({**run_child(script, child_args, {**env_isa, **env}, load), **extra})
        print(table(rows[-1:], unit).splitlines()[-1], flush=True)
    ev = run_child(script, ["eval"], env_isa) if args.eval and not args.quick else None
    import torch

    from medlib.engine.device import versions
    from medlib.engine.hardware import cpu_has_native_bf16

    capability = torch.backends.cpu.get_cpu_capability()
    record = {
        "command": "; ".join(([old["command"]] if old else []) + ["python " + shlex.join(sys.argv)]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cpu_capability": capability,
            "isa": args.isa,
            "isa_label": isa_label(args.isa, capability),
            "isa_env": ISA[args.isa],
            "onednn_isa": kernel,
            "host_avx512": "avx512f" in host_flags(),
            "native_bf16": cpu_has_native_bf16(),
        },
        "versions": versions(),
        "results": (old["results"] if old else []) + rows,
        "eval_memory": ev or (old or {}).get("eval_memory"),
        "note": "each row is a fresh process; its fraction of SGEMM uses the SGEMM rate measured in that process",
    }
    from medlib import atomic

    atomic.write_json(out, record)
    print("\n" + readme_text(record, unit))
    print(f"written {out}")
    return 0


def main(argv=None) -> int:
    return measure(__file__, NAME, CASES, MODES, DEFAULT_CASES, DEFAULT_MODES, child_train, argv)


if __name__ == "__main__":
    sys.exit(main())
