"""k-fold cross-validation on M3DV: one run per fold, then mean ± std and the pooled out-of-fold AUC."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import evaluate
from .fit import fit


def cross_validate(cfg, out=None, folds: int | None = None, only=None, verbose: bool = False, **fit_kw):
    """Train folds 0..k-1 of `cfg` (or just those in `only`), reusing finished ones; returns (runs, per-fold table)."""
    k = folds or cfg.folds
    runs = [fit(cfg.replace(folds=k, fold=i), out=out, verbose=verbose, **fit_kw) for i in (only or range(k))]
    rows = [{"fold": r.config.fold, **{f"{s}_{m}": r.metrics[s][m] for s in ("val", "test") for m in ("auc", "acc")},
             "best_epoch": r.record["best_epoch"], "seconds_per_epoch": r.record["seconds_per_epoch"]} for r in runs]
    return runs, pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.Series:
    """Mean ± std over folds of every metric column, as 'm ± s' strings."""
    cols = [c for c in table.columns if c.endswith(("_auc", "_acc"))]
    return pd.Series({c: f"{table[c].mean():.3f} ± {table[c].std(ddof=1):.3f}" for c in cols})


def out_of_fold(runs) -> dict:
    """AUC / ACC of all folds' test predictions pooled: every labelled sample predicted exactly once."""
    frames = pd.concat([r.scores("test") for r in runs], ignore_index=True)
    cols = [c for c in frames.columns if c.startswith("score_")]
    task = runs[0].record["data"]["task"]
    return {**evaluate(frames["label"].to_numpy(), frames[cols].to_numpy(), task), "n": len(frames)}


def mean_std(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"
