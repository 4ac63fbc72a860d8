"""Lung nodules for Report 2 wherever you are: the M3DV course data if it is here, else NoduleMNIST3D.

M3DV (SJTU EE369) cannot be downloaded; NoduleMNIST3D (LIDC-IDRI nodules, benign / malignant, 28³ or 64³)
can, MD5-checked like every MedMNIST file. It has no masks, so `medlib.ops.crop.auto_mask` makes one per
volume (the bright component nearest the centre) for the same crop-around-the-mask and masking steps.
Either way the result has the shape `load_m3dv` gives: one split "all" (uint8 cubes, int64 labels, ids),
so `cubes.kfold_datasets` and the training loop take it unchanged; `meta.name` says which data it is
("m3dv" or "nodulemnist3d") and `meta.source` the folder or file it was read from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import MedlibError
from ..ops.crop import auto_mask
from . import registry
from .base import Dataset, Split
from .cubes import M3DV, NODULE_CUBES, check_options, cube_meta, prepare_sample
from .m3dv import default_folder, load_m3dv, load_sample, read_labels
from .medmnist import SPLITS, load_medmnist

FALLBACK = "nodulemnist3d"
SOURCES = ("auto", M3DV, FALLBACK)


def m3dv_present(folder=None) -> bool:
    """True when the M3DV folder exists and holds at least one sample file."""
    folder = Path(folder) if folder is not None else default_folder()
    return folder.is_dir() and any(folder.glob("*.npz"))


def prepare_volumes(
    volumes: np.ndarray, crop: int = 32, mask: bool = True, dilate: int = 0, center: str = "mask"
) -> np.ndarray:
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


def load_nodulemnist3d(
    size: int = 28,
    crop: int = 32,
    mask: bool = True,
    dilate: int = 0,
    center: str = "mask",
    official_splits: bool = False,
    root=None,
    download: bool = True,
    verify: bool = True,
) -> Dataset:
    """NoduleMNIST3D prepared like M3DV. One split "all" (train, then val, then test; ids `train_0`, ...), or
    with `official_splits=True` the official train / val / test."""
    crop, dilate = check_options(crop, dilate, mask, center)
    raw = load_medmnist(FALLBACK, size, root=root, download=download, verify=verify)
    splits = {}
    for s in SPLITS:
        X = prepare_volumes(raw[s].X[:, 0].numpy(), crop, mask, dilate, center)
        splits[s] = Split(torch.from_numpy(X), raw[s].y.clone(), [f"{s}_{i}" for i in range(len(X))])
    if not official_splits:
        splits = {
            "all": Split(
                torch.cat([splits[s].X for s in SPLITS]),
                torch.cat([splits[s].y for s in SPLITS]),
                [i for s in SPLITS for i in splits[s].ids],
            )
        }
    meta = cube_meta(FALLBACK, crop, registry.md5(FALLBACK, size), raw.meta.source)
    return Dataset(meta, splits)


def load_nodules(
    source: str = "auto",
    crop: int = 32,
    mask: bool = True,
    dilate: int = 0,
    center: str = "mask",
    folder=None,
    size: int = 28,
    root=None,
    download: bool = True,
    **m3dv_kw,
) -> Dataset:
    """Report 2's nodules: M3DV when its folder holds samples (source='auto' or 'm3dv'), else NoduleMNIST3D
    (source='auto' or 'nodulemnist3d'; `size` 28 or 64, downloaded if missing), prepared the same way.

    Read `meta.name` / `meta.source` to know which was used. Extra keywords go to `load_m3dv`.
    """
    if source not in SOURCES:
        raise MedlibError(f"source must be one of {', '.join(SOURCES)}, not {source!r}.")
    if source == M3DV or (source == "auto" and m3dv_present(folder)):
        return load_m3dv(folder, crop=crop, mask=mask, dilate=dilate, center=center, **m3dv_kw)
    return load_nodulemnist3d(size, crop, mask, dilate, center, root=root, download=download)


# What the notebooks show of one nodule, from either source: the raw volume, its mask and its label.
M3DV_EXAMPLES = ("candidate1", "candidate2")  # a benign and a malignant nodule; candidate1 is also in full_size/


def source(folder=None) -> str:
    """'m3dv' when the course data is here, else 'nodulemnist3d' (what `load_nodules()` will read)."""
    return M3DV if m3dv_present(folder) else FALLBACK


def training_dataset(folder=None) -> str:
    """The config `dataset` for Report 2's recipe on whichever nodules are here: 'm3dv' or 'nodulemnist3d-cubes'."""
    return M3DV if m3dv_present(folder) else NODULE_CUBES


