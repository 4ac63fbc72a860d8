"""Ensembles: a (weighted) average of class probabilities from several checkpoints or recorded runs.

The one family every ensemble is made with: `average` of probability arrays (`submission`'s checkpoints),
`member_scores` + `mix` for recorded runs scored on the same samples (`results.ensemble` of records, the
report's weighted ensembles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import MedlibError


def average(probs: list[np.ndarray], weights=None) -> np.ndarray:
    """Weighted mean of probability arrays of one shape; weights are normalised to sum to one."""
    if not probs:
        raise MedlibError("An ensemble needs at least one member.")
    shapes = {p.shape for p in probs}
    if len(shapes) != 1:
        raise MedlibError(f"Ensemble members disagree on the prediction shape: {sorted(shapes)}.")
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(probs) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        ones = " ".join(["1"] * len(probs))
        raise MedlibError(
            f"Ensemble weights {[float(x) for x in w]} must be {len(probs)} finite, non-negative numbers "
            f"with a positive sum (one per checkpoint), e.g. --weights {ones}."
        )
    out = np.tensordot(w / w.sum(), np.stack(probs), axes=1)
    if not np.isfinite(out).all():
        raise MedlibError(
            "An ensemble member gave NaN or infinite probabilities: its weights are not finite (its "
            "training diverged); leave that checkpoint out or retrain it with a smaller --lr."
        )
    return out


def member_scores(runs, split: str = "test") -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The recorded scores of runs evaluated on the same samples (same ids / labels, checked): the shared
    non-score columns, and each run's score array."""
    frames = [r.scores(split) for r in runs]
    key = "id" if "id" in frames[0] else None
    ref = frames[0][key].tolist() if key else None
    for f in frames[1:]:
        if (f[key].tolist() if key else len(f)) != (ref if key else len(frames[0])):
            raise MedlibError(
                f"Runs scored different {split} samples; an ensemble needs the same samples in the same order."
            )
    cols = [c for c in frames[0].columns if c.startswith("score_")]
    return frames[0].drop(columns=cols), [f[cols].to_numpy() for f in frames]


def mix(parts: tuple[pd.DataFrame, list[np.ndarray]], weights=None) -> pd.DataFrame:
    """A scores table whose scores are the weighted average of member_scores' arrays."""
    labels, probs = parts
    p = average(probs, weights)
    return labels.assign(**{f"score_{k}": p[:, k] for k in range(p.shape[1])})
