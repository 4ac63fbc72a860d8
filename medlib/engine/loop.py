"""One epoch of training and batched prediction, on tensors sliced by index (no DataLoader)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.base import normalize
from ..metrics import MULTILABEL, scores_from_logits
from . import distributed
from .device import autocast


def task_loss(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """BCE-with-logits for multi-label; cross-entropy for binary, multi-class and ordinal (Report 1)."""
    logits = logits.float()
    if task == MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y)


def prepare(xb: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = normalize(xb.to(device, non_blocking=True))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if x.ndim == 4 else torch.channels_last_3d)
    return x


def train_epoch(net, opt, X, y, cfg, meta, device, generator) -> dict:
    """One pass over a seeded permutation; augmentation and mixup act on whole batches.

    Under DDP every rank draws the same permutation and trains on its shard with batch_size / world,
    so cfg.batch_size stays the global batch and the steps per epoch match a single process.
    """
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
            from ..ops.augment import augment_batch

            xb = augment_batch(xb, flip=cfg.flip, shift=cfg.shift, rot90=cfg.rot90, generator=generator)
        x = prepare(xb, device, cfg.channels_last)
        yb = yb.to(device, non_blocking=True)
        with autocast(device, cfg.amp):
            if cfg.mixup_alpha > 0:
                from ..ops.mixup import mixup, soft_loss, soft_targets

                x, y_soft, _ = mixup(x, soft_targets(yb, meta.task, meta.n_classes), cfg.mixup_alpha, generator)
                logits = net(x)
                loss = soft_loss(logits.float(), y_soft, meta.task)
            else:
                logits = net(x)
                loss = task_loss(logits, yb, meta.task)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)  # stays on device: no sync per step
        count += len(idx)
        if cfg.mixup_alpha <= 0:
            scores.append(scores_from_logits(logits.detach(), meta.task))
            labels.append(yb)
    total, count = distributed.all_reduce_sum([float(total), count], device)
    out = {"loss": total / max(count, 1)}
    if scores:
        out["scores"] = distributed.all_gather_cat(torch.cat(scores)).cpu().numpy()
        out["labels"] = distributed.all_gather_cat(torch.cat(labels)).cpu().numpy()
    return out


@torch.no_grad()
def predict(net, X, device, task: str, batch_size: int = 1024, y=None, amp: bool = True,
            channels_last: bool = False) -> tuple[np.ndarray, float]:
    """Probabilities (N, K) in eval mode, plus the mean loss when labels are given (else nan)."""
    net.eval()
    scores, total = [], 0.0
    for start in range(0, len(X), batch_size):
        x = prepare(X[start : start + batch_size], device, channels_last)
        with autocast(device, amp):
            logits = net(x).float()
        if y is not None:
            yb = y[start : start + batch_size].to(device)
            total += float(task_loss(logits, yb, task)) * len(x)
        scores.append(scores_from_logits(logits, task).cpu())
    probs = torch.cat(scores).numpy() if scores else np.zeros((0, 0), np.float32)
    return probs, (total / len(X) if y is not None and len(X) else float("nan"))
