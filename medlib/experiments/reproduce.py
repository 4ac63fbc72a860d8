"""`python -m medlib reproduce`: run a named plan into results/, reusing finished runs and resuming cut ones.

A session that is stopped mid-plan loses at most the epoch in progress: every epoch writes last.pt, and
the next `reproduce` resumes it. Time estimates come from finished runs like each one on this device where
there are some, else from counted FLOPs; runs a CPU cannot finish are left out.
"""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

import pandas as pd
import torch

from ..choices import PRECISIONS
from ..config import TrainConfig
from ..engine.cost import CPU_WARN_HOURS, estimate_seconds
from ..engine.device import device_name, resolve_device
from ..engine.hardware import resolve_precision
from ..engine.runs import RunLocked, load_run, load_weights, read_record, run_dir, runs_root, ship_weights
from ..engine.splits import load_for_config, split_sizes
from ..engine.training import fit
from ..errors import MedlibError
from ..plans import PLANS, SHIP_WEIGHTS, plan
from ..progress import tqdm
from ..results import check_record, records, results_root
from ..tta import VIEW_SCORES, write_view_scores

TO_RUN = ("todo", "partial", "failed", "damaged")


def run_status(folder: Path) -> tuple[str, int]:
    """('complete' | 'partial' | 'failed' | 'damaged' | 'todo', epochs done) from a run folder. 'damaged': its run.json
    cannot be read or fails the reader's checks (the tables skip it, with a warning naming it), so it is run again."""
    path = folder / "run.json"
    if not (path.exists() or path.is_symlink()):
        return ("partial", 0) if (folder / "last.pt").exists() else ("todo", 0)
    try:
        record = read_record(path)
        if record.get("status") == "complete":
            return "complete", check_record(folder, record).epochs
        done = record.get("epochs_saved", record.get("epochs_done", 0))
        epochs = TrainConfig(**record["config"]).epochs
    except (MedlibError, TypeError, KeyError, ValueError):
        return "damaged", 0
    if not isinstance(done, int) or isinstance(done, bool) or not 0 <= done <= epochs:
        return "damaged", 0
    return ("failed" if record.get("status") == "failed" else "partial"), done


# what an epoch's cost depends on: finished runs equal on these took about as long per epoch
COST_FIELDS = ("dataset", "size", "model", "stem", "batch_size", "crop", "max_train", "max_eval")


def _cost_key(cfg, precision: str) -> tuple:
    return (*(getattr(cfg, f) for f in COST_FIELDS), precision)


def measured_epoch_seconds(out, device: torch.device) -> dict:
    """cost key -> the fastest seconds per epoch of the finished runs in `out` made on a device like this one
    (same kind, processor and thread count); the fastest, since a run that shared the cores was slowed down."""
    df = records(out) if Path(out).is_dir() else None  # a fresh --out has no records yet
    if df is None or df.empty:
        return {}
    spe = pd.to_numeric(df["seconds_per_epoch"], errors="coerce")
    df = df.assign(seconds_per_epoch=spe)[(df["device_name"] == device_name(device)) & (spe > 0)]
    return df.groupby([*COST_FIELDS, "precision"])["seconds_per_epoch"].min().to_dict()


def schedule(name: str, only: str | None, out, device: torch.device) -> list[dict]:
    """The plan as rows: label, config, folder, status, epochs done, estimated seconds left and what the estimate
    rests on ('measured' by finished runs like it on this device, else 'counted' FLOPs; None off CPU)."""
    rows = []
    patterns = only_patterns(only)
    measured = measured_epoch_seconds(out, device)
    for label, cfg in plan(name):
        if patterns and not any(fnmatch.fnmatch(label, p) for p in patterns):
            continue
        folder = run_dir(cfg, out)
        status, done = run_status(folder)
        try:
            meta, n_train, n_eval = split_sizes(cfg)
        except MedlibError as e:
            rows.append(
                {
                    "label": label,
                    "config": cfg,
                    "folder": folder,
                    "status": "no data",
                    "epochs": f"{done}/{cfg.epochs}",
                    "estimate_s": None,
                    "why": str(e),
                }
            )
            continue
        left = 0 if status == "complete" else max(cfg.epochs - done, 0)
        precision = resolve_precision(cfg.amp, device)
        spe = measured.get(_cost_key(cfg, precision))
        basis = "measured" if spe else "counted"
        est = (
            left * spe
            if spe
            else estimate_seconds(cfg.replace(epochs=max(left, 1)), meta, n_train, n_eval, device, precision)
        )
        est = 0.0 if status == "complete" else est
        slow = est is not None and est > CPU_WARN_HOURS * 3600
        rows.append(
            {
                "label": label,
                "config": cfg,
                "folder": folder,
                "status": "skip (GPU job)" if slow else status,
                "epochs": f"{cfg.epochs - left}/{cfg.epochs}",
                "estimate_s": est,
                "basis": None if est is None or status == "complete" else basis,
            }
        )
    if not rows:
        raise MedlibError(
            f"--only {only!r} matches no run of plan {name!r}; try --dry-run without --only to list them."
        )
    return rows


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """'K/N' (1 <= K <= N) as (K, N); None for no sharding. Anything else is one error naming the option."""
    if shard is None:
        return None
    try:
        k, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise MedlibError(
            f"--shard {shard!r} is not K/N with 1 <= K <= N (e.g. --shard 1/4 for the first of four "
            "processes, each given the same --plan and --only)."
        )
    return k, n


