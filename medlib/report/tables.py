"""Every table medlib shows, one function per table: records in (`results.records`, or `results.frame(runs)` for
runs trained here), a DataFrame out, styled last.

* Report 1's layout (`compare`: rows trainAUC..testACC, per set medlib / Report 1 / official; `r18_vs_r50`),
  mean ± std (ddof=1) over the seeds that differ only in seed; styled, for the notebooks.
* The reproduction's study tables (`report1_table` .. `outdo_table`), plain DataFrames: what `python -m medlib
  results` prints and the README holds (`studies` registers them with their titles and provenance), and what
  `reproduction` styles for the notebooks; the sentences read off some of them (`*_reading(s)`).
* The M3DV folds (`fold_table`) and the datasets (`dataset_facts`, `dataset_status`, notebook 00).

Records, aggregates and the formatter come from `medlib.results`; the reports' own numbers from `reference`;
the styling (`StyledTable`, colours) from `styled`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import plans
from ..analysis.diagnose import diagnose
from ..data import registry
from ..data.base import Dataset
from ..data.cubes import kfold_datasets
from ..data.info import info_table
from ..engine.runs import Run
from ..ensemble import average, member_scores, mix
from ..errors import MedlibError
from ..metrics import auc, bootstrap_ci, confusion_matrix, fold_bootstrap_ci
from ..models import build_model, count_parameters
from ..results import (
    EMPTY,
    METRICS,
    aggregate,
    ensemble,
    fmt,
    fmt_col,
    mean_std,
    plan_labels,
    pooled,
    scores_metrics,
    select,
    shipped,
    study_rows,
)
from ..tasks import BINARY, MULTILABEL
from ..tta import VIEW_SCORES, VIEW_SETS, read_view_scores, view_name, views
from . import reference
from .reference import REPORT1_DATASETS, ROWS
from .styled import BAD, GOOD, MARGIN, MUTED, StyledTable, style

# ---------------------------------------------------------------- Report 1's layout, from the records


def aggregate_long(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """results.aggregate of the records in long form: mean, std and n per (by..., split, metric) over seeds or folds."""
    by = list(by)
    rows = []
    for _, a in aggregate(df, by).iterrows():
        for split in ("train", "val", "test"):
            for metric in ("auc", "acc"):
                v = f"{split}_{metric}"
                if a[f"{v}_n"]:
                    rows.append(
                        {
                            **{b: a[b] for b in by},
                            "split": split,
                            "metric": metric.upper(),
                            "mean": a[f"{v}_mean"],
                            "std": a[f"{v}_std"],
                            "n": a[f"{v}_n"],
                        }
                    )
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


def report_layout(df: pd.DataFrame, model: str = "resnet18") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Report 1's table for one model from the records: (mean, std, n), rows trainAUC..testACC, columns datasets."""
    df = df[df["model"] == model]
    if df.empty:
        raise MedlibError(f"No complete {model} runs among those given.")
    agg = aggregate_long(df, ["dataset"])
    agg["row"] = agg["split"] + agg["metric"]
    out = []
    for col in ("mean", "std", "n"):
        t = agg.pivot(index="row", columns="dataset", values=col).reindex(ROWS)
        out.append(t[_order(t.columns)].rename_axis(index=None, columns=None))
    return tuple(out)


def compare(
    df: pd.DataFrame, model: str = "resnet18", official_size: int | None = None, all_sets: bool = True
) -> StyledTable:
    """Report 1's table for `model` with, per dataset, three columns: medlib (these records), Report 1, official;
    all ten of Report 1's sets unless all_sets is False (then only those the records cover).

    medlib cells are green where they beat Report 1 by at least MARGIN, red where they trail it by as much.
    'official' is MedMNIST v2's benchmark for the same ResNet at 28 (or 224) px; it reports test numbers only.
    """
    every = REPORT1_DATASETS if all_sets else []  # Report 1's ten column groups, with or without records
    mean, std, n = (t.reindex(columns=_order([*every, *t.columns])) for t in report_layout(df, model))
    size = official_size or int(df["size"].mode()[0])
    size = 224 if size >= 224 else 28
    r1 = reference.report1_table(model)
    off = reference.official_scores(model, size)
    cols, shown, medlib_css = [], {}, {}
    for d in mean.columns:
        ours = [fmt(mean.at[r, d], std.at[r, d], int(n.at[r, d])) if not pd.isna(n.at[r, d]) else EMPTY for r in ROWS]
        theirs = r1[d] if d in r1.columns else pd.Series(math.nan, index=ROWS)
        official = [
            off.at[d, f"test_{r[4:].lower()}"] if r.startswith("test") and d in off.index else math.nan for r in ROWS
        ]
        for src, vals in (
            ("medlib", ours),
            ("Report 1", [fmt(v) for v in theirs]),
            (f"official {size}px", [fmt(v) for v in official]),
        ):
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
    st.set_caption(
        f"{model}: medlib ({_describe(df[df['model'] == model])}) "
        f"beside Report 1 and the official MedMNIST v2 benchmark" + _absent_note(absent)
    )
    return st


def _absent_note(absent: list[str]) -> str:
    """The caption's line for the sets with dashes: why, and the command that fills each."""
    if not absent:
        return ""
    return "<br><small>– no medlib runs: " + "; ".join(f"{d}: {missing_note(d)}" for d in absent) + "</small>"


def r18_vs_r50(df: pd.DataFrame, split: str = "test", metric: str = "AUC") -> StyledTable:
    """One row per dataset: ResNet-18 and ResNet-50 side by side for medlib (the records), Report 1 and the
    benchmark. The better of each pair is in bold."""
    agg = aggregate_long(df, ["dataset", "model"])
    agg = agg[(agg["split"] == split) & (agg["metric"] == metric)]
    datasets = _order([*REPORT1_DATASETS, *agg["dataset"]])
    models = ["resnet18", "resnet50"]
    r1 = reference.report1()
    r1 = r1[(r1["split"] == split) & (r1["metric"] == metric)]
    num, shown = {}, {}
    for m in models:
        a = agg[agg["model"] == m].set_index("dataset")
        num[("medlib", m)] = [a.at[d, "mean"] if d in a.index else math.nan for d in datasets]
        shown[("medlib", m)] = [
            fmt(a.at[d, "mean"], a.at[d, "std"], int(a.at[d, "n"])) if d in a.index else EMPTY for d in datasets
        ]
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


# ---------------------------------------------------------------- the study tables (README, `medlib results`)


def _ref_cells(dataset: str, model: str) -> dict:
    """Report 1's and the official test AUC / ACC of one network on one set, as table cells."""
    r1 = reference.report1()
    r1 = r1[(r1["dataset"] == dataset) & (r1["model"] == model) & (r1["split"] == "test")]
    refv = r1.set_index("metric")["value"]
    off = reference.official_scores(model, 28)
    official = f"{fmt(off.at[dataset, 'test_auc'])} / {fmt(off.at[dataset, 'test_acc'])}"
    return {
        "Report 1 AUC / ACC": f"{fmt(refv.get('AUC', math.nan))} / {fmt(refv.get('ACC', math.nan))}",
        "official AUC / ACC": official if dataset in off.index else EMPTY,
    }


