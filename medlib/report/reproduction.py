"""'The reproduction' parts of the notebooks and the HTML report: committed run records rendered as tables.

Each function takes `results.records(...)` and returns something to display: a styled table whose caption
is its provenance line (devices, dates, seeds or folds, epochs, command), or a short note naming the
command that would make the missing records. Nothing here trains.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure

from .. import plans, results
from ..analysis.saliency import heat_volume
from ..data import nodules
from ..engine.splits import load_for_config
from ..engine.training import score_split
from ..errors import MedlibError
from . import confusion as confusion_
from . import heatmaps, nodule3d, studies, tables
from .styled import style


class Note(Markdown):
    """A Markdown note whose plain-text form is its text (not `<Markdown object>`), so nbval can compare it."""

    def __repr__(self) -> str:
        return self.data


def _missing(study: str, what: str = "") -> Note:
    return Note(
        f"*No `{study}` {what}records in results/ yet.* Make them with `{results.study_command(study)}` "
        "(resumable; `--dry-run` shows the plan and its time on this machine)."
    )


def report1(df, model: str = "resnet18"):
    """Report 1's table for `model` (train/val/test AUC and ACC, mean ± std over seeds) beside Report 1 and official."""
    d = results.select(df, "report1", model=model)
    if d.empty:
        return _missing("report1", f"{model} ")
    st = tables.compare(d, model)
    return st.set_caption(f"{st.caption}<br><small>{results.provenance(d, results.study_command('report1'))}</small>")


def r18_vs_r50(df):
    d = results.select(df, "report1")
    if d["model"].nunique() < 2:
        return _missing("report1", "resnet18 + resnet50 ")
    st = tables.r18_vs_r50(d)
    return st.set_caption(f"{st.caption}<br><small>{results.provenance(d)}</small>")


def table(df, name: str):
    """One of the study tables (studies.STUDIES) by its function's name, e.g. 'cv_table', styled with its
    provenance line as caption; a note naming the command where no record exists yet."""
    st = studies.study(name)
    t = st.table(df)
    if t.empty:
        return _missing(st.studies[-1])
    caption = f"{st.title}<br><small>{results.provenance(st.used(df), st.command)}</small>"
    caption += f"<br>{st.note(t)}" if st.note else ""
    return style(t, f"repro_{name}", caption).hide(axis="index")


def batch_table(df):
    return table(df, "batch_table")


def study_runs(df, study: str, **where) -> list:
    """The Run folders of a study (for curves and diagnoses drawn from the committed histories)."""
    return results.runs(results.select(df, study, **where))


def lr_batch_figure(df):
    """Test AUC (mean ± std over folds) against the learning rate, one line per batch size (full batch included)."""
    d = results.select(df, "lr-batch")
    if d.empty:
        return _missing("lr-batch")
    agg = results.aggregate(d, ["batch_size", "lr"], ["test_auc", "best_epoch"])
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    auc_ax, ep_ax = fig.subplots(1, 2)
    for batch, g in agg.groupby("batch_size"):
        name = "full batch" if batch >= 512 else f"batch {batch}"
        auc_ax.errorbar(g["lr"], g["test_auc_mean"], yerr=g["test_auc_std"], marker="o", capsize=3, label=name)
        ep_ax.plot(g["lr"], g["best_epoch_mean"], marker="o", label=name)
    for ax, ylabel in ((auc_ax, "test AUC (mean ± std, 5 folds)"), (ep_ax, "best epoch (mean)")):
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (Adamax)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    auc_ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    auc_ax.legend(fontsize=8)
    fig.suptitle("Report 2's advice, measured: tune the batch size together with the learning rate")
    return fig


def confusion(df, dataset: str):
    """The confusion matrices (counts, row-normalised) of a set's run chosen by validation AUC, or a note."""
    row = tables.chosen_run(df, dataset)
    if row is None:
        study = "report1" if dataset in plans.REPORT1_SETS else "medmnist2d"
        return Note(
            f"*No {dataset} records in results/ yet.* Make them with "
            f"`python -m medlib reproduce --only '{study}/{dataset}/*,tuned/{dataset}/*'`."
        )
    return confusion_.confusion_figure(row)