def notice(folder=None, size: int = 28) -> str:
    """One sentence for a notebook: which nodules it shows, and where the other ones come from."""
    if m3dv_present(folder):
        return f"Nodules: M3DV, the EE369 course data ({Path(folder or default_folder()).name}/ under the data root)."
    return (
        f"M3DV (the EE369 course data, not downloadable) is not under {default_folder()}; this notebook uses "
        f"NoduleMNIST3D instead (LIDC-IDRI lung nodules, {size}³, benign / malignant, MD5-checked download), "
        "with masks from `auto_mask`. Put M3DV there (see data/README.md) to see the course's nodules."
    )


def raw_labels(size: int = 28, folder=None) -> dict[str, int]:
    """{id: 0/1} of every labelled nodule: M3DV's CSV, else NoduleMNIST3D's ids (`train_0`, ...) in load order."""
    if m3dv_present(folder):
        return read_labels(labels_csv(folder))
    raw = load_medmnist(FALLBACK, size)
    return {f"{s}_{i}": int(y) for s in SPLITS for i, y in enumerate(raw[s].y.view(-1).tolist())}


def examples(name: str = "", other: str = "", size: int = 28, folder=None) -> tuple[str, str]:
    """Two nodules with different labels to show: the ones asked for on M3DV (default candidate1 / candidate2),
    else the first benign and the first malignant NoduleMNIST3D training volume (M3DV's names do not exist there)."""
    if m3dv_present(folder):
        return name or M3DV_EXAMPLES[0], other or M3DV_EXAMPLES[1]
    labels = raw_labels(size)
    first = {c: next((k for k, v in labels.items() if v == c), None) for c in (0, 1)}
    if None in first.values():
        raise MedlibError(
            f"NoduleMNIST3D ({size}³) here holds only one label; its file may be damaged: delete it "
            "to download it again."
        )
    return first[0], first[1]


def raw_sample(name: str, size: int = 28, folder=None) -> tuple[np.ndarray, np.ndarray]:
    """(voxel uint8, seg bool) of one nodule before cropping: M3DV's file, or a NoduleMNIST3D volume with its
    `auto_mask` (the bright component nearest the centre)."""
    if m3dv_present(folder):
        return load_sample(Path(folder or default_folder()) / f"{name}.npz")
    split, _, index = name.partition("_")
    raw = load_medmnist(FALLBACK, size)
    if split not in SPLITS or not index.isdigit() or int(index) >= len(raw[split]):
        raise MedlibError(
            f"{name!r} is not a NoduleMNIST3D id; use <split>_<index>, e.g. train_0 (train has {len(raw['train'])})."
        )
    vol = raw[split].X[int(index), 0].numpy()
    return vol, auto_mask(vol)


def full_size_sample(name: str, folder=None) -> tuple[np.ndarray, np.ndarray] | None:
    """M3DV's original 100³ cube of `name` from full_size/, or None where it is not (NoduleMNIST3D has none)."""
    full = full_size_folder(folder)
    path = full / f"{name}.npz" if full is not None else None
    return load_sample(path) if path is not None and path.is_file() else None


def full_size_folder(folder=None) -> Path | None:
    """M3DV's full_size/ folder (the cubes a submission scores here), or None where M3DV is not."""
    path = Path(folder or default_folder()).parent / "full_size"
    return path if m3dv_present(folder) and path.is_dir() else None


def labels_csv(folder=None) -> Path:
    """M3DV's labels CSV beside its sample folder."""
    return Path(folder or default_folder()).with_suffix(".csv")
