"""Grids of runs (datasets x models x seeds x any field), their records as one table, and mean ± std over seeds."""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import torch

from .. import atomic
from ..config import TrainConfig, check_fields, make_config
from ..engine.runs import Run, runs_root
from ..engine.training import fit
from ..errors import MedlibError
from ..flags import add_config_flags, config_from_args
from ..results import CONFIG_COLUMNS, METRICS, aggregate, fmt, records, select

# Fields that never split a summary group: seeds are what we average over; the rest do not change results.
NOT_GROUPED = ("seed", "device", "eval_batch_size")


def grid_configs(grid: dict[str, list], base: TrainConfig) -> list[TrainConfig]:
    """Every combination of the grid's values over `base`, validated, duplicates dropped, in grid order."""
    check_fields(grid)
    for k, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise MedlibError(f"The sweep grid's {k!r} must be a non-empty list of values, not {values!r}.")
    keys = list(grid)
    configs = {}
    for combo in itertools.product(*grid.values()):
        cfg = make_config(**{**asdict(base), **dict(zip(keys, combo))})  # canonical names, validated
        configs.setdefault(cfg.key(), cfg)
    return list(configs.values())


def _fit_one(config: dict, out, threads: int) -> str:
    """Worker: one run with progress off; returns its folder."""
    if threads:
        torch.set_num_threads(threads)
    return str(fit(TrainConfig(**config), out=out, progress=False, verbose=False).dir)


def sweep(
    grid: dict[str, list], base: TrainConfig | None = None, out=None, parallel: int = 1, verbose: bool = True
) -> pd.DataFrame:
    """Run the cartesian grid through `fit` (complete runs are reused); one row per run, as `collect` gives.

    parallel > 1 trains that many runs at once in spawned processes (on CUDA they share the device,
    which fills it when the sets are small; on CPU the cores are split between them).
    """
    if parallel < 1:
        raise MedlibError(f"--parallel must be at least 1, not {parallel}.")
    configs = grid_configs(grid, base or TrainConfig())
    out = str(runs_root(out))
    if parallel == 1:
        for i, cfg in enumerate(configs, 1):
            _report(verbose, i, len(configs), _fit_one(asdict(cfg), out, 0))
    else:
        threads = max(1, torch.get_num_threads() // parallel)
        with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("spawn")) as pool:
            jobs = [pool.submit(_fit_one, asdict(cfg), out, threads) for cfg in configs]
            try:
                for i, job in enumerate(as_completed(jobs), 1):
                    _report(verbose, i, len(configs), job.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # one failed run stops the runs not yet started
                raise
    df = collect(out)
    return df[df["key"].isin([c.key() for c in configs])].reset_index(drop=True)


def _report(verbose: bool, i: int, n: int, folder: str) -> None:
    if verbose:
        r = Run(Path(folder))
        split = "test" if "test" in r.metrics else "val"
        m = r.metrics[split]
        print(f"[{i}/{n}] {r.dir.name}: {split} AUC {m['auc']:.3f} ACC {m['acc']:.3f}", flush=True)


def collect(out=None, **where) -> pd.DataFrame:
    """One row per complete run under `out` whose config matches `where`: `results.records` + `results.select`."""
    check_fields(where)
    return select(records(runs_root(out)), **where)


def group_columns(df: pd.DataFrame) -> list[str]:
    """dataset and model, plus every other config field that varies across `df` (never the seed)."""
    varying = [c for c in CONFIG_COLUMNS if c not in ("dataset", "model", *NOT_GROUPED) and df[c].nunique() > 1]
    return ["dataset", "model", *varying]


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """results.aggregate over seeds, per group: n, then mean and std (ddof=1) of each metric and the wall time."""
    if df.empty:
        return pd.DataFrame(columns=["dataset", "model", "n"])
    by = group_columns(df)
    agg = aggregate(df, by, [*METRICS, "wall_time_s"])
    return agg[[*by, "n", *[c for c in agg.columns if c.endswith(("_mean", "_std"))]]]


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as text, each metric as mean ± std (results.fmt)."""
    if summary.empty:
        return "(no complete runs)"
    shown = summary[[c for c in summary.columns if not c.endswith(("_mean", "_std"))]].copy()
    for v in [*METRICS, "wall_time_s"]:
        shown[v] = [
            fmt(m, s, 2, 1 if v == "wall_time_s" else 3) for m, s in zip(summary[f"{v}_mean"], summary[f"{v}_std"])
        ]
    return shown.to_string(index=False)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_sweep(args) -> None:
    base = config_from_args(args)
    try:
        seeds = [int(s) for s in _names(args.seeds)] if args.seeds else [base.seed]
    except ValueError:
        raise MedlibError(f"--seeds {args.seeds!r} must be whole numbers separated by commas, e.g. 0,1,2.") from None
    grid = {
        "dataset": _names(args.datasets) if args.datasets else [base.dataset],
        "model": _names(args.models) if args.models else [base.model],
        "seed": seeds,
    }
    df = sweep(grid, base, out=args.out, parallel=args.parallel)
    summary = summarize(df)
    root = runs_root(args.out)
    atomic.write_text(root / "summary.csv", summary.to_csv(index=False))
    atomic.write_text(root / "sweep_runs.csv", df.to_csv(index=False))
    print(format_summary(summary))
    print(f"wrote {root / 'summary.csv'}")


def add_command(sub) -> None:
    """`python -m medlib sweep`: the grid from --datasets/--models/--seeds over any config flags."""
    p = sub.add_parser("sweep", help="train a grid (datasets x models x seeds); print and save mean ± std over seeds")
    p.add_argument("--datasets", default=None, help="comma-separated datasets (default: --dataset)")
    p.add_argument("--models", default=None, help="comma-separated models (default: --model)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2 (default: --seed)")
    p.add_argument("--parallel", type=int, default=1, help="runs trained at once, each in its own process")
    add_config_flags(p)
    p.add_argument("--out", default=None, help="runs folder (default $MEDLIB_RUNS or ./runs); summary.csv goes here")
    p.set_defaults(func=cmd_sweep)
