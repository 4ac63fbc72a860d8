"""The M3DV folds as a table: samples (positives) per split of each fold. Cross-validation and ensemble tables
are computed from the records (`studies.cv_table`, `studies.ensemble_table`)."""
from __future__ import annotations

import pandas as pd

from ..data.base import Dataset
from ..data.m3dv import kfold_datasets
from .styled import StyledTable, style

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
