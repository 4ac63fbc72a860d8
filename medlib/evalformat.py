"""Scores in MedMNIST's own evaluation format, so `medmnist.Evaluator.parse_and_evaluate` can re-check them.

The official file name carries the flag, size, split and metrics; the body is one row per sample of the
split, in dataset order: the sample's index, then its scores, with no header:

    {flag}[_{size}]_{split}_[AUC]{auc:.3f}_[ACC]{acc:.3f}@{run}.csv
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .data import registry
from .errors import MedlibError


def evaluator_file_name(flag: str, size: int, split: str, auc: float, acc: float, run_id) -> str:
    """The name `Evaluator.get_standard_evaluation_filename` would give (size 28 has no size part)."""
    flag = registry.canonical(flag)
    size = registry.check_size(flag, size)
    if split not in ("train", "val", "test"):
        raise MedlibError(f"Split '{split}' is not one of train, val, test.")
    # The parser splits the run off at '@' and drops everything after the first '.'; keep it intact.
    run = re.sub(r"[@./\\\s]", "-", str(run_id)) or "0"
    size_flag = "" if size == 28 else f"_{size}"
    return f"{flag}{size_flag}_{split}_[AUC]{auc:.3f}_[ACC]{acc:.3f}@{run}.csv"


def write_evaluator_csv(folder, flag: str, size: int, split: str, probs, auc: float, acc: float, run_id) -> Path | None:
    """Write one split's scores as an official evaluation file in `folder`; return its path.

    Returns None, writing nothing, where the official Evaluator could not check the file: a dataset that is
    not one of the MedMNIST sets (M3DV), a size with no official file (a 32³ crop), or a split whose row count
    differs from the official one (the quick profile's subsets, folds), since the Evaluator compares row by row
    with the official labels.
    """
    try:
        flag = registry.canonical(flag)
        registry.check_size(flag, size)
    except MedlibError:
        return None
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = probs[:, None]
    if len(probs) != registry.info(flag)["n_samples"].get(split, -1):
        return None
    path = Path(folder) / evaluator_file_name(flag, size, split, auc, acc, run_id)
    atomic.write_text(path, pd.DataFrame(probs).to_csv(header=False))
    return path
