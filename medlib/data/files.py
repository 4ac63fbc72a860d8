"""Where data lives, MD5 verification (verdict cached), and the official download with a progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

try:
    import pwd
except ImportError:  # Windows
    pwd = None

from .. import atomic
from ..errors import MedlibError
from ..progress import tqdm
from . import registry

ENV_ROOT = "MEDLIB_DATA"
# Generated test files cannot match the official MD5s; MEDLIB_VERIFY_MD5=0 lets a test run read them (and says so).
ENV_VERIFY = "MEDLIB_VERIFY_MD5"


def data_root() -> Path:
    """`$MEDLIB_DATA` if set, else `data/` of the project (the current folder when installed elsewhere)."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser().resolve()
    project = Path(__file__).resolve().parents[2]
    if (project / "pyproject.toml").exists():
        return project / "data"
    return Path.cwd() / "data"


def cache_dir() -> Path:
    """$MEDLIB_CACHE, else $XDG_CACHE_HOME/medlib, else ~/.cache/medlib; an empty or relative XDG_CACHE_HOME or HOME
    counts as unset (HOME= must not put the cache in /.cache), with the account's home from the password database."""
    if os.environ.get("MEDLIB_CACHE"):
        return Path(os.environ["MEDLIB_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "medlib"
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except (AttributeError, KeyError, OSError):  # no pwd module (Windows), or no entry for this user
            home = tempfile.gettempdir()
    return Path(home) / ".cache" / "medlib"


def medmnist_path(name: str, size: int = 28, root: str | os.PathLike | None = None) -> Path:
    root = Path(root) if root is not None else data_root()
    return root / "medmnist" / registry.file_name(name, size)


ENV_MEDMNIST_ROOT = "MEDMNIST_ROOT"


def candidate_paths(name: str, size: int = 28, root: str | os.PathLike | None = None) -> list[Path]:
    """Where a MedMNIST file may already be, in search order (the first is also where a download goes).

    1. `<root>/medmnist/<file>`: medlib's layout (`root` is the argument, else `$MEDLIB_DATA`, else `data/`);
    2. `<root>/<file>`: the flat layout of the `medmnist` package, so a root may be a download folder itself;
    and only when no `root` argument is given, existing downloads of the `medmnist` package:
    3. `$MEDMNIST_ROOT/<file>`, if that variable is set;
    4. `~/.medmnist/<file>`, the package's default folder.
    `<file>` is `<flag>.npz` at 28 px and `<flag>_<size>.npz` otherwise.
    """
    file = registry.file_name(name, size)
    base = Path(root).expanduser() if root is not None else data_root()
    paths = [base / "medmnist" / file, base / file]
    if root is None:
        if os.environ.get(ENV_MEDMNIST_ROOT):
            paths.append(Path(os.environ[ENV_MEDMNIST_ROOT]).expanduser() / file)
        paths.append(Path("~/.medmnist").expanduser() / file)
    return list(dict.fromkeys(paths))


def find_medmnist(name: str, size: int = 28, root: str | os.PathLike | None = None) -> Path:
    """The first existing candidate path, else the first one (where a download would be saved)."""
    paths = candidate_paths(name, size, root)
    return next((p for p in paths if p.is_file()), paths[0])


def file_digest(path: Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """A file's hex digest (hashlib's `algorithm`), read in chunks so a large file never sits in memory."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    return file_digest(path, "md5", chunk)


def _cache_file() -> Path:
    return cache_dir() / "md5_verdicts.json"


def _load_verdicts() -> dict:
    """The cached verdicts; a damaged or foreign cache file (even `null`) counts as empty and is rewritten."""
    try:
        verdicts = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(verdicts, dict):
        return {}
    return {
        k: v
        for k, v in verdicts.items()
        if isinstance(v, dict) and isinstance(v.get("expected"), str) and v.get("status") in ("ok", "mismatch")
    }


def _verdict_key(path: Path) -> str:
    """Who the file is, not just what it looks like: size and mtime can be restored after a rewrite (`touch -r`),
    but the inode change time (ctime) cannot, and a copy or a rename-over gets a new inode."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"


def md5_status(path: Path, expected: str, use_cache: bool = True) -> str:
    """'ok' or 'mismatch' for an existing file; the verdict is cached by (path, size, mtime, inode, ctime)."""
    key = _verdict_key(path)
    verdicts = _load_verdicts() if use_cache else {}
    if key in verdicts and verdicts[key]["expected"] == expected:
        return verdicts[key]["status"]
    actual = file_md5(path)
    status = "ok" if actual == expected else "mismatch"
    verdicts = _load_verdicts()
    verdicts[key] = {"expected": expected, "actual": actual, "status": status}
    try:
        atomic.write_json(_cache_file(), verdicts)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return status


def download(url: str, dest: Path, expected_md5: str | None = None, progress: bool = True) -> Path:
    """Stream `url` into a temp file beside `dest`, check its MD5, then rename into place."""
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # deepest first
    try:
        return _download(url, dest, expected_md5, progress, tqdm)
    except BaseException as e:
        for d in created:  # a failed download (say, into a mistyped MEDLIB_DATA) leaves no empty folders
            with contextlib.suppress(OSError):
                d.rmdir()
        if created and isinstance(e, MedlibError):
            raise MedlibError(f"{e} Note: {created[-1]} did not exist before; is the path mistyped?") from None
        raise


def _download(url: str, dest: Path, expected_md5: str | None, progress: bool, tqdm) -> Path:
    try:
        with atomic.atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                total = int(r.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                    while block := r.read(1 << 20):
                        f.write(block)
                        bar.update(len(block))
            if expected_md5 and (got := file_md5(tmp)) != expected_md5:
                raise MedlibError(
                    f"Downloaded {dest.name} from {url} but its MD5 is {got}, not {expected_md5}; "
                    "nothing was saved. Try again, or download it by hand."
                )
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise MedlibError(
            f"Could not download {dest.name} from {url} ({e}). Download it by hand from that URL "
            f"and put it at {dest} (or point {ENV_ROOT} at a folder holding medmnist/{dest.name})."
        ) from None
    return dest


def ensure_medmnist(name: str, size: int = 28, root=None, download_missing: bool = True, verify: bool = True) -> Path:
    """Path of a verified MedMNIST file (searched as `candidate_paths` says), downloaded first if missing."""
    path = find_medmnist(name, size, root)
    expected = registry.md5(name, size)
    if path.exists() and not path.is_file():
        raise MedlibError(
            f"{path} is a folder, not an .npz file; move it away so the official file can go there "
            f"(download it from {registry.url(name, size)})."
        )
    if not path.exists():
        if not download_missing:
            raise MedlibError(
                f"{path.name} is not under {path.parent}. Download it from {registry.url(name, size)} "
                f"and put it there, or set {ENV_ROOT} to a folder holding medmnist/{path.name}."
            )
        download(registry.url(name, size), path, expected)
        return path
    if verify and os.environ.get(ENV_VERIFY, "1").strip() == "0":
        warnings.warn(
            f"{path.name}: MD5 not checked ({ENV_VERIFY}=0); use this only for generated test data.", stacklevel=2
        )
        verify = False
    if verify and md5_status(path, expected) != "ok":
        raise MedlibError(
            f"{path} has the wrong MD5 (expected {expected}): the file is damaged or not the official "
            f"one. Delete it so it downloads again, or fetch it from {registry.url(name, size)}."
        )
    return path
