"""The results layer: run records from any folders as one DataFrame, and every aggregate shown anywhere.

Notebooks, the HTML report, the README tables (`python -m medlib results --markdown`, see `report.studies`),
the CLI, sweeps and cross-validation all read runs through here: one reader (`records`, or `frame` for Run
objects; each record checked once, `check_record`), one selector (`select`, by plan study and config fields), one
aggregate (`aggregate`, mean ± std with ddof=1), one formatter (`fmt`, `EMPTY` for no value), one pooled
out-of-fold AUC (`pooled`) and one ensemble of records (`ensemble`, on `medlib.ensemble`'s average). A record's
study and label come from the plans (`medlib.plans`); the workflows in `experiments/` build on this module.
"""

from __future__ import annotations

import gzip
import lzma
import math
import os
import re
from collections.abc import Iterable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .config import TrainConfig
from .data.cubes import is_cube_set
from .engine.runs import (
    EVALUATOR_GLOB,
    HISTORY_COLUMNS,
    Run,
    read_record,
    run_dir,
    runs_root,
    scores_path,
    scores_problem,
)
from .engine.runs import load_weights as runs_load_weights
from .engine.splits import load_for_config
from .engine.training import score_split
from .ensemble import member_scores, mix
from .errors import MedlibError, warn
from .evalformat import write_evaluator_csv
from .metrics import evaluate
from .plans import PLANS, parse_label
from .tasks import TASKS

__all__ = [
    "BUDGET_BYTES",
    "CONFIG_COLUMNS",
    "DEFAULT_RESULTS",
    "EMPTY",
    "METRICS",
    "README_BEGIN",
    "README_END",
    "aggregate",
    "check_record",
    "compact",
    "ensemble",
    "evaluator_files",
    "fmt",
    "fmt_col",
    "frame",
    "load_weights",
    "mean_std",
    "plan_labels",
    "pooled",
    "provenance",
    "records",
    "rescore",
    "results_root",
    "runs",
    "runs_behind",
    "scores_metrics",
    "select",
    "shipped",
    "study_command",
    "study_keys",
    "study_rows",
    "to_markdown",
    "write_readme",
]

CONFIG_COLUMNS = [f.name for f in fields(TrainConfig)]
CONFIG_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
METRICS = [f"{s}_{m}" for s in ("train", "val", "test") for m in ("auc", "acc")]
EMPTY = "–"
DEFAULT_RESULTS = "results"
README_BEGIN, README_END = "<!-- results:begin (python -m medlib results --write-readme) -->", "<!-- results:end -->"


# ---------------------------------------------------------------- where records live, and the plans that name them


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


# ---------------------------------------------------------------- the one reader: records checked, as rows


def _row(run: Run, record: dict) -> dict:
    m = record.get("metrics", {})
    label = plan_labels().get(record.get("key", ""), "")  # records made outside a plan have no label
    v = record.get("versions", {})
    return {
        "dir": str(run.dir),
        "study": parse_label(label).study,
        "label": label,
        **CONFIG_DEFAULTS,
        **record["config"],  # a field added after a record was made reads as its default
        **{f"{s}_{k}": m.get(s, {}).get(k, math.nan) for s in ("train", "val", "test") for k in ("auc", "acc")},
        "best_epoch": record.get("best_epoch"),
        "seconds_per_epoch": record.get("seconds_per_epoch"),
        "wall_time_s": record.get("wall_time_s"),
        "device_name": record.get("device"),
        "precision": record.get("precision", "fp32"),
        "started": record.get("started"),
        "finished": record.get("finished"),
        "data_md5": (record.get("data") or {}).get("md5"),
        "task": (record.get("data") or {}).get("task"),
        "torch": v.get("torch"),
        "medlib": v.get("medlib"),
        "world_size": record.get("world_size", 1),
        "weights": (record.get("weights") or {}).get("sha256"),  # set where results/ ships the run's weights.pt
        "key": record.get("key", ""),
    }