def take_shard(rows: list[dict], shard: tuple[int, int] | None) -> list[dict]:
    """Shard K of N: every N-th row of the plan (after --only, before any status), starting at row K - 1. The
    split depends only on the plan, so N processes given the same --plan and --only never share a run (and each
    run's lock guards against a mistake); done and still-to-do runs are spread alike."""
    if shard is None:
        return rows
    k, n = shard
    return rows[k - 1 :: n]


def only_patterns(only: str | None) -> list[str]:
    """--only's comma-separated label patterns; an empty one is refused (it would select the whole plan)."""
    if only is None:
        return []
    patterns = [p.strip() for p in only.split(",")]
    if not all(patterns):
        raise MedlibError(
            f"--only {only!r} holds an empty pattern, which would select the whole plan; name the runs, "
            "e.g. --only 'report1/breastmnist/*', or leave --only off to run every run of the plan."
        )
    return patterns


def _no_data(rows: list[dict]) -> dict:
    """Each distinct reason a run's data is missing, with how many runs it stops (one line each, not one a run)."""
    reasons: dict = {}
    for r in rows:
        if r["status"] == "no data":
            reasons[r["why"]] = reasons.get(r["why"], 0) + 1
    return reasons


def _minutes(s) -> str:
    return "?" if s is None else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def print_plan(rows: list[dict], name: str, device: torch.device, file=None) -> None:
    width = max(len(r["label"]) for r in rows)
    print(f"plan {name!r} on {device}: {len(rows)} runs", file=file)
    for r in rows:
        print(
            f"  {r['label']:<{width}}  {r['status']:<14} epochs {r['epochs']:<7} {_minutes(r['estimate_s']):>8}"
            + (f"  ({r['basis']})" if r.get("basis") else ""),
            file=file,
        )
    todo = [r for r in rows if r["status"] in TO_RUN]
    total = sum(r["estimate_s"] or 0 for r in todo)
    missing = _no_data(rows)
    for why, n in missing.items():
        print(f"  {n} run(s) without their data: {why}", file=file)
    known = "" if device.type == "cpu" else " (no estimate off CPU: GPU speed is not modelled)"
    print(
        f"{len(todo)} to run, about {_minutes(total)} on this device{known}; "
        f"{sum(r['status'] == 'complete' for r in rows)} complete, "
        f"{sum(r['status'].startswith('skip') for r in rows)} left out as GPU jobs"
        + (f", {sum(missing.values())} without their data" if missing else ""),
        file=file,
    )


def run_one(r: dict, out, device: str, amp: str | None, failures: list, elsewhere: list) -> None:
    """Train one plan row (reused if complete, resumed if cut; a damaged complete record is trained again) and set its
    status; a failure or a run another process holds is noted, not raised, so the plan goes on."""
    t0 = time.perf_counter()
    try:
        cfg = r["config"].replace(device=device, **({"amp": amp} if amp else {}))
        run = fit(cfg, out=out, verbose=False, reuse=r["status"] != "damaged")
        m = run.metrics.get("test") or run.metrics["val"]
        r["status"] = "complete"
        tqdm.write(f"{r['label']}: test AUC {m['auc']:.3f} ACC {m['acc']:.3f} ({_minutes(time.perf_counter() - t0)})")
    except RunLocked:  # another `reproduce` (or `train`) has it: not a failure of this one
        r["status"] = "elsewhere"
        elsewhere.append(r["label"])
    except MedlibError as e:
        r["status"] = "failed"
        failures.append(f"{r['label']}: {e}")
        tqdm.write(f"{r['label']}: failed: {e}")


