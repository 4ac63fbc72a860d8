"""One epoch of training and batched prediction, on tensors sliced by index (no DataLoader)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.base import normalize
from ..errors import MedlibError
from ..metrics import MULTILABEL, scores_from_logits
from ..ops.augment import augment_batch
from ..ops.mixup import hard_targets, mixup, soft_loss, soft_targets
from . import distributed
from .device import autocast
from .hardware import StepSettings, memory_format
from .memory import eval_batch_size


def task_loss(logits: torch.Tensor, y: torch.Tensor, task: str, loss: str = "auto") -> torch.Tensor:
    """Cross-entropy for binary, multi-class and ordinal; BCE-with-logits for multi-label.

    loss='bce' is Report 1's choice for its binary sets: BCE-with-logits on one-hot targets, one sigmoid per
    output. 'ce' and 'auto' agree except for multi-label, where only BCE makes sense.
    """
    logits = logits.float()
    if task == MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, F.one_hot(y, logits.shape[1]).float())
    return F.cross_entropy(logits, y)


def mixed_loss(logits: torch.Tensor, y_soft: torch.Tensor, task: str, loss: str = "auto") -> torch.Tensor:
    """The same choice of loss for soft (mixup) targets."""
    if loss == "bce" and task != MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits.float(), y_soft)
    return soft_loss(logits.float(), y_soft, task)


def prepare(xb: torch.Tensor, device: torch.device, how: StepSettings) -> torch.Tensor:
    """A batch on the device as the network takes it: scaled to float (how.scaling), in how's memory layout."""
    x = normalize(xb.to(device, non_blocking=True), how.scaling)
    if how.channels_last:
        x = x.contiguous(memory_format=memory_format(x.ndim - 2))
    return x


def _forward_loss(net, x, yb, cfg, meta, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's logits and training loss: on mixed inputs and targets under mixup (Report 2's rounded targets
    with --mixup-labels hard), else on the batch as it is."""
    if cfg.mixup_alpha > 0:
        x, y_soft, _ = mixup(x, soft_targets(yb, meta.task, meta.n_classes), cfg.mixup_alpha, generator)
        if cfg.mixup_labels == "hard":
            y_soft = hard_targets(y_soft)
        logits = net(x)
        return logits, mixed_loss(logits, y_soft, meta.task, cfg.loss)
    logits = net(x)
    return logits, task_loss(logits, yb, meta.task, cfg.loss)


def train_epoch(net, opt, X, y, cfg, meta, device, generator, how: StepSettings | None = None, bar=None) -> dict:
    """One pass over a seeded permutation; augmentation and mixup act on whole batches.

    Under DDP every rank draws the same permutation and trains on its shard with batch_size / world,
    so cfg.batch_size stays the global batch and the steps per epoch match a single process.
    `bar` (a tqdm) advances by the samples of every step, so long epochs show progress, rate and time left.
    """
    how = how or StepSettings()
    net.train()
    perm = torch.randperm(len(X), generator=generator)
    world, batch_size = distributed.world_size(), cfg.batch_size
    if world > 1:
        perm, batch_size = distributed.shard(perm, distributed.rank(), world), cfg.batch_size // world
    perm = perm.to(X.device)
    n = len(perm)
    total, count, scores, labels = 0.0, 0, [], []
    augment = cfg.flip or cfg.shift or cfg.rot90
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        if len(idx) < 2 and n > 1:
            continue  # BatchNorm cannot train on a batch of one
        xb, yb = X[idx], y[idx]
        if augment:
            xb = augment_batch(xb, flip=cfg.flip, shift=cfg.shift, rot90=cfg.rot90, generator=generator)
        x = prepare(xb, device, how)
        yb = yb.to(device, non_blocking=True)
        with autocast(device, how.precision):
            logits, loss = _forward_loss(net, x, yb, cfg, meta, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)  # stays on device: no sync per step
        count += len(idx)
        if cfg.mixup_alpha <= 0:
            scores.append(scores_from_logits(logits.detach(), meta.task))
            labels.append(yb)
        if bar is not None:
            bar.update(len(idx))
    if count == 0:
        raise MedlibError(
            f"No training step ran: {n} training samples with --batch-size {batch_size} leave no "
            "batch of 2 or more (BatchNorm needs 2); use more samples or a larger --batch-size."
        )
    total, count = distributed.all_reduce_sum([float(total), count], device)
    out = {"loss": total / max(count, 1)}
    if not math.isfinite(out["loss"]):
        raise MedlibError(
            f"The training loss became {out['loss']} (lr {opt.param_groups[0]['lr']:g}): the weights are "
            "no longer usable. Lower --lr (or check the data); the run is marked failed, not complete."
        )
    if scores:
        out["scores"] = distributed.all_gather_cat(torch.cat(scores)).cpu().numpy()
        out["labels"] = distributed.all_gather_cat(torch.cat(labels)).cpu().numpy()
    return out


@torch.no_grad()
def predict(
    net, X, device, task: str, *, batch_size: int = 0, y=None, how: StepSettings | None = None, loss: str = "auto"
) -> tuple[np.ndarray, float]:
    """Probabilities (N, K) in eval mode, plus the mean loss when labels are given (else nan).

    batch_size 0 sizes batches from a memory budget (memory.eval_batch_size), so any set fits. `how` is the
    precision and layout, as for train_epoch (default fp32, contiguous).
    """
    how = how or StepSettings()
    net.eval()
    if len(X) and batch_size <= 0:
        batch_size = eval_batch_size(net, tuple(X.shape[1:]), device)
    scores, total = [], 0.0
    for start in range(0, len(X), batch_size):
        x = prepare(X[start : start + batch_size], device, how)
        with autocast(device, how.precision):
            logits = net(x).float()
        if y is not None:
            yb = y[start : start + batch_size].to(device)
            total += float(task_loss(logits, yb, task, loss)) * len(x)
        scores.append(scores_from_logits(logits, task).cpu())
        del x, logits
    probs = torch.cat(scores).numpy() if scores else np.zeros((0, 0), np.float32)
    return probs, (total / len(X) if y is not None and len(X) else float("nan"))
