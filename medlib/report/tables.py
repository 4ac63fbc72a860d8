"""Tables from run folders, laid out as Report 1 printed them and set beside Report 1's and the official numbers.

Every function takes run folders (`Run` objects from `fit` / `find_runs`) and returns a `StyledTable`: a
pandas Styler with a fixed id and a plain-text repr, so the same numbers give the same output on every
machine (nbval compares notebook outputs as text). Several runs that differ only in seed (or fold) are
shown as mean ± standard deviation (ddof=1) with n beside it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from .. import results
from ..results import fmt
from . import reference
from .reference import REPORT1_DATASETS, ROWS

# A medlib number is coloured against Report 1's when it differs by at least this much (AUC/ACC points).
MARGIN = 0.01
GOOD, BAD, MUTED = "background-color: #d8f0d8", "background-color: #f6d5d5", "color: #999"
EMPTY = "–"


def number(x, digits: int = 3) -> str:
    """A float as people write it: `digits` decimals (more below 1, keeping `digits` significant ones), without
    trailing zeros: 0.2, -16.2, 0.877, 0.000123, 15. NaN is shown as an en dash."""
    x = float(x)
    if not math.isfinite(x):
        return EMPTY if math.isnan(x) else str(x)
    a = abs(x)
    decimals = digits if a >= 1 or a == 0 else max(digits, digits - 1 - math.floor(math.log10(a)))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _cell(value, digits: int) -> str:
    """Floats through `number`; everything else as pandas would show it."""
    if isinstance(value, (float, np.floating)):
        return number(value, digits)
    return str(value)


class StyledTable(Styler):
    """A Styler whose HTML and text are reproducible: a fixed table id instead of a random one, and a
    plain-text repr of the shown values instead of `<Styler at 0x...>`. Floats show `precision` decimals
    without trailing zeros (see `number`), not pandas' six."""

    def __init__(self, data: pd.DataFrame, name: str = "table", precision: int = 3, **kw):
        super().__init__(data, uuid=name.replace(" ", "_"), cell_ids=False, **kw)
        self.format(lambda v: _cell(v, precision))
        self.set_table_styles([{"selector": "th", "props": "text-align: center;"}], overwrite=False)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            text = self.data.to_string(na_rep=EMPTY, index=not all(getattr(self, "hide_index_", [False])))
        if not self.caption:
            return text
        caption = re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", self.caption))  # the HTML caption as plain text
        return f"{caption}\n{text}"


# ---------------------------------------------------------------- run folders as long tables

def unique(runs: Iterable) -> list:
    """The runs in order, each folder once (a notebook may pass the same run in two lists)."""
    return list({run.dir: run for run in runs}.values())


def aggregate(runs: Iterable, by: list[str]) -> pd.DataFrame:
    """results.aggregate in long form: mean, std and n per (by..., split, metric) over seeds or folds."""
    by = list(by)
    rows = []
    for _, a in results.aggregate(runs, by).iterrows():
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


def _describe(runs: list) -> str:
    """'2 epochs, 512 training images, 1 seed' from the runs' configs."""
    cfgs = pd.DataFrame([r.record["config"] for r in runs])
    epochs = sorted(cfgs["epochs"].unique())
    sub = sorted(cfgs["max_train"].unique())
    seeds = cfgs.groupby(["dataset", "model"])["seed"].nunique().max()
    ep = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
    train = "all training images" if sub == [0] else f"≤ {max(sub)} training images"
    return f"{ep} epochs, {train}, {seeds} seed{'s' if seeds > 1 else ''} per cell"


# ---------------------------------------------------------------- Report 1's layout

def report_layout(runs: Iterable, model: str = "resnet18") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Report 1's table for one model from run folders: (mean, std, n), rows trainAUC..testACC, columns datasets."""
    runs = [r for r in runs if r.record["config"]["model"] == model]
    if not runs:
        raise ValueError(f"No complete {model} runs among those given.")
    agg = aggregate(runs, ["dataset"])
    agg["row"] = agg["split"] + agg["metric"]
    out = []
    for col in ("mean", "std", "n"):
        t = agg.pivot(index="row", columns="dataset", values=col).reindex(ROWS)
        out.append(t[_order(t.columns)].rename_axis(index=None, columns=None))
    return tuple(out)


