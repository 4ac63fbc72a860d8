"""Run records as one DataFrame, labelled by the plans that name them, and the one aggregate over them.

One reader (`records`, or `frame` for Run objects), one selector (`select`, by plan study and config fields),
one aggregate (`aggregate`, mean ± std with ddof=1), one formatter (`fmt`) and one pooled out-of-fold AUC
(`pooled`). A record's study and label come from the plans (`medlib.plans`); `medlib.results`
re-exports it with ensembles, provenance lines and the README markers, and the report builds on that.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..engine.runs import HISTORY_COLUMNS, Run, read_record, run_dir, runs_root, scores_path, scores_problem
from ..errors import MedlibError, warn
from ..metrics import evaluate
from ..plans import PLANS, parse_label
from ..tasks import TASKS

CONFIG_COLUMNS = [f.name for f in fields(TrainConfig)]
CONFIG_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
METRICS = [f"{s}_{m}" for s in ("train", "val", "test") for m in ("auc", "acc")]
EMPTY = "–"
DEFAULT_RESULTS = "results"


def results_root(out=None) -> Path:
    """`out`, else $MEDLIB_RESULTS, else ./results (the committed records)."""
    return Path(out or os.environ.get("MEDLIB_RESULTS") or DEFAULT_RESULTS)


@lru_cache(maxsize=1)
def plan_labels() -> dict[str, str]:
    """config key -> label ('report1/breastmnist/resnet18/s0') for every run of every named plan."""
    labels = {}
    for name in ("cpu", "gpu", "quick"):
        for label, cfg in PLANS[name]():
            labels.setdefault(cfg.key(), label)
    return labels


@lru_cache(maxsize=1)
def study_keys() -> dict[str, frozenset]:
    """study -> the config keys of every plan entry in it. A run can serve several studies (Report 2's baseline
    at lr 2e-3, batch 30 is also the middle of the learning-rate x batch-size grid), so studies select by key."""
    keys: dict[str, set] = {}
    for name in ("cpu", "gpu", "quick"):
        for label, cfg in PLANS[name]():
            keys.setdefault(parse_label(label).study, set()).add(cfg.key())
    return {k: frozenset(v) for k, v in keys.items()}


def study_rows(df: pd.DataFrame, studies) -> pd.DataFrame:
    """The records that belong to any of `studies` (each run once)."""
    keys = frozenset().union(*(study_keys().get(s, frozenset()) for s in studies))
    return df[df["key"].isin(keys)].reset_index(drop=True) if "key" in df else df.iloc[0:0]


def _row(run: Run, rec: dict) -> dict:
    m = rec.get("metrics", {})
    label = plan_labels().get(rec.get("key", ""), "")  # records made outside a plan have no label
    v = rec.get("versions", {})
    return {
        "dir": str(run.dir),
        "study": parse_label(label).study,
        "label": label,
        **CONFIG_DEFAULTS, **rec["config"],  # a field added after a record was made reads as its default
        **{f"{s}_{k}": m.get(s, {}).get(k, math.nan) for s in ("train", "val", "test") for k in ("auc", "acc")},
        "best_epoch": rec.get("best_epoch"),
        "seconds_per_epoch": rec.get("seconds_per_epoch"),
        "wall_time_s": rec.get("wall_time_s"),
        "device_name": rec.get("device"),
        "precision": rec.get("precision", "fp32"),
        "started": rec.get("started"),
        "finished": rec.get("finished"),
        "data_md5": (rec.get("data") or {}).get("md5"),
        "task": (rec.get("data") or {}).get("task"),
        "torch": v.get("torch"),
        "medlib": v.get("medlib"),
        "world_size": rec.get("world_size", 1),
        "weights": (rec.get("weights") or {}).get("sha256"),  # set where results/ ships the run's weights.pt
        "key": rec.get("key", ""),
    }


def _finite_unit(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _count_rows(path: Path) -> tuple[list[str], int]:
    """(header columns, data rows) of a CSV without parsing it all: cheap enough for every record of a table."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        header = f.readline().decode("utf-8").strip().split(",")
        return header, sum(1 for line in f if line.strip())


