"""Cropping and masking of volumes (numpy): cubes around a centre, mask centroids, masks and auto-masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import MedlibError


def crop_cube(volume: np.ndarray, size: int, center=None) -> np.ndarray:
    """A cube of side `size` (on every axis of `volume`) around `center`, zero-padded past the border.

    `center` is in voxel index coordinates, default the geometric centre (n-1)/2; a float centre is
    rounded half-up, so shifting volume and centre by the same integer gives the same crop.
    """
    if int(size) != size or size < 1:
        raise MedlibError(f"Crop size must be a positive integer, not {size!r}.")
    size = int(size)
    shape = np.asarray(volume.shape)
    c = (shape - 1) / 2 if center is None else np.asarray(center, dtype=float)
    if c.shape != shape.shape:
        raise MedlibError(
            f"Crop centre {tuple(c.tolist())} has {c.size} coordinates; the volume has {volume.ndim} axes."
        )
    start = np.floor(c + 0.5).astype(int) - size // 2
    lo, hi = np.clip(start, 0, shape), np.clip(start + size, 0, shape)
    out = np.zeros((size,) * volume.ndim, dtype=volume.dtype)
    src = tuple(slice(a, b) for a, b in zip(lo, hi))
    dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start))
    out[dst] = volume[src]
    return out


def mask_centroid(seg: np.ndarray) -> np.ndarray:
    """Mean index of the mask's voxels, as floats (one per axis)."""
    idx = np.nonzero(seg)
    if len(idx[0]) == 0:
        raise MedlibError("The mask is empty, so it has no centroid; crop around the volume centre instead.")
    return np.array([i.mean() for i in idx])


def apply_mask(voxel: np.ndarray, seg: np.ndarray, dilate: int = 0) -> np.ndarray:
    """voxel * seg in voxel's dtype; `dilate` > 0 first grows the mask by a Euclidean ball of that radius."""
    if voxel.shape != seg.shape:
        raise MedlibError(f"Voxel shape {voxel.shape} and mask shape {seg.shape} differ; they must match.")
    if dilate < 0:
        raise MedlibError(f"dilate must be >= 0 voxels, not {dilate}.")
    mask = seg.astype(bool)
    if dilate and mask.any():
        # distance to the nearest mask voxel <= r is exactly dilation by a ball of radius r
        mask = ndimage.distance_transform_edt(~mask) <= dilate
    return np.where(mask, voxel, np.zeros((), voxel.dtype))


def auto_mask(volume: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """An approximate nodule mask for volumes without one (MedMNIST 3D): no substitute for a doctor's.

    Voxels above `threshold` (default Otsu's), then only the connected component nearest the geometric
    centre (the one containing it, if any). All False when nothing exceeds the threshold.
    """
    from skimage.filters import threshold_otsu

    t = threshold_otsu(volume) if threshold is None else threshold
    labels, n = ndimage.label(volume > t)
    if n == 0:
        return np.zeros(volume.shape, dtype=bool)
    fg = np.argwhere(labels > 0)
    d2 = ((fg - (np.asarray(volume.shape) - 1) / 2) ** 2).sum(1)
    return labels == labels[tuple(fg[d2.argmin()])]
