"""Mixup (Zhang et al. 2018) on whole batches with soft targets, and the loss that accepts them.

Report 2 cast mixed labels back to hard 0/1, which undoes mixup's label smoothing; here targets stay
probabilities from start to loss.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MedlibError
from ..tasks import MULTILABEL, TASKS


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise MedlibError(f"Unknown task {task!r}; expected one of {', '.join(TASKS)}.")


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """λ ~ Beta(α, α); α <= 0 turns mixup off (λ = 1)."""
    if alpha <= 0:
        return 1.0
    # torch's Beta takes no generator: seed numpy's from it, so one torch seed fixes λ too
    dev = generator.device if generator is not None else "cpu"
    seed = int(torch.randint(2**62, (1,), generator=generator, device=dev))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None):
    """(λx + (1-λ)x[perm], λy + (1-λ)y[perm], λ) for a random permutation; y must be soft float targets (N, K)."""
    if not x.is_floating_point() or not y.is_floating_point():
        raise MedlibError(
            f"mixup needs float inputs and soft float targets (see soft_targets), got {x.dtype} and {y.dtype}."
        )
    if len(x) != len(y):
        raise MedlibError(f"mixup got {len(x)} inputs but {len(y)} targets.")
    lam = sample_lambda(alpha, generator)
    dev = generator.device if generator is not None else "cpu"
    perm = torch.randperm(len(x), generator=generator, device=dev).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm.to(y.device)], lam


def hard_targets(y_soft: torch.Tensor) -> torch.Tensor:
    """Mixed targets rounded back to one-hot 0/1 (the class with the larger share; a tie goes to the first), as
    Report 2's code did: what mixup's label interpolation gave is thrown away, the mixed input is kept."""
    return F.one_hot(y_soft.argmax(1), y_soft.shape[1]).to(y_soft.dtype)


def soft_targets(y: torch.Tensor, task: str, n_classes: int) -> torch.Tensor:
    """Int labels (N,) -> one-hot float (N, K); multi-label (N, L) targets pass through as float."""
    _check_task(task)
    if task == MULTILABEL:
        if y.ndim != 2 or y.shape[1] != n_classes:
            raise MedlibError(f"Multi-label targets must be (N, {n_classes}), not {tuple(y.shape)}.")
        return y.float()
    if y.ndim != 1 or y.is_floating_point():
        raise MedlibError(f"Single-label targets must be integer class indices (N,), not {y.dtype} {tuple(y.shape)}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise MedlibError(f"Labels must lie in [0, {n_classes}), found {int(y.min())}..{int(y.max())}.")
    return F.one_hot(y, n_classes).float()


def soft_loss(logits: torch.Tensor, y_soft: torch.Tensor, task: str) -> torch.Tensor:
    """Batch-mean cross-entropy against probability targets; BCE-with-logits for multi-label."""
    _check_task(task)
    if logits.shape != y_soft.shape:
        raise MedlibError(
            f"Logits {tuple(logits.shape)} and soft targets {tuple(y_soft.shape)} must have the same shape."
        )
    if task == MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits, y_soft)
    return F.cross_entropy(logits, y_soft)