def report_left(missing: dict, elsewhere: list, failures: list) -> None:
    """After the plan: what was not run and why; raises when some run failed."""
    for why, n in missing.items():
        tqdm.write(f"{n} run(s) not run: {why}")
    if elsewhere:
        tqdm.write(
            f"{len(elsewhere)} run(s) trained by another process at the same time, so not here: "
            f"{', '.join(elsewhere[:5])}{' ...' if len(elsewhere) > 5 else ''}; their records count once "
            "that process finishes (run reproduce again then to check)"
        )
    if failures:
        raise MedlibError(
            f"{len(failures)} run(s) failed (their run.json says why); the others are recorded: "
            + "; ".join(failures[:3])
        )


def reproduce(
    name: str | None = None,
    only: str | None = None,
    out=None,
    dry_run: bool = False,
    device: str = "auto",
    include_slow: bool = False,
    amp: str | None = None,
    shard: str | None = None,
) -> list[dict]:
    """Run (or with dry_run, list) the plan; returns its rows with their final status. `amp` overrides every
    run's precision (an engineering choice: run folders and reuse are unchanged; run.json records it); `shard`
    'K/N' keeps this process to its share (take_shard), e.g. one SLURM array task each."""
    part = parse_shard(shard)
    dev = resolve_device(device)
    name = name or ("gpu" if dev.type == "cuda" else "cpu")
    # the quick plan is a smoke test: its runs never mix with the committed records
    out = Path(out) if out else (runs_root() / "quick-plan" if name == "quick" else results_root())
    rows = take_shard(schedule(name, only, out, dev), part)
    if dry_run:
        print_plan(rows, name, dev)
        return rows
    todo = [r for r in rows if r["status"] in TO_RUN or (include_slow and r["status"].startswith("skip"))]
    missing = _no_data(rows)
    if missing and not todo:
        raise MedlibError(f"nothing to run: {sum(missing.values())} run(s) lack their data. " + " ".join(missing))
    total = sum(r["estimate_s"] or 60 for r in todo)
    failures, elsewhere = [], []  # filled by run_one
    bar = tqdm(
        total=round(total),
        desc=f"reproduce {name}",
        unit="s",
        disable=bool(os.environ.get("CI")),
        bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
    )
    for r in todo:
        bar.set_postfix_str(r["label"])
        run_one(r, out, device, amp, failures, elsewhere)
        bar.update(round(r["estimate_s"] or 60))
    bar.close()
    ship(rows)
    report_left(missing, elsewhere, failures)
    return rows


def ship(rows: list[dict]) -> list[Path]:
    """For the complete runs of SHIP_WEIGHTS: write weights.pt (and its SHA-256 in run.json) where it is missing
    and best.pt is still there, then score each fold model's test cubes under every test-time view once
    (tta.write_view_scores) where not yet done. Returns the folders changed."""
    changed = []
    for r in rows:
        folder = Path(r["folder"])
        if r["status"] != "complete" or not any(fnmatch.fnmatch(r["label"], p) for p in SHIP_WEIGHTS):
            continue
        record = load_run(folder).record
        if "weights" not in record and (folder / "best.pt").is_file():
            w = ship_weights(folder)
            tqdm.write(f"{r['label']}: weights shipped ({w['bytes'] / 1e6:.2f} MB, sha256 {w['sha256'][:12]})")
            record["weights"] = w
            changed.append(folder)
        if "weights" in record and "test" in record["metrics"] and not (folder / VIEW_SCORES).is_file():
            net, cfg, meta = load_weights(folder)
            s = load_for_config(cfg, check=False)["test"]
            write_view_scores(folder, net, cfg, meta, s.X, s.ids, s.y.numpy(), precision=record.get("precision"))
            tqdm.write(f"{r['label']}: test-time views scored ({VIEW_SCORES})")
            changed.append(folder)
    return changed


def add_command(sub) -> None:
    p = sub.add_parser("reproduce", help="run a named plan of reproduction runs into results/ (resumable)")
    p.add_argument("--plan", default=None, choices=sorted(PLANS), help="default: gpu on CUDA, else cpu")
    p.add_argument("--only", default=None, help="comma-separated label patterns, e.g. 'report1/breastmnist/*'")
    p.add_argument("--dry-run", action="store_true", help="list the plan with status and time estimates; train nothing")
    p.add_argument("--out", default=None, help="records folder (default $MEDLIB_RESULTS or ./results)")
    p.add_argument("--device", default="auto")
    p.add_argument("--include-slow", action="store_true", help="also start runs estimated as GPU jobs")
    p.add_argument(
        "--amp",
        default=None,
        choices=PRECISIONS,
        help="precision of every run (default: each run's own, auto); not part of a run's identity",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only shard K of N of the plan (every N-th run), so N processes or machines given the "
        "same --plan and --only share one --out without running any run twice",
    )
    p.set_defaults(func=lambda a: reproduce(a.plan, a.only, a.out, a.dry_run, a.device, a.include_slow, a.amp, a.shard))
