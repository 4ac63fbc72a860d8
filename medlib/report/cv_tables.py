"""Report 2's tables from run folders: cross-validation (mean ± std over folds) and per-fold ensembles."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .. import results
from ..data.base import Dataset
from ..data.m3dv import kfold_datasets
from ..ensemble import ensemble_runs
from ..results import fmt
from . import reference
from .report1_tables import aggregate, unique
from .styled import EMPTY, StyledTable, style

# ---------------------------------------------------------------- cross-validation, ensembles (Report 2)

def fold_table(ds: Dataset, k: int = 5) -> StyledTable:
    """Samples (positives) per split of each of the k stratified folds `kfold_datasets` cuts from `ds["all"]`."""
    rows = []
    for fold in range(k):
        d = kfold_datasets(ds, k=k, fold=fold)
        counts = {f"{s} (pos)": f"{len(d[s])} ({int(d[s].y.sum())})" for s in ("train", "val", "test")}
        rows.append({"fold": fold, **counts})
    return style(pd.DataFrame(rows).set_index("fold"), f"{ds.meta.name}_folds",
                 f"{ds.meta.name} folds: samples (positives) per split")


def cv_table(runs: Iterable, by: Iterable[str] = ("model", "mixup_alpha"), split: str = "test") -> StyledTable:
    """Mean ± std over folds (and seeds) of `split` AUC and ACC for each combination of `by`; best AUC in bold."""
    runs = list(runs)
    by = list(by)
    agg = aggregate(runs, by)
    agg = agg[agg["split"] == split]
    speed = results.frame(runs).groupby(by, dropna=False)["seconds_per_epoch"].mean()
    rows, best = [], {}
    for key, g in agg.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        m = g.set_index("metric")
        cell = {v: fmt(m.at[v, "mean"], m.at[v, "std"], int(m.at[v, "n"])) for v in ("AUC", "ACC")}
        seconds = float(speed.loc[key if len(key) > 1 else key[0]])
        rows.append({**dict(zip(by, key)), f"{split} AUC": cell["AUC"], f"{split} ACC": cell["ACC"],
                     "runs": int(m.at["AUC", "n"]), "s/epoch": round(seconds, 1)})
        best[len(rows) - 1] = m.at["AUC", "mean"]
    table = pd.DataFrame(rows)
    top = max(best, key=lambda i: -math.inf if math.isnan(best[i]) else best[i])
    st = StyledTable(table, name=f"cv_{'_'.join(by)}_{split}")
    st.apply(lambda r: ["font-weight: bold" if r.name == top else "" for _ in r], axis=1)
    st.hide(axis="index")
    st.set_caption(f"{split} AUC / ACC, mean ± std over folds (Report 2: leaderboard AUC {reference.report2_auc():.3f} "
                   "on its hidden test set, about 0.64 for a 3-conv network)")
    return st


def ensemble_table(runs: Iterable, by: Iterable[str] = ("model", "mixup_alpha"), split: str = "test") -> StyledTable:
    """Per fold: each group's AUC (its runs' probabilities averaged by `medlib.ensemble.ensemble_runs`, e.g. over
    seeds) and the ensemble of every run given.

    Columns are the folds, their mean ± std, and 'pooled': the AUC of all folds' held-out predictions taken
    together (each sample scored by the models that never saw it: an out-of-fold estimate).
    """
    runs = unique(runs)
    by = list(by)
    task = runs[0].record["data"]["task"]
    cfg = pd.DataFrame([{**r.record["config"], "_i": i} for i, r in enumerate(runs)])
    folds = sorted(cfg["fold"].unique())
    groups = [(dict(zip(by, k if isinstance(k, tuple) else (k,))), g["_i"].tolist())
              for k, g in cfg.groupby(by, dropna=False)]
    groups.append(({b: "ensemble of all" if j == 0 else "" for j, b in enumerate(by)}, cfg["_i"].tolist()))
    rows, best = [], []
    for labels, idx in groups:
        per_fold, pooled = {}, []
        for f in folds:
            members = [runs[i] for i in idx if runs[i].record["config"]["fold"] == f]
            if members:
                s = ensemble_runs(members, split)
                per_fold[f] = results.scores_metrics(s, task)["auc"]
                pooled.append(s)
        vals = np.array(list(per_fold.values()), float)
        row = {**labels, **{f"fold {f}": fmt(per_fold.get(f, math.nan)) for f in folds},
               "mean ± std": fmt(vals.mean(), vals.std(ddof=1) if len(vals) > 1 else math.nan, len(vals)),
               "pooled": fmt(results.scores_metrics(pd.concat(pooled), task)["auc"]) if pooled else EMPTY,
               "members": len(idx)}
        rows.append(row)
        best.append(vals.mean())
    table = pd.DataFrame(rows)
    top = int(np.nanargmax(best))
    st = StyledTable(table, name=f"ensemble_{split}")
    st.apply(lambda r: ["font-weight: bold" if r.name == top else "" for _ in r], axis=1)
    st.hide(axis="index")
    st.set_caption(f"{split} AUC per fold: single configurations and the average of all their probabilities")
    return st
