"""Turn a config into train / val / test splits: load, cut the cube folds (`data.cubes`), take quick-profile subsets."""

from __future__ import annotations

import torch

from ..config import CUBE_FIELDS
from ..data import load_medmnist, registry
from ..data.base import Dataset, Split
from ..data.cubes import ALL_FOLDS, M3DV, final_split, is_cube_set, kfold_datasets, stratified_folds
from ..data.files import data_root
from ..data.medmnist import medmnist_meta
from ..data.nodules import FALLBACK, load_nodules
from ..errors import MedlibError
from ..metrics import check_classes


def seeded_subset(split, n: int, seed: int):
    """A seeded random subset of n samples (all if n <= 0 or n >= len)."""
    if n <= 0 or n >= len(split):
        return split
    g = torch.Generator().manual_seed(seed)
    return split.subset(torch.randperm(len(split), generator=g)[:n].sort().values)


def load_for_config(cfg, check: bool = True) -> Dataset:
    """The dataset a config asks for, with the train/val/test splits the loop uses.

    `check` refuses splits whose AUC would be undefined (see metrics.check_classes): for training, where such a
    split would keep no model and record NaN as a result."""
    if is_cube_set(cfg.dataset):
        source = M3DV if cfg.dataset == M3DV else FALLBACK
        ds = load_nodules(source, crop=cfg.crop, mask=cfg.mask, dilate=cfg.dilate, size=cfg.size)
        ds = (
            final_split(ds)
            if cfg.fold == ALL_FOLDS
            else kfold_datasets(ds, k=cfg.folds, fold=cfg.fold, seed=0, val_split=cfg.val_split)
        )
    else:
        ds = load_medmnist(cfg.dataset, cfg.size)
        if cfg.cv_fold >= 0:
            ds = selection_split(ds, cfg.folds, cfg.cv_fold)
    for name in ("train", "val"):
        if name not in ds.splits or len(ds.splits[name]) == 0:
            raise MedlibError(f"Dataset {cfg.dataset} has no '{name}' split to train with.")
    splits = {"train": seeded_subset(ds["train"], cfg.max_train, cfg.seed)}
    for s in ("val", "test"):
        if s in ds.splits:
            splits[s] = seeded_subset(ds[s], cfg.max_eval, 10_000 + cfg.seed)
    for s, split in splits.items() if check else ():
        check_classes(split.y.numpy(), ds.meta.task, ds.meta.n_classes, s, every=s != "train")
    return Dataset(ds.meta, splits)


def selection_split(ds: Dataset, k: int, fold: int, seed: int = 0) -> Dataset:
    """train / val for choosing a recipe by k-fold cross-validation: the official train + val pooled, val = the
    pool's stratified fold `fold` of k, train = the rest. The test split is dropped, so the choice never sees it."""
    if ds.meta.multilabel:
        raise MedlibError(
            f"--cv-fold stratifies by label; {ds.meta.name} is multi-label, so it has no single label "
            "to stratify by: train on the official split (--cv-fold -1)."
        )
    pool = Split(torch.cat([ds["train"].X, ds["val"].X]), torch.cat([ds["train"].y, ds["val"].y]))
    held = torch.as_tensor(stratified_folds(pool.y.numpy(), k, seed)[fold])
    keep = torch.ones(len(pool), dtype=torch.bool)
    keep[held] = False
    return Dataset(ds.meta, {"train": pool.subset(keep.nonzero().flatten()), "val": pool.subset(held)})


def capped_size(n: int, most: int) -> int:
    """A split's size after `seeded_subset(split, most)` (0 = all)."""
    return min(n, most) if most else n


_SIZES: dict = {}


def split_sizes(cfg, per_fold: bool = True, check: bool = True) -> tuple:
    """(meta, n_train, n_eval) of a config, for estimates before training: MedMNIST's from its INFO (nothing is read
    or downloaded), a cube set's by loading it once per view (a missing set raises MedlibError; `check` as in
    load_for_config). `per_fold=False` lets one load serve every fold of a set (they differ by a cube or two; the
    final split is another shape)."""
    if not is_cube_set(cfg.dataset):
        n = registry.info(cfg.dataset)["n_samples"]
        if cfg.cv_fold >= 0:  # stratified_folds deals the pool round-robin: fold f holds samples f, f + k, ...
            pool = n["train"] + n["val"]
            held = len(range(cfg.cv_fold, pool, cfg.folds))
            n = {"train": pool - held, "val": held, "test": 0}
        n_eval = capped_size(n["val"], cfg.max_eval) + capped_size(n["test"], cfg.max_eval)
        return medmnist_meta(cfg.dataset, cfg.size), capped_size(n["train"], cfg.max_train), n_eval
    fold = cfg.fold if per_fold else "all" if cfg.fold == ALL_FOLDS else "any"
    # the data root too: a process may point MEDLIB_DATA elsewhere between two plans
    recipe = tuple(getattr(cfg, f) for f in CUBE_FIELDS if f != "fold")
    key = (str(data_root()), cfg.dataset, cfg.size, *recipe, fold, cfg.max_train, cfg.max_eval, check)
    if key not in _SIZES:
        ds = load_for_config(cfg, check=check)
        _SIZES[key] = (ds.meta, len(ds["train"]), sum(len(s) for k, s in ds.splits.items() if k != "train"))
    return _SIZES[key]
