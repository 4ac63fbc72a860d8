"""Run folders: where a run's record, history, per-sample scores and checkpoints live, and reading them back."""
from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: fall back to an O_EXCL lock file
    fcntl = None

import numpy as np
import pandas as pd

from .. import atomic
from ..config import TrainConfig
from ..data import m3dv, registry
from ..data.cubes import M3DV, NODULE_CUBES, is_cube_set
from ..data.nodules import FALLBACK
from ..errors import MedlibError

DEFAULT_OUT = "runs"


def runs_root(out=None) -> Path:
    """`out`, else $MEDLIB_RUNS, else ./runs. An empty `out` is a mistake, not a request for the default."""
    if out is not None and not str(out).strip():
        raise MedlibError("--out is empty; name a folder for the runs, "
                          "or leave --out off to use $MEDLIB_RUNS or ./runs.")
    return Path(out or os.environ.get("MEDLIB_RUNS") or DEFAULT_OUT)


def run_dir(cfg, out=None) -> Path:
    """`<out>/<dataset>[_<size>]-<model>-s<seed>-<config hash>`: readable, and unique per config."""
    size = "" if cfg.dataset == M3DV else f"_{cfg.size}"
    fold = ("-fall" if cfg.fold == -1 else f"-f{cfg.fold}") if is_cube_set(cfg.dataset) else ""
    return runs_root(out) / f"{cfg.dataset}{size}-{cfg.model}{fold}-s{cfg.seed}-{cfg.key()}"


def write_scores(path: Path, probs: np.ndarray, labels: np.ndarray, ids=None) -> None:
    """Per-sample probabilities with the true labels beside them, so metrics can be recomputed anywhere."""
    df = pd.DataFrame(probs, columns=[f"score_{i}" for i in range(probs.shape[1])])
    labels = np.asarray(labels)
    if labels.ndim == 2:
        for i in range(labels.shape[1]):
            df.insert(i, f"label_{i}", labels[:, i].astype(int))
    else:
        df.insert(0, "label", labels.astype(int))
    if ids is not None:
        df.insert(0, "id", list(ids))
    atomic.write_text(path, df.to_csv(index=False))


@dataclass
class Run:
    """A finished (or interrupted) run read back from its folder."""

    dir: Path

    @property
    def record(self) -> dict:
        path = self.dir / "run.json"
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise MedlibError(f"{path} cannot be read ({type(e).__name__}: {e}); train again with --fresh to redo the "
                              "run, or delete its folder.") from None
        if not isinstance(rec, dict):
            raise MedlibError(f"{path} does not hold a run record; train again with --fresh, or delete its folder.")
        return rec

    @property
    def complete(self) -> bool:
        """Finished and recorded as such; a damaged run.json counts as not complete (the run is trained again)."""
        try:
            return (self.dir / "run.json").is_file() and self.record.get("status") == "complete"
        except MedlibError:
            return False

    @property
    def config(self):
        return TrainConfig(**self.record["config"])

    @property
    def metrics(self) -> dict:
        return self.record["metrics"]

    @property
    def history(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / "history.csv")

    def scores(self, split: str) -> pd.DataFrame:
        return pd.read_csv(self.dir / f"{split}_scores.csv")

    @property
    def best_checkpoint(self) -> Path:
        return self.dir / "best.pt"

    def __repr__(self) -> str:
        if not self.complete:
            return f"Run({self.dir}, incomplete)"
        m = self.metrics.get("test") or self.metrics.get("val")
        return f"Run({self.dir.name}, test AUC {m['auc']:.3f} ACC {m['acc']:.3f})"


def load_run(path) -> Run:
    path = Path(path)
    if not (path / "run.json").exists():
        raise MedlibError(f"{path} is not a run folder (no run.json); pass a folder made by `medlib train`.")
    return Run(path)


LOCK_NAME = ".lock"


