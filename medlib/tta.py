"""Test-time augmentation: a trained net's P(class) averaged over symmetric views of each sample.

The views are the cube's (or square's) symmetries that training drew from (`ops.augment`): flips along each axis,
the proper rotations, or both. Every 2019 M3DV entry above 0.70 averaged such views; `studies.tta_table` measures
what they give Report 2's fold models.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from .engine.training import score_split
from .errors import MedlibError
from .ops.augment import rotate, rotations

VIEW_SETS = ("none", "flips", "rotations", "all")  # 1, 2^d, the rotation group (4 / 24), all 2^d * d! symmetries


def views(kind: str, dims: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The views of a view set as (axis permutation, axes to flip) pairs, the identity first."""
    identity = (tuple(range(dims)), ())
    if kind == "none":
        return [identity]
    if kind == "flips":
        return [(identity[0], tuple(a for a, f in enumerate(bits) if f))
                for bits in itertools.product((False, True), repeat=dims)]
    if kind == "rotations":
        return list(rotations(dims))
    if kind == "all":
        return [(perm, tuple(a for a, f in enumerate(bits) if f)) for perm in itertools.permutations(range(dims))
                for bits in itertools.product((False, True), repeat=dims)]
    raise MedlibError(f"test-time view set {kind!r} is unknown; choose one of {', '.join(VIEW_SETS)}.")


def view_scores(net, cfg, meta, X: torch.Tensor, kind: str = "flips", device="cpu",
                precision: str | None = None) -> dict:
    """P(class) (N, K) of every view of `kind`, keyed by the view, each scored as `training.score_split` scores a
    split; a subset's test-time average is the mean of its views' (what `studies.tta_table` uses: one pass)."""
    if kind != "none" and len({*X.shape[2:]}) != 1:
        raise MedlibError(f"test-time views need equal sides, not {tuple(X.shape[2:])}.")
    return {v: score_split(net, cfg, meta, rotate(X, *v).contiguous(), device=device, precision=precision)[0]
            for v in views(kind, X.ndim - 2)}


def tta_scores(net, cfg, meta, X: torch.Tensor, kind: str = "flips", device="cpu",
               precision: str | None = None) -> np.ndarray:
    """P(class) (N, K) averaged over the views of `kind`."""
    return np.mean(list(view_scores(net, cfg, meta, X, kind, device, precision).values()), axis=0)
