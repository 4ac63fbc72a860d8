"""Run folders: where a run's record, history, per-sample scores and checkpoints live, and reading them back."""

from __future__ import annotations

import contextlib
import json
import lzma
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
from ..data import files, m3dv, registry
from ..data.cubes import ALL_FOLDS, M3DV, NODULE_CUBES, is_cube_set
from ..data.nodules import FALLBACK
from ..errors import MedlibError, permission_denied
from .checkpoint import WEIGHTS_NAME, load_model, save_weights

DEFAULT_OUT = "runs"


def runs_root(out=None) -> Path:
    """`out`, else $MEDLIB_RUNS, else ./runs. An empty `out` is a mistake, not a request for the default."""
    if out is not None and not str(out).strip():
        raise MedlibError(
            "--out is empty; name a folder for the runs, or leave --out off to use $MEDLIB_RUNS or ./runs."
        )
    return Path(out or os.environ.get("MEDLIB_RUNS") or DEFAULT_OUT)


def run_dir(cfg, out=None) -> Path:
    """`<out>/<dataset>[_<size>]-<model>[-f<fold>|-cv<k>]-s<seed>-<config hash>`: readable, and unique per config."""
    size = "" if cfg.dataset == M3DV else f"_{cfg.size}"
    fold = ("-fall" if cfg.fold == ALL_FOLDS else f"-f{cfg.fold}") if is_cube_set(cfg.dataset) else ""
    fold += f"-cv{cfg.cv_fold}" if cfg.cv_fold >= 0 else ""
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


REDO = "train again with --fresh to redo the run, or delete its folder"


def read_record(path: Path) -> dict:
    """A run.json as a dict. Atomic writes never leave one half-written, so anything unreadable (truncated, not
    UTF-8, a folder, a symlink loop, not a JSON object) is damage: one MedlibError naming the file."""
    try:
        record = json.loads(Path(path).read_bytes().decode("utf-8"))
    except PermissionError:
        raise permission_denied(path) from None
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:120]
        raise MedlibError(f"{path} cannot be read ({type(e).__name__}: {reason}); {REDO}.") from None
    if not isinstance(record, dict):
        raise MedlibError(f"{path} holds a JSON {type(record).__name__}, not a run record; {REDO}.")
    return record


SCORE_PREFIX, LABEL_PREFIX = "score_", "label"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_auc")


def scores_problem(columns) -> str | None:
    """What is wrong with a scores file's header (None if nothing): [id,] label or label_0.., then score_0..k-1."""
    cols = [str(c) for c in columns]
    rest = cols[1:] if cols[:1] == ["id"] else cols
    labels = [c for c in rest if c.startswith(LABEL_PREFIX)]
    scores = [c for c in rest if c.startswith(SCORE_PREFIX)]
    if labels not in (["label"], [f"label_{i}" for i in range(len(labels))]) or not labels:
        return f"its label column(s) are {labels or 'missing'}, not label (or label_0, label_1, ...)"
    if len(scores) < 2 or scores != [f"score_{i}" for i in range(len(scores))]:
        return f"its score columns are {scores or 'missing'}, not score_0, score_1, ..."
    if rest != labels + scores:
        return f"it has unexpected columns {[c for c in rest if c not in labels + scores]}"
    return None


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """A run folder's CSV, or one MedlibError saying it is missing, unreadable or empty."""
    if not path.is_file():
        why = "is a folder" if path.is_dir() else "is missing"
        raise MedlibError(f"{path} {why}: the run folder lacks its {what}; {REDO}.")
    try:
        return pd.read_csv(path)
    except PermissionError:
        raise permission_denied(path) from None
    except (OSError, EOFError, lzma.LZMAError, ValueError, pd.errors.ParserError) as e:  # a cut .gz / .xz: EOFError
        raise MedlibError(f"{path} cannot be read as a CSV ({type(e).__name__}: {str(e)[:120]}); {REDO}.") from None


PACKED = (".xz", ".gz")  # what `results --compact` writes (xz) and wrote before (gzip); pandas reads both as CSV


def scores_path(folder: Path, split: str) -> Path:
    """A split's scores file: `<split>_scores.csv`, or the packed form `results --compact` left in its place."""
    plain = Path(folder) / f"{split}_scores.csv"
    if plain.exists():
        return plain
    packed = (plain.with_name(plain.name + ext) for ext in PACKED)
    return next((p for p in packed if p.is_file()), plain)