class RunLock:
    """This process's claim on a run folder: an OS lock (flock) on `.lock`, which the kernel drops when the process
    dies, so a crash or a PID reused by another program can never block the run. The file names the holder
    (host, pid, start time) for the message another process gets."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        """Drop the lock and remove `.lock` (only if it is still ours); safe to call twice."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()  # while still locked, so no one can take the file we are deleting
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def unlink(self, missing_ok: bool = True) -> None:
        """Same as release(), for callers that treat the lock as a path."""
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text())
        return f"pid {h['pid']} on {h['host']}, since {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _lock_error(folder: Path, lock: Path) -> MedlibError:
    return MedlibError(f"{folder} is being trained by another process ({_holder(lock)}); "
                       "wait for it to finish, or stop it and run again to resume.")


def _try_lock(lock: Path) -> int | None:
    """An fd holding an exclusive lock on the file now at `lock`, or None if another process holds it."""
    for _ in range(100):
        if fcntl is None:
            try:
                return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return None
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # A releasing holder unlinks the file: the one we locked must still be the one at `lock`, else retry.
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    return None


def claim(folder: Path) -> RunLock:
    """Lock a run folder for this process (refused while another live process holds it), then clear the temp files
    that a killed writer may have left in it. Release with `.release()` (or use it as a context manager)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / LOCK_NAME
        fd = _try_lock(lock)
    except OSError as e:
        raise atomic.write_error(folder / LOCK_NAME, e) from None
    if fd is None:
        raise _lock_error(folder, lock)
    holder = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder).encode())
    clean_stale_temp(folder)
    return RunLock(lock, fd)


def clean_stale_temp(folder: Path) -> list[Path]:
    """Delete the `.<name>.<random>.tmp` files of interrupted atomic writes (a SIGKILL mid-checkpoint leaves one of
    ~90 MB). Call it only while holding the folder's lock: then no live writer owns them."""
    removed = []
    for p in Path(folder).glob(f".*{atomic.TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def current_data_md5(cfg) -> str | None:
    """The identity of the data `cfg` would train on now: MedMNIST files are verified against their official MD5,
    so that MD5 is it; M3DV's is computed from the folder (names, labels, file sizes). None when not found."""
    if cfg.dataset == "m3dv":
        try:
            return m3dv.folder_md5()
        except MedlibError:
            return None
    return registry.md5(FALLBACK if cfg.dataset == NODULE_CUBES else cfg.dataset, cfg.size)


def check_reuse(run: Run, cfg) -> bool:
    """True when a complete run may be reused for `cfg`: its recorded data is the data found now. A run made from
    other data is refused (not silently returned, nor silently overwritten). M3DV runs that recorded a content hash
    are checked by it (a same-size rewrite of a sample is caught); older records by names, labels and sizes."""
    data = run.record.get("data") or {}
    recorded, current = data.get("md5"), current_data_md5(cfg)
    if cfg.dataset == "m3dv" and data.get("content_md5"):
        try:
            recorded, current = data["content_md5"], m3dv.folder_content_md5()
        except MedlibError:
            current = None
    if recorded is None or current is None or recorded == current:
        return True
    raise MedlibError(f"{run.dir} was trained on {cfg.dataset} data with MD5 {recorded}, but the data found now "
                      f"(MEDLIB_DATA) has MD5 {current}; pass --no-reuse to retrain it on this data (replacing its "
                      "results), or --out another folder to keep both.")


def check_resume(ck: dict, meta, path: Path) -> None:
    """Refuse to resume a checkpoint that was trained on other data than `meta` describes."""
    old = (ck.get("meta") or {}).get("md5")
    if old is not None and meta.md5 is not None and old != meta.md5:
        raise MedlibError(f"{path} was trained on data with MD5 {old}, but the data found now has MD5 {meta.md5}; "
                          "pass --fresh to start this run again on the current data.")


OUTPUTS = ("last.pt", "best.pt", "history.csv", "val_scores.csv", "test_scores.csv")


def discard_outputs(folder: Path) -> list[Path]:
    """Before a run starts again from scratch (`--no-reuse` on a complete run, `--fresh`): remove what an earlier
    attempt left, so no old checkpoint or score file can be mistaken for (or resumed into) the new run."""
    removed = []
    for name in OUTPUTS:
        p = Path(folder) / name
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed
