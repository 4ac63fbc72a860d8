"""Test-time augmentation: a trained net's P(class) averaged over symmetric views of each sample.

The views are the cube's (or square's) symmetries that training drew from (`ops.augment`): flips along each axis,
the proper rotations, or all 48. Every 2019 M3DV entry above 0.70 averaged such views; `report.tables.tta_table`
measures what they give Report 2's shipped fold models, from the per-view scores `write_view_scores` keeps beside
each record (28 views of 75 cubes cost minutes on a CPU; the table then costs nothing).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import atomic
from .engine.training import score_split
from .errors import MedlibError
from .ops.augment import rotate, rotations

VIEW_SETS = ("none", "flips", "rotations")  # 1, 2^d, the rotation group (4 / 24); "all" (2^d * d!) on request
VIEW_SCORES = "tta_test_scores.csv.gz"  # beside a shipped record: P(class 1) of each test sample under each view


def views(kind: str, dims: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The views of a view set as (axis permutation, axes to flip) pairs, the identity first."""
    identity = (tuple(range(dims)), ())
    if kind == "none":
        return [identity]
    if kind == "flips":
        return [
            (identity[0], tuple(a for a, f in enumerate(bits) if f))
            for bits in itertools.product((False, True), repeat=dims)
        ]
    if kind == "rotations":
        return list(rotations(dims))
    if kind == "all":
        return [
            (perm, tuple(a for a, f in enumerate(bits) if f))
            for perm in itertools.permutations(range(dims))
            for bits in itertools.product((False, True), repeat=dims)
        ]
    raise MedlibError(f"test-time view set {kind!r} is unknown; choose one of {', '.join(VIEW_SETS)}.")


def view_scores(net, cfg, meta, X: torch.Tensor, kinds="flips", device="cpu", precision: str | None = None) -> dict:
    """P(class) (N, K) of every distinct view of `kinds` (one view set or several), keyed by the view, each scored
    as `training.score_split` scores a split; a set's test-time average is the mean of its views'."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if kinds != ("none",) and len({*X.shape[2:]}) != 1:
        raise MedlibError(f"test-time views need equal sides, not {tuple(X.shape[2:])}.")
    unique = dict.fromkeys(v for k in kinds for v in views(k, X.ndim - 2))
    return {
        v: score_split(net, cfg, meta, rotate(X, *v).contiguous(), device=device, precision=precision)[0]
        for v in unique
    }


def tta_scores(
    net, cfg, meta, X: torch.Tensor, kind: str = "flips", device="cpu", precision: str | None = None
) -> np.ndarray:
    """P(class) (N, K) averaged over the views of `kind`."""
    return np.mean(list(view_scores(net, cfg, meta, X, kind, device, precision).values()), axis=0)


def view_name(view: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    """A view as a column name: the axis order, then the flipped axes, e.g. '021-f0' ('012-f' is the identity)."""
    perm, flips = view
    return "".join(map(str, perm)) + "-f" + "".join(map(str, flips))


def write_view_scores(folder, net, cfg, meta, X, ids, labels, kinds=VIEW_SETS, precision: str | None = None):
    """Score the test samples under every view of `kinds` once and keep P(class 1) per view beside the record
    (VIEW_SCORES: id, label, one column per view), so the TTA table is read, not recomputed."""
    df = pd.DataFrame({"id": [str(i) for i in ids], "label": np.asarray(labels).astype(int)})
    for v, p in view_scores(net, cfg, meta, X, kinds, precision=precision).items():
        df[view_name(v)] = p[:, 1]
    path = Path(folder) / VIEW_SCORES
    with atomic.atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, compression="gzip", float_format="%.6g")
    return path


def read_view_scores(folder) -> pd.DataFrame | None:
    """The per-view test scores kept beside a record (write_view_scores), or None where there are none."""
    path = Path(folder) / VIEW_SCORES
    return pd.read_csv(path, dtype={"id": str}) if path.is_file() else None
