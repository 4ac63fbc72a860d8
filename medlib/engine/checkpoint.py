"""Checkpoints as plain dicts of tensors and primitives: atomic to write, `weights_only=True` to read."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from .. import io
from ..errors import MedlibError


def save(path, *, model, optimizer=None, scheduler=None, epoch: int, best_score: float, best_epoch: int,
         config, meta, history: list | None = None, generator: torch.Generator | None = None) -> None:
    """Everything needed to resume or to predict: weights, optimiser, epoch, best score, config, metadata."""
    net = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    net = getattr(net, "module", net)  # unwrap DDP
    state = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch, "best_score": best_score, "best_epoch": best_epoch,
        "config": asdict(config), "meta": asdict(meta), "history": history or [],
        "rng": generator.get_state() if generator is not None else None,
    }
    io.torch_save(state, path)


def load(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise MedlibError(f"Checkpoint {path} does not exist; pass a best.pt / last.pt from a run folder.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise MedlibError(f"Checkpoint {path} cannot be read ({type(e).__name__}: {e}); is it a medlib checkpoint?") from None


def load_model(path, map_location="cpu"):
    """(net in eval mode, TrainConfig, Meta) rebuilt from a checkpoint alone."""
    from ..config import TrainConfig
    from ..data.base import Meta
    from ..models import build_model

    ck = load(path, map_location)
    cfg, meta = TrainConfig(**ck["config"]), Meta(**ck["meta"])
    net = build_model(cfg.model, meta.n_channels, meta.n_classes, stem=cfg.stem)
    net.load_state_dict(ck["model"])
    return net.eval(), cfg, meta
