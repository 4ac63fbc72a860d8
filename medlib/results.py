"""The results layer: run records from any folders as one DataFrame, and every aggregate shown anywhere.

Notebooks, the HTML report, the README tables (`python -m medlib results --markdown`), the CLI, sweeps
and cross-validation all read runs through here: one reader (`records`), one aggregate (`aggregate`,
mean ± std with ddof=1), one formatter (`fmt`), one pooled out-of-fold AUC (`pooled`), one ensemble.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .config import TrainConfig
from .engine.runs import Run, runs_root
from .errors import MedlibError
from .experiments.plans import PLANS
from .metrics import evaluate

CONFIG_COLUMNS = [f.name for f in fields(TrainConfig)]
METRICS = [f"{s}_{m}" for s in ("train", "val", "test") for m in ("auc", "acc")]
EMPTY = "–"
DEFAULT_RESULTS = "results"
README_BEGIN, README_END = "<!-- results:begin (python -m medlib results --write-readme) -->", "<!-- results:end -->"


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


# ---------------------------------------------------------------- per-sample scores: pooled AUC, ensembles


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


def ensemble(items, split: str = "test", weights=None) -> pd.DataFrame:
    """Per-sample probabilities averaged over runs scored on the same samples (e.g. one fold's models)."""
    from .ensemble import ensemble_runs

    return ensemble_runs(runs(frame(items)), split, weights)


def ensemble_score(items, split: str = "test") -> dict:
    rs = runs(frame(items))
    return scores_metrics(ensemble(items, split), rs[0].record["data"]["task"])


# ---------------------------------------------------------------- provenance


def provenance(items, command: str | None = None) -> str:
    """One line under a table: device(s), precision, dates, seeds / folds, epochs, and the command that made them."""
    df = frame(items)
    if df.empty:
        return "no records yet: run `python -m medlib reproduce` (see results/README.md)"
    devices = ", ".join(f"{d} ({p})" for d, p in df.groupby(["device_name", "precision"]).size().index)
    days = sorted({str(s)[:10] for s in df["finished"].dropna()})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    seeds = ",".join(str(s) for s in sorted(df["seed"].unique()))
    folds = sorted(df.loc[df["dataset"] == "m3dv", "fold"].unique())
    epochs = sorted(df["epochs"].unique())
    parts = [f"{len(df)} run{'s' if len(df) != 1 else ''} on {devices}", when, f"seeds {seeds}"]
    if folds:
        parts.append("folds " + ",".join("all" if f == -1 else str(f) for f in folds))
    parts.append("epochs " + "/".join(str(e) for e in epochs))
    versions = sorted({f"torch {t}" for t in df["torch"].dropna()})
    parts += versions
    if command:
        parts.append(f"`{command}`")
    return "; ".join(parts)


def study_command(study: str) -> str:
    return f"python -m medlib reproduce --only '{study}/*'"


# ---------------------------------------------------------------- the reports' tables, as plain DataFrames


def report1_table(df: pd.DataFrame, study: str = "report1") -> pd.DataFrame:
    """Test AUC / ACC per dataset and model (mean ± std over seeds) beside Report 1 and the official benchmark."""
    from .report import reference

    d = select(df, study)
    if d.empty:
        return pd.DataFrame()
    agg = aggregate(d, ["dataset", "model"])
    r1 = reference.report1()
    rows = []
    for _, a in agg.iterrows():
        ref = r1[(r1["dataset"] == a["dataset"]) & (r1["model"] == a["model"]) & (r1["split"] == "test")]
        refv = ref.set_index("metric")["value"]
        off = reference.official_scores(a["model"], 28)
        rows.append(
            {
                "dataset": a["dataset"],
                "model": a["model"],
                "seeds": int(a["n"]),
                "test AUC": fmt(a["test_auc_mean"], a["test_auc_std"], a["test_auc_n"]),
                "test ACC": fmt(a["test_acc_mean"], a["test_acc_std"], a["test_acc_n"]),
                "val AUC": fmt(a["val_auc_mean"], a["val_auc_std"], a["val_auc_n"]),
                "Report 1 AUC / ACC": f"{fmt(refv.get('AUC', math.nan))} / {fmt(refv.get('ACC', math.nan))}",
                "official AUC / ACC": (
                    f"{fmt(off.at[a['dataset'], 'test_auc'])} / {fmt(off.at[a['dataset'], 'test_acc'])}"
                    if a["dataset"] in off.index
                    else EMPTY
                ),
            }
        )
    return pd.DataFrame(rows)


def loss_table(df: pd.DataFrame) -> pd.DataFrame:
    """Report 1's BCE-with-logits against cross-entropy, ResNet-18, same recipe and seeds."""
    ce = select(df, "report1", model="resnet18", dataset=["breastmnist", "pneumoniamnist"])
    bce = select(df, "loss-bce")
    d = pd.concat([ce, bce])
    if bce.empty:
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


GOALS_2D = {"breastmnist": 0.901, "pneumoniamnist": 0.948, "retinamnist": 0.726}


def tuned_table(df: pd.DataFrame) -> pd.DataFrame:
    """medlib's CPU recipe against the goal: the best of Report 1 and the official ResNets at 28 px."""
    d = select(df, "tuned")
    if d.empty:
        return pd.DataFrame()
    agg = aggregate(d, ["dataset"])
    return pd.DataFrame(
        {
            "dataset": agg["dataset"],
            "seeds": agg["n"],
            "test AUC": fmt_col(agg, "test_auc"),
            "test ACC": fmt_col(agg, "test_acc"),
            "goal AUC": [GOALS_2D.get(x, math.nan) for x in agg["dataset"]],
            "met": [
                "yes" if m >= GOALS_2D.get(x, math.inf) else "no" for m, x in zip(agg["test_auc_mean"], agg["dataset"])
            ],
        }
    )


OFFICIAL_3D_BEST = {"adrenalmnist3d": (0.839, "ResNet-50+2.5D"), "vesselmnist3d": (0.930, "ResNet-50+3D")}


def medmnist3d_table(df: pd.DataFrame) -> pd.DataFrame:
    d = select(df, "medmnist3d")
    if d.empty:
        return pd.DataFrame()
    agg = aggregate(d, ["dataset", "size", "model"])
    return pd.DataFrame(
        {
            "dataset": agg["dataset"],
            "size": agg["size"],
            "model": agg["model"],
            "seeds": agg["n"],
            "test AUC": fmt_col(agg, "test_auc"),
            "test ACC": fmt_col(agg, "test_acc"),
            "official best AUC": [
                f"{OFFICIAL_3D_BEST[x][0]:.3f} ({OFFICIAL_3D_BEST[x][1]})" if x in OFFICIAL_3D_BEST else EMPTY
                for x in agg["dataset"]
            ],
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
    """Report 2's loss-curve cases, each shown by a real run made to be in it (see experiments.plans.CURVE_CASES)."""
    from .report.diagnose import diagnose

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
                "made to show": r["label"].split("/")[1].replace("-", " "),
                "data": r["dataset"],
                "optimizer": r["optimizer"],
                "lr": f"{r['lr']:g}",
                "epochs": r["epochs"],
                "train %/epoch": round(100 * dg.train.rel_slope, 1),
                "val %/epoch": round(100 * dg.val.rel_slope, 1),
                "diagnosis": dg.case,
            }
        )
    return pd.DataFrame(rows)


def final_table(df: pd.DataFrame) -> pd.DataFrame:
    d = select(df, "report2-final")
    if d.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "model": d["model"],
            "train cubes": "all but val",
            "best epoch": d["best_epoch"],
            "val AUC": [fmt(x) for x in d["val_auc"]],
            "run": [Path(x).name for x in d["dir"]],
        }
    )


def report2_reference() -> str:
    from .report import reference

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


def used_rows(df: pd.DataFrame, fn, studies) -> pd.DataFrame:
    """The records a study table is made from, for its provenance line."""
    return batch_rows(df) if fn is batch_table else study_rows(df, studies)


STUDIES = [  # (title, table function, study names whose records it shows)
    ("Report 1's recipe (ResNet-18/50, SGD lr 1e-3, batch 128, Report 1's epochs)", report1_table, ["report1"]),
    ("Loss: cross-entropy vs Report 1's BCE-with-logits (ResNet-18)", loss_table, ["report1", "loss-bce"]),
    ("medlib's CPU recipe (ResNet-18, SGD 0.05 cosine, flips and shifts) against the goal", tuned_table, ["tuned"]),
    ("MedMNIST 3D", medmnist3d_table, ["medmnist3d"]),
    ("Report 2 on M3DV: 5-fold cross-validation (test = held-out fold)", cv_table, ["report2"]),
    ("Report 2: ensembles (probabilities averaged per fold)", ensemble_table, ["report2"]),
    ("Report 2: batch-size study (DenseNet, 5 folds)", batch_table, ["report2", "report2-batch"]),
    ("Report 2: learning rate and batch size (3-conv baseline, 5 folds)", lr_batch_table, ["lr-batch"]),
    ("Report 2's loss-curve cases, each on a real run", curve_cases_table, ["curves"]),
    ("Report 2: final model on every labelled cube (`--fold all`)", final_table, ["report2-final"]),
]