RECIPE = ["dataset", "model", "epochs", "optimizer", "lr", "mixup_alpha"]  # what a twin run must share


def _twins(df, new: pd.DataFrame, study: str) -> pd.DataFrame:
    """The study's committed records of the same recipe as the runs in `new`, other than those runs."""
    old = results.select(df, study)
    old = old[old.set_index(RECIPE).index.isin(new.set_index(RECIPE).index)]
    return old[~old["dir"].isin(new["dir"])]


def beside(df, runs, study: str = "report1"):
    """Runs trained here set among the committed records of the same configs but other seeds: one row per run
    (train / val / test AUC and ACC, best epoch), the committed mean ± std, and where the new test AUC falls."""
    new = results.frame(runs)
    if new.empty:
        return Note("*No runs trained here yet.*")
    old = _twins(df, new, study)
    cols = {
        "dataset": "dataset",
        "model": "model",
        "seed": "seed",
        "epochs": "epochs",
        "best_epoch": "best epoch",
        **{f"{s}_{m}": f"{s} {m.upper()}" for s in ("train", "val", "test") for m in ("auc", "acc")},
    }
    rows = pd.concat([old.assign(source="results/ (committed)"), new.assign(source="trained here")])
    table = rows[["source", *cols]].rename(columns=cols).reset_index(drop=True)
    for c in table.columns[6:]:
        table[c] = [results.fmt(v) for v in table[c]]
    if not old.empty:
        agg = results.aggregate(old, ["dataset", "model"])
        for _, a in agg.iterrows():
            table.loc[len(table)] = {
                "source": "committed mean ± std",
                "dataset": a["dataset"],
                "model": a["model"],
                "seed": f"{int(a['n'])} seeds",
                "epochs": "",
                "best epoch": "",
                **{
                    cols[f"{s}_{m}"]: results.fmt(a[f"{s}_{m}_mean"], a[f"{s}_{m}_std"], a[f"{s}_{m}_n"])
                    for s in ("train", "val", "test")
                    for m in ("auc", "acc")
                },
            }
    return style(
        table,
        "beside_committed",
        f"Runs trained here beside the committed seeds of the same config ({results.provenance(old)})"
        if not old.empty
        else "Runs trained here",
    ).hide(axis="index")


def where_it_lands(df, runs, study: str = "report1") -> Note:
    """One sentence per new run: its test AUC against the committed seeds' range and mean ± std."""
    new = results.frame(runs)
    lines = []
    for i, r in new.iterrows():
        o = _twins(df, new.loc[[i]], study)
        if o.empty:
            continue
        lo, hi, ms = o["test_auc"].min(), o["test_auc"].max(), results.mean_std(o["test_auc"])
        inside = "inside" if lo <= r["test_auc"] <= hi else "below" if r["test_auc"] < lo else "above"
        z = (r["test_auc"] - ms["mean"]) / ms["std"] if ms["std"] > 0 else float("nan")
        lines.append(
            f"* {r['dataset']} {r['model']} seed {r['seed']}: test AUC {r['test_auc']:.3f}, {inside} the "
            f"committed seeds' range {lo:.3f}–{hi:.3f} (mean {results.fmt(ms['mean'], ms['std'], ms['n'])}; "
            f"{z:+.1f} std from it)."
        )
    return Note("\n".join(lines) or "*No committed runs of the same config to compare with.*")


def cv_beside(df, runs, study: str = "report2"):
    """Cross-validation runs trained here, per (model, α, seed), beside the committed records of the same
    recipe: mean ± std over folds and the pooled out-of-fold AUC (tables.cv_table on both)."""
    new = results.frame(runs)
    if new.empty:
        return Note("*No runs trained here yet.*")
    old = _twins(df, new, study)
    both = pd.concat([old.assign(source="results/ (committed)"), new.assign(source="trained here")], ignore_index=True)
    t = tables.cv_table(both, None, ["source", "model", "mixup_alpha", "seed"])
    caption = "Cross-validation trained here beside the committed folds of the same recipe"
    if not old.empty:
        caption += f"<br><small>{results.provenance(old)}</small>"
    return style(t, "cv_beside", caption).hide(axis="index")


