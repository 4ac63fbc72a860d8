"""Datasets: the MedMNIST registry, file finding / verifying / downloading, and loaders."""

from .base import Dataset, Meta, Split, normalize
from .cubes import M3DV, NODULE_CUBES
from .files import data_root, ensure_medmnist, medmnist_path
from .m3dv import load_m3dv
from .medmnist import load_medmnist
from .nodules import load_nodulemnist3d
from .registry import ALIASES, canonical, names, sizes


def load(name: str, size: int = 28, **kw) -> Dataset:
    """Any dataset by name: the 18 MedMNIST sets (and v1 aliases), 'm3dv' or 'nodulemnist3d-cubes' (crop/mask
    options in kw; the latter is NoduleMNIST3D of side `size` prepared like M3DV)."""
    if name.strip().lower() == M3DV:
        return load_m3dv(**kw)
    if name.strip().lower() == NODULE_CUBES:
        return load_nodulemnist3d(size, **kw)
    return load_medmnist(name, size, **kw)


__all__ = [
    "Dataset",
    "Meta",
    "Split",
    "normalize",
    "data_root",
    "ensure_medmnist",
    "medmnist_path",
    "load_medmnist",
    "load",
    "ALIASES",
    "canonical",
    "names",
    "sizes",
]