@dataclass
class Run:
    """A finished (or interrupted) run read back from its folder."""

    dir: Path

    @property
    def record(self) -> dict:
        return read_record(self.dir / "run.json")

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
        """history.csv, checked to hold one row per epoch with numeric losses and AUCs."""
        path = self.dir / "history.csv"
        h = _read_csv(path, "training history")
        missing = [c for c in HISTORY_COLUMNS if c not in h.columns]
        if missing or h.empty:
            raise MedlibError(
                f"{path} {'lacks the column(s) ' + ', '.join(missing) if missing else 'has no rows'}; "
                f"it is not a medlib history; {REDO}."
            )
        if not all(pd.api.types.is_numeric_dtype(h[c]) for c in HISTORY_COLUMNS):
            raise MedlibError(f"{path} holds non-numbers in {', '.join(HISTORY_COLUMNS)}; {REDO}.")
        return h

    def scores(self, split: str) -> pd.DataFrame:
        """Per-sample scores of a split, checked against the record: the header, and one row per sample it counted."""
        path = scores_path(self.dir, split)
        df = _read_csv(path, f"{split} scores")
        problem = scores_problem(df.columns)
        n = (self.record.get("data") or {}).get(f"n_{split}")
        if problem is None and isinstance(n, int) and len(df) != n:
            problem = f"it has {len(df)} rows but the run scored {n} {split} samples (run.json)"
        values = df[[c for c in df.columns if c != "id"]]
        if problem is None and not all(pd.api.types.is_numeric_dtype(values[c]) for c in values.columns):
            problem = "it holds non-numbers"
        if problem is None and not np.isfinite(values.to_numpy(dtype=float)).all():
            problem = "it holds NaN or infinite values"
        if problem:
            raise MedlibError(f"{path}: {problem}; the file was cut or edited; {REDO}.")
        return df

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


def ship_weights(folder) -> dict:
    """Write a complete run's best weights beside its record as weights.pt (tensors only, read with
    `weights_only=True`) and the file's SHA-256 and size into run.json: a results folder then rebuilds its model
    without the run folder's best.pt, which is not committed. Returns run.json's new `weights` entry."""
    folder = Path(folder)
    run = load_run(folder)
    if not run.complete:
        raise MedlibError(f"{folder} is not a complete run; finish it (`reproduce` resumes it) before shipping it.")
    if not run.best_checkpoint.is_file():
        raise MedlibError(
            f"{folder} has no best.pt to ship: its weights were not kept; train it again "
            "(`train --fresh` with its config) to ship its weights."
        )
    dst = folder / WEIGHTS_NAME
    save_weights(run.best_checkpoint, dst)
    record = run.record
    record["weights"] = {
        "file": WEIGHTS_NAME,
        "sha256": files.file_digest(dst, "sha256"),
        "bytes": dst.stat().st_size,
        "best_epoch": record.get("best_epoch"),
    }
    atomic.write_json(folder / "run.json", record)
    return record["weights"]


def load_weights(folder):
    """(net in eval mode, TrainConfig, Meta) from the weights a record ships, after checking the file against the
    SHA-256 in its run.json (an edited or swapped file is refused, not silently scored)."""
    folder = Path(folder)
    record = load_run(folder).record
    entry = record.get("weights")
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise MedlibError(
            f"{folder} ships no weights (its run.json has no `weights` entry): only the runs of "
            "plans.SHIP_WEIGHTS do; `python -m medlib reproduce --only LABEL` writes them for such a "
            "run while its best.pt is there, else load the run folder's best.pt itself."
        )
    path = folder / Path(entry["file"]).name
    if not path.is_file():
        raise MedlibError(
            f"{path} is missing though run.json lists it; restore it from git (`git checkout -- "
            f"{path}`) or ship the run's weights again."
        )
    if files.file_digest(path, "sha256") != entry.get("sha256"):
        raise MedlibError(
            f"{path} does not match the SHA-256 its run.json records: the file was altered or "
            "swapped; restore it from git or ship the run's weights again."
        )
    net, cfg, meta = load_model(path)
    if cfg.key() != record.get("key", ""):
        raise MedlibError(
            f"{path} holds the weights of another config ({cfg.key()}) than its record's; restore it "
            "from git or ship the run's weights again."
        )
    return net, cfg, meta


LOCK_NAME = ".lock"


class RunLock:
    """This process's claim on a run folder: an OS lock (flock) on `.lock`, which the kernel drops when the process
    dies, so a crash or a PID reused by another program can never block the run. The file names the holder
    (host, pid, start time) for the message another process gets."""

    def __init__(self, path: Path, fd: int, created: bool = False):
        self.path, self._fd, self.created = path, fd, created  # created: claim() made the folder

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


