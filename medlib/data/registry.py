"""The 18 MedMNIST sets as facts (task, labels, split sizes, URLs, MD5s) and name resolution."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path

from ..errors import MedlibError

# Report 1 used MedMNIST v1 names for the three organ views.
ALIASES = {
    "organmnist_axial": "organamnist",
    "organmnist_coronal": "organcmnist",
    "organmnist_sagittal": "organsmnist",
}
SIZES_2D = (28, 64, 128, 224)
SIZES_3D = (28, 64)


@lru_cache(maxsize=None)
def _info() -> dict:
    return json.loads((Path(__file__).with_name("medmnist_info.json")).read_text())["sets"]


def names(dims: int | None = None) -> list[str]:
    """All MedMNIST set names in the official order, optionally only the 2D or 3D ones."""
    return [n for n in _info() if dims is None or is_3d(n) == (dims == 3)]


def is_3d(name: str) -> bool:
    return name.endswith("3d")


def canonical(name: str) -> str:
    """Lower-case, accept v1 aliases, and fail with a suggestion for an unknown name."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in _info():
        hint = difflib.get_close_matches(key, list(_info()) + list(ALIASES), n=1)
        extra = f" Did you mean '{hint[0]}'?" if hint else ""
        raise MedlibError(
            f"Unknown dataset '{name}'.{extra} Known: {', '.join(_info())}, m3dv, nodulemnist3d-cubes "
            f"(and v1 names {', '.join(ALIASES)})."
        )
    return key


def info(name: str) -> dict:
    """The official INFO record of a set (task, label, n_channels, n_samples, url*, MD5*)."""
    return _info()[canonical(name)]


def sizes(name: str) -> tuple[int, ...]:
    return SIZES_3D if is_3d(canonical(name)) else SIZES_2D


def check_size(name: str, size: int) -> int:
    name = canonical(name)
    if int(size) not in sizes(name):
        raise MedlibError(f"Size {size} is not offered for '{name}'; choose one of {', '.join(map(str, sizes(name)))}.")
    return int(size)


def file_name(name: str, size: int = 28) -> str:
    """`pathmnist.npz` at 28 px, `pathmnist_64.npz` otherwise (the official naming)."""
    name = canonical(name)
    size = check_size(name, size)
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def url(name: str, size: int = 28) -> str:
    check_size(name, size)
    return info(name)["url" if size == 28 else f"url_{size}"]


def md5(name: str, size: int = 28) -> str:
    check_size(name, size)
    return info(name)["MD5" if size == 28 else f"MD5_{size}"]