def compare(runs: Iterable, model: str = "resnet18", official_size: int | None = None) -> StyledTable:
    """Report 1's table for `model` with, per dataset, three columns: medlib (these runs), Report 1, official.

    medlib cells are green where they beat Report 1 by at least MARGIN, red where they trail it by as much.
    'official' is MedMNIST v2's benchmark for the same ResNet at 28 (or 224) px; it reports test numbers only.
    """
    runs = list(runs)
    mean, std, n = report_layout(runs, model)
    size = official_size or int(pd.Series([r.record["config"]["size"] for r in runs]).mode()[0])
    size = 224 if size >= 224 else 28
    r1 = reference.report1_table(model)
    off = reference.official_scores(model, size)
    cols, shown, medlib_css = [], {}, {}
    for d in mean.columns:
        ours = [fmt(mean.at[r, d], std.at[r, d], int(n.at[r, d]) if not pd.isna(n.at[r, d]) else 0) for r in ROWS]
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
    st.set_caption(f"{model}: medlib ({_describe([r for r in runs if r.record['config']['model'] == model])}) "
                   f"beside Report 1 and the official MedMNIST v2 benchmark")
    return st


def r18_vs_r50(runs: Iterable, split: str = "test", metric: str = "AUC") -> StyledTable:
    """One row per dataset: ResNet-18 and ResNet-50 side by side for medlib, Report 1 and the benchmark.
    The better of each pair is in bold."""
    runs = list(runs)
    agg = aggregate(runs, ["dataset", "model"])
    agg = agg[(agg["split"] == split) & (agg["metric"] == metric)]
    datasets = _order(agg["dataset"])
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


# ---------------------------------------------------------------- cross-validation, ensembles (Report 2)

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
        rows.append({**dict(zip(by, key)), f"{split} AUC": fmt(m.at["AUC", "mean"], m.at["AUC", "std"], int(m.at["AUC", "n"])),
                     f"{split} ACC": fmt(m.at["ACC", "mean"], m.at["ACC", "std"], int(m.at["ACC", "n"])),
                     "runs": int(m.at["AUC", "n"]), "s/epoch": round(float(speed.loc[key if len(key) > 1 else key[0]]), 1)})
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
    from ..ensemble import ensemble_runs

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


# ---------------------------------------------------------------- datasets (notebook 00)

FACT_COLUMNS = ["dataset", "dims", "task", "channels", "classes", "train", "val", "test", "sizes"]


def dataset_facts() -> StyledTable:
    """The 18 MedMNIST sets as the registry knows them (no files needed): task, classes, split sizes, sizes."""
    from ..data.info import info_table

    df = info_table(check_md5=False)
    df = df[df["dataset"] != "m3dv"][FACT_COLUMNS].reset_index(drop=True)
    df.insert(1, "Report 1", ["✓" if d in REPORT1_DATASETS else "" for d in df["dataset"]])
    st = StyledTable(df, name="dataset_facts")
    st.hide(axis="index")
    st.format({c: "{:,}" for c in ("train", "val", "test")})
    st.set_caption("MedMNIST v2: 12 2D and 6 3D sets (✓: one of Report 1's ten)")
    return st


def dataset_status(check_md5: bool = True) -> StyledTable:
    """Which files are present under the data root, their MD5 verdicts, and how to get the others."""
    from ..data.info import info_table

    from ..data import registry

    df = info_table(check_md5=check_md5)[["dataset", "present", "md5"]]

    def how(d: str, p: str) -> str:
        if p != "-":
            return ""
        if d == "m3dv":
            return "the EE369 course data: m3dv/train_val/*.npz + train_val.csv"
        model = " --model resnet18_3d" if registry.is_3d(d) else ""
        return f"python -m medlib train --dataset {d}{model} (downloads {registry.file_name(d)} first)"

    df["how to get"] = [how(d, p) for d, p in zip(df["dataset"], df["present"])]
    st = StyledTable(df.reset_index(drop=True), name="dataset_status")
    st.hide(axis="index")

    def colour(row):
        if "mismatch" in row["md5"]:
            return [BAD] * len(row)
        return [GOOD if row["present"] != "-" else MUTED] * len(row)

    st.apply(colour, axis=1)
    st.set_caption("Files under the data root ($MEDLIB_DATA); MD5 checked against the official values")
    return st


def present(datasets: Iterable[str], size: int = 28) -> list[str]:
    """Those of `datasets` whose file is under the data root (no download)."""
    from ..data import medmnist_path

    return [d for d in datasets if medmnist_path(d, size).exists()]


def style(df: pd.DataFrame, name: str, caption: str | None = None, precision: int = 3) -> StyledTable:
    """Any DataFrame as a reproducible StyledTable (fixed id, plain-text repr)."""
    st = StyledTable(df, name=name, precision=precision)
    if caption:
        st.set_caption(caption)
    return st