def _finite_unit(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _count_rows(path: Path) -> tuple[list[str], int]:
    """(header columns, data rows) of a CSV without parsing it all: cheap enough for every record of a table."""
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rb") as f:
        header = f.readline().decode("utf-8").strip().split(",")
        return header, sum(1 for line in f if line.strip())


def _check_files(folder: Path, record: dict) -> None:
    """history.csv and the val / test scores exist, with the right header and one row per sample recorded."""
    for name, n in [("history.csv", None)] + [
        (scores_path(folder, s).name, record["data"].get(f"n_{s}")) for s in ("val", "test") if s in record["metrics"]
    ]:
        path = folder / name
        if not path.is_file():
            raise MedlibError(f"{path} is missing")
        try:
            header, rows = _count_rows(path)
        except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as e:
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
    shipped = record.get("weights")
    if shipped is not None:  # the bytes are checked against the SHA-256 where they are loaded (runs.load_weights)
        path = folder / Path(str(shipped.get("file", ""))).name if isinstance(shipped, dict) else None
        if path is None or not path.is_file() or path.stat().st_size != shipped.get("bytes"):
            raise MedlibError(f"its weights entry names {path or shipped!r}, which is missing or of another size")


def check_record(folder: Path, record: dict) -> TrainConfig:
    """The config of a complete record, after checking everything a table reads from it: config, task, metrics in
    [0, 1], counts, and the history and score files beside it. MedlibError says what is wrong."""
    config = record.get("config")
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
    data, metrics = record.get("data"), record.get("metrics")
    if not isinstance(data, dict) or data.get("task") not in TASKS:
        raise MedlibError(
            f"its data.task is {(data or {}).get('task') if isinstance(data, dict) else data!r}, not "
            f"one of {', '.join(TASKS)}"
        )
    if not isinstance(metrics, dict) or not metrics or not all(isinstance(m, dict) for m in metrics.values()):
        raise MedlibError("it has no metrics per split")
    for split, m in metrics.items():
        for k in ("auc", "acc"):
            if not _finite_unit(m.get(k)):
                raise MedlibError(f"its {split} {k.upper()} is {m.get(k)!r}, not a number in [0, 1]")
    for k in ("best_epoch", "epochs_done", "epochs_saved"):
        v = record.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= cfg.epochs):
            raise MedlibError(f"its {k} is {v!r}, not a whole number in 0..{cfg.epochs} (its epochs)")
    if record.get("key") != cfg.key():
        raise MedlibError(f"its key {record.get('key')!r} is not its config's ({cfg.key()}): the config was edited")
    _check_files(folder, record)
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
            record = read_record(path)
        except MedlibError as e:
            _skip(path, str(e).split(";")[0].removeprefix(f"{path} "))
            continue
        if record.get("status") != "complete":
            if complete_only:
                continue
            if isinstance(record.get("config"), dict):  # a run in progress: its row holds what it has so far
                found.append((path.parent, record, None))
            else:
                _skip(path, "it has no config")
            continue
        try:
            found.append((path.parent, record, check_record(path.parent, record)))
        except MedlibError as e:
            _skip(path, str(e))
    return found


def _deduplicate(found: list) -> list:
    """One record per config key (which holds the seed and fold): a backup copy of a run folder (cp -r R R.bak) must
    not count as another seed. The folder with the run's own name wins, else the first found; a warning names both."""
    by_key: dict = {}
    for item in found:
        folder, record, cfg = item
        if cfg is None:
            by_key[id(item)] = [item]
            continue
        by_key.setdefault(record["key"], []).append(item)
    kept = []
    for items in by_key.values():
        items = sorted(items, key=lambda it: not (it[2] is not None and _canonical(it[0], it[2])))
        kept.append(items[0])
        for folder, record, cfg in items[1:]:
            warn(
                f"{folder} repeats the run in {items[0][0]} (same config {record['key']}, seed {cfg.seed}); it is "
                "counted once. Delete or move the copy."
            )
    return kept


def check_folder(root: Path) -> None:
    """A records folder that was named must exist: a typo must not read as 'no records yet'."""
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise MedlibError(
            f"Records folder {root} {what}; pass the folder that holds the run folders (e.g. results/, "
            "from the project root)."
        )


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
    rows = [_row(Run(folder), record) for folder, record, _ in _deduplicate(found)]
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