def to_markdown(t: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (no dependency on tabulate)."""
    cells = [[str(c) for c in t.columns]] + [[str(v) for v in row] for row in t.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(t.columns), *lines[1:]])


def markdown(df: pd.DataFrame | None = None) -> str:
    """Every study's table as Markdown with its provenance line; what `--write-readme` puts in the README."""
    df = records(results_root()) if df is None else df
    out = []
    for title, fn, studies in STUDIES:
        t = fn(df)
        if t.empty:
            continue
        used = used_rows(df, fn, studies)
        out += [
            f"#### {title}",
            "",
            to_markdown(t),
            "",
            f"<sub>{provenance(used, study_command(studies[-1]))}</sub>",
            "",
        ]
    if not out:
        return "No reproduction records yet: `python -m medlib reproduce` writes them into results/."
    return "\n".join(out).rstrip() + "\n"


def write_readme(path, text: str, begin: str = README_BEGIN, end: str = README_END) -> bool:
    """Replace the text between two marker lines of a README; True when the file changed."""
    path = Path(path)
    doc = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise MedlibError(f"{path} has no results markers; add the lines\n{begin}\n{end}\nwhere the tables should go.")
    new = pattern.sub(lambda _: f"{begin}\n{text}{end}", doc)
    if new != doc:
        atomic.write_text(path, new)
    return new != doc


def cmd_results(args) -> None:
    folders = args.dirs or [str(results_root())]
    df = records(*folders)
    if args.write_readme:
        changed = write_readme(args.write_readme, markdown(df))
        print(f"{args.write_readme}: {'updated' if changed else 'already up to date'} ({len(df)} runs)")
        return
    if args.markdown:
        print(markdown(df), end="")
        return
    for title, fn, studies in STUDIES:
        t = fn(df)
        if not t.empty:
            print(f"\n{title}\n{t.to_string(index=False)}\n  {provenance(used_rows(df, fn, studies))}")
    if df.empty:
        print(markdown(df))


def add_command(sub) -> None:
    p = sub.add_parser("results", help="the reproduction tables from run records (results/ by default)")
    p.add_argument("dirs", nargs="*", help="folders of run folders (default: $MEDLIB_RESULTS or ./results)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables with provenance lines")
    p.add_argument(
        "--write-readme",
        metavar="README",
        default=None,
        help="replace the tables between the results markers of this file",
    )
    p.set_defaults(func=cmd_results)