def report1_table(df: pd.DataFrame, study: str = "report1") -> pd.DataFrame:
    """Test AUC / ACC per dataset and model (mean ± std over seeds) beside Report 1 and the official benchmark:
    always Report 1's ten sets, a dash and the command that fills it where medlib has no records."""
    d = select(df, study)
    agg = aggregate(d, ["dataset", "model"]) if not d.empty else pd.DataFrame(columns=["dataset", "model"])
    found = {(a["dataset"], a["model"]): a for _, a in agg.iterrows()}
    models = ["resnet18", "resnet50"]
    rows = []
    for model in models:
        for ds in reference.REPORT1_DATASETS:
            a = found.get((ds, model))
            note = plans.REPORT1_DEPARTURES.get(ds, "")
            row = {"dataset": reference.report1_name(ds), "model": model, "epochs": plans.report1_epochs(ds)}
            if a is None:
                row |= {"seeds": 0, "test AUC": EMPTY, "test ACC": EMPTY, "val AUC": EMPTY}
                note = "; ".join(x for x in (missing_note(ds, study), note) if x)
            else:
                row |= {
                    "seeds": int(a["n"]),
                    "test AUC": fmt(a["test_auc_mean"], a["test_auc_std"], a["test_auc_n"]),
                    "test ACC": fmt(a["test_acc_mean"], a["test_acc_std"], a["test_acc_n"]),
                    "val AUC": fmt(a["val_auc_mean"], a["val_auc_std"], a["val_auc_n"]),
                }
            rows.append(row | _ref_cells(ds, model) | {"note": note})
    return pd.DataFrame(rows)


def epochs_table() -> pd.DataFrame:
    """The epochs medlib gives each of Report 1's sets under its recipe, the size rule behind them, and where
    medlib departs from the rule (plans.REPORT1_SETS)."""
    rows = []
    for ds in [*reference.REPORT1_DATASETS, *plans.EXTRA_2D_SETS]:
        n = registry.info(ds)["n_samples"]["train"]
        rows.append(
            {
                "dataset": reference.report1_name(ds),
                "training images": f"{n:,}",
                "epochs": plans.report1_epochs(ds),
                "image passes": f"{n * plans.report1_epochs(ds):,}",
                "departure from the rule": plans.REPORT1_DEPARTURES.get(
                    ds, "" if ds in plans.REPORT1_SETS else "not in Report 1"
                ),
            }
        )
    return pd.DataFrame(rows)


