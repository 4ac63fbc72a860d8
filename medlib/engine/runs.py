"""Run folders: where a run's record, history, per-sample scores and checkpoints live, and reading them back."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..errors import MedlibError

DEFAULT_OUT = "runs"


def runs_root(out=None) -> Path:
    """`out`, else $MEDLIB_RUNS, else ./runs."""
    return Path(out or os.environ.get("MEDLIB_RUNS") or DEFAULT_OUT)


def run_dir(cfg, out=None) -> Path:
    """`<out>/<dataset>[_<size>]-<model>-s<seed>-<config hash>`: readable, and unique per config."""
    size = "" if cfg.dataset == "m3dv" else f"_{cfg.size}"
    fold = f"-f{cfg.fold}" if cfg.dataset == "m3dv" else ""
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
    io.write_text(path, df.to_csv(index=False))


@dataclass
class Run:
    """A finished (or interrupted) run read back from its folder."""

    dir: Path

    @property
    def record(self) -> dict:
        return json.loads((self.dir / "run.json").read_text())

    @property
    def complete(self) -> bool:
        return (self.dir / "run.json").exists() and self.record.get("status") == "complete"

    @property
    def config(self):
        from ..config import TrainConfig

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


def find_runs(out=None, **where) -> list[Run]:
    """Complete runs under `out` whose config matches every `field=value` given."""
    root = runs_root(out)
    runs = []
    for rec in sorted(root.glob("*/run.json")):
        r = Run(rec.parent)
        try:
            if r.complete and all(r.record["config"].get(k) == v for k, v in where.items()):
                runs.append(r)
        except (ValueError, KeyError):
            continue
    return runs


def claim(folder: Path) -> Path:
    """Mark a run folder as being trained by this process; refuse if another live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".lock"
    try:
        pid = int(lock.read_text())
    except (OSError, ValueError):
        pid = None
    if pid and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid = None  # stale: its process died (e.g. interrupted); the run resumes from last.pt
        except PermissionError:
            pass
        if pid:
            raise MedlibError(f"{folder} is being trained by another process (pid {pid}); wait for it, or stop it "
                              "and run again to resume.")
    io.write_text(lock, str(os.getpid()))
    return lock
