"""Run records as one DataFrame, labelled by the plans that name them, and the one aggregate over them.

One reader (`records`, or `frame` for Run objects), one selector (`select`, by plan study and config fields),
one aggregate (`aggregate`, mean ± std with ddof=1), one formatter (`fmt`) and one pooled out-of-fold AUC
(`pooled`). It sits beside `plans` because a record's study and label come from them; `medlib.results`
re-exports it with ensembles, provenance lines and the README markers, and the report builds on that.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..engine.runs import Run, runs_root
from ..errors import MedlibError
from ..metrics import evaluate
from .plans import PLANS

CONFIG_COLUMNS = [f.name for f in fields(TrainConfig)]
METRICS = [f"{s}_{m}" for s in ("train", "val", "test") for m in ("auc", "acc")]
EMPTY = "–"
DEFAULT_RESULTS = "results"


def results_root(out=None) -> Path:
    """`out`, else $MEDLIB_RESULTS, else ./results (the committed records)."""
    return Path(out or os.environ.get("MEDLIB_RESULTS") or DEFAULT_RESULTS)


@lru_cache(maxsize=1)
def plan_labels() -> dict[str, str]:
    """config key -> label ('report1/breastmnist/resnet18/s0') for every run of every named plan."""
    labels = {}
    for name in ("cpu", "gpu", "quick"):
        for label, cfg in PLANS[name]():
            labels.setdefault(cfg.key(), label)
    return labels


@lru_cache(maxsize=1)
def study_keys() -> dict[str, frozenset]:
    """study -> the config keys of every plan entry in it. A run can serve several studies (Report 2's baseline
    at lr 2e-3, batch 30 is also the middle of the learning-rate x batch-size grid), so studies select by key."""
    keys: dict[str, set] = {}
    for name in ("cpu", "gpu", "quick"):
        for label, cfg in PLANS[name]():
            keys.setdefault(label.split("/")[0], set()).add(cfg.key())
    return {k: frozenset(v) for k, v in keys.items()}


def study_rows(df: pd.DataFrame, studies) -> pd.DataFrame:
    """The records that belong to any of `studies` (each run once)."""
    keys = frozenset().union(*(study_keys().get(s, frozenset()) for s in studies))
    return df[df["key"].isin(keys)].reset_index(drop=True) if "key" in df else df.iloc[0:0]


def _row(run: Run, rec: dict) -> dict:
    m = rec.get("metrics", {})
    label = plan_labels().get(rec.get("key", ""), "")  # records made outside a plan have no label
    v = rec.get("versions", {})
    return {
        "dir": str(run.dir),
        "study": label.split("/")[0] if label else "",
        "label": label,
        **rec["config"],
        **{f"{s}_{k}": m.get(s, {}).get(k, math.nan) for s in ("train", "val", "test") for k in ("auc", "acc")},
        "best_epoch": rec.get("best_epoch"),
        "seconds_per_epoch": rec.get("seconds_per_epoch"),
        "wall_time_s": rec.get("wall_time_s"),
        "device_name": rec.get("device"),
        "precision": rec.get("precision", "fp32"),
        "started": rec.get("started"),
        "finished": rec.get("finished"),
        "data_md5": (rec.get("data") or {}).get("md5"),
        "task": (rec.get("data") or {}).get("task"),
        "torch": v.get("torch"),
        "medlib": v.get("medlib"),
        "world_size": rec.get("world_size", 1),
        "key": rec.get("key", ""),
    }


def records(*folders, complete_only: bool = True) -> pd.DataFrame:
    """One row per run folder found directly under `folders` (default: results/ and runs/): config, metrics, provenance.

    `study` and `label` name the plan entry a run belongs to (empty for runs outside every plan).
    """
    roots = [Path(f) for f in folders] or [results_root(), runs_root()]
    rows, seen = [], set()
    for root in roots:
        for path in sorted(root.glob("*/run.json")):
            run = Run(path.parent)
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written by a live run
            if (complete_only and rec.get("status") != "complete") or path.parent.resolve() in seen:
                continue
            seen.add(path.parent.resolve())
            rows.append(_row(run, rec))
    cols = ["dir", "study", "label", *CONFIG_COLUMNS, *METRICS]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def select(df: pd.DataFrame, study: str | None = None, **where) -> pd.DataFrame:
    """Rows of one study (by plan key, see study_keys) whose config fields equal `where` (a value or a list)."""
    out = df if study is None else study_rows(df, [study])
    for k, v in where.items():
        if k not in out.columns:
            raise MedlibError(f"No column {k!r} in the records; known: {', '.join(out.columns)}.")
        out = out[out[k].isin(v) if isinstance(v, (list, tuple, set)) else out[k] == v]
    return out.reset_index(drop=True)


def runs(df: pd.DataFrame) -> list[Run]:
    """The Run folders behind some rows (for per-sample scores and histories)."""
    return [Run(Path(d)) for d in df["dir"]]


def frame(items) -> pd.DataFrame:
    """Records from a DataFrame (returned as is) or from Run objects (read into rows)."""
    if isinstance(items, pd.DataFrame):
        return items
    return pd.DataFrame([_row(r, r.record) for r in {r.dir: r for r in items}.values()])


# ---------------------------------------------------------------- the one aggregate and formatter


def mean_std(values) -> dict:
    """{'mean', 'std' (ddof=1; nan for one value), 'n'} of the finite values."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return {
        "mean": float(v.mean()) if len(v) else math.nan,
        "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
        "n": len(v),
    }


def aggregate(items, by: Iterable[str], values: Iterable[str] = tuple(METRICS)) -> pd.DataFrame:
    """Per group of `by`: mean, std (ddof=1) and n of each value over the runs in it (seeds, folds)."""
    df, by = frame(items), list(by)
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for v in values:
            s = mean_std(g[v])
            row.update({f"{v}_mean": s["mean"], f"{v}_std": s["std"], f"{v}_n": s["n"]})
        row["n"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)


def fmt(mean, std=math.nan, n: int = 1, digits: int = 3) -> str:
    """'0.912' for one run, '0.912 ± 0.004' for several, '–' for none."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return EMPTY
    if n > 1 and std is not None and not math.isnan(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def fmt_col(agg: pd.DataFrame, value: str, digits: int = 3) -> list[str]:
    return [fmt(m, s, int(n), digits) for m, s, n in zip(agg[f"{value}_mean"], agg[f"{value}_std"], agg[f"{value}_n"])]


# ---------------------------------------------------------------- per-sample scores: pooled out-of-fold AUC


def scores_metrics(df: pd.DataFrame, task: str) -> dict:
    """AUC / ACC of a per-sample scores table (label column(s) + score_k columns)."""
    scores = df[[c for c in df.columns if c.startswith("score_")]].to_numpy()
    labels = df[[c for c in df.columns if c.startswith("label")]].to_numpy()
    return evaluate(labels if labels.shape[1] > 1 else labels[:, 0], scores, task)


def pooled(items, split: str = "test") -> dict:
    """AUC / ACC of all folds' held-out predictions taken together (each sample scored once): out-of-fold."""
    rs = runs(frame(items))
    if not rs:
        return {"auc": math.nan, "acc": math.nan, "n": 0}
    scores = pd.concat([r.scores(split) for r in rs], ignore_index=True)
    return {**scores_metrics(scores, rs[0].record["data"]["task"]), "n": len(scores)}