# ---------------------------------------------------------------- ensembles


def ensemble(items, split: str = "test", weights=None) -> pd.DataFrame:
    """Per-sample probabilities averaged over runs scored on the same samples (e.g. one fold's models): records rows
    or Run objects, their recorded scores checked to name the same samples (ensemble.member_scores, ensemble.mix)."""
    return mix(member_scores(runs(frame(items)), split), weights)


# ---------------------------------------------------------------- shipped weights


def load_weights(item):
    """(net in eval mode, TrainConfig, Meta) of a record that ships its weights: a records row, a Run or a folder.
    The file is checked against the SHA-256 in run.json first (engine.runs.load_weights)."""
    return runs_load_weights(_folder(item))


def _folder(item) -> Path:
    """The run folder of a records row, a Run or a path."""
    return Path(item.dir if isinstance(item, Run) else item if isinstance(item, (str, Path)) else item["dir"])


def rescore(item, split: str = "val", device: str = "cpu") -> pd.DataFrame:
    """A shipped model scored again on a split of its record's own data, in the precision the record was made with:
    per sample the recorded and the new P(class 1) (id, label, recorded, rescored). The check that results/ ships
    the weights behind its numbers."""
    folder = _folder(item)
    net, cfg, meta = runs_load_weights(folder)
    s = load_for_config(cfg, check=False)[split]
    run = Run(folder)
    probs, _ = score_split(net, cfg, meta, s.X, s.y, device, run.record.get("precision"))
    recorded = run.scores(split)
    if list(recorded["id"]) != [str(i) for i in s.ids]:
        raise MedlibError(
            f"{folder}: the {split} samples under MEDLIB_DATA are not the ones its record scored; point "
            "MEDLIB_DATA at the data the run was trained on."
        )
    return pd.DataFrame(
        {"id": recorded["id"], "label": recorded["label"], "recorded": recorded["score_1"], "rescored": probs[:, 1]}
    )


def shipped(df: pd.DataFrame) -> pd.DataFrame:
    """The records whose weights results/ ships."""
    return df[df["weights"].notna()].reset_index(drop=True) if "weights" in df else df.iloc[0:0]


# ---------------------------------------------------------------- keeping results/ small


BUDGET_BYTES = 25_000_000  # what results/ may hold in all (issue 8's rule): records, score files, shipped weights


def _run_folders(folders) -> list[Path]:
    """The run folders (those holding a run.json) directly under each of `folders`, in name order per folder."""
    return [f for root in folders for f in sorted(p.parent for p in Path(root).glob("*/run.json"))]


def compact(*folders, min_bytes: int = 1 << 15) -> list[Path]:
    """Pack each score file of the records under `folders` over `min_bytes` (and any an older compact gzipped) as
    xz, after checking that it reads back to the same table, and drop the runs' MedMNIST evaluator copies (the same
    numbers; `evaluator_files` writes them again): what keeps results/ under BUDGET_BYTES. Readers are unchanged."""
    packed = []
    for folder in _run_folders(folders):
        for split in ("val", "test"):
            src = scores_path(folder, split)
            small = src.suffix == ".csv" and src.stat().st_size < min_bytes if src.is_file() else True
            if small or src.suffix == ".xz":
                continue
            table = Run(folder).scores(split)  # a damaged file is refused here, never packed
            text = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
            xz = folder / f"{split}_scores.csv.xz"
            with atomic.atomic_path(xz) as tmp:  # xz keeps no name or date: the same bytes every time
                tmp.write_bytes(lzma.compress(text, preset=9 | lzma.PRESET_EXTREME))
            if not pd.read_csv(xz).equals(table):
                xz.unlink()
                raise MedlibError(f"{xz} did not read back as {src}; nothing was removed.")
            src.unlink()
            packed.append(xz)
        for copy in folder.glob(EVALUATOR_GLOB):
            copy.unlink()
    return packed


