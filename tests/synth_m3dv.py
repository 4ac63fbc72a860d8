"""Generated M3DV-format folders for tests: noisy cubes with ellipsoid nodules, masks and a labels CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A Report 2-shaped run small enough for a test: the 3-conv baseline, 16³ crops, 3 folds, 2 epochs, mixup
TINY_CUBES = dict(
    dataset="m3dv",
    model="baseline3d",
    crop=16,
    epochs=2,
    batch_size=8,
    optimizer="adam",
    lr=1e-3,
    folds=3,
    flip=True,
    shift=2,
    rot90=True,
    mixup_alpha=0.2,
)


def ellipsoid_sample(size: int, rng: np.random.Generator, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(voxel uint8, seg bool): a bright ellipsoid near the centre of a noisy dark cube of side `size`."""
    center = (size - 1) / 2 + rng.uniform(-2, 2, 3)
    radii = radius * rng.uniform(0.8, 1.2, 3)
    grid = np.indices((size,) * 3, dtype=np.float32)
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii))
    seg = r2 <= 1
    voxel = rng.normal(40, 10, seg.shape) + 150 * seg
    return np.clip(voxel, 0, 255).astype(np.uint8), seg


def write_m3dv(
    root, n: int = 12, size: int = 40, header: str = "name,lable", seed: int = 0, folder: str = "train_val"
) -> tuple[Path, Path]:
    """Write `root/<folder>/candidateN.npz` (N = 1, 3, 5, ... to test numeric order) and `root/<folder>.csv`.

    Label 1 nodules are bigger (radius 7) than label 0 ones (radius 4), alternating 1, 0, 1, ...
    Returns (folder path, csv path).
    """
    rng = np.random.default_rng(seed)
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    lines = [header]
    for i in range(n):
        name, label = f"candidate{2 * i + 1}", (i + 1) % 2
        voxel, seg = ellipsoid_sample(size, rng, 7.0 if label else 4.0)
        np.savez_compressed(out / f"{name}.npz", voxel=voxel, seg=seg)
        lines.append(f"{name},{label}")
    csv = out.with_suffix(".csv")
    csv.write_text("\n".join(lines) + "\n")
    return out, csv
