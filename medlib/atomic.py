"""Atomic file writes: write to a temp file in the same folder, then rename, so nothing is half-written.

A write that fails (read-only folder, a file or folder in the way, full disk) leaves no temp file behind and
raises `WriteError`: a `MedlibError` (the CLI prints it as one line) that is also an `OSError`, so callers that
tolerate an unwritable cache keep doing so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import MedlibError

TEMP_SUFFIX = ".tmp"  # temp files are `.<name>.<random>.tmp` beside their target (see runs.clean_stale_temp)


class WriteError(MedlibError, OSError):
    """A file could not be written; the message names the path, the reason and the fix."""


def _free_mb(folder: Path) -> str:
    with contextlib.suppress(OSError):
        return f"{shutil.disk_usage(folder).free / 2**20:.0f} MB free there"
    return "free space unknown"


def write_error(path: Path, e: BaseException) -> WriteError:
    """One line for a failed write, with the likely fix for the usual causes."""
    if isinstance(e, OSError) and e.strerror:
        reason = e.strerror
    else:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        fix = "a file is in the way of a folder on that path; pass another folder"
    elif isinstance(e, FileNotFoundError):
        fix = "a folder on that path cannot be created there; pass a path under an existing, writable folder"
    elif isinstance(e, IsADirectoryError):
        fix = "that path is a folder; pass a file name"
    elif isinstance(e, PermissionError) or getattr(e, "errno", None) == 30:  # EROFS
        fix = "the folder is not writable; pass a writable one"
    else:
        fix = f"the disk may be full ({_free_mb(path.parent)}); free some space or write elsewhere"
    return WriteError(f"Cannot write {path} ({reason}): {fix}.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    if str(path) in ("", ".") or path.is_dir():
        raise WriteError(
            f"Cannot write {str(path)!r}: it is {'empty' if str(path) in ('', '.') else 'a folder'}; pass a file name."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode a plain open() would
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise write_error(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text)
        except OSError as e:
            raise write_error(Path(path), e) from None


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def torch_save(obj, path) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except (OSError, RuntimeError) as e:  # a full disk shows up as torch's "unexpected pos ..." RuntimeError
            raise write_error(Path(path), e) from None
