"""Report 2's five readings of the train / validation loss curves, decided by a trend test instead of by eye.

Report 2 (slide "Discussion") lists:

    train falling, val falling  -> the network is still learning
    train falling, val flat     -> overfitting
    train flat,    val falling  -> something is wrong with the data
    train flat,    val flat     -> a plateau: lower the learning rate or the batch size
    train rising,  val rising   -> bad architecture or hyper-parameters (or unclean data)

and we add the textbook sixth: train falling while val *rises* is overfitting too.

How a curve's trend is decided (the thresholds, all arguments of `diagnose`):

* Only the **tail** counts: the last `frac` = 1/2 of the epochs, but at least `min_points` = 3 (all epochs if
  there are fewer). Early epochs always fall fast and say nothing about where training is heading.
* On the tail we fit a least-squares line `loss ≈ a + b·epoch`. The slope is **relative**: `b / mean(tail)`,
  the change per epoch as a fraction of the loss level, so one threshold fits every loss scale.
* A curve is *falling* (*rising*) when the relative slope is ≤ −`tol` (≥ +`tol`), `tol` = 0.01 = 1 % of its
  level per epoch, **and**, when the tail has at least `min_test` = 5 points, the slope differs from zero by
  a two-sided t-test at level `alpha` = 0.05 (n−2 degrees of freedom), so noise in a flat validation curve
  is not read as a trend. Otherwise it is *flat*.
* With fewer than 5 tail points a t-test has almost no power (with 3 points it needs t > 12.7), so the
  1 % rule alone decides and the diagnosis is marked `confident=False`: short (quick-profile) runs get a
  reading, not a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import MedlibError

FALLING, FLAT, RISING = "falling", "flat", "rising"


def unique(runs: Iterable) -> list:
    """The runs in order, each folder once (a notebook may pass the same run in two lists)."""
    return list({run.dir: run for run in runs}.values())


UNSTABLE = ("train rising: unstable training", "Lower the learning rate; check for a too-strong augmentation.")
# (train trend, val trend) -> (case, advice). The first six are Report 2's five plus val rising.
CASES = {
    (FALLING, FALLING): (
        "both falling: still learning",
        "Train longer (more epochs), or raise the learning rate a little.",
    ),
    (FALLING, FLAT): (
        "train falling, val flat: overfitting",
        "Keep the best-validation checkpoint (medlib does), add augmentation / mixup / weight decay, "
        "or use a smaller network.",
    ),
    (FALLING, RISING): (
        "train falling, val rising: overfitting",
        "Past its best epoch: stop earlier and regularise (augmentation, mixup, weight decay).",
    ),
    (FLAT, FALLING): (
        "train flat, val falling: data problem",
        "Check the split: validation may be easier than train or hold copies of it (Report 2's own "
        "validation held augmented training nodules). Heavy augmentation or mixup also keeps the train "
        "loss up while validation improves.",
    ),
    (FLAT, FLAT): (
        "both flat: plateau — lower lr or batch",
        "Lower the learning rate (or use a schedule) or the batch size, as Report 2 advises.",
    ),
    (RISING, RISING): (
        "both rising: bad architecture/hyper-parameters",
        "Diverging: lower the learning rate; check the architecture, the loss and the data.",
    ),
    # not in Report 2
    (FLAT, RISING): (
        "train flat, val rising: overfitting",
        "Validation got worse while training stood still: stop at the best-validation epoch.",
    ),
    (RISING, FLAT): UNSTABLE,
    (RISING, FALLING): UNSTABLE,
}
# Report 2's own five cases (overfitting appears twice: validation flat or rising); the rest are medlib's
REPORT2_KEYS = ((FALLING, FALLING), (FALLING, FLAT), (FALLING, RISING), (FLAT, FALLING), (FLAT, FLAT), (RISING, RISING))
REPORT2_CASES = [CASES[k][0] for k in REPORT2_KEYS]


@dataclass
class Trend:
    """The least-squares trend of a curve's tail."""

    direction: str  # falling | flat | rising
    slope: float  # loss units per epoch
    intercept: float
    rel_slope: float  # slope / mean level of the tail
    t: float  # slope / its standard error (inf for a perfect line, nan with < 3 points)
    p: float  # two-sided p-value of slope == 0 (nan with < 3 points; not used with < min_test)
    n: int  # points in the tail


@dataclass
class Diagnosis:
    case: str
    advice: str
    train: Trend
    val: Trend
    first_epoch: int  # the tail's first and last epoch
    last_epoch: int
    confident: bool  # False when the tail had too few points (< min_test) for the t-test
    report2: bool  # one of Report 2's five cases (or val rising while train falls)


def tail_window(n: int, frac: float = 0.5, min_points: int = 3) -> tuple[int, int]:
    """Row range [lo, hi) of the tail: the last max(min_points, ceil(frac * n)) rows, at most all n."""
    k = min(n, max(min_points, math.ceil(frac * n)))
    return n - k, n


def trend(y, x=None, tol: float = 0.01, alpha: float = 0.05, min_test: int = 5) -> Trend:
    """Direction of a short curve: relative OLS slope beyond ±tol and significant at `alpha` (see module doc)."""
    from scipy import stats

    y = np.asarray(y, dtype=float)
    x = np.arange(len(y), dtype=float) if x is None else np.asarray(x, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x)
    x, y = x[ok], y[ok]
    n = len(y)
    if n < 2:
        return Trend(FLAT, math.nan, float(y[0]) if n else math.nan, math.nan, math.nan, math.nan, n)
    xc = x - x.mean()
    sxx = float((xc**2).sum())
    slope = float((xc * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * x.mean())
    level = abs(float(y.mean())) or 1e-12
    rel = slope / level
    t, p, significant = math.nan, math.nan, True
    if n >= 3:
        resid = y - (intercept + slope * x)
        se = math.sqrt(float((resid**2).sum()) / (n - 2) / sxx)
        t = slope / se if se > 0 else (math.inf if slope else 0.0) * (1 if slope >= 0 else -1)
        p = float(2 * stats.t.sf(abs(t), n - 2)) if math.isfinite(t) else 0.0 if slope else 1.0
        significant = p < alpha if n >= min_test else True
    direction = FALLING if rel <= -tol and significant else RISING if rel >= tol and significant else FLAT
    return Trend(direction, slope, intercept, rel, t, p, n)


def diagnose(
    history: pd.DataFrame,
    frac: float = 0.5,
    min_points: int = 3,
    tol: float = 0.01,
    alpha: float = 0.05,
    min_test: int = 5,
) -> Diagnosis:
    """Which of Report 2's cases a run's history (columns epoch, train_loss, val_loss) is in."""
    missing = {"train_loss", "val_loss"} - set(history.columns)
    if missing:
        raise MedlibError(f"history lacks column(s) {sorted(missing)}; pass a run's history (Run.history).")
    h = history.reset_index(drop=True)
    if len(h) == 0:
        raise MedlibError("history is empty: the run has no finished epoch.")
    epochs = h["epoch"] if "epoch" in h else pd.Series(np.arange(1, len(h) + 1))
    lo, hi = tail_window(len(h), frac, min_points)
    x = epochs.iloc[lo:hi].to_numpy(float)
    tr = trend(h["train_loss"].iloc[lo:hi], x, tol, alpha, min_test)
    va = trend(h["val_loss"].iloc[lo:hi], x, tol, alpha, min_test)
    case, advice = CASES.get((tr.direction, va.direction), ("no clear trend", ""))
    return Diagnosis(
        case,
        advice,
        tr,
        va,
        int(epochs.iloc[lo]),
        int(epochs.iloc[hi - 1]),
        confident=min(tr.n, va.n) >= min_test,
        report2=case in REPORT2_CASES,
    )


def diagnose_runs(
    runs: Iterable, label: Iterable[str] = ("dataset", "model", "mixup_alpha", "batch_size", "fold", "seed"), **kw
) -> pd.DataFrame:
    """One row per run (each folder once): its config labels, the tail's relative slopes (% per epoch), trends, case."""
    rows = []
    for run in unique(runs):
        cfg = run.record["config"]
        d = diagnose(run.history, **kw)
        rows.append(
            {
                **{k: cfg[k] for k in label if k in cfg},
                "epochs": f"{d.first_epoch}–{d.last_epoch}",
                "train %/epoch": round(100 * d.train.rel_slope, 1),
                "val %/epoch": round(100 * d.val.rel_slope, 1),
                "train": d.train.direction,
                "val": d.val.direction,
                "case": d.case,
                "confident": d.confident,
            }
        )
    return pd.DataFrame(rows)
