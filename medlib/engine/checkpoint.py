"""Checkpoints as plain dicts of tensors and primitives: atomic to write, `weights_only=True` to read."""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import torch

from .. import atomic
from ..config import TrainConfig
from ..data.base import Meta
from ..data.cubes import M3DV
from ..errors import MedlibError, permission_denied
from ..models import build_model


def save(
    path,
    *,
    model: torch.nn.Module | dict,
    optimizer=None,
    scheduler=None,
    epoch: int,
    best_score: float,
    best_epoch: int,
    config,
    meta,
    history: list | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Everything needed to resume or to predict: weights, optimiser, epoch, best score, config, metadata.

    `model` is the network, or a state dict already taken from it (best.pt: the best epoch's weights)."""
    if isinstance(model, dict):
        weights = model
    else:
        net = getattr(model, "_orig_mod", model)  # unwrap torch.compile
        weights = getattr(net, "module", net).state_dict()  # unwrap DDP
    state = {
        "model": weights,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "best_score": best_score,
        "best_epoch": best_epoch,
        "config": asdict(config),
        "meta": asdict(meta),
        "history": history or [],
        "rng": generator.get_state() if generator is not None else None,
    }
    atomic.torch_save(state, path)


REQUIRED = ("model", "config", "meta")
WEIGHTS_NAME = "weights.pt"  # what a results folder ships of a run: see save_weights


def save_weights(src, dst) -> None:
    """A checkpoint cut to what predicting needs (weights, config, data description, best epoch): no optimiser, RNG
    or history, so about a third of best.pt; any medlib reader (`load_model`, `predict`) takes it as it is."""
    ck = load(src)
    atomic.torch_save({k: ck[k] for k in (*REQUIRED, "best_epoch", "best_score") if k in ck}, dst)


def load(path, map_location="cpu", hint: str | None = None) -> dict:
    """A medlib checkpoint as a dict; anything else (a damaged file, a plain state_dict, a bare tensor) is one error."""
    path = Path(path)
    if hint is None:  # a run folder's own last.pt is read to resume: the fix is to start the run over
        hint = (
            "train with --fresh to discard it and start the run again"
            if path.name == "last.pt"
            else "pass a best.pt / last.pt from a run folder"
        )
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise MedlibError(f"Checkpoint {path} {what}; {hint}.")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise permission_denied(path, "Checkpoint ") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        if isinstance(e, pickle.UnpicklingError) and "unsupported global" in str(e).lower():  # a class, a function
            raise MedlibError(
                f"Checkpoint {path} holds Python objects other than tensors and numbers (a pickle that "
                "can run code as it loads); medlib reads only tensors, and such a file must not be "
                f"loaded any other way; {hint}."
            ) from None
        reason = str(e).splitlines()[0] if str(e) else ""
        raise MedlibError(
            f"Checkpoint {path} cannot be read ({type(e).__name__}: {reason}); it is damaged or not a "
            f"medlib checkpoint; {hint}."
        ) from None
    if not isinstance(ck, dict) or any(k not in ck for k in REQUIRED):
        if isinstance(ck, dict) and ck and all(isinstance(v, torch.Tensor) for v in ck.values()):
            what = "only weights (a plain state_dict), without the config and data description medlib needs"
        else:
            what = f"a {type(ck).__name__}, not a medlib checkpoint (a dict with {', '.join(REQUIRED)})"
        raise MedlibError(f"Checkpoint {path} holds {what}; {hint}.")
    return ck


def load_model(path, map_location="cpu"):
    """(net in eval mode, TrainConfig, Meta) rebuilt from a checkpoint alone."""
    ck = load(path, map_location)
    try:
        cfg, meta = TrainConfig(**ck["config"]), Meta(**ck["meta"])
        net = build_model(cfg.model, meta.n_channels, meta.n_classes, stem=cfg.stem)
    except (TypeError, ValueError, KeyError, MedlibError) as e:
        raise MedlibError(
            f"Checkpoint {path} has a config medlib cannot rebuild a network from ({e}); was it made by "
            "another medlib version? Retrain it, or load it with that version."
        ) from None
    try:
        net.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise MedlibError(
            f"Checkpoint {path}: its weights do not fit the {cfg.model} ({meta.n_channels} channel(s), "
            f"{meta.n_classes} classes) its config describes ({first[:160]}); the file was altered or "
            "mixed from two runs. Use the checkpoint from the run folder itself."
        ) from None
    return net.eval(), cfg, meta


def check_compatible(path, trained, data) -> None:
    """Refuse to evaluate a checkpoint on data of another shape or task (it would crash or mean nothing), and an
    M3DV checkpoint on other M3DV data: its fold split would then put training samples in the test split."""
    for what, a, b in (
        ("dimensions", trained.dims, data.dims),
        ("channels", trained.n_channels, data.n_channels),
        ("classes", trained.n_classes, data.n_classes),
        ("task", trained.task, data.task),
    ):
        if a != b:
            raise MedlibError(
                f"Checkpoint {path} was trained on {trained.name} ({what}: {a}) but {data.name} has "
                f"{what} {b}; evaluate it on a dataset like the one it was trained on."
            )
    if trained.name == M3DV == data.name and trained.md5 and data.md5 and trained.md5 != data.md5:
        raise MedlibError(
            f"Checkpoint {path} was trained on M3DV data with MD5 {trained.md5}, but the data under "
            f"MEDLIB_DATA has MD5 {data.md5}: its folds would mix training samples into --split. Point "
            "MEDLIB_DATA at the data it was trained on, or use `medlib predict` for new samples."
        )
