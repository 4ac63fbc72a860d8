"""Training curves from run folders (matplotlib): loss and AUC per epoch, ResNet-18 vs ResNet-50, diagnoses.

Each function returns a `matplotlib.figure.Figure` (no pyplot state); a notebook displays it by ending a
cell with it. Runs that share a panel and a colour (seeds, folds) are drawn as their mean with a ±1 std band.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis.diagnose import diagnose, tail_window, unique
from ..errors import MedlibError
from . import reference
from .tables import aggregate_long

TRAIN, VAL = "-", "--"


def history_frame(runs: Iterable) -> pd.DataFrame:
    """All runs' history.csv stacked, each row tagged with the run's config fields."""
    frames = []
    for run in unique(runs):
        h = run.history.copy()
        for k, v in run.record["config"].items():
            h[k] = v
        h["run"] = run.dir.name
        frames.append(h)
    if not frames:
        raise MedlibError("No runs given.")
    return pd.concat(frames, ignore_index=True)


def _grid(n: int, width: float = 4.2, height: float = 3.2, ncols: int = 3):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def tag(field: str, value) -> str:
    """How a config value is named in legends and titles: models bare, α for mixup, field=value otherwise."""
    if field in ("model", "dataset"):
        return str(value)
    if field == "mixup_alpha":
        return f"α={value:g}"
    return f"{field.replace('_', ' ')} {value}"


def curves(
    runs: Iterable,
    metrics=("train_loss", "val_loss"),
    panel: str = "dataset",
    hue: str = "model",
    ylabel: str = "",
    title: str = "",
    ncols: int = 3,
) -> Figure:
    """One panel per value of `panel`, one colour per value of `hue`; train solid, validation dashed."""
    h = history_frame(runs)
    panels = list(dict.fromkeys(h[panel]))
    hues = list(dict.fromkeys(h[hue]))
    colours = {v: f"C{i}" for i, v in enumerate(hues)}
    fig, axes = _grid(len(panels), ncols=ncols)
    for ax, p in zip(axes, panels):
        for v in hues:
            g = h[(h[panel] == p) & (h[hue] == v)]
            if g.empty:
                continue
            for metric in metrics:
                stats = g.groupby("epoch")[metric].agg(["mean", "std", "count"]).dropna(subset=["mean"])
                if stats.empty:
                    continue  # e.g. train AUC under mixup, which has no hard labels to score
                style = VAL if metric.startswith("val") else TRAIN
                ax.plot(
                    stats.index,
                    stats["mean"],
                    style,
                    color=colours[v],
                    marker=".",
                    label=f"{tag(hue, v)} {metric.split('_')[0]}",
                )
                if (stats["count"] > 1).any():
                    ax.fill_between(
                        stats.index,
                        stats["mean"] - stats["std"].fillna(0),
                        stats["mean"] + stats["std"].fillna(0),
                        color=colours[v],
                        alpha=0.15,
                    )
        ax.set_title(tag(panel, p), fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def loss_curves(runs: Iterable, **kw) -> Figure:
    """Train (solid) and validation (dashed) loss per epoch."""
    return curves(runs, ("train_loss", "val_loss"), ylabel="loss", **kw)


def auc_curves(runs: Iterable, **kw) -> Figure:
    """Train (solid) and validation (dashed) AUC per epoch (Report 1 plotted these to pick its best epoch)."""
    return curves(runs, ("train_auc", "val_auc"), ylabel="AUC", **kw)


def model_comparison(df: pd.DataFrame, split: str = "test", metric: str = "AUC") -> Figure:
    """Bars: medlib's ResNet-18 and ResNet-50 per dataset from the records (error bar: std over seeds); markers:
    Report 1's numbers."""
    agg = aggregate_long(df, ["dataset", "model"])
    agg = agg[(agg["split"] == split) & (agg["metric"] == metric)]
    datasets = [d for d in reference.REPORT1_DATASETS if d in set(agg["dataset"])] + sorted(
        set(agg["dataset"]) - set(reference.REPORT1_DATASETS)
    )
    r1 = reference.report1()
    r1 = r1[(r1["split"] == split) & (r1["metric"] == metric)]
    fig = Figure(figsize=(max(5.0, 1.4 * len(datasets) + 2), 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(datasets))
    for i, model in enumerate(("resnet18", "resnet50")):
        a = agg[agg["model"] == model].set_index("dataset").reindex(datasets)
        err = a["std"].fillna(0) if a["std"].notna().any() else None
        ax.bar(
            x + (i - 0.5) * 0.38,
            a["mean"],
            0.36,
            yerr=err,
            color=f"C{i}",
            alpha=0.8,
            label=f"medlib {model}",
            capsize=3,
        )
        ref = r1[r1["model"] == model].set_index("dataset")["value"].reindex(datasets)
        ax.plot(x + (i - 0.5) * 0.38, ref, "k" + ("o" if i == 0 else "s"), mfc="white", label=f"Report 1 {model}")
        if split == "test":
            off = reference.official_scores(model, 28)[f"test_{metric.lower()}"].reindex(datasets)
            ax.plot(x + (i - 0.5) * 0.38, off, "x", color="0.3", label=f"official 28px {model}")
    ax.set_xticks(x, [d.replace("mnist", "") for d in datasets])
    ax.set_ylabel(f"{split} {metric}")
    lo = np.nanmin([agg["mean"].min(), r1["value"].min()])
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.legend(fontsize=8, ncols=2)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"ResNet-18 vs ResNet-50: {split} {metric}")
    return fig


def diagnosis_plot(
    runs: Iterable, label: Iterable[str] = ("model", "mixup_alpha", "fold"), ncols: int = 4, **diagnose_kw
) -> Figure:
    """Each run's train/val loss with the tail window shaded, the fitted trend lines, and its diagnosis as title."""
    runs = unique(runs)
    fig, axes = _grid(len(runs), width=3.6, height=2.8, ncols=ncols)
    for ax, run in zip(axes, runs):
        h = run.history
        d = diagnose(h, **diagnose_kw)
        lo, hi = tail_window(len(h), diagnose_kw.get("frac", 0.5), diagnose_kw.get("min_points", 3))
        ax.axvspan(h["epoch"].iloc[lo] - 0.5, h["epoch"].iloc[hi - 1] + 0.5, color="0.9")
        for col, style, trend in (("train_loss", TRAIN, d.train), ("val_loss", VAL, d.val)):
            ax.plot(
                h["epoch"],
                h[col],
                style,
                marker=".",
                color="C0" if col.startswith("train") else "C1",
                label=f"{col.split('_')[0]}: {trend.direction}",
            )
            x = h["epoch"].iloc[lo:hi].to_numpy(float)
            ax.plot(x, trend.intercept + trend.slope * x, ":", color="k", lw=1)
        cfg = run.record["config"]
        ax.set_title(" · ".join(tag(k, cfg[k]) for k in label if k in cfg) + f"\n{d.case}", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (dotted: trend over the shaded tail)", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return fig
