"""Lung nodules for Report 2 wherever you are: the M3DV course data if it is here, else NoduleMNIST3D.

M3DV (SJTU EE369) cannot be downloaded; NoduleMNIST3D (LIDC-IDRI nodules, benign / malignant, 28³ or 64³)
can, MD5-checked like every MedMNIST file. It has no masks, so `medlib.ops.crop.auto_mask` makes one per
volume (the bright component nearest the centre) for the same crop-around-the-mask and masking steps.
Either way the result has the shape `load_m3dv` gives: one split "all" (uint8 cubes, int64 labels, ids),
so `kfold_datasets` and the training loop take it unchanged; `meta.name` says which data it is
("m3dv" or "nodulemnist3d") and `meta.source` the folder or file it was read from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import MedlibError
from ..ops.crop import auto_mask
from . import registry
from .base import Dataset, Meta, Split
from .m3dv import CENTERS, LABEL_NAMES, default_folder, load_m3dv, prepare_sample
from .medmnist import SPLITS, load_medmnist

FALLBACK = "nodulemnist3d"
SOURCES = ("auto", "m3dv", FALLBACK)


def m3dv_present(folder=None) -> bool:
    """True when the M3DV folder exists and holds at least one sample file."""
    folder = Path(folder) if folder is not None else default_folder()
    return folder.is_dir() and any(folder.glob("*.npz"))


def prepare_volumes(volumes: np.ndarray, crop: int = 32, mask: bool = True, dilate: int = 0,
                    center: str = "mask") -> np.ndarray:
    """(N, n, n, n) uint8 volumes without masks -> (N, 1, crop, crop, crop): auto-mask, then M3DV's recipe.

    A volume whose auto-mask is empty (nothing above Otsu's level) is cropped around its centre, unmasked.
    """
    out = np.empty((len(volumes), 1) + (crop,) * 3, dtype=np.uint8)
    for i, vol in enumerate(volumes):
        seg = auto_mask(vol)
        if not seg.any():
            seg = np.ones(vol.shape, dtype=bool)
        out[i, 0] = prepare_sample(vol, seg, crop, mask, dilate, center)
    return out


def load_nodulemnist3d(size: int = 28, crop: int = 32, mask: bool = True, dilate: int = 0, center: str = "mask",
                       official_splits: bool = False, root=None, download: bool = True,
                       verify: bool = True) -> Dataset:
    """NoduleMNIST3D prepared like M3DV. One split "all" (train, then val, then test; ids `train_0`, ...), or
    with `official_splits=True` the official train / val / test."""
    if center not in CENTERS:
        raise MedlibError(f"center must be one of {CENTERS}, not {center!r}.")
    if int(crop) != crop or crop < 1 or int(dilate) != dilate or dilate < 0 or (dilate and not mask):
        raise MedlibError(f"crop={crop!r}, dilate={dilate!r}: use a positive crop and a dilate >= 0 (only with mask).")
    raw = load_medmnist(FALLBACK, size, root=root, download=download, verify=verify)
    splits = {}
    for s in SPLITS:
        X = prepare_volumes(raw[s].X[:, 0].numpy(), int(crop), mask, int(dilate), center)
        splits[s] = Split(torch.from_numpy(X), raw[s].y.clone(), [f"{s}_{i}" for i in range(len(X))])
    if not official_splits:
        splits = {"all": Split(torch.cat([splits[s].X for s in SPLITS]), torch.cat([splits[s].y for s in SPLITS]),
                               [i for s in SPLITS for i in splits[s].ids])}
    meta = Meta(name=FALLBACK, task="binary-class", n_classes=2, n_channels=1, dims=3, size=int(crop),
                label_names=dict(LABEL_NAMES), md5=registry.md5(FALLBACK, size), source=raw.meta.source)
    return Dataset(meta, splits)


def load_nodules(source: str = "auto", crop: int = 32, mask: bool = True, dilate: int = 0, center: str = "mask",
                 folder=None, size: int = 28, root=None, download: bool = True, **m3dv_kw) -> Dataset:
    """Report 2's nodules: M3DV when its folder holds samples (source='auto' or 'm3dv'), else NoduleMNIST3D
    (source='auto' or 'nodulemnist3d'; `size` 28 or 64, downloaded if missing), prepared the same way.

    Read `meta.name` / `meta.source` to know which was used. Extra keywords go to `load_m3dv`.
    """
    if source not in SOURCES:
        raise MedlibError(f"source must be one of {', '.join(SOURCES)}, not {source!r}.")
    if source == "m3dv" or (source == "auto" and m3dv_present(folder)):
        return load_m3dv(folder, crop=crop, mask=mask, dilate=dilate, center=center, **m3dv_kw)
    return load_nodulemnist3d(size, crop, mask, dilate, center, root=root, download=download)
