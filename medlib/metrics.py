"""AUC and ACC exactly as medmnist.Evaluator defines them, per task, on probability scores."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from .errors import MedlibError
from .tasks import BINARY, MULTILABEL


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (sklearn's `roc_auc_score`; ties count half, as in the Mann-Whitney U); nan if only one class is
    present, where sklearn would raise: a split without both classes has no AUC, and an epoch without one is
    never best."""
    y_true = np.asarray(y_true).reshape(-1).astype(bool)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    if y_true.all() or not y_true.any():
        return float("nan")
    return float(roc_auc_score(y_true, score))


def _binary_columns(y_true: np.ndarray, y_score, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (labels, scores) pairs a task's AUC averages: binary: the positive-class column; multi-class /
    ordinal: one-vs-rest per class; multi-label: per label."""
    y_score = check_scores(y_score).squeeze()
    if task == MULTILABEL:
        return [(y_true[:, i], y_score[:, i]) for i in range(y_score.shape[1])]
    if task == BINARY:
        return [(y_true, y_score[:, -1] if y_score.ndim == 2 else y_score)]
    return [(y_true == i, y_score[:, i]) for i in range(y_score.shape[1])]


def auc(y_true: np.ndarray, y_score: np.ndarray, task: str) -> float:
    """Binary: positive-class column; multi-class / ordinal: mean one-vs-rest; multi-label: mean per label."""
    y_true = np.asarray(y_true).squeeze()
    return float(np.mean([binary_auc(y, s) for y, s in _binary_columns(y_true, y_score, task)]))


def acc(y_true: np.ndarray, y_score: np.ndarray, task: str, threshold: float = 0.5) -> float:
    """Binary and multi-label: threshold at 0.5 (multi-label: mean per-label accuracy); else argmax."""
    y_true = np.asarray(y_true).squeeze()
    y_score = check_scores(y_score).squeeze()
    if task == MULTILABEL:
        return float(np.mean((y_score > threshold) == (y_true > 0.5)))
    if task == BINARY:
        score = y_score[:, -1] if y_score.ndim == 2 else y_score
        return float(np.mean((score > threshold) == y_true.astype(bool)))
    return float(np.mean(np.argmax(y_score, axis=-1) == y_true))


def check_scores(y_score) -> np.ndarray:
    """The scores as an array, refused when any is NaN or infinite: such scores come from non-finite weights, and
    ranking them as numbers would record a meaningless AUC."""
    s = np.asarray(y_score, dtype=np.float64)
    bad = int(np.size(s) - np.isfinite(s).sum())
    if bad:
        raise MedlibError(
            f"{bad} of {np.size(s)} scores are NaN or infinite, so no AUC/ACC can be computed: "
            "the model's weights are not finite (training diverged). Retrain with a smaller --lr."
        )
    return s


def evaluate(y_true, y_score, task: str) -> dict:
    """{'auc': ..., 'acc': ...} for one split; NaN or infinite scores are an error, not a number."""
    return {"auc": auc(y_true, y_score, task), "acc": acc(y_true, y_score, task)}


def check_classes(y, task: str, n_classes: int, split: str, every: bool = True) -> None:
    """Refuse a split whose AUC is undefined. With `every` (val, test) each class (each label, for multi-label) needs
    positive and negative samples, else the AUC is NaN, no epoch is ever best and no model would be kept; without
    it (train) at least two classes must be present, else there is nothing to learn."""
    y = np.asarray(y)
    if task == MULTILABEL:
        y = y.reshape(len(y), -1) > 0.5
        bad = [i for i in range(y.shape[1]) if y[:, i].all() or not y[:, i].any()]
        if len(bad) == y.shape[1] or (every and bad):
            problem = f"label(s) {bad[:5]} {'are' if len(bad) > 1 else 'is'} all 0 or all 1"
        else:
            problem = ""
    else:
        present = sorted(set(np.unique(y.reshape(-1)).tolist()))
        missing = [c for c in range(n_classes) if c not in present]
        if len(present) < 2:
            problem = f"every label is {present[0]}" if present else "it is empty"
        elif every and missing:
            problem = f"class(es) {missing[:5]} {'are' if len(missing) > 1 else 'is'} missing"
        else:
            problem = ""
    if problem:
        what = "give an AUC" if every else "train a classifier"
        raise MedlibError(
            f"The {split} split ({len(y)} samples) cannot {what}: {problem}. "
            "Use more samples (raise --max-train / --max-eval, or 0 for all) or check the labels."
        )


def scores_from_logits(logits, task: str):
    """Probabilities as Evaluator expects them: sigmoid for multi-label, softmax otherwise."""
    logits = logits.float()
    return torch.sigmoid(logits) if task == MULTILABEL else torch.softmax(logits, dim=-1)


def confusion_matrix(y_true: np.ndarray, y_score: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Counts [true class, predicted class] for a single-label task, the prediction being the argmax score
    (for a binary task with two score columns, the same as thresholding the positive one at 0.5)."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_score = check_scores(y_score)
    pred = y_score.argmax(axis=1) if y_score.ndim == 2 else (y_score.reshape(-1) > 0.5).astype(int)
    k = n_classes or max(int(y_true.max()) + 1, y_score.shape[1] if y_score.ndim == 2 else 2)
    return np.bincount(y_true * k + pred, minlength=k * k).reshape(k, k)


def bootstrap_ci(
    y_true: np.ndarray, member_scores: list[np.ndarray], task: str, n: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean AUC over members (e.g. seeds) scored on the same test samples, resampling
    the samples with replacement: how much the headline number owes to which test images happened to be drawn.

    A resample is the count of times each sample was drawn, and each AUC is computed from those counts over the
    scores sorted once (a weighted Mann-Whitney U, ties counting half): the same number as sklearn's AUC on the
    drawn samples (tests/test_outdo.py), without re-sorting 17,778 OrganAMNIST scores 500 times per class."""
    return fold_bootstrap_ci([(y_true, member_scores)], task, n, level, seed)


def fold_bootstrap_ci(
    folds: list[tuple[np.ndarray, list[np.ndarray]]], task: str, n: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """bootstrap_ci for a cross-validated figure: the mean over folds of the members' mean AUC, each fold's held-out
    samples resampled on their own (the resample keeps every fold's size). One fold is bootstrap_ci itself."""
    rng = np.random.default_rng(seed)
    per_fold = []
    for y_true, member_scores in folds:
        y_true = np.asarray(y_true).squeeze()
        m = len(y_true)
        counts = np.stack([np.bincount(rng.integers(0, m, m), minlength=m) for _ in range(n)]).astype(np.float64)
        per_member = [
            np.mean([_resampled_auc(y.astype(bool), sc, counts) for y, sc in _binary_columns(y_true, s, task)], axis=0)
            for s in member_scores
        ]
        per_fold.append(np.mean(per_member, axis=0))
    stats = np.mean(per_fold, axis=0)
    stats = stats[np.isfinite(stats)]
    lo, hi = np.percentile(stats, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _resampled_auc(pos: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC AUC of `score` for labels `pos` in each resample (a row of `counts`: times each sample was drawn);
    nan where a resample holds one class only, as binary_auc."""
    order = np.argsort(score, kind="stable")
    s, p = score[order], pos[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    w = counts[:, order]
    wp = np.add.reduceat(w * p, starts, axis=1)  # drawn positives per tied group
    wn = np.add.reduceat(w * ~p, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn  # negatives scored strictly lower
    npos, nneg = wp.sum(1), wn.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (wp * (below + 0.5 * wn)).sum(1) / (npos * nneg)