def _check_files(folder: Path, rec: dict) -> None:
    """history.csv and the val / test scores exist, with the right header and one row per sample recorded."""
    for name, n in [("history.csv", None)] + [(scores_path(folder, s).name, rec["data"].get(f"n_{s}"))
                                              for s in ("val", "test") if s in rec["metrics"]]:
        path = folder / name
        if not path.is_file():
            raise MedlibError(f"{path} is missing")
        try:
            header, rows = _count_rows(path)
        except (OSError, UnicodeDecodeError) as e:
            raise MedlibError(f"{path} cannot be read ({type(e).__name__})") from None
        if name == "history.csv":
            missing = [c for c in HISTORY_COLUMNS if c not in header]
            problem = f"lacks the column(s) {', '.join(missing)}" if missing else "has no rows" if not rows else None
        else:
            problem = scores_problem(header)
            if problem is None and isinstance(n, int) and rows != n:
                problem = f"has {rows} rows but the run scored {n} samples"
        if problem:
            raise MedlibError(f"{path} {problem}")
    shipped = rec.get("weights")
    if shipped is not None:  # the bytes are checked against the SHA-256 where they are loaded (runs.load_weights)
        path = folder / Path(str(shipped.get("file", ""))).name if isinstance(shipped, dict) else None
        if path is None or not path.is_file() or path.stat().st_size != shipped.get("bytes"):
            raise MedlibError(f"its weights entry names {path or shipped!r}, which is missing or of another size")


def check_record(folder: Path, rec: dict) -> TrainConfig:
    """The config of a complete record, after checking everything a table reads from it: config, task, metrics in
    [0, 1], counts, and the history and score files beside it. MedlibError says what is wrong."""
    config = rec.get("config")
    if not isinstance(config, dict):
        raise MedlibError("it has no config")
    if not isinstance(config.get("dataset"), str) or not config["dataset"]:
        raise MedlibError(f"its config names no dataset ({config.get('dataset')!r})")
    try:
        cfg = TrainConfig(**config).validate()
    except TypeError as e:
        raise MedlibError(f"its config does not fit this medlib ({e})") from None
    except MedlibError as e:
        raise MedlibError(f"its config is invalid ({e})") from None
    data, metrics = rec.get("data"), rec.get("metrics")
    if not isinstance(data, dict) or data.get("task") not in TASKS:
        raise MedlibError(f"its data.task is {(data or {}).get('task') if isinstance(data, dict) else data!r}, not "
                          f"one of {', '.join(TASKS)}")
    if not isinstance(metrics, dict) or not metrics or not all(isinstance(m, dict) for m in metrics.values()):
        raise MedlibError("it has no metrics per split")
    for split, m in metrics.items():
        for k in ("auc", "acc"):
            if not _finite_unit(m.get(k)):
                raise MedlibError(f"its {split} {k.upper()} is {m.get(k)!r}, not a number in [0, 1]")
    for k in ("best_epoch", "epochs_done", "epochs_saved"):
        v = rec.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= cfg.epochs):
            raise MedlibError(f"its {k} is {v!r}, not a whole number in 0..{cfg.epochs} (its epochs)")
    if rec.get("key") != cfg.key():
        raise MedlibError(f"its key {rec.get('key')!r} is not its config's ({cfg.key()}): the config was edited")
    _check_files(folder, rec)
    return cfg


def _skip(path: Path, why: str) -> None:
    warn(f"{path} is skipped: {why}. Retrain that run (`train --fresh` or `reproduce`) or delete its folder.")


def _canonical(folder: Path, cfg: TrainConfig) -> bool:
    """True when a folder has the name medlib gives its config's run (a copy such as R.bak does not)."""
    return folder.name == run_dir(cfg, folder.parent).name


def _read_root(root: Path, complete_only: bool) -> list[tuple[Path, dict, TrainConfig | None]]:
    """(folder, record, config) of the readable, valid records directly under `root`; a warning for each bad one."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        path = folder / "run.json"
        if not (path.exists() or path.is_symlink()):  # a symlink loop "exists" not, and is damage all the same
            continue
        try:
            rec = read_record(path)
        except MedlibError as e:
            _skip(path, str(e).split(";")[0].removeprefix(f"{path} "))
            continue
        if rec.get("status") != "complete":
            if complete_only:
                continue
            if isinstance(rec.get("config"), dict):  # a run in progress: its row holds what it has so far
                found.append((path.parent, rec, None))
            else:
                _skip(path, "it has no config")
            continue
        try:
            found.append((path.parent, rec, check_record(path.parent, rec)))
        except MedlibError as e:
            _skip(path, str(e))
    return found


def _deduplicate(found: list) -> list:
    """One record per config key (which holds the seed and fold): a backup copy of a run folder (cp -r R R.bak) must
    not count as another seed. The folder with the run's own name wins, else the first found; a warning names both."""
    by_key: dict = {}
    for item in found:
        folder, rec, cfg = item
        if cfg is None:
            by_key[id(item)] = [item]
            continue
        by_key.setdefault(rec["key"], []).append(item)
    kept = []
    for items in by_key.values():
        items = sorted(items, key=lambda it: not (it[2] is not None and _canonical(it[0], it[2])))
        kept.append(items[0])
        for folder, rec, cfg in items[1:]:
            warn(f"{folder} repeats the run in {items[0][0]} (same config {rec['key']}, seed {cfg.seed}); it is "
                 "counted once. Delete or move the copy.")
    return kept


