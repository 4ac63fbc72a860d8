"""k-fold cross-validation on M3DV (`python -m medlib cv`): one run per fold, then the results layer's table."""

from __future__ import annotations

import pandas as pd

from ..engine.training import fit
from ..errors import MedlibError
from ..flags import add_config_flags, config_from_args
from ..results import aggregate, fmt, frame, pooled


def cross_validate(cfg, out=None, folds: int | None = None, only=None, verbose: bool = False, **fit_kw):
    """Train folds 0..k-1 of `cfg` (or those in `only`), reusing finished ones; returns (runs, their records)."""
    k = folds or cfg.folds
    picked = list(range(k)) if only is None else list(only)
    bad = [str(i) for i in picked if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < k]
    if bad or not picked:
        raise MedlibError(
            f"--only {','.join(bad) or '(none)'}: the folds are 0..{k - 1} (--folds {k}); name some of "
            "them, e.g. --only 0,1, or leave --only off for all."
        )
    configs = [cfg.replace(folds=k, fold=i).validate() for i in picked]  # every fold checked before any trains
    runs = [fit(c, out=out, verbose=verbose, **fit_kw) for c in configs]
    return runs, frame(runs).sort_values("fold").reset_index(drop=True)


def parse_folds(text: str | None) -> list[int] | None:
    """--only '0,2' as [0, 2] (None: every fold); anything but whole numbers is one clear error."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise MedlibError(f"--only {text!r} must be comma-separated fold numbers, e.g. --only 0,1.") from None


def best_variant(variants: dict):
    """The key of `variants` ({variant: its fold runs}) whose folds score the highest mean test AUC (the first on a
    tie): the cross-validated choice of a recipe, made without the data a submission is scored on."""
    scores = {k: float(frame(runs)["test_auc"].mean()) for k, runs in variants.items()}
    return max(scores, key=scores.get)


def summary(records: pd.DataFrame) -> dict:
    """Mean ± std over folds of val/test AUC and ACC, and the pooled out-of-fold AUC (when every fold is there)."""
    agg = aggregate(records.assign(all=0), ["all"]).iloc[0]
    out = {
        v: fmt(agg[f"{v}_mean"], agg[f"{v}_std"], agg[f"{v}_n"]) for v in ("val_auc", "val_acc", "test_auc", "test_acc")
    }
    out["pooled_test_auc"] = fmt(pooled(records)["auc"])
    return out


def cmd_cv(args) -> None:
    cfg = config_from_args(args)
    _, recs = cross_validate(cfg, out=args.out, only=parse_folds(args.only), verbose=False)
    cols = ["fold", "val_auc", "val_acc", "test_auc", "test_acc", "best_epoch", "seconds_per_epoch"]
    print(recs[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    for k, v in summary(recs).items():
        print(f"{k}: {v}")


def add_command(sub) -> None:
    p = sub.add_parser("cv", help="k-fold cross-validation (M3DV): every fold, then mean ± std and pooled AUC")
    add_config_flags(p)
    p.add_argument("--only", default=None, help="comma-separated folds to run, e.g. 0,1 (default: all)")
    p.add_argument("--out", default=None, help="runs folder (default $MEDLIB_RUNS or ./runs)")
    p.set_defaults(func=cmd_cv, preset="report2")
