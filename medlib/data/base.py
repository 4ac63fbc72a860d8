"""The in-memory form of every dataset: uint8 image tensors, labels shaped per task, and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..tasks import MULTILABEL


@dataclass
class Meta:
    """What the training loop needs to know about a dataset besides its tensors."""

    name: str
    task: str
    n_classes: int  # outputs of the network (labels for multi-label)
    n_channels: int
    dims: int  # 2 for images, 3 for volumes
    size: int  # side of the square / cube
    label_names: dict = field(default_factory=dict)
    md5: str | None = None
    source: str = ""
    content_md5: str | None = None  # M3DV: a hash of the sample files' bytes (its `md5` names names, labels, sizes)

    @property
    def multilabel(self) -> bool:
        return self.task == MULTILABEL


@dataclass
class Split:
    """One split: X is uint8 (N, C, *spatial); y is int64 (N,) or float32 (N, L) for multi-label."""

    X: torch.Tensor
    y: torch.Tensor
    ids: list | None = None

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, idx) -> "Split":
        idx = torch.as_tensor(idx, dtype=torch.long)
        ids = [self.ids[i] for i in idx.tolist()] if self.ids is not None else None
        return Split(self.X[idx], self.y[idx], ids)

    def as_dataset(self, transform="normalize") -> "SplitDataset":
        """This split as a `torch.utils.data.Dataset` of (x, y) pairs, for a `DataLoader` or any PyTorch code:
        x is one sample scaled to [-1, 1] as medlib's loop feeds its networks (`normalize`), or `transform(x)`
        of the uint8 sample for another callable, or the uint8 sample itself with `transform=None`.

        >>> loader = DataLoader(load_medmnist("breastmnist")["train"].as_dataset(), batch_size=128, shuffle=True)

        (medlib's own loop slices whole batches from the tensors instead: an epoch is a permutation.)"""
        return SplitDataset(self, normalize if transform == "normalize" else transform)


class SplitDataset(torch.utils.data.Dataset):
    """A `Split` seen by PyTorch: `len` samples, each `(transform(X[i]), y[i])` (see `Split.as_dataset`)."""

    def __init__(self, split: Split, transform=None):
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i):
        x = self.split.X[i]
        return (self.transform(x) if self.transform is not None else x), self.split.y[i]


@dataclass
class Dataset:
    """A named dataset: metadata plus `train` / `val` / `test` splits (any may be missing)."""

    meta: Meta
    splits: dict

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        m = self.meta
        return f"Dataset({m.name}, {m.task}, {m.dims}D {m.size}px, C={m.n_channels}, classes={m.n_classes}; {sizes})"


def to_rgb(ds: Dataset) -> Dataset:
    """Grey images repeated to 3 identical channels (still uint8), as the official MedMNIST benchmark fed
    its ImageNet-shaped networks (`as_rgb=True`); a dataset that already has 3 channels comes back as is."""
    if ds.meta.n_channels != 1:
        return ds
    splits = {}
    for k, s in ds.splits.items():
        reps = (1, 3) + (1,) * (s.X.ndim - 2)
        splits[k] = Split(s.X.repeat(*reps), s.y, s.ids)
    return Dataset(replace(ds.meta, n_channels=3), splits)


def normalize(x: torch.Tensor, scaling: str = "centered") -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], done on the fly on whatever device the batch lives on; scaling 'report2'
    is Report 2's x / 127, in [0, 2.01] (not centred), kept to measure what it cost."""
    if scaling == "report2":
        return x.float().div_(127.0)
    return x.float().mul_(2.0 / 255.0).sub_(1.0)
