"""Generated NoduleMNIST3D files with the official keys, shapes and dtypes, for testing the M3DV fallback.

`python tests/synth_nodules.py ROOT` writes ROOT/medmnist/nodulemnist3d.npz large enough for notebooks 00, 03 and
04 (quick profile): scripts/test.sh runs them under nbval on that root, without M3DV.
"""

import sys
from pathlib import Path

import numpy as np

from medlib.data import registry

N = (6, 3, 4)  # train, val, test
NOTEBOOK_N = (60, 12, 16)  # enough per class for 2 folds with validation splits


def _ball(center, radius: float, side: int) -> np.ndarray:
    grid = np.indices((side,) * 3, dtype=np.float32)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius**2


def write_nodulemnist3d(root, size: int = 28, seed: int = 0, counts=N):
    """nodulemnist3d[_64].npz with the official keys, shapes and dtypes: (N, s, s, s) uint8 images, (N, 1) uint8
    labels. Each volume: a bright ball off centre (the nodule) and a bright slab in a corner (not the nodule)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        imgs = []
        for _ in range(n):
            c = (size - 1) / 2 + rng.uniform(-3, 3, 3)
            vol = rng.normal(30, 5, (size,) * 3)
            vol[_ball(c, size / 7, size)] = 200
            vol[:3, :3, :] = 220  # a bright structure far from the centre: auto_mask must leave it out
            imgs.append(np.clip(vol, 0, 255).astype(np.uint8))
        arrays[f"{split}_images"] = np.stack(imgs)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
    path = root / "medmnist" / registry.file_name("nodulemnist3d", size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path, arrays


if __name__ == "__main__":
    path, _ = write_nodulemnist3d(Path(sys.argv[1]), counts=NOTEBOOK_N)
    print(path)
