"""Datasets: the MedMNIST registry, file finding / verifying / downloading, and loaders."""
from .base import Dataset, Meta, Split, normalize
from .files import data_root, ensure_medmnist, medmnist_path
from .medmnist import load_medmnist
from .registry import ALIASES, canonical, names, sizes


def load(name: str, size: int = 28, **kw) -> Dataset:
    """Any dataset by name: the 18 MedMNIST sets (and v1 aliases) or 'm3dv' (crop/mask options in kw)."""
    if name.strip().lower() == "m3dv":
        from .m3dv import load_m3dv

        return load_m3dv(**kw)
    return load_medmnist(name, size, **kw)


__all__ = ["Dataset", "Meta", "Split", "normalize", "data_root", "ensure_medmnist", "medmnist_path",
           "load_medmnist", "load", "ALIASES", "canonical", "names", "sizes"]
