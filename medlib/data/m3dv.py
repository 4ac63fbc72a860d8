"""The EE369 M3DV lung-nodule data (Report 2): candidateN.npz volumes with masks, labels CSV, cache; the cube
recipe and the folds it shares with NoduleMNIST3D are in `cubes`.

A folder holds `candidateN.npz` files (`voxel` uint8 cube, `seg` bool mask, any side) and beside it an
optional `<folder>.csv` with header `name,label` (or the course's misspelt `name,lable`).
"""

from __future__ import annotations

import csv
import hashlib
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..errors import MedlibError, permission_denied
from ..progress import tqdm
from .base import Dataset, Split
from .cubes import (
    M3DV,
    check_options,
    cube_meta,
    prepare_sample,
)
from .files import cache_dir, data_root

_CACHE_VERSION = 1  # bump when the cached array's recipe changes


def default_folder() -> Path:
    return data_root() / M3DV / "train_val"


def read_labels(csv_path) -> dict[str, int]:
    """{name: 0/1} from a CSV with header `name,label` or `name,lable`."""
    path = Path(csv_path)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))  # -sig: Excel writes a BOM
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MedlibError(
            f"Cannot read the labels CSV {path} ({reason}); check the path: it should be a name,label CSV (UTF-8)."
        ) from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if header not in (["name", "label"], ["name", "lable"]):
        raise MedlibError(
            f"{path} must start with the header 'name,label' (or the course's 'name,lable'), not {rows[:1]}."
        )
    labels: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or row[1].strip() not in ("0", "1"):
            raise MedlibError(
                f"{path} line {i}: expected 'name,0' or 'name,1', got {','.join(row)!r}; labels must be 0 or 1."
            )
        name = row[0].strip()
        if name in labels:
            raise MedlibError(f"{path} line {i}: {name} is listed twice; keep one line per sample.")
        labels[name] = int(row[1])
    if not labels:
        raise MedlibError(f"{path} holds only its header and no samples; add one 'name,label' line per sample.")
    return labels


