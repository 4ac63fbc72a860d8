"""The confusion-matrix figure of a chosen run (counts and row-normalised); its table is `tables.confusion_table`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .tables import confusion_table


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
