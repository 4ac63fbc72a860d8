"""Who hears about each finished epoch: observers (a live plot in a notebook, TensorBoard event files), not flags.

`fit` calls `epoch_done` after every epoch with the run's folder name, its config and its history so far; an
observer that fails never stops a run (it is dropped with a warning). `$MEDLIB_TENSORBOARD=DIR` adds TensorBoard
event files of every run under DIR/<run name>/ where the `tensorboard` package is installed (`pip install
"medlib[tensorboard]"`; `tensorboard --logdir DIR` shows them while a long run trains).
"""

from __future__ import annotations

import importlib
import os

from ..errors import warn

TENSORBOARD_ENV = "MEDLIB_TENSORBOARD"
_observers: list = []
_env_checked: list = []


def add(observer) -> None:
    """Call `observer(run_name, cfg, history)` after every epoch of every run in this process."""
    if observer not in _observers:
        _observers.append(observer)


def remove(observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


class TensorBoard:
    """Each run's per-epoch numbers (losses, AUC, ACC, lr) as TensorBoard scalars under `log_dir`/<run name>/."""

    def __init__(self, log_dir):
        # torch.utils.tensorboard raises ImportError without the optional tensorboard package: imported only here
        writer = importlib.import_module("torch.utils.tensorboard").SummaryWriter
        self.log_dir, self._writer_class, self._writers = str(log_dir), writer, {}

    def __call__(self, run_name: str, cfg, history: list) -> None:
        w = self._writers.get(run_name)
        if w is None:
            w = self._writers[run_name] = self._writer_class(os.path.join(self.log_dir, run_name))
        row = history[-1]
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                w.add_scalar(
                    key.replace("_", "/", 1) if key.startswith(("train_", "val_")) else key, value, row["epoch"]
                )
        w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


def _from_env() -> None:
    """Once per process: $MEDLIB_TENSORBOARD adds a TensorBoard observer, or says in one warning what is missing."""
    if _env_checked:
        return
    _env_checked.append(True)
    log_dir = os.environ.get(TENSORBOARD_ENV)
    if not log_dir:
        return
    try:
        add(TensorBoard(log_dir))
    except ImportError:
        warn(
            f"${TENSORBOARD_ENV} is set but the tensorboard package is not installed, so no event files are "
            'written: pip install "medlib[tensorboard]".'
        )


def epoch_done(run_name: str, cfg, history: list) -> None:
    """Tell every observer that an epoch finished (history[-1] is its row)."""
    _from_env()
    for observer in list(_observers):
        try:
            observer(run_name, cfg, history)
        except Exception as e:  # noqa: BLE001 (a plot or a log must never stop a run)
            remove(observer)
            warn(f"epoch observer {observer!r} failed ({type(e).__name__}: {e}); it is off for this process.")