def evaluator_files(out, *folders) -> list[Path]:
    """Write the val / test scores of each complete record under `folders` as MedMNIST evaluation files in
    `out/<run folder>/`, for `medmnist.Evaluator.parse_and_evaluate`: the copies `compact` drops, made again from
    the scores. Runs the official Evaluator cannot check (M3DV, folds, crops, subsets) get none."""
    out = Path(out).resolve()
    for root in folders:
        root = Path(root).resolve()
        if out == root or root in out.parents:
            raise MedlibError(
                f"--evaluator-files {out} lies inside {root}, the records it is made from; name a folder outside it."
            )
    written = []
    for folder in _run_folders(folders):
        run = Run(folder)
        if not run.complete:
            continue
        record = run.record
        cfg = record["config"]
        for split in ("val", "test"):
            m = record["metrics"].get(split)
            if not m:
                continue
            df = run.scores(split)
            probs = df[[c for c in df.columns if c.startswith("score_")]].to_numpy()
            path = write_evaluator_csv(
                out / folder.name, cfg["dataset"], cfg["size"], split, probs, m["auc"], m["acc"], folder.name
            )
            if path is not None:
                written.append(path)
    return written


# ---------------------------------------------------------------- provenance


def provenance(items, command: str | None = None) -> str:
    """One line under a table: device(s), precision, dates, seeds / folds, epochs, and the command that made them."""
    df = frame(items)
    if df.empty:
        return "no records yet: run `python -m medlib reproduce` (see results/README.md)"
    devices = ", ".join(f"{d} ({p})" for d, p in df.groupby(["device_name", "precision"]).size().index)
    days = sorted({str(s)[:10] for s in df["finished"].dropna()})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    seeds = ",".join(str(s) for s in sorted(df["seed"].unique()))
    folds = sorted(df.loc[df["dataset"].map(is_cube_set), "fold"].unique())
    epochs = sorted(df["epochs"].unique())
    parts = [f"{len(df)} run{'s' if len(df) != 1 else ''} on {devices}", when, f"seeds {seeds}"]
    if folds:
        parts.append("folds " + ",".join("all" if f == -1 else str(f) for f in folds))
    parts.append("epochs " + "/".join(str(e) for e in epochs))
    versions = sorted({f"torch {t}" for t in df["torch"].dropna()})
    parts += versions
    if command:
        parts.append(f"`{command}`")
    return "; ".join(parts)


def study_command(study: str) -> str:
    return f"python -m medlib reproduce --only '{study}/*'"


# ---------------------------------------------------------------- Markdown and the README's marked section


def to_markdown(t: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (no dependency on tabulate)."""
    cells = [[str(c) for c in t.columns]] + [[str(v) for v in row] for row in t.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(t.columns), *lines[1:]])


_RUNS_LINE = re.compile(r"(\d+) runs? on ")  # how provenance() starts the line under each table


def runs_behind(text: str) -> int:
    """How many runs the tables in a Markdown text rest on (summed over their provenance lines)."""
    return sum(int(n) for n in _RUNS_LINE.findall(text))


def read_readme(path: Path) -> str:
    """The README's text, or one MedlibError when it is missing, unreadable or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise MedlibError(
            f"{path} is not UTF-8 text (byte {e.start} is {e.object[e.start : e.start + 1]!r}); save it as "
            "UTF-8, or pass the right file to --write-readme."
        ) from None
    except OSError as e:
        raise MedlibError(f"Cannot read {path} ({e.strerror or e}); pass the README to update.") from None


def write_readme(path, text: str, begin: str = README_BEGIN, end: str = README_END) -> bool:
    """Replace the text between two marker lines of a README; True when the file changed. Tables resting on some
    runs are never replaced by tables resting on none (a mistyped or missing records folder)."""
    path = Path(path)
    doc = read_readme(path)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    found = pattern.search(doc)
    if not found:
        raise MedlibError(f"{path} has no results markers; add the lines\n{begin}\n{end}\nwhere the tables should go.")
    old_runs = runs_behind(found.group(0))
    if old_runs and not runs_behind(text):
        raise MedlibError(
            f"{path} keeps its tables: they rest on {old_runs} run record(s) and the new ones on none; "
            "pass the folder that holds the run folders (e.g. results/, from the project root)."
        )
    new = pattern.sub(lambda _: f"{begin}\n{text}{end}", doc)
    if new != doc:
        atomic.write_text(path, new)
    return new != doc
