"""Load a MedMNIST npz into compact uint8 tensors with labels shaped for its task."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import MedlibError, permission_denied
from ..tasks import MULTILABEL
from . import files, registry
from .base import Dataset, Meta, Split, to_rgb

SPLITS = ("train", "val", "test")


def _to_channels_first(images: np.ndarray, dims: int) -> np.ndarray:
    """(N,H,W) -> (N,1,H,W); (N,H,W,3) -> (N,3,H,W); (N,D,H,W) -> (N,1,D,H,W)."""
    if dims == 3:
        return images[:, None]
    if images.ndim == 3:
        return images[:, None]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def read_npz(path: Path, name: str, size: int) -> dict[str, np.ndarray]:
    """Read and check the six arrays of an official file; any damage becomes one clear error."""
    name = registry.canonical(name)
    inf = registry.info(name)
    dims = 3 if registry.is_3d(name) else 2
    try:
        with np.load(path) as z:
            missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in z.files]
            if missing:
                raise MedlibError(
                    f"{path} lacks the keys {', '.join(missing)} (it has {', '.join(z.files) or 'none'}); "
                    f"it is not a MedMNIST file. Delete it and download it again from {registry.url(name, size)}."
                )
            arrays = {k: z[k] for k in z.files if k.endswith(("_images", "_labels"))}
    except PermissionError:
        raise permission_denied(path) from None
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        raise MedlibError(
            f"{path} cannot be read as an npz ({type(e).__name__}: {e}); it is truncated or damaged. "
            f"Delete it and download it again from {registry.url(name, size)}."
        ) from None
    spatial = (size,) * dims
    for s in SPLITS:
        img = arrays[f"{s}_images"]
        want_ch = inf["n_channels"]
        ok_shape = img.shape[1 : 1 + dims] == spatial and (
            img.ndim == 1 + dims if want_ch == 1 else img.shape[1 + dims :] == (want_ch,)
        )
        if not ok_shape or img.dtype != np.uint8:
            raise MedlibError(
                f"{path}: {s}_images is {img.dtype}{img.shape}, expected uint8 with spatial size "
                f"{spatial} and {want_ch} channel(s). Is this the {size}-px file of {name}?"
            )
        if len(arrays[f"{s}_labels"]) != len(img):
            raise MedlibError(f"{path}: {s}_labels and {s}_images differ in length.")
        check_labels(arrays[f"{s}_labels"], inf, f"{path}: {s}_labels", registry.url(name, size))
    return arrays


def check_labels(lab: np.ndarray, inf: dict, where: str, url: str) -> None:
    """Labels must fit the task: one class index in 0..K-1 per sample, or K 0/1 flags for multi-label. A label
    out of range would otherwise crash (or silently corrupt) training far from its cause."""
    k = len(inf["label"])
    multilabel = inf["task"] == MULTILABEL
    want = (k,) if multilabel else (1,)
    if lab.ndim not in (1, 2) or (lab.ndim == 2 and lab.shape[1:] != want) or (multilabel and lab.ndim == 1):
        raise MedlibError(
            f"{where} has shape {lab.shape}, expected (N, {want[0]}); the file is not the official one: "
            f"download it again from {url}."
        )
    hi = 1 if multilabel else k - 1
    if lab.size and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() > hi):
        bad = (lab.max() if lab.max() > hi else lab.min()).item()
        raise MedlibError(
            f"{where} holds the label {bad}, outside 0..{hi} for this {inf['task']} set; the file is "
            f"damaged or not the official one: download it again from {url}."
        )


def medmnist_meta(name: str, size: int = 28, source: str = "") -> Meta:
    """A set's Meta from the bundled INFO alone: no file is read or downloaded."""
    name = registry.canonical(name)
    inf = registry.info(name)
    return Meta(
        name=name,
        task=inf["task"],
        n_classes=len(inf["label"]),
        n_channels=inf["n_channels"],
        dims=3 if registry.is_3d(name) else 2,
        size=registry.check_size(name, size),
        label_names=dict(inf["label"]),
        md5=registry.md5(name, size),
        source=source,
    )


def load_medmnist(
    name: str, size: int = 28, root=None, download: bool = True, verify: bool = True, as_rgb: bool = False
) -> Dataset:
    """One MedMNIST set as a `Dataset` (MD5-checked; downloaded first if missing).

    The file is searched as `files.candidate_paths` says: `<root>/medmnist/`, `<root>/` (flat), then, with
    no `root` given, `$MEDMNIST_ROOT/` and `~/.medmnist/`. `as_rgb=True` repeats a grey channel 3 times.
    """
    name = registry.canonical(name)
    size = registry.check_size(name, size)
    path = files.ensure_medmnist(name, size, root, download_missing=download, verify=verify)
    arrays = read_npz(path, name, size)
    meta = medmnist_meta(name, size, str(path))
    splits = {}
    for s in SPLITS:
        X = torch.from_numpy(_to_channels_first(arrays[f"{s}_images"], meta.dims))
        lab = arrays[f"{s}_labels"]
        y = torch.from_numpy(lab.astype(np.float32) if meta.multilabel else lab.reshape(-1).astype(np.int64))
        splits[s] = Split(X, y)
    return to_rgb(Dataset(meta, splits)) if as_rgb else Dataset(meta, splits)
