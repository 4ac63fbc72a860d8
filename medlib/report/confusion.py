"""Confusion matrices of a chosen run on its test split: counts and row-normalised, with the classes' names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data import registry
from ..engine.runs import Run
from ..metrics import confusion_matrix
from ..results import select
from ..tasks import MULTILABEL


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


def confusion_figure(row: pd.Series, split: str = "test") -> Figure:
    """Counts and row-normalised (recall per true class) side by side for one run."""
    counts = confusion_table(row, split)
    rates = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    k = len(counts)
    side = 2.2 + 0.42 * k
    fig = Figure(figsize=(2 * side + 1.5, side), layout="constrained")
    for ax, values, title, fmt in zip(
        fig.subplots(1, 2), (counts, rates), ("counts", "row-normalised (recall)"), ("{:.0f}", "{:.2f}")
    ):
        im = ax.imshow(values.to_numpy(float), cmap="Blues", vmin=0, vmax=None if values is counts else 1)
        for (i, j), v in np.ndenumerate(values.to_numpy(float)):
            if not np.isnan(v):
                dark = v > 0.6 * np.nanmax(values.to_numpy(float))
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(k), counts.columns, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(k), counts.index, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    acc = np.trace(counts.to_numpy()) / counts.to_numpy().sum()
    recipe = {"report1": "Report 1's recipe", "medmnist2d": "Report 1's recipe", "tuned": "medlib's recipe"}
    how = recipe.get(row["study"], row["study"])
    fig.suptitle(
        f"{row['dataset']} {split}: {row['model']}, {how}, seed {row['seed']} "
        f"(best validation AUC {row['val_auc']:.3f}); ACC {acc:.3f}, n = {counts.to_numpy().sum()}",
        fontsize=9,
    )
    return fig
