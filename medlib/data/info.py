"""A table of every dataset medlib knows: task, classes, split sizes, and whether its files are here."""

from __future__ import annotations

import pandas as pd

from ..tasks import BINARY
from . import files, registry
from .cubes import M3DV


def info_table(root=None, check_md5: bool = True) -> pd.DataFrame:
    """One row per MedMNIST set (+ M3DV): task, channels, classes, split sizes, sizes present, MD5 verdicts."""
    given, root = root, root or files.data_root()
    rows = []
    for name in registry.names():
        inf = registry.info(name)
        present, status = [], []
        for size in registry.sizes(name):
            path = files.find_medmnist(name, size, given)  # also the medmnist package's own downloads
            if path.exists():
                present.append(str(size))
                if check_md5:
                    status.append(f"{size}:{files.md5_status(path, registry.md5(name, size))}")
        n = inf["n_samples"]
        rows.append(
            {
                "dataset": name,
                "dims": "3D" if registry.is_3d(name) else "2D",
                "task": inf["task"],
                "channels": inf["n_channels"],
                "classes": len(inf["label"]),
                "train": n["train"],
                "val": n["val"],
                "test": n["test"],
                "sizes": "/".join(map(str, registry.sizes(name))),
                "present": ",".join(present) or "-",
                "md5": " ".join(status) or "-",
            }
        )
    m3dv = root / M3DV
    n_m3dv = len(list((m3dv / "train_val").glob("candidate*.npz"))) if (m3dv / "train_val").exists() else 0
    rows.append(
        {
            "dataset": M3DV,
            "dims": "3D",
            "task": BINARY,
            "channels": 1,
            "classes": 2,
            "train": n_m3dv,
            "val": 0,
            "test": 0,
            "sizes": "any cube >= crop",
            "present": f"{n_m3dv} samples" if n_m3dv else "-",
            "md5": "-",
        }
    )
    return pd.DataFrame(rows)
