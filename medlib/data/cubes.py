"""Nodule-cube datasets: Report 2's shape (one labelled split "all", cubes cropped around a nodule mask,
cut into stratified folds). M3DV is the course's own; NoduleMNIST3D prepared the same way stands in for it.

Both sources (`m3dv.load_m3dv`, `nodules.load_nodulemnist3d`) share what is here: the cube recipe (options,
preparing one sample, label names) and the folds (stratified folds, one fold's train / val / test, the final
model's train / val).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MedlibError
from ..ops.augment import augment_batch
from ..ops.crop import apply_mask, crop_cube, mask_centroid
from ..tasks import BINARY
from .base import Dataset, Meta, Split

M3DV = "m3dv"
NODULE_CUBES = "nodulemnist3d-cubes"  # NoduleMNIST3D (28³ or 64³) auto-masked, cropped, folded like M3DV
CUBE_SETS = (M3DV, NODULE_CUBES)
ALL_FOLDS = -1  # `--fold all`: the final model, trained on every labelled cube

# The course gives only a 0/1 label per nodule; benign/malignant is our reading of it, not the course's words.
LABEL_NAMES = {"0": "benign", "1": "malignant"}
CENTERS = ("mask", "volume")


def cube_meta(name: str, crop: int, md5: str | None, source: str, content_md5: str | None = None) -> Meta:
    """The metadata of a set of nodule cubes (M3DV or its NoduleMNIST3D stand-in): one binary channel of crop³."""
    return Meta(
        name=name,
        task=BINARY,
        n_classes=2,
        n_channels=1,
        dims=3,
        size=crop,
        label_names=dict(LABEL_NAMES),
        md5=md5,
        source=source,
        content_md5=content_md5,
    )


def is_cube_set(name: str) -> bool:
    """True for the datasets trained by folds on cropped cubes (`--crop`, `--mask`, `--fold`)."""
    return str(name).strip().lower() in CUBE_SETS


# --- the recipe: one sample -> one cube


def check_options(crop, dilate, mask: bool, center: str) -> tuple[int, int]:
    """(crop, dilate) as ints after checking the cube options M3DV and NoduleMNIST3D share; one clear error if bad."""
    if center not in CENTERS:
        raise MedlibError(f"center must be one of {CENTERS}, not {center!r}.")
    if int(crop) != crop or crop < 1:
        raise MedlibError(f"crop must be a positive whole number of voxels, not {crop!r}.")
    if int(dilate) != dilate or dilate < 0 or (dilate and not mask):
        raise MedlibError(f"dilate={dilate!r}: use a whole number >= 0, and only together with mask=True.")
    return int(crop), int(dilate)


def prepare_sample(voxel: np.ndarray, seg: np.ndarray, crop: int, mask: bool, dilate: int, center: str) -> np.ndarray:
    """Mask (optionally dilated), then crop a cube of side `crop` around the mask centroid or the volume centre."""
    c = mask_centroid(seg) if center == "mask" else None
    return crop_cube(apply_mask(voxel, seg, dilate) if mask else voxel, crop, c)


# --- the folds: one split "all" -> train / val / test


def stratified_folds(y, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """k disjoint, sorted arrays of test indices covering all samples, each with about 1/k of every class."""
    y = np.asarray(y)
    if k < 2 or k > len(y):
        raise MedlibError(f"--folds {k} is out of range: use 2 to {len(y)} (the number of labelled samples).")
    if (y < 0).any():
        raise MedlibError("Cannot stratify unlabelled samples (label -1); load them with a labels CSV.")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for c in np.unique(y):
        # deal each class round-robin, continuing where the last class stopped so fold sizes differ by <= 1
        for idx in rng.permutation(np.flatnonzero(y == c)):
            folds[dealt % k].append(int(idx))
            dealt += 1
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def stratified_share(y: np.ndarray, pool: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices drawn from `pool`: a random `fraction` of each class (rounded), the validation split."""
    return np.sort(
        np.concatenate(
            [
                rng.permutation(pool[y[pool] == c])[: int(round(fraction * (y[pool] == c).sum()))]
                for c in np.unique(y[pool])
            ]
        )
    ).astype(np.int64)


LEAKY_COPIES = 4  # val_split "after": each cube and 3 augmented copies, pooled before validation is drawn


def leaky_split(pool: Split, val_fraction: float, seed: int, copies: int = LEAKY_COPIES) -> tuple[Split, Split]:
    """Report 2's validation split, kept to measure it: every cube of `pool` and copies-1 augmented copies of it
    (flips, 90° rotations, shifts of up to 5 voxels), shuffled, then a random share taken as validation. Views of
    one nodule then sit on both sides, so validation AUC (and the checkpoint it picks) is optimistic. Ids get
    '#k' for copy k."""
    g = torch.Generator().manual_seed(10_000 + seed)
    views = [pool.X] + [augment_batch(pool.X, flip=True, shift=5, rot90=True, generator=g) for _ in range(copies - 1)]
    ids = [f"{i}#{k}" for k in range(copies) for i in (pool.ids or range(len(pool.X)))]
    allx = Split(torch.cat(views), pool.y.repeat(copies), ids)
    order = torch.randperm(len(allx.X), generator=g)
    n_val = int(round(val_fraction * len(order)))
    return allx.subset(order[n_val:].sort().values), allx.subset(order[:n_val].sort().values)


def kfold_datasets(
    ds_all: Dataset, k: int = 5, fold: int = 0, val_fraction: float = 0.15, seed: int = 0, val_split: str = "before"
) -> Dataset:
    """train / val / test of one fold: test = fold `fold`, val = a stratified share of the rest, train = the remainder.

    The splits are disjoint sample indices drawn before any augmentation, so (unlike Report 2) no
    augmented copy of a training nodule can land in validation or test. `val_split="after"` is Report 2's way
    (leaky_split) for the train / val side; the test fold stays clean either way.
    """
    if "all" not in ds_all.splits:
        raise MedlibError(
            f"kfold_datasets needs a dataset with one split 'all' (from load_m3dv), not {list(ds_all.splits)}."
        )
    if not 0 <= fold < k:
        raise MedlibError(f"fold={fold} is out of range for k={k}; use 0..{k - 1}.")
    if not 0 <= val_fraction < 1:
        raise MedlibError(f"val_fraction={val_fraction} must be in [0, 1).")
    split = ds_all["all"]
    y = split.y.numpy()
    test = stratified_folds(y, k, seed)[fold]
    rest = np.setdiff1d(np.arange(len(y)), test)
    if val_split == "after":
        train_, val_ = leaky_split(split.subset(rest), val_fraction, seed + fold)
        return Dataset(ds_all.meta, {"train": train_, "val": val_, "test": split.subset(test)})
    val = stratified_share(y, rest, val_fraction, np.random.default_rng([seed, fold]))
    train = np.setdiff1d(rest, val)
    return Dataset(ds_all.meta, {"train": split.subset(train), "val": split.subset(val), "test": split.subset(test)})


def final_split(ds_all: Dataset, val_fraction: float = 0.15, seed: int = 0) -> Dataset:
    """train / val over all labelled samples (no test fold): val is a stratified share, only to pick the checkpoint."""
    split = ds_all["all"]
    y = split.y.numpy()
    val = stratified_share(y, np.arange(len(y)), val_fraction, np.random.default_rng(seed))
    train = np.setdiff1d(np.arange(len(y)), val)
    return Dataset(ds_all.meta, {"train": split.subset(train), "val": split.subset(val)})
