"""Write small MedMNIST-format npz files (official keys, shapes, dtypes) for any of the 18 sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlib.data import registry


def make_arrays(name: str, size: int = 28, n=(40, 16, 16), seed: int = 0, signal: bool = True) -> dict:
    """Images whose mean brightness depends on the label, so a network can learn something."""
    rng = np.random.default_rng(seed)
    inf = registry.info(name)
    dims = 3 if registry.is_3d(name) else 2
    k = len(inf["label"])
    out = {}
    for split, m in zip(("train", "val", "test"), n):
        if inf["task"] == "multi-label, binary-class":
            labels = (rng.random((m, k)) < 0.3).astype(np.uint8)
            level = labels[:, 0].astype(float)
        else:
            labels = (np.arange(m) % k).astype(np.uint8)[rng.permutation(m)][:, None]
            level = labels[:, 0] / max(k - 1, 1)
        shape = (m,) + (size,) * dims + ((3,) if inf["n_channels"] == 3 else ())
        noise = rng.normal(0, 30, shape)
        base = 60 + 120 * level.reshape((m,) + (1,) * (len(shape) - 1)) if signal else 128
        out[f"{split}_images"] = np.clip(base + noise, 0, 255).astype(np.uint8)
        out[f"{split}_labels"] = labels
    return out


def write_npz(root: Path, name: str, size: int = 28, **kw) -> Path:
    path = Path(root) / "medmnist" / registry.file_name(name, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **make_arrays(name, size, **kw))
    return path