def held_out_auc(runs, ids) -> dict:
    """AUC on the given sample ids from the fold models that never trained on them (each id's held-out fold,
    averaged over the runs that held it out), with how many of the ids were held out by some run."""
    parts = []
    for r in runs:
        s = r.scores("test")
        parts.append(s[s["id"].isin(set(ids))])
    if not parts:
        return {"auc": float("nan"), "n": 0}
    s = pd.concat(parts).groupby("id", sort=True).mean(numeric_only=True).reset_index()
    task = runs[0].record["data"]["task"]
    s["label"] = s["label"].round().astype(int)
    return {**results.scores_metrics(s.drop(columns="id"), task), "n": len(s)}


NO_M3DV = Note(
    "*The shipped models score M3DV's cubes, and M3DV is not under the data root here:* point "
    "`MEDLIB_DATA` (or `DATA`) at a folder holding `m3dv/train_val/` to draw this from them."
)


def tta(df):
    """The test-time augmentation table of the shipped fold models, and a sentence computed from it."""
    if not nodules.m3dv_present():
        return NO_M3DV
    t = tables.tta_table(df)
    if t.empty:
        return _missing("report2", "shipped-weights ")
    used = tables.shipped_folds(df)
    st = style(
        t,
        "repro_tta",
        "Test-time augmentation: Report 2's shipped DenseNet fold models, P(nodule) "
        f"averaged over symmetric views of each held-out cube<br><small>{results.provenance(used)}"
        "</small>",
    ).hide(axis="index")
    return st, Note(tables.tta_reading(t))


def shipped_model(df, fold: int = 0):
    """(net, config, data description, the fold's held-out cubes, its record row) of a shipped Report 2 fold
    model."""
    d = tables.shipped_folds(df)
    if d.empty or fold not in set(d["fold"]):
        raise MedlibError(
            f"results/ ships no Report 2 fold-{fold} model; `{results.study_command('report2')}` trains and ships them."
        )
    row = d[d["fold"] == fold].iloc[0]
    net, cfg, meta = results.load_weights(row)
    return net, cfg, meta, load_for_config(cfg, check=False)["test"], row


def shipped_saliency(df, fold: int = 0, n: int = 2):
    """Grad-CAM of a shipped fold model on n right and n wrong cubes of its held-out fold beside the
    randomised-weights check (heatmaps.sanity_figure), with a line naming the model and the correlations."""
    if not nodules.m3dv_present():
        return NO_M3DV
    net, _, _, held, row = shipped_model(df, fold)
    fig, rho = heatmaps.sanity_figure(net, held.X, held.y.numpy(), ["benign", "malignant"], n=n)
    return Note(
        f"`{row['label']}` (test AUC {row['test_auc']:.3f} on its {len(held)} held-out cubes): rank "
        "correlation of each map with the random-weights map " + ", ".join(f"{r:+.2f}" for r in rho) + "."
    ), fig


def shipped_nodule(df, fold: int = 0, index: int = 0):
    """One held-out cube of a shipped fold model in 3D, its Grad-CAM as translucent shells."""
    if not nodules.m3dv_present():
        return NO_M3DV
    net, cfg, meta, held, row = shipped_model(df, fold)
    cube = held.X[index]
    p = float(score_split(net, cfg, meta, cube[None], precision=row["precision"])[0][0, 1])
    voxel = cube[0].numpy()
    return nodule3d.nodule_figure(
        voxel,
        voxel > 0,
        heat=heat_volume(net, cube),
        title=f"{held.ids[index]} (label {int(held.y[index])}, P(label 1) {p:.2f}): Grad-CAM of {row['label']}",
    )


def final_weights(df) -> Path:
    """The shipped final (`--fold all`) model's weights.pt, as `python -m medlib predict --checkpoint` takes it."""
    d = results.shipped(results.select(df, "report2-final"))
    if d.empty:
        raise MedlibError(
            "results/ ships no final Report 2 model; `python -m medlib reproduce --only "
            "'report2-final/*'` trains and ships it."
        )
    results.load_weights(d.iloc[0])  # checked against its SHA-256 before anyone predicts with it
    return Path(d.iloc[0]["dir"]) / "weights.pt"