def medmnist2d_rows(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([select(df, "medmnist2d"), select(df, "tuned", dataset=list(plans.EXTRA_2D_SETS))])


def medmnist2d_table(df: pd.DataFrame) -> pd.DataFrame:
    """2D sets beyond Report 1's ten (BloodMNIST): Report 1's recipe with both networks and medlib's recipe,
    beside the official ResNets at 28 px."""
    extra = list(plans.EXTRA_2D_SETS)
    d = medmnist2d_rows(df)
    rows = []
    for ds in extra:
        runs_of = {"Report 1's": select(d, "medmnist2d", dataset=ds), "medlib's": select(d, "tuned", dataset=ds)}
        for name, g in runs_of.items():
            models = (
                sorted(g["model"].unique())
                if not g.empty
                else (["resnet18", "resnet50"] if name == "Report 1's" else ["resnet18"])
            )
            for model in models:
                gm = g[g["model"] == model] if not g.empty else g
                row = {"dataset": ds, "recipe": name, "model": model}
                if gm.empty:
                    study = "medmnist2d" if name == "Report 1's" else "tuned"
                    row |= {
                        "epochs": EMPTY,
                        "seeds": 0,
                        "test AUC": EMPTY,
                        "test ACC": EMPTY,
                        "note": missing_note(ds, study),
                    }
                else:
                    a = aggregate(gm, ["dataset"]).iloc[0]
                    row |= {
                        "epochs": int(gm["epochs"].iloc[0]),
                        "seeds": int(a["n"]),
                        "test AUC": fmt(a["test_auc_mean"], a["test_auc_std"], a["test_auc_n"]),
                        "test ACC": fmt(a["test_acc_mean"], a["test_acc_std"], a["test_acc_n"]),
                        "note": "SGD 1e-3, batch 128" if name == "Report 1's" else recipe(gm.iloc[0]),
                    }
                rows.append(row | {"official AUC / ACC": _ref_cells(ds, model)["official AUC / ACC"]})
    return pd.DataFrame(rows)


def loss_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The BCE runs and their cross-entropy twins (Report 1's ResNet-18 runs on the same sets)."""
    bce = select(df, "loss-bce")
    ce = select(df, "report1", model="resnet18", dataset=sorted(bce["dataset"].unique()))
    return pd.concat([ce, bce]) if not bce.empty else bce


def loss_table(df: pd.DataFrame) -> pd.DataFrame:
    """Report 1's BCE-with-logits against cross-entropy, ResNet-18, same recipe and seeds."""
    d = loss_rows(df)
    if d.empty:
        return pd.DataFrame()
    agg = aggregate(d, ["dataset", "loss"])
    return pd.DataFrame(
        {
            "dataset": agg["dataset"],
            "loss": agg["loss"].map({"auto": "cross-entropy", "ce": "cross-entropy", "bce": "BCE-with-logits"}),
            "seeds": agg["n"],
            "test AUC": fmt_col(agg, "test_auc"),
            "test ACC": fmt_col(agg, "test_acc"),
        }
    )


def goal_auc(dataset: str) -> float:
    """The goal of medlib's recipe on a 2D set: the best test AUC of Report 1 and the official ResNets at 28 px."""
    return max(reference.official_best(dataset)[0], reference.report1_best(dataset))


def _short(v: float) -> str:
    return f"{v:.0e}".replace("e-0", "e-") if v < 1e-3 else f"{v:g}"


def recipe(row) -> str:
    """A 2D run's recipe in a few words: '3x3 stem, sgd 0.05 cosine, wd 5e-4, flip, shift 2, bce'."""
    parts = ["3x3 stem"] if row["stem"] == "small" else []
    parts += [f"{row['optimizer']} {row['lr']:g}" + ("" if row["schedule"] == "none" else f" {row['schedule']}")]
    parts += [f"wd {_short(row['weight_decay'])}"] if row["weight_decay"] else []
    parts += ["flip"] if row["flip"] else []
    parts += [f"shift {row['shift']}"] if row["shift"] else []
    parts += [] if row["loss"] == "auto" else [row["loss"]]
    return ", ".join(parts)


def tuned_table(df: pd.DataFrame) -> pd.DataFrame:
    """medlib's CPU recipe against the goal: the best of Report 1 and the official ResNets at 28 px."""
    d = select(df, "tuned")
    if d.empty:
        return pd.DataFrame()
    agg = aggregate(d, ["dataset"])
    return pd.DataFrame(
        {
            "dataset": agg["dataset"],
            "recipe": [recipe(d[d["dataset"] == x].iloc[0]) for x in agg["dataset"]],
            "epochs": [int(d[d["dataset"] == x]["epochs"].iloc[0]) for x in agg["dataset"]],
            "seeds": agg["n"],
            "test AUC": fmt_col(agg, "test_auc"),
            "test ACC": fmt_col(agg, "test_acc"),
            "goal AUC": [goal_auc(x) for x in agg["dataset"]],
            "met": ["yes" if m >= goal_auc(x) else "no" for m, x in zip(agg["test_auc_mean"], agg["dataset"])],
        }
    )


@lru_cache(maxsize=1)
def candidate_names(entries) -> dict[str, str]:
    """config key -> candidate name (a label's second part) for a plan's candidate runs: the recipe search's (its runs
    may also carry a 'tuned' label) or the cross-validated finalists'."""
    return {cfg.key(): plans.parse_label(label).parts[1] for label, cfg in entries}


def _search(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The search's records with their candidate name, and their aggregate per candidate, best validation first
    (None without records)."""
    d = select(df, "search")
    if d.empty:
        return None
    d = d.assign(candidate=d["key"].map(candidate_names(plans.recipe_search())))
    return d, aggregate(d, ["candidate"]).sort_values("val_auc_mean", ascending=False, kind="stable")


def search_table(df: pd.DataFrame) -> pd.DataFrame:
    """BreastMNIST's recipe search: each candidate's validation AUC (what chooses) beside its test AUC (what
    a reader checks), best validation first; the chosen one is the recipe of the goal table."""
    if (found := _search(df)) is None:
        return pd.DataFrame()
    d, agg = found
    chosen = set(select(df, "tuned", dataset="breastmnist")["key"])
    return pd.DataFrame(
        {
            "candidate": agg["candidate"],
            "recipe": [recipe(d[d["candidate"] == c].iloc[0]) for c in agg["candidate"]],
            "seeds": agg["n"],
            "val AUC": fmt_col(agg, "val_auc"),
            "test AUC": fmt_col(agg, "test_auc"),
            "chosen": ["yes" if set(d[d["candidate"] == c]["key"]) & chosen else "" for c in agg["candidate"]],
        }
    ).reset_index(drop=True)


def best_candidate(df: pd.DataFrame) -> str | None:
    """The search candidate with the highest mean validation AUC over complete seed sets (None if none is)."""
    if (found := _search(df)) is None:
        return None
    _, agg = found
    return str(agg[agg["n"] == agg["n"].max()]["candidate"].iloc[0])


def selection_table(df: pd.DataFrame) -> pd.DataFrame:
    """BreastMNIST's finalists ranked by 5-fold cross-validation on the official train + val (mean AUC of the held-out
    folds; the test split is never read), beside the single 78-image validation split's mean over the search's
    seeds; the best cross-validated mean over complete folds is the choice."""
    d = select(df, "select")
    if d.empty:
        return pd.DataFrame()
    d = d.assign(candidate=d["key"].map(candidate_names(plans.breast_selection())))
    agg = aggregate(d, ["candidate"]).sort_values("val_auc_mean", ascending=False, kind="stable")
    full = agg[agg["n"] == plans.CV_FOLDS]
    best = str(full["candidate"].iloc[0]) if len(full) else None
    found = _search(df)
    search_val = {} if found is None else dict(zip(found[1]["candidate"], fmt_col(found[1], "val_auc")))
    return pd.DataFrame(
        {
            "candidate": agg["candidate"],
            "recipe": [recipe(d[d["candidate"] == c].iloc[0]) for c in agg["candidate"]],
            "folds": agg["n"],
            "CV AUC (train + val)": fmt_col(agg, "val_auc"),
            "search val AUC (78 images)": [search_val.get(c, EMPTY) for c in agg["candidate"]],
            "chosen": ["yes" if c == best else "" for c in agg["candidate"]],
        }
    ).reset_index(drop=True)


STEM_NAMES = {"imagenet": "7³/2 + pool", "small": "3³/1"}


def _official_best(dataset: str) -> str:
    try:
        auc, method = reference.official_best(dataset)
    except MedlibError:
        return EMPTY
    return f"{auc:.3f} ({method})"


def medmnist3d_table(df: pd.DataFrame) -> pd.DataFrame:
    d = select(df, "medmnist3d")
    if d.empty:
        return pd.DataFrame()
    d = d.assign(
        model=[f"{m} ({STEM_NAMES[st]} stem)" if m.startswith("resnet") else m for m, st in zip(d["model"], d["stem"])]
    )
    agg = aggregate(d, ["dataset", "size", "model"])
    return pd.DataFrame(
        {
            "dataset": agg["dataset"],
            "size": agg["size"],
            "model": agg["model"],
            "seeds": agg["n"],
            "test AUC": fmt_col(agg, "test_auc"),
            "test ACC": fmt_col(agg, "test_acc"),
            "official best AUC": [_official_best(x) for x in agg["dataset"]],
            "s/epoch": [
                f"{s:.1f}"
                for s in aggregate(d, ["dataset", "size", "model"], ["seconds_per_epoch"])["seconds_per_epoch_mean"]
            ],
        }
    )


def cv_table(df: pd.DataFrame, study: str | None = "report2", by=("model", "mixup_alpha")) -> pd.DataFrame:
    """Per configuration: test AUC / ACC mean ± std over folds, pooled out-of-fold AUC, seconds per epoch
    (study None: the rows given)."""
    d = select(df, study)
    if d.empty:
        return pd.DataFrame()
    by = list(by)
    agg = aggregate(d, by, [*METRICS, "seconds_per_epoch"])
    pooled_auc = [pooled(g)["auc"] for _, g in d.groupby(by, dropna=False, sort=True)]
    out = agg[by].copy()
    out["folds"] = agg["n"]
    out["test AUC"] = fmt_col(agg, "test_auc")
    out["test ACC"] = fmt_col(agg, "test_acc")
    out["pooled AUC"] = [fmt(p) for p in pooled_auc]
    out["s/epoch"] = [f"{s:.1f}" for s in agg["seconds_per_epoch_mean"]]
    return out


def ensemble_table(df: pd.DataFrame, study: str = "report2") -> pd.DataFrame:
    """Per fold, the average of several configurations' probabilities; pooled over folds (out-of-fold AUC)."""
    d = select(df, study)
    if d.empty:
        return pd.DataFrame()
    groups = {f"{m} mixup {a:g}": g for (m, a), g in d.groupby(["model", "mixup_alpha"], sort=True)}
    combos = dict(groups)
    for model, g in d.groupby("model", sort=True):
        if g["mixup_alpha"].nunique() > 1:
            combos[f"{model}, with and without mixup"] = g
    if d["model"].nunique() > 1:
        combos["all configurations"] = d
    rows = []
    for name, g in combos.items():
        per_fold, frames = [], []
        task = g["task"].iloc[0]
        for _, gf in g.groupby("fold"):
            s = ensemble(gf)
            per_fold.append(scores_metrics(s, task)["auc"])
            frames.append(s)
        ms = mean_std(per_fold)
        sizes = g.groupby("fold").size()
        rows.append(
            {
                "ensemble": name,
                "members per fold": f"{sizes.min()}" if sizes.min() == sizes.max() else f"{sizes.min()}–{sizes.max()}",
                "folds": len(per_fold),
                "test AUC (per fold)": fmt(ms["mean"], ms["std"], ms["n"]),
                "pooled AUC": fmt(scores_metrics(pd.concat(frames), task)["auc"]),
            }
        )
    return pd.DataFrame(rows)


def seed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Report 2's recipe on M3DV under every seed recorded (report2 is seed 0; report2-seeds and outdo add more)."""
    d = study_rows(df, ["report2", "report2-seeds", "outdo"])
    if d.empty:
        return d
    d = d[d["dataset"] == "m3dv"].drop_duplicates("key")
    seeds = d.groupby(["model", "mixup_alpha"])["seed"].transform("nunique")
    return d[seeds > 1].reset_index(drop=True)  # the configurations recorded under several seeds


def seed_ensemble_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration with several seeds on every fold: each seed alone and the seeds' average probability,
    per fold (test AUC mean ± std over folds) and pooled over folds (out-of-fold AUC)."""
    d = seed_rows(df)
    rows = []
    for (model, alpha), g in d.groupby(["model", "mixup_alpha"], sort=True):
        seeds = sorted(set.intersection(*(set(gf["seed"]) for _, gf in g.groupby("fold"))))
        if len(seeds) < 2 or g["fold"].nunique() < 2:
            continue
        g = g[g["seed"].isin(seeds)]
        task = g["task"].iloc[0]
        parts = [(f"seed {s}", g[g["seed"] == s]) for s in seeds] + [(f"average of {len(seeds)} seeds", g)]
        for name, members in parts:
            frames = [ensemble(gf) for _, gf in members.groupby("fold")]
            ms = mean_std([scores_metrics(f, task)["auc"] for f in frames])
            rows.append(
                {
                    "model": model,
                    "mixup_alpha": alpha,
                    "members": name,
                    "folds": ms["n"],
                    "test AUC (per fold)": fmt(ms["mean"], ms["std"], ms["n"]),
                    "pooled AUC": fmt(scores_metrics(pd.concat(frames), task)["auc"]),
                }
            )
    return pd.DataFrame(rows)


def flaw_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Report 2's recipe with mixup 0.2 as medlib runs it, and with each of Report 2's code flaws put back, each
    record named by its `flaw` (for the models measured with a flaw)."""
    d = study_rows(df, ["report2", "report2-flaws"])
    if d.empty:
        return d
    d = d[(d["mixup_alpha"] == 0.2) & (d["dataset"] == "m3dv")]
    d = d.assign(flaw=[_flaw(r) for _, r in d.iterrows()])
    return d[d["model"].isin(set(d.loc[d["flaw"] != NO_FLAW, "model"]))].reset_index(drop=True)


NO_FLAW = "none (medlib)"


def _flaw(row) -> str:
    for name, change in plans.REPORT2_FLAWS.items():
        if all(row[k] == v for k, v in change.items()):
            return name
    return NO_FLAW


def flaws_table(df: pd.DataFrame) -> pd.DataFrame:
    """What each of Report 2's code flaws cost, on the same 5 folds: validation AUC (what picks the checkpoint),
    held-out test AUC, their gap (an optimistic validation shows as a large gap) and the pooled test AUC."""
    d = flaw_rows(df)
    if d.empty:
        return pd.DataFrame()
    d = d.assign(gap=d["val_auc"] - d["test_auc"])
    order = [NO_FLAW, *plans.REPORT2_FLAWS]
    rows = []
    for (model, flaw), g in sorted(d.groupby(["model", "flaw"]), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        val, test, gap = (mean_std(g[c]) for c in ("val_auc", "test_auc", "gap"))
        rows.append(
            {
                "model": model,
                "flaw put back": flaw,
                "folds": test["n"],
                "val AUC": fmt(val["mean"], val["std"], val["n"]),
                "test AUC": fmt(test["mean"], test["std"], test["n"]),
                "val − test": f"{gap['mean']:+.3f}",
                "pooled test AUC": fmt(pooled(g)["auc"]),
            }
        )
    return pd.DataFrame(rows)


def flaws_reading(df: pd.DataFrame) -> str:
    """Sentences on the flaws table, computed from the same records: each flaw's change in test AUC against
    medlib's run of the same folds (against the folds' spread) and its validation-minus-test gap."""
    d = flaw_rows(df)
    if d.empty:
        return ""
    out, inside = [], []
    for model, g in d.groupby("model"):
        base = g[g["flaw"] == NO_FLAW]
        b, b_gap = mean_std(base["test_auc"]), float((base["val_auc"] - base["test_auc"]).mean())
        for flaw in plans.REPORT2_FLAWS:
            f = g[g["flaw"] == flaw]
            if len(f) < len(base) or base.empty:
                continue
            t, gap = mean_std(f["test_auc"]), float((f["val_auc"] - f["test_auc"]).mean())
            within = "within" if abs(t["mean"] - b["mean"]) <= b["std"] else "outside"
            out.append(
                f"- **{flaw}** ({model}): test AUC {t['mean']:.3f} against medlib's {b['mean']:.3f} "
                f"({t['mean'] - b['mean']:+.3f}, {within} the folds' spread of ± {b['std']:.3f}); validation "
                f"AUC {gap:+.3f} above test (medlib: {b_gap:+.3f})."
            )
            inside.append(within == "within")
    if out and all(inside):
        out.append(
            f"\nNone of the {len(inside)} flaws changes the test AUC by more than the spread over folds: on "
            "this recipe and network, five folds cannot tell these flaws from medlib's way."
        )
    return "\n".join(out)


def lr_batch_table(df: pd.DataFrame) -> pd.DataFrame:
    """Learning rate x batch size (full batch included), 5 folds each: test AUC, pooled AUC, best epoch."""
    d = select(df, "lr-batch")
    if d.empty:
        return pd.DataFrame()
    by = ["batch_size", "lr"]
    agg = aggregate(d, by, [*METRICS, "best_epoch"])
    out = pd.DataFrame(
        {
            "batch": [("full" if b >= 512 else str(b)) for b in agg["batch_size"]],
            "lr": [f"{x:g}" for x in agg["lr"]],
            "folds": agg["n"],
        }
    )
    out["test AUC"] = fmt_col(agg, "test_auc")
    out["pooled AUC"] = [fmt(pooled(g)["auc"]) for _, g in d.groupby(by, sort=True)]
    out["best epoch"] = [f"{x:.0f}" for x in agg["best_epoch_mean"]]
    return out


def curve_cases_table(df: pd.DataFrame) -> pd.DataFrame:
    """Report 2's loss-curve cases, each shown by a real run made to be in it (see plans.CURVE_CASES)."""
    d = select(df, "curves")
    if d.empty:
        return pd.DataFrame()
    order = {label: i for i, label in enumerate(plan_labels().values())}
    d = d.assign(_order=d["label"].map(order)).sort_values("_order")
    rows = []
    for _, r in d.iterrows():
        dg = diagnose(Run(Path(r["dir"])).history)
        rows.append(
            {
                "made to show": plans.parse_label(r["label"]).parts[0].replace("-", " "),
                "data": r["dataset"],
                "model": r["model"],
                "optimizer": r["optimizer"],
                "lr": f"{r['lr']:g} → {r['lr_end']:g}" if r.get("schedule") == "range" else f"{r['lr']:g}",
                "epochs": r["epochs"],
                "train %/epoch": round(100 * dg.train.rel_slope, 1),
                "val %/epoch": round(100 * dg.val.rel_slope, 1),
                "diagnosis": dg.case,
            }
        )
    return pd.DataFrame(rows)


def final_table(df: pd.DataFrame) -> pd.DataFrame:
    """The `--fold all` model: its validation AUC with a 95 % bootstrap interval over its validation cubes, beside
    the cross-validated test AUC of the same recipe, which a split this small can differ from by chance."""
    d = select(df, "report2-final")
    if d.empty:
        return pd.DataFrame()
    rows = []
    for _, r in d.iterrows():
        labels, (probs,) = ensemble_parts(d[d["dir"] == r["dir"]], "val")
        lo, hi = bootstrap_ci(labels["label"].to_numpy(), [probs], r["task"], n=1000)
        cv = select(df, "report2", model=r["model"], mixup_alpha=r["mixup_alpha"])
        ms = mean_std(cv["test_auc"])
        rows.append(
            {
                "model": r["model"],
                "train cubes": "all but val",
                "val cubes": len(labels),
                "best epoch": r["best_epoch"],
                "val AUC": fmt(r["val_auc"]),
                "val AUC 95% CI": f"{lo:.3f}–{hi:.3f}",
                "same recipe, 5-fold CV test AUC": fmt(ms["mean"], ms["std"], ms["n"]) if ms["n"] else EMPTY,
                "CV mean inside the CI": ("yes" if lo <= ms["mean"] <= hi else "no") if ms["n"] else EMPTY,
                "run": Path(r["dir"]).name,
            }
        )
    return pd.DataFrame(rows)


def shipped_folds(df: pd.DataFrame, study: str = "report2") -> pd.DataFrame:
    """The records of `study` whose weights results/ ships (Report 2's DenseNet fold models), one per fold."""
    return shipped(select(df, study)).sort_values("fold").reset_index(drop=True)


def shipped_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Report 2's records whose weights results/ ships."""
    return shipped(study_rows(df, ["report2", "report2-final"]))


def shipped_table(df: pd.DataFrame) -> pd.DataFrame:
    """The runs whose weights results/ ships: which run, its best epoch and numbers, the file's size and SHA-256."""
    d = shipped_rows(df)
    if d.empty:
        return pd.DataFrame()
    d = d.sort_values(["study", "fold"])
    return pd.DataFrame(
        {
            "run": d["label"],
            "best epoch": d["best_epoch"].astype(int),
            "val AUC": [fmt(v) for v in d["val_auc"]],
            "test AUC (held-out fold)": [fmt(v) if np.isfinite(v) else EMPTY for v in d["test_auc"]],
            "weights.pt": [f"{(Path(p) / 'weights.pt').stat().st_size / 1e6:.2f} MB" for p in d["dir"]],
            "sha256": [h[:16] for h in d["weights"]],
        }
    )


def _tta_views(row) -> pd.DataFrame | None:
    """A shipped fold model's kept per-view test scores (tta.write_view_scores), checked against the record: its
    identity view must be the test scores run.json's run wrote (bf16 rounding allowed)."""
    v = read_view_scores(row["dir"])
    if v is None:
        return None
    own = Run(Path(row["dir"])).scores("test")
    ident = view_name(views("none", 3)[0])
    if list(v["id"]) != list(own["id"].astype(str)) or not np.allclose(v[ident], own["score_1"], atol=0.02):
        raise MedlibError(
            f"{row['dir']}/{VIEW_SCORES} does not match the run's own test scores; delete it and run "
            "`python -m medlib reproduce --only 'report2/*'` to score the views again."
        )
    return v


def _auc1(labels, p1) -> float:
    return auc(np.asarray(labels), np.asarray(p1), BINARY)


def tta_table(df: pd.DataFrame, study: str = "report2", kinds=VIEW_SETS) -> pd.DataFrame:
    """Test-time augmentation on the shipped fold models: per view set, the held-out-fold AUC (mean ± std over
    folds, and pooled), and its change against the single view per fold; from the per-view scores kept beside
    each record (tests/test_shipped.py scores views again from the weights)."""
    d = shipped_folds(df, study)
    folds = [v for v in (_tta_views(r) for _, r in d.iterrows()) if v is not None]
    if not folds:
        return pd.DataFrame()
    dims = 3
    p1 = {k: [f[[view_name(v) for v in views(k, dims)]].mean(axis=1).to_numpy() for f in folds] for k in kinds}
    base = [_auc1(f["label"], p) for f, p in zip(folds, p1[kinds[0]])]
    rows, per_fold = [], {}
    for k in kinds:
        aucs = [_auc1(f["label"], p) for f, p in zip(folds, p1[k])]
        ms, gain = mean_std(aucs), mean_std(np.subtract(aucs, base))
        rows.append(
            {
                "views": k,
                "per cube": len(views(k, dims)),
                "folds": len(aucs),
                "test AUC (per fold)": fmt(ms["mean"], ms["std"], ms["n"]),
                "pooled AUC": fmt(_auc1(pd.concat([f["label"] for f in folds]), np.concatenate(p1[k]))),
                f"change against {kinds[0]} (per fold)": f"{gain['mean']:+.3f} ± {gain['std']:.3f}",
            }
        )
        per_fold[k] = aucs
    out = pd.DataFrame(rows)
    out.attrs["per_fold"] = per_fold  # the numbers behind the cells, for tta_reading
    return out


def tta_reading(t: pd.DataFrame) -> str:
    """One sentence on a `tta_table` (from the per-fold AUCs it keeps in .attrs): what averaging the most views
    changed, against the folds' own spread."""
    per_fold = t.attrs["per_fold"]
    first, last = list(per_fold)[0], list(per_fold)[-1]
    gain = mean_std(np.subtract(per_fold[last], per_fold[first]))
    spread = mean_std(per_fold[first])["std"]
    size = "smaller than" if abs(gain["mean"]) < spread else "at least"
    row = t.set_index("views")
    return (
        f"Averaging the {row.loc[last, 'per cube']} {last} of each held-out cube changed the test AUC by "
        f"{gain['mean']:+.3f} ± {gain['std']:.3f} per fold ({gain['n']} folds; pooled "
        f"{row.loc[first, 'pooled AUC']} → {row.loc[last, 'pooled AUC']}): {size} the folds' own spread "
        f"(± {spread:.3f})."
    )


def report2_reference() -> str:
    figs = reference.report2_figures().set_index("figure")["value"]
    return (
        f"Report 2: DenseNet {figs['leaderboard test AUC (DenseNet)']} and 3-conv net about "
        f"{figs['leaderboard test AUC (3-conv net)']} test AUC on the course's hidden leaderboard (93 + 117 other "
        "cubes); ours are 5-fold cross-validation on the 372 labelled cubes here, so compare loosely."
    )


def batch_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Report 2's DenseNet (batch 30, in the report2 study) and the same at batch 8, 16, 64."""
    return pd.concat([select(df, "report2", model="densenet3d", mixup_alpha=0.2), select(df, "report2-batch")])


def batch_table(df: pd.DataFrame) -> pd.DataFrame:
    return cv_table(batch_rows(df), None, ["batch_size"])


def _simplex(k: int, step: float = 0.1):
    """Every weight vector of k non-negative multiples of `step` summing to one."""
    n = round(1 / step)
    for cut in itertools.combinations(range(n + k - 1), k - 1):  # stars and bars
        parts = np.diff([-1, *cut, n + k - 1]) - 1
        yield parts / n


def ensemble_parts(d: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """member_scores of the records' runs: the shared label columns and each run's score array."""
    return member_scores([Run(Path(p)) for p in d["dir"]], split)


def weighted_ensemble_table(df: pd.DataFrame, study: str = "report2", step: float = 0.1) -> pd.DataFrame:
    """Report 2's "weighted average of runs", done without touching the test folds: per fold, the weights over
    its configurations that maximise validation AUC (a grid of `step`), applied to the held-out fold; beside the
    best single configuration by validation AUC and the plain average. Per-fold test AUC and pooled AUC."""
    d = select(df, study)
    if d.empty or d["model"].nunique() * d["mixup_alpha"].nunique() < 2:
        return pd.DataFrame()
    task = d["task"].iloc[0]
    out = {"best single model by validation AUC": [], "equal weights": [], "weights fit on validation": []}
    chosen = []
    for fold, g in d.sort_values(["model", "mixup_alpha"]).groupby("fold", sort=True):
        val, test = ensemble_parts(g, "val"), ensemble_parts(g, "test")
        names = [f"{r['model']} α{r['mixup_alpha']:g}" for _, r in g.iterrows()]
        y = val[0][[c for c in val[0].columns if c.startswith("label")]].to_numpy()[:, 0]
        best_w = max(_simplex(len(names), step), key=lambda w, val=val, y=y: auc(y, average(val[1], w), task))
        single = np.eye(len(names))[int(np.argmax(g["val_auc"].to_numpy()))]
        out["best single model by validation AUC"].append(mix(test, single))
        out["equal weights"].append(mix(test, None))
        out["weights fit on validation"].append(mix(test, best_w))
        chosen.append(f"f{fold}: " + ", ".join(f"{n} {w:.1f}" for n, w in zip(names, best_w) if w > 0))
    rows = []
    for name, frames in out.items():
        per_fold = mean_std([scores_metrics(s, task)["auc"] for s in frames])
        rows.append(
            {
                "ensemble": name,
                "folds": per_fold["n"],
                "test AUC (per fold)": fmt(per_fold["mean"], per_fold["std"], per_fold["n"]),
                "pooled AUC": fmt(scores_metrics(pd.concat(frames), task)["auc"]),
                "chosen on validation": "; ".join(chosen) if name == "weights fit on validation" else "",
            }
        )
    return pd.DataFrame(rows)


def _outdo_recipe(row) -> str:
    """One line for an outdo recipe: its network and `recipe()` words (2D) or optimiser and epochs (3D)."""
    if row["dataset"] == "m3dv":
        return f"Report 2's DenseNet-3D, mixup α {row['mixup_alpha']:g}, 5-fold CV x 3 seeds"
    words = (
        f"{row['optimizer']} {row['lr']:g} {row['schedule']}, flips" if registry.is_3d(row["dataset"]) else recipe(row)
    )
    stem = " (7x7/2 stem)" if row["model"].startswith("resnet") and row["stem"] == "imagenet" else ""
    return f"{row['model']}{stem}, {words}, {int(row['epochs'])} epochs"


def outdo_goal(dataset: str) -> tuple[float, float]:
    """(AUC, ACC) a set's goal asks for: the official best ResNet's or the independent rerun's AUC, whichever is
    higher, and that ResNet's ACC (M3DV: the best 2019 entry's AUC, the best-known column; no ACC)."""
    if dataset == "m3dv":
        return reference.best_known("m3dv")[0], math.nan
    off_auc, off_method = reference.official_best(dataset)
    off = reference.official()
    chosen = (off["dataset"] == dataset) & (off["method"].map(reference.method_name) == off_method)
    refs = reference.outdo_references()
    rerun = refs.at[dataset, "rerun_auc"] if dataset in refs.index else math.nan
    return max(off_auc, rerun if not math.isnan(rerun) else 0), float(off[chosen]["test_acc"].iloc[0])


def _goal_cells(dataset: str, auc_mean: float, acc_mean: float) -> dict:
    off_auc, off_method = reference.official_best(dataset)
    goal_auc, off_acc = outdo_goal(dataset)
    refs = reference.outdo_references()
    rerun = refs.at[dataset, "rerun_auc"] if dataset in refs.index else math.nan
    best_auc, best_acc, best_method = reference.best_known(dataset)
    met = auc_mean >= goal_auc and acc_mean >= off_acc
    return {
        "official best AUC / ACC": f"{off_auc:.3f} / {off_acc:.3f} ({off_method})",
        "independent rerun": (f"{rerun:.3f} ± {refs.at[dataset, 'rerun_std']:.3f}" if not math.isnan(rerun) else EMPTY),
        "best known": f"{best_auc:.3f} ({best_method})",
        "goal met": "yes" if met else "no",
        "moonshot met": "yes" if auc_mean >= best_auc else "no",
    }


OUTDO_COLUMNS = ["dataset", "row", "recipe", "seeds", "test AUC", "95% CI", "test ACC", "official best AUC / ACC",
                 "independent rerun", "best known", "goal met", "moonshot met"]  # fmt: skip


def _outdo_set_rows(ds: str, g: pd.DataFrame) -> list[dict]:
    """One set's rows of the outdo table: its seeds (mean ± std, bootstrap interval) and their ensemble."""
    if len(g) < len(plans.OUTDO_SEEDS):
        command = f"`python -m medlib reproduce --only 'outdo/{ds}/*'`"
        return [{"dataset": ds, "row": "medlib recipe", "seeds": len(g),
                 "recipe": f"{len(g)} of {len(plans.OUTDO_SEEDS)} seeds in results/: {command}"}]  # fmt: skip
    task = g["task"].iloc[0]
    labels, probs = ensemble_parts(g, "test")
    y = labels[[c for c in labels.columns if c.startswith("label")]].to_numpy()[:, 0]
    lo, hi = bootstrap_ci(y, probs, task, n=500)
    a, c = mean_std(g["test_auc"]), mean_std(g["test_acc"])
    base = {"dataset": ds, "recipe": _outdo_recipe(g.iloc[0]), "seeds": a["n"]}
    ens = scores_metrics(mix((labels, probs), None), task)
    elo, ehi = bootstrap_ci(y, [average(probs)], task, n=500)
    return [
        {**base, "row": "medlib recipe", "test AUC": fmt(a["mean"], a["std"], a["n"]), "95% CI": f"{lo:.3f}–{hi:.3f}",
         "test ACC": fmt(c["mean"], c["std"], c["n"]), **_goal_cells(ds, a["mean"], c["mean"])},
        {**base, "row": f"{a['n']}-seed ensemble", "test AUC": fmt(ens["auc"]), "95% CI": f"{elo:.3f}–{ehi:.3f}",
         "test ACC": fmt(ens["acc"]), **_goal_cells(ds, ens["auc"], ens["acc"])},
    ]  # fmt: skip


def _outdo_m3dv_rows(cv: pd.DataFrame) -> list[dict]:
    """M3DV's rows: the same 5 folds trained under each seed (fold AUC mean ± std over the fold runs) and, per fold,
    the seeds' probabilities averaged; each with a bootstrap interval that resamples every held-out fold on its
    own (metrics.fold_bootstrap_ci), beside Report 2's leaderboard AUC and the best 2019 entry."""
    n_cv = len(plans.OUTDO_CV_SEEDS) * 5
    seeds = int(cv["seed"].nunique()) if len(cv) else 0
    row = {"dataset": "m3dv", "row": "repeated 5-fold CV", "seeds": seeds}
    if len(cv) < n_cv:
        return [{**row, "recipe": f"{len(cv)} of {n_cv} fold runs: `python -m medlib reproduce --only 'outdo/m3dv/*'`"}]
    task = cv["task"].iloc[0]
    folds = []  # per fold: (labels, each seed's scores), the same held-out cubes under every seed (checked)
    for _, g in cv.groupby("fold", sort=True):
        labels, probs = ensemble_parts(g, "test")
        folds.append((labels[[c for c in labels.columns if c.startswith("label")]].to_numpy()[:, 0], probs))
    a, c = mean_std(cv["test_auc"]), mean_std(cv["test_acc"])
    lo, hi = fold_bootstrap_ci(folds, task, n=500)
    averaged = [scores_metrics(mix((pd.DataFrame({"label": y}), probs), None), task) for y, probs in folds]
    ea, ec = mean_std([m["auc"] for m in averaged]), mean_std([m["acc"] for m in averaged])
    elo, ehi = fold_bootstrap_ci([(y, [average(probs)]) for y, probs in folds], task, n=500)
    best_auc, _, best_method = reference.best_known("m3dv")
    refs = {
        "recipe": _outdo_recipe(cv.iloc[0]),
        "official best AUC / ACC": f"{reference.report2_auc():.3f} (Report 2, hidden leaderboard)",
        "independent rerun": EMPTY, "best known": f"{best_auc:.3f} ({best_method})",
    }  # fmt: skip
    met = {True: "yes", False: "no"}
    return [
        {**row, **refs, "test AUC": fmt(a["mean"], a["std"], a["n"]), "95% CI": f"{lo:.3f}–{hi:.3f}",
         "test ACC": fmt(c["mean"], c["std"], c["n"]), "goal met": met[a["mean"] >= best_auc],
         "moonshot met": met[a["mean"] >= best_auc]},
        {**row, **refs, "row": f"{seeds}-seed ensemble, per fold", "test AUC": fmt(ea["mean"], ea["std"], ea["n"]),
         "95% CI": f"{elo:.3f}–{ehi:.3f}", "test ACC": fmt(ec["mean"], ec["std"], ec["n"]),
         "goal met": met[ea["mean"] >= best_auc], "moonshot met": met[ea["mean"] >= best_auc]},
    ]  # fmt: skip


def outdo_table(df: pd.DataFrame) -> pd.DataFrame:
    """Issue 24's table: per set, medlib's recipe over >= 5 seeds (mean ± std, a 95 % bootstrap interval over test
    samples) and the seeds' probabilities averaged, beside the official best, an independent rerun and the best
    known; met when the mean test AUC reaches both the official best and the rerun and ACC the official's."""
    d = select(df, "outdo")
    rows = [row for ds in plans.OUTDO for row in _outdo_set_rows(ds, d[d["dataset"] == ds])]
    rows += _outdo_m3dv_rows(select(df, "outdo", dataset="m3dv"))
    t = pd.DataFrame(rows).reindex(columns=OUTDO_COLUMNS).astype(object)
    return t.where(t.notna(), EMPTY)


def _first_number(cell) -> float:
    """The leading number of a table cell ('0.854 ± 0.021' -> 0.854); NaN for an empty one."""
    try:
        return float(str(cell).split()[0])
    except (ValueError, IndexError):
        return math.nan


def _shortfall(r: pd.Series) -> str:
    """Why one set's goal is not met, from its table row: the mean AUC below the goal's, or the ACC below the
    official's where the AUC reaches it."""
    auc_goal, acc_goal = outdo_goal(r["dataset"])
    auc_, acc_ = _first_number(r["test AUC"]), _first_number(r["test ACC"])
    if auc_ < auc_goal:
        return f"{r['dataset']}, AUC {auc_:.3f} against {auc_goal:.3f}"
    return f"{r['dataset']}, AUC {auc_:.3f} reaches {auc_goal:.3f} but ACC {acc_:.3f} is below {acc_goal:.3f}"


def _goal_in_interval(r: pd.Series) -> bool | None:
    """Whether the goal's AUC lies inside the row's 95 % interval (a gap the test split cannot resolve); None where
    the row has no interval."""
    try:
        lo, hi = (float(x) for x in str(r["95% CI"]).split("–"))
    except (KeyError, ValueError):
        return None
    return bool(lo <= outdo_goal(r["dataset"])[0] <= hi)


def outdo_verdict(t: pd.DataFrame) -> str:
    """What the outdo table says, read from it: the sets where medlib's recipe meets the goal, those where only the
    seeds' ensemble does, those where neither does (and by what, and whether the goal lies inside the recipe's 95 %
    interval), those still short of runs."""
    first = t.drop_duplicates("dataset")  # each set's first row: medlib's recipe (M3DV: the repeated CV)
    done, waiting = first[first["test AUC"] != EMPTY], first[first["test AUC"] == EMPTY]["dataset"].tolist()
    met = done[done["goal met"] == "yes"]["dataset"].tolist()
    ensembles = t[t["row"].str.contains("ensemble") & (t["goal met"] == "yes")]["dataset"]
    ensemble_only = [d for d in ensembles if d not in met]
    unmet = done[done["goal met"] != "yes"]
    short = [_shortfall(r) for _, r in unmet.iterrows()]
    parts = [f"Goal met by medlib's recipe on {len(met)} of the {len(done)} sets with all their runs"]
    parts[0] += f" ({', '.join(met)})." if met else "."
    if ensemble_only:
        parts.append(f"Only the seeds' ensemble meets it on {', '.join(ensemble_only)}.")
    if short:
        parts.append(f"Not met by the recipe's mean: {'; '.join(short)}.")
        # the AUC shortfalls against the interval: inside it, the test split cannot tell recipe and goal apart
        inside = {r["dataset"]: _goal_in_interval(r) for _, r in unmet.iterrows()
                  if _first_number(r["test AUC"]) < outdo_goal(r["dataset"])[0]}  # fmt: skip
        near, far = [d for d, v in inside.items() if v], [d for d, v in inside.items() if v is False]
        if near:
            parts.append(
                f"The goal's AUC lies inside the recipe's 95 % interval on {', '.join(near)}: a gap their "
                "test split cannot resolve" + (f"; above it on {', '.join(far)}." if far else ".")
            )
        elif far:
            parts.append(f"The goal's AUC lies above the recipe's 95 % interval on {', '.join(far)}.")
    if waiting:
        parts.append(f"Still short of their runs: {', '.join(waiting)}.")
    return " ".join(parts)


# ---------------------------------------------------------------- what Report 1's tables say; medlib's departures


def _report1_test(metric: str = "AUC") -> pd.DataFrame:
    """Report 1's test numbers as a (dataset x model) table."""
    r1 = reference.report1()
    r1 = r1[(r1["split"] == "test") & (r1["metric"] == metric)]
    return r1.pivot(index="dataset", columns="model", values="value").loc[reference.REPORT1_DATASETS]


def report1_readings() -> str:
    """What Report 1's own tables say, as Markdown whose every number is read from them or the benchmark."""
    r1 = reference.report1()

    def v(ds, model, split, metric):
        return float(
            r1[(r1["dataset"] == ds) & (r1["model"] == model) & (r1["split"] == split) & (r1["metric"] == metric)][
                "value"
            ].iloc[0]
        )

    auc = _report1_test("AUC")
    lines = []
    gaps = [
        f"{ds} train AUC {v(ds, 'resnet18', 'train', 'AUC'):.3f}, test {v(ds, 'resnet18', 'test', 'AUC'):.3f}"
        for ds in ("breastmnist", "retinamnist")
    ]
    sizes = [count_parameters(build_model(m, 1, 2)) / 1e6 for m in ("resnet18", "resnet50")]
    lines.append(
        f"* **Train ≈ 1, test far lower** on the small sets (ResNet-18: {'; '.join(gaps)}): with no "
        f"augmentation and no weight decay, {sizes[0]:.1f}–{sizes[1]:.1f} M parameters memorise a few "
        "hundred images; the "
        "best-validation checkpoint limits the damage, it does not prevent it."
    )
    lines.append(
        f"* **ChestMNIST**: test AUC {v('chestmnist', 'resnet18', 'test', 'AUC'):.3f} but ACC "
        f"{v('chestmnist', 'resnet18', 'test', 'ACC'):.3f}. It is multi-label with rare findings, so "
        'predicting "no finding" everywhere is accurate; AUC is the number to read (medlib trains it '
        "with BCE-with-logits, one sigmoid per finding)."
    )
    parts = []
    for model in ("resnet18", "resnet50"):
        off = reference.official_scores(model, 28)["test_auc"]
        d = pd.DataFrame({"r1": auc[model], "off": off.reindex(auc.index)})
        ahead = [f"{ds} {r.r1:.3f} vs {r.off:.3f}" for ds, r in d.iterrows() if r.r1 >= r.off]
        parts.append(
            f"its {model} trails the official {model} on {int((d.r1 < d.off).sum())} of {len(d)} sets"
            + (f" (level or ahead: {', '.join(ahead)})" if ahead else "")
        )
    lines.append(
        f"* **Against the official ResNets at 28 px** (test AUC): {'; '.join(parts)}. Fewer epochs, plain "
        "SGD at 0.001 without a schedule, and the 7×7/2 stem that shrinks 28 px to 7 px before the first "
        "block (notebook 01)."
    )
    better18 = int((auc["resnet18"] > auc["resnet50"]).sum())
    ties = int((auc["resnet18"] == auc["resnet50"]).sum())
    lines.append(
        f'* **ResNet-18 vs ResNet-50**: Report 1 concludes the two "differ little" and ResNet-18 is '
        f'"slightly better in most cases"; in its own tables ResNet-18 has the higher test AUC on '
        f"{better18} of {len(auc)} sets, ties on {ties} and trails on {len(auc) - better18 - ties}."
    )
    return "\n".join(lines)


def report1_departures(df: pd.DataFrame) -> str:
    """Where medlib's Report 1 runs differ from Report 1 by more than their seed spread, with what the records
    say about why (best epochs, train metrics), as Markdown computed from the records."""
    d = select(df, "report1")
    if d.empty:
        return ""
    r1 = reference.report1()
    lines = []
    for (ds, model), g in d.groupby(["dataset", "model"], sort=True):
        ref = r1[(r1["dataset"] == ds) & (r1["model"] == model)].set_index(["split", "metric"])["value"]
        test, train_acc = mean_std(g["test_auc"]), mean_std(g["train_acc"])
        diff = test["mean"] - ref[("test", "AUC")]
        epochs = int(g["epochs"].iloc[0])
        best = sorted(int(b) for b in g["best_epoch"])
        late = sum(b > 0.75 * epochs for b in best)
        early = all(b <= 0.2 * epochs for b in best)
        notes = []
        if abs(diff) > max(test["std"], 0.01):
            notes.append(
                f"test AUC {fmt(test['mean'], test['std'], test['n'])} vs Report 1's "
                f"{ref[('test', 'AUC')]:.3f} ({diff:+.3f}, {abs(diff) / test['std']:.1f} std)"
            )
        if abs(train_acc["mean"] - ref[("train", "ACC")]) > 0.1:
            notes.append(
                f"train ACC {fmt(train_acc['mean'], train_acc['std'], train_acc['n'])} vs {ref[('train', 'ACC')]:.3f}"
            )
        if not notes:
            continue
        why = f"best validation AUC at epochs {', '.join(map(str, best))} of {epochs}"
        if late:
            why += (
                f"; {late} of {len(best)} seeds peaked in the last quarter of the budget, still improving when "
                "Report 1's epoch cut stopped them"
            )
        elif early:
            why += (
                ": the kept checkpoint comes from before the network memorised its training set, hence its "
                "lower train metrics"
            )
        lines.append(f"* **{ds} {model}**: {'; '.join(notes)}. The records: {why}.")
    return "\n".join(lines)


# ---------------------------------------------------------------- the M3DV folds (notebook 03)


def fold_table(ds: Dataset, k: int = 5) -> StyledTable:
    """Samples (positives) per split of each of the k stratified folds `kfold_datasets` cuts from `ds["all"]`."""
    rows = []
    for fold in range(k):
        d = kfold_datasets(ds, k=k, fold=fold)
        counts = {f"{s} (pos)": f"{len(d[s])} ({int(d[s].y.sum())})" for s in ("train", "val", "test")}
        rows.append({"fold": fold, **counts})
    return style(
        pd.DataFrame(rows).set_index("fold"),
        f"{ds.meta.name}_folds",
        f"{ds.meta.name} folds: samples (positives) per split",
    )


# ---------------------------------------------------------------- the datasets (notebook 00)

FACT_COLUMNS = ["dataset", "dims", "task", "channels", "classes", "train", "val", "test", "sizes"]


def dataset_facts() -> StyledTable:
    """The 18 MedMNIST sets as the registry knows them (no files needed): task, classes, split sizes, sizes."""
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


def missing_note(dataset: str, study: str = "report1") -> str:
    """Why a set has no medlib records in a table, and the one command that fills it (the same words on every
    machine, so a committed table does not depend on which data the machine that rendered it had)."""
    return (
        f"no records in results/ yet: `python -m medlib reproduce --only '{study}/{dataset}/*'` "
        f"(downloads {registry.file_name(dataset)} if it is missing)"
    )


# ---------------------------------------------------------------- confusion matrices (Report 1's multi-class sets)


def chosen_run(df: pd.DataFrame, dataset: str, studies=("report1", "tuned", "medmnist2d")) -> pd.Series | None:
    """The run of a set with the best validation AUC among the given studies (chosen without the test split)."""
    d = pd.concat([select(df, s, dataset=dataset) for s in studies], ignore_index=True).drop_duplicates("dir")
    d = d[(d["task"] != MULTILABEL) & d["val_auc"].notna()]
    return None if d.empty else d.loc[d["val_auc"].idxmax()]


def class_names(dataset: str) -> list[str]:
    """MedMNIST's class names in label order (medmnist.INFO's 'label'), shortened to their first words."""
    labels = registry.info(dataset)["label"]
    return [" ".join(labels[str(i)].split()[:3]) for i in range(len(labels))]


def confusion_table(row: pd.Series, split: str = "test") -> pd.DataFrame:
    """Counts [true, predicted] of one run's saved per-sample scores, indexed by class name."""
    scores = Run(Path(row["dir"])).scores(split)
    cols = [c for c in scores.columns if c.startswith("score_")]
    names = class_names(row["dataset"])
    m = confusion_matrix(scores["label"].to_numpy(), scores[cols].to_numpy(), len(names))
    return pd.DataFrame(m, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
