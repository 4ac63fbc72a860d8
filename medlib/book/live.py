"""A live plot while a notebook trains, as d2l's Animator: one figure per cell, redrawn in place after each epoch.

`notebook.setup()` turns it on in a Jupyter kernel; under CI, nbval or `medlib report` (CI or MEDLIB_QUIET set) it
stays off, so the saved outputs hold no half-drawn curves. It shows the run that trains now (a cell that trains
several runs redraws the same figure), its train and validation loss and AUC per epoch.
"""

from __future__ import annotations

import time

from matplotlib.figure import Figure

from ..engine import observe
from ..engine.training import quiet


def figure(run_name: str, history: list, epochs: int) -> Figure:
    """Loss (train, val) and AUC (train, val) against the epoch, for one run's history so far."""
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax_loss, ax_auc = fig.subplots(1, 2)
    x = [r["epoch"] for r in history]
    for ax, what in ((ax_loss, "loss"), (ax_auc, "auc")):
        for split, style in (("train", "-"), ("val", "--")):
            ys = [r.get(f"{split}_{what}") for r in history]
            if any(v is not None for v in ys):
                ax.plot(x, [float("nan") if v is None else v for v in ys], style, marker=".", label=split)
        ax.set_xlim(0.5, max(epochs, 1) + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(what.upper() if what == "auc" else what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{run_name}: epoch {x[-1] if x else 0}/{epochs}", fontsize=9)
    return fig


class LivePlot:
    """An epoch observer (`medlib.engine.observe`): redraws its cell's figure at most every `every` seconds, and
    always at a run's last epoch."""

    def __init__(self, every: float = 1.0):
        self.every, self._handle, self._cell, self._last = every, None, None, 0.0

    def __call__(self, run_name: str, cfg, history: list) -> None:
        from IPython import get_ipython
        from IPython.display import display

        ip = get_ipython()
        cell = getattr(ip, "execution_count", None)
        last_epoch = bool(history) and history[-1]["epoch"] == cfg.epochs
        if cell == self._cell and not last_epoch and time.monotonic() - self._last < self.every:
            return
        fig = figure(run_name, history, cfg.epochs)
        if cell != self._cell or self._handle is None:  # a new cell: a new figure below it
            self._handle, self._cell = display(fig, display_id=True), cell
        else:
            self._handle.update(fig)
        self._last = time.monotonic()


_live: list = []


def turn_on() -> LivePlot | None:
    """Register one LivePlot for this kernel, unless CI or MEDLIB_QUIET asks for quiet outputs."""
    if quiet():
        return None
    if not _live:
        _live.append(LivePlot())
        observe.add(_live[0])
    return _live[0]