def check_folder(root: Path) -> None:
    """A records folder that was named must exist: a typo must not read as 'no records yet'."""
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise MedlibError(f"Records folder {root} {what}; pass the folder that holds the run folders (e.g. results/, "
                          "from the project root).")


def records(*folders, complete_only: bool = True) -> pd.DataFrame:
    """One row per run folder found directly under `folders` (default: results/ and runs/): config, metrics, provenance.

    `study` and `label` name the plan entry a run belongs to (empty for runs outside every plan). Each record is
    checked once here (see check_record): a damaged one is skipped with a warning naming it, and a copy of a run
    folder counts once. A folder that is named but missing is an error.
    """
    for f in folders:
        check_folder(Path(f))
    roots = [Path(f) for f in folders] or [r for r in (results_root(), runs_root()) if r.is_dir()]
    found, seen = [], set()
    for root in roots:
        for item in _read_root(root, complete_only):
            if item[0].resolve() not in seen:
                seen.add(item[0].resolve())
                found.append(item)
    rows = [_row(Run(folder), rec) for folder, rec, _ in _deduplicate(found)]
    cols = ["dir", "study", "label", *CONFIG_COLUMNS, *METRICS]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def select(df: pd.DataFrame, study: str | None = None, **where) -> pd.DataFrame:
    """Rows of one study (by plan key, see study_keys) whose config fields equal `where` (a value or a list)."""
    out = df if study is None else study_rows(df, [study])
    for k, v in where.items():
        if k not in out.columns:
            raise MedlibError(f"No column {k!r} in the records; known: {', '.join(out.columns)}.")
        out = out[out[k].isin(v) if isinstance(v, (list, tuple, set)) else out[k] == v]
    return out.reset_index(drop=True)


def runs(df: pd.DataFrame) -> list[Run]:
    """The Run folders behind some rows (for per-sample scores and histories)."""
    return [Run(Path(d)) for d in df["dir"]]


def frame(items) -> pd.DataFrame:
    """Records from a DataFrame (returned as is) or from Run objects (read into rows)."""
    if isinstance(items, pd.DataFrame):
        return items
    return pd.DataFrame([_row(r, r.record) for r in {r.dir: r for r in items}.values()])


# ---------------------------------------------------------------- the one aggregate and formatter


def mean_std(values) -> dict:
    """{'mean', 'std' (ddof=1; nan for one value), 'n'} of the finite values."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return {
        "mean": float(v.mean()) if len(v) else math.nan,
        "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
        "n": len(v),
    }


def aggregate(items, by: Iterable[str], values: Iterable[str] = tuple(METRICS)) -> pd.DataFrame:
    """Per group of `by`: mean, std (ddof=1) and n of each value over the runs in it (seeds, folds)."""
    df, by = frame(items), list(by)
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for v in values:
            s = mean_std(g[v])
            row.update({f"{v}_mean": s["mean"], f"{v}_std": s["std"], f"{v}_n": s["n"]})
        row["n"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)


def fmt(mean, std=math.nan, n: int = 1, digits: int = 3) -> str:
    """'0.912' for one run, '0.912 ± 0.004' for several, '–' for none."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return EMPTY
    if n > 1 and std is not None and not math.isnan(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def fmt_col(agg: pd.DataFrame, value: str, digits: int = 3) -> list[str]:
    return [fmt(m, s, int(n), digits) for m, s, n in zip(agg[f"{value}_mean"], agg[f"{value}_std"], agg[f"{value}_n"])]


# ---------------------------------------------------------------- per-sample scores: pooled out-of-fold AUC


def scores_metrics(df: pd.DataFrame, task: str) -> dict:
    """AUC / ACC of a per-sample scores table (label column(s) + score_k columns)."""
    scores = df[[c for c in df.columns if c.startswith("score_")]].to_numpy()
    labels = df[[c for c in df.columns if c.startswith("label")]].to_numpy()
    return evaluate(labels if labels.shape[1] > 1 else labels[:, 0], scores, task)


def pooled(items, split: str = "test") -> dict:
    """AUC / ACC of all folds' held-out predictions taken together (each sample scored once): out-of-fold."""
    parts, task = [], None
    for r in runs(frame(items)):
        try:
            parts.append(r.scores(split))
            task = r.record["data"]["task"]
        except MedlibError as e:  # a damaged scores file: left out, and said so, never pooled as it is
            warn(f"{str(e).split(';')[0]}; that fold is left out of the pooled AUC")
    if not parts:
        return {"auc": math.nan, "acc": math.nan, "n": 0}
    scores = pd.concat(parts, ignore_index=True)
    return {**scores_metrics(scores, task), "n": len(scores)}