class RunLocked(MedlibError):
    """Another live process holds the run folder's lock (it is training that run now)."""


def _lock_error(folder: Path, lock: Path) -> MedlibError:
    return RunLocked(
        f"{folder} is being trained by another process ({_holder(lock)}); "
        "wait for it to finish, or stop it and run again to resume."
    )


# never through a symlink: a `.lock` linked to another file would have that file truncated and overwritten
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_lock(lock: Path, flags: int) -> int:
    if lock.is_symlink():
        raise MedlibError(
            f"{lock} is a symbolic link; medlib writes its lock file only itself and never through a "
            "link. Delete the link (rm) and run again."
        )
    return os.open(lock, flags | _NOFOLLOW, 0o644)


def _try_lock(lock: Path) -> int | None:
    """An fd holding an exclusive lock on the file now at `lock`, or None if another process holds it."""
    for _ in range(100):
        if fcntl is None:
            try:
                return _open_lock(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return None
        fd = _open_lock(lock, os.O_RDWR | os.O_CREAT)
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
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / LOCK_NAME
        fd = _try_lock(lock)
    except OSError as e:
        raise atomic.write_error(folder / LOCK_NAME, e) from None
    if fd is None:
        raise _lock_error(folder, lock)
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder).encode())
    clean_stale_temp(folder)
    return RunLock(lock, fd, created)


def remove_if_empty(folder: Path) -> None:
    """Remove a run folder a refused run created and left empty (after its lock is released)."""
    with contextlib.suppress(OSError):
        Path(folder).rmdir()


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
    if cfg.dataset == M3DV:
        try:
            return m3dv.folder_md5()
        except MedlibError:
            return None
    return registry.md5(FALLBACK if cfg.dataset == NODULE_CUBES else cfg.dataset, cfg.size)


def check_reuse(run: Run, cfg) -> None:
    """Refuse to reuse a complete run for `cfg` unless its recorded data is the data found now. A run made from
    other data is refused (not silently returned, nor silently overwritten). M3DV runs that recorded a content hash
    are checked by it (a same-size rewrite of a sample is caught); older records by names, labels and sizes."""
    data = run.record.get("data") or {}
    recorded, current = data.get("md5"), current_data_md5(cfg)
    if cfg.dataset == M3DV and data.get("content_md5"):
        try:
            recorded, current = data["content_md5"], m3dv.folder_content_md5()
        except MedlibError:
            current = None
    if recorded is None or current is None or recorded == current:
        return
    raise MedlibError(
        f"{run.dir} was trained on {cfg.dataset} data with MD5 {recorded}, but the data found now "
        f"(MEDLIB_DATA) has MD5 {current}; pass --no-reuse to retrain it on this data (replacing its "
        "results), or --out another folder to keep both."
    )


def check_resume(ck: dict, meta, path: Path, cfg=None) -> None:
    """Refuse to resume a checkpoint made by another config (another network, recipe or seed: a last.pt copied or
    left over from elsewhere), or trained on other data than `meta` describes."""
    if cfg is not None:
        try:
            key = TrainConfig(**ck["config"]).key()
        except (TypeError, ValueError, KeyError, MedlibError):
            key = None
        if key != cfg.key():
            theirs = (ck.get("config") or {}).get("model") if isinstance(ck.get("config"), dict) else None
            raise MedlibError(
                f"{path} belongs to another config ({theirs or 'unknown'} network, config key {key}), "
                f"not this run's ({cfg.model}, key {cfg.key()}); pass --fresh to discard it and start "
                "this run again."
            )
    old = (ck.get("meta") or {}).get("md5")
    if old is not None and meta.md5 is not None and old != meta.md5:
        raise MedlibError(
            f"{path} was trained on data with MD5 {old}, but the data found now has MD5 {meta.md5}; "
            "pass --fresh to start this run again on the current data."
        )


SCORE_FILES = tuple(f"{split}_scores.csv{ext}" for split in ("val", "test") for ext in ("", *PACKED))
OUTPUTS = ("last.pt", "best.pt", "history.csv", *SCORE_FILES)
EVALUATOR_GLOB = "*_[[]AUC[]]*@*.csv"  # a split's MedMNIST evaluation file (evalformat), as training writes it


def discard_outputs(folder: Path) -> list[Path]:
    """Before a run starts again from scratch (`--no-reuse` on a complete run, `--fresh`): remove what an earlier
    attempt left, so no old checkpoint or score file can be mistaken for (or resumed into) the new run."""
    removed = []
    for p in [*(Path(folder) / name for name in OUTPUTS), *Path(folder).glob(EVALUATOR_GLOB)]:
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed
