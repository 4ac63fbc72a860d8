"""Report 1's tables from the records (`results.records`, or `results.frame(runs)` for runs trained here): its
layout (rows trainAUC..testACC), beside Report 1 and the official benchmark, and ResNet-18 against ResNet-50.
Several runs that differ only in seed are mean ± std (ddof=1).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .. import results
from ..errors import MedlibError
from ..results import fmt
from . import reference
from .dataset_tables import missing_note
from .reference import REPORT1_DATASETS, ROWS
from .styled import BAD, EMPTY, GOOD, MARGIN, MUTED, StyledTable

# ---------------------------------------------------------------- run folders as long tables

def unique(runs: Iterable) -> list:
    """The runs in order, each folder once (a notebook may pass the same run in two lists)."""
    return list({run.dir: run for run in runs}.values())


def aggregate(rec: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """results.aggregate of the records in long form: mean, std and n per (by..., split, metric) over seeds or folds."""
    by = list(by)
    rows = []
    for _, a in results.aggregate(rec, by).iterrows():
        for split in ("train", "val", "test"):
            for metric in ("auc", "acc"):
                v = f"{split}_{metric}"
                if a[f"{v}_n"]:
                    rows.append({**{b: a[b] for b in by}, "split": split, "metric": metric.upper(),
                                 "mean": a[f"{v}_mean"], "std": a[f"{v}_std"], "n": a[f"{v}_n"]})
    return pd.DataFrame(rows)


def _order(datasets: Iterable[str]) -> list[str]:
    ds = list(dict.fromkeys(datasets))
    return [d for d in REPORT1_DATASETS if d in ds] + sorted(d for d in ds if d not in REPORT1_DATASETS)


def _describe(cfgs: pd.DataFrame) -> str:
    """'2 epochs, 512 training images, 1 seed' from the records' configs."""
    epochs = sorted(cfgs["epochs"].unique())
    sub = sorted(cfgs["max_train"].unique())
    seeds = cfgs.groupby(["dataset", "model"])["seed"].nunique().max()
    ep = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
    train = "all training images" if sub == [0] else f"≤ {max(sub)} training images"
    return f"{ep} epochs, {train}, {seeds} seed{'s' if seeds > 1 else ''} per cell"


# ---------------------------------------------------------------- Report 1's layout

def report_layout(rec: pd.DataFrame, model: str = "resnet18") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Report 1's table for one model from the records: (mean, std, n), rows trainAUC..testACC, columns datasets."""
    rec = rec[rec["model"] == model]
    if rec.empty:
        raise MedlibError(f"No complete {model} runs among those given.")
    agg = aggregate(rec, ["dataset"])
    agg["row"] = agg["split"] + agg["metric"]
    out = []
    for col in ("mean", "std", "n"):
        t = agg.pivot(index="row", columns="dataset", values=col).reindex(ROWS)
        out.append(t[_order(t.columns)].rename_axis(index=None, columns=None))
    return tuple(out)


def compare(rec: pd.DataFrame, model: str = "resnet18", official_size: int | None = None,
            all_sets: bool = True) -> StyledTable:
    """Report 1's table for `model` with, per dataset, three columns: medlib (these records), Report 1, official;
    all ten of Report 1's sets unless all_sets is False (then only those the records cover).

    medlib cells are green where they beat Report 1 by at least MARGIN, red where they trail it by as much.
    'official' is MedMNIST v2's benchmark for the same ResNet at 28 (or 224) px; it reports test numbers only.
    """
    every = REPORT1_DATASETS if all_sets else []  # Report 1's ten column groups, with or without records
    mean, std, n = (t.reindex(columns=_order([*every, *t.columns])) for t in report_layout(rec, model))
    size = official_size or int(rec["size"].mode()[0])
    size = 224 if size >= 224 else 28
    r1 = reference.report1_table(model)
    off = reference.official_scores(model, size)
    cols, shown, medlib_css = [], {}, {}
    for d in mean.columns:
        ours = [fmt(mean.at[r, d], std.at[r, d], int(n.at[r, d])) if not pd.isna(n.at[r, d]) else EMPTY for r in ROWS]
        theirs = r1[d] if d in r1.columns else pd.Series(math.nan, index=ROWS)
        official = [off.at[d, f"test_{r[4:].lower()}"] if r.startswith("test") and d in off.index else math.nan
                    for r in ROWS]
        for src, vals in (("medlib", ours), ("Report 1", [fmt(v) for v in theirs]),
                          (f"official {size}px", [fmt(v) for v in official])):
            cols.append((d, src))
            shown[(d, src)] = vals
        diff = pd.Series(mean[d].to_numpy(float) - theirs.to_numpy(float), index=ROWS)
        medlib_css[(d, "medlib")] = diff.map(lambda x: GOOD if x >= MARGIN else BAD if x <= -MARGIN else "").tolist()
    table = pd.DataFrame(shown, index=ROWS)
    table.columns = pd.MultiIndex.from_tuples(cols)
    css = pd.DataFrame("", index=table.index, columns=table.columns)
    for key, vals in medlib_css.items():
        css[key] = vals
    for key in table.columns:
        if key[1] != "medlib":
            css[key] = MUTED
    st = StyledTable(table, name=f"compare_{model}")
    st.apply(lambda _: css, axis=None)
    absent = [d for d in mean.columns if mean[d].isna().all()]
    st.set_caption(f"{model}: medlib ({_describe(rec[rec['model'] == model])}) "
                   f"beside Report 1 and the official MedMNIST v2 benchmark" + _absent_note(absent))
    return st


def _absent_note(absent: list[str]) -> str:
    """The caption's line for the sets with dashes: why, and the command that fills each."""
    if not absent:
        return ""
    return "<br><small>– no medlib runs: " + "; ".join(f"{d}: {missing_note(d)}" for d in absent) + "</small>"


def r18_vs_r50(rec: pd.DataFrame, split: str = "test", metric: str = "AUC") -> StyledTable:
    """One row per dataset: ResNet-18 and ResNet-50 side by side for medlib (the records), Report 1 and the
    benchmark. The better of each pair is in bold."""
    agg = aggregate(rec, ["dataset", "model"])
    agg = agg[(agg["split"] == split) & (agg["metric"] == metric)]
    datasets = _order([*REPORT1_DATASETS, *agg["dataset"]])
    models = ["resnet18", "resnet50"]
    r1 = reference.report1()
    r1 = r1[(r1["split"] == split) & (r1["metric"] == metric)]
    num, shown = {}, {}
    for m in models:
        a = agg[agg["model"] == m].set_index("dataset")
        num[("medlib", m)] = [a.at[d, "mean"] if d in a.index else math.nan for d in datasets]
        shown[("medlib", m)] = [fmt(a.at[d, "mean"], a.at[d, "std"], int(a.at[d, "n"])) if d in a.index else EMPTY
                                for d in datasets]
    for m in models:
        v = r1[r1["model"] == m].set_index("dataset")["value"]
        num[("Report 1", m)] = [v.get(d, math.nan) for d in datasets]
    if split == "test":
        for m in models:
            o = reference.official_scores(m, 28)[f"test_{metric.lower()}"]
            num[("official 28px", m)] = [o.get(d, math.nan) for d in datasets]
    for key, vals in num.items():
        shown.setdefault(key, [fmt(v) for v in vals])
    table = pd.DataFrame(shown, index=datasets)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    nums = pd.DataFrame(num, index=datasets)
    nums.columns = pd.MultiIndex.from_tuples(nums.columns)
    css = pd.DataFrame("", index=table.index, columns=table.columns)
    for src in dict.fromkeys(k[0] for k in table.columns):
        a, b = nums[(src, "resnet18")], nums[(src, "resnet50")]
        css[(src, "resnet18")] = np.where(a > b, "font-weight: bold", "")
        css[(src, "resnet50")] = np.where(b > a, "font-weight: bold", "")
    st = StyledTable(table, name=f"r18_vs_r50_{split}_{metric}")
    st.apply(lambda _: css, axis=None)
    st.set_caption(f"{split} {metric}: ResNet-18 vs ResNet-50 (bold: the better of the pair)")
    return st