def _number(name: str) -> tuple[str, int]:
    m = re.match(r"(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def list_candidates(folder) -> list[str]:
    """Sample names (file stems) of the folder's .npz files, in numeric order (candidate2 before candidate10)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MedlibError(
            f"M3DV folder {folder} does not exist; point MEDLIB_DATA at a folder holding m3dv/train_val/ "
            "(for `predict`, pass --input a folder of candidateN.npz)."
        )
    return sorted((p.stem for p in folder.glob("*.npz")), key=_number)


def load_sample(path) -> tuple[np.ndarray, np.ndarray]:
    """(voxel uint8, seg bool) of one candidate file, checked to be equal-shaped cubes."""
    path = Path(path)
    try:
        with np.load(path) as f:
            missing = {"voxel", "seg"} - set(f.files)
            if missing:
                raise MedlibError(
                    f"{path} lacks the key(s) {sorted(missing)} (has {f.files}); "
                    "an M3DV sample needs 'voxel' and 'seg'."
                )
            voxel, seg = f["voxel"], f["seg"]
    except PermissionError:
        raise permission_denied(path) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise MedlibError(
            f"Cannot read {path} ({type(e).__name__}: {e}); the file is damaged or truncated, copy it again."
        ) from None
    if voxel.dtype != np.uint8:
        raise MedlibError(f"{path}: voxel is {voxel.dtype}, expected uint8 CT intensities.")
    if voxel.shape != seg.shape:
        raise MedlibError(f"{path}: voxel shape {voxel.shape} and seg shape {seg.shape} differ; they must match.")
    if voxel.ndim != 3 or len(set(voxel.shape)) != 1:
        raise MedlibError(f"{path}: voxel shape {voxel.shape} is not a cube; M3DV samples are (n, n, n).")
    if seg.dtype != bool:
        if not np.isin(seg, (0, 1)).all():
            raise MedlibError(f"{path}: seg holds values other than 0/1; it must be a binary mask.")
        seg = seg.astype(bool)
    return voxel, seg


def _md5(lines) -> str:
    h = hashlib.md5()
    for line in lines:
        h.update(f"{line}\n".encode())
    return h.hexdigest()


def _source_md5(names, y, stats) -> str:
    """Names the source data (names, labels, file sizes), not where or when it was copied."""
    return _md5(f"{n},{label},{st.st_size}" for n, label, st in zip(names, y, stats))


def _labelled_files(folder, labels) -> tuple[list[Path], list[int]]:
    """The sample files a labels CSV lists (default `<folder>.csv`), in numeric order, with their labels."""
    folder = Path(folder) if folder is not None else default_folder()
    csv_path = Path(labels) if labels is not None else folder.with_suffix(".csv")
    if not csv_path.is_file():
        raise MedlibError(f"No labels CSV at {csv_path}.")
    table = read_labels(csv_path)
    names = sorted(table, key=_number)
    paths = [folder / f"{n}.npz" for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise MedlibError(f"{folder} lacks a sample listed in {csv_path} ({missing[0].name}).")
    return paths, [table[n] for n in names]


def folder_md5(folder=None, labels=None) -> str:
    """The `md5` that `load_m3dv(folder, labels)` would record, from the labels CSV and file sizes alone (no volume
    is read), so a run can check cheaply that it was made from the data found now."""
    paths, y = _labelled_files(folder, labels)
    return _source_md5([p.stem for p in paths], y, [p.stat() for p in paths])


def content_md5(paths, y) -> str:
    """MD5 over every sample file's bytes and its label: M3DV's content identity (a same-size rewrite changes it).

    Hashing ~76 MB takes a fraction of a second; the digest is cached under cache_dir()/m3dv, keyed by each file's
    name, size, mtime, inode and ctime, so repeated checks read no volume.
    """
    stats = [Path(p).stat() for p in paths]
    key = _md5(
        [
            f"{Path(p).name}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}|{label}"
            for p, st, label in zip(paths, stats, y)
        ]
    )
    cached = cache_dir() / M3DV / f"content-{key}.txt"
    try:
        return cached.read_text().strip()
    except OSError:
        pass
    h = hashlib.md5()
    for p, label in zip(paths, y):
        h.update(f"{Path(p).name},{int(label)}\n".encode())
        h.update(Path(p).read_bytes())
    digest = h.hexdigest()
    try:
        atomic.write_text(cached, digest)
    except (OSError, MedlibError):
        pass  # a read-only cache only costs the hash next time
    return digest


def folder_content_md5(folder=None, labels=None) -> str:
    """`content_md5` of the labelled samples of a folder, as load_m3dv(folder, labels) records it."""
    return content_md5(*_labelled_files(folder, labels))


def _read_cache(path: Path, names: list[str], shape: tuple) -> np.ndarray | None:
    try:
        with np.load(path) as f:
            X, cached = f["X"], f["ids"].tolist()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    return X if cached == names and X.shape == shape and X.dtype == np.uint8 else None


def _write_cache(path: Path, X: np.ndarray, names: list[str]) -> None:
    try:
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, X=X, ids=np.array(names))
    except OSError:
        pass  # a read-only cache only costs a slower next load


def _samples(folder: Path, labels, ids):
    """(names in numeric order, their paths, labels (-1 = none), the labels CSV used) after checking all exist."""
    if labels is None and folder.with_suffix(".csv").is_file():
        labels = folder.with_suffix(".csv")
    elif labels is False:  # explicitly unlabelled, e.g. to predict every file of a folder
        labels = None
    table = read_labels(labels) if labels is not None else None
    names = list(ids) if ids is not None else list(table) if table is not None else list_candidates(folder)
    names = sorted(names, key=_number)
    if not names:
        raise MedlibError(
            f"No samples to load from {folder}: it holds no candidateN.npz files; copy the M3DV samples there."
        )
    paths = [folder / f"{n}.npz" for n in names]
    absent = [n for n, p in zip(names, paths) if not p.is_file()]
    if absent:
        where = f"listed in {labels}" if ids is None and table is not None else "asked for"
        raise MedlibError(
            f"{len(absent)} sample(s) {where} have no file in {folder}: {', '.join(absent[:5])}"
            f"{' ...' if len(absent) > 5 else ''}. Copy them there or remove them from the list."
        )
    if table is not None:
        unlabelled = [n for n in names if n not in table]
        if unlabelled:
            raise MedlibError(
                f"{len(unlabelled)} sample(s) have no label in {labels}: {', '.join(unlabelled[:5])}; "
                "add them to the CSV or leave them out of ids=."
            )
    y = np.array([table[n] if table is not None else -1 for n in names], dtype=np.int64)
    return names, paths, y, labels


def _crop_all(paths, shape, mask: bool, dilate: int, center: str, progress: bool, desc: str) -> np.ndarray:
    """Every sample cropped (and masked) into one uint8 array."""
    X = np.empty(shape, dtype=np.uint8)
    crop = shape[-1]
    for i, p in enumerate(tqdm(paths, desc=f"m3dv {desc}", disable=not progress)):
        voxel, seg = load_sample(p)
        if voxel.shape[0] < crop:
            raise MedlibError(f"{p}: the volume is {voxel.shape[0]}³, smaller than crop={crop}; pass a smaller --crop.")
        if (mask or center == "mask") and not seg.any():
            raise MedlibError(
                f"{p}: the seg mask is empty, so the nodule cannot be located; remove the sample "
                "from the labels CSV (in Python: load_m3dv(..., mask=False, center='volume'))."
            )
        X[i, 0] = prepare_sample(voxel, seg, crop, mask, dilate, center)
    return X


def load_m3dv(
    folder=None,
    labels=None,
    crop: int = 32,
    mask: bool = True,
    dilate: int = 0,
    center: str = "mask",
    ids=None,
    progress: bool = False,
    cache: bool = True,
) -> Dataset:
    """All samples as one split "all": X uint8 (N, 1, crop, crop, crop), y int64 (-1 when unlabelled).

    folder: default `$MEDLIB_DATA/m3dv/train_val`. labels: a CSV path, False for none; None takes `<folder>.csv` when it
    exists (else unlabelled). ids: names to load (default: the CSV's names, else every file), loaded
    in numeric order. The cropped array is cached under `cache_dir()/m3dv`, keyed by the folder, the files'
    names, sizes and mtimes, and the crop options.
    """
    folder = Path(folder) if folder is not None else default_folder()
    crop, dilate = check_options(crop, dilate, mask, center)
    names, paths, y, labels = _samples(folder, labels, ids)
    stats = [p.stat() for p in paths]
    shape = (len(names), 1, crop, crop, crop)
    # inode and ctime too: a file rewritten with its size and mtime restored must not hit the old cache
    key = _md5(
        [f"{n}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}" for n, st in zip(names, stats)]
        + [repr((_CACHE_VERSION, str(folder.resolve()), crop, bool(mask), dilate, center))]
    )
    cache_file = cache_dir() / M3DV / f"{key}.npz"
    X = _read_cache(cache_file, names, shape) if cache else None
    if X is None:
        X = _crop_all(paths, shape, mask, dilate, center, progress, folder.name)
        if cache:
            _write_cache(cache_file, X, names)
    md5 = _source_md5(names, y, stats)
    meta = cube_meta(M3DV, crop, md5, str(folder), content_md5(paths, y))
    return Dataset(meta, {"all": Split(torch.from_numpy(X), torch.from_numpy(y), names)})
