"""The results layer: run records from any folders as one DataFrame, and every aggregate shown anywhere.

Notebooks, the HTML report, the README tables (`python -m medlib results --markdown`, see `report.studies`),
the CLI, sweeps and cross-validation all read runs through here: one reader (`records`), one aggregate
(`aggregate`, mean ± std with ddof=1), one formatter (`fmt`), one pooled out-of-fold AUC (`pooled`), one
ensemble. The reader and the aggregate live in `experiments.records`, beside the plans that label records.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd

from . import atomic
from .data.cubes import is_cube_set
from .engine.runs import Run
from .engine.runs import load_weights as runs_load_weights
from .engine.splits import load_for_config
from .engine.training import score_split
from .ensemble import ensemble_runs
from .errors import MedlibError
from .experiments.records import (
    CONFIG_COLUMNS,
    DEFAULT_RESULTS,
    EMPTY,
    METRICS,
    aggregate,
    check_record,
    fmt,
    fmt_col,
    frame,
    mean_std,
    plan_labels,
    pooled,
    records,
    results_root,
    runs,
    scores_metrics,
    select,
    study_keys,
    study_rows,
)

__all__ = [
    "CONFIG_COLUMNS", "DEFAULT_RESULTS", "EMPTY", "METRICS", "README_BEGIN", "README_END", "aggregate", "check_record",
    "compact", "ensemble", "fmt", "fmt_col", "frame", "load_weights", "mean_std", "plan_labels",
    "pooled", "provenance", "records", "rescore", "results_root", "runs", "runs_behind", "scores_metrics", "select",
    "shipped", "study_command", "study_keys", "study_rows", "to_markdown", "write_readme",
]

README_BEGIN, README_END = "<!-- results:begin (python -m medlib results --write-readme) -->", "<!-- results:end -->"


# ---------------------------------------------------------------- ensembles


def ensemble(items, split: str = "test", weights=None) -> pd.DataFrame:
    """Per-sample probabilities averaged over runs scored on the same samples (e.g. one fold's models)."""
    return ensemble_runs(runs(frame(items)), split, weights)


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
        raise MedlibError(f"{folder}: the {split} samples under MEDLIB_DATA are not the ones its record scored; point "
                          "MEDLIB_DATA at the data the run was trained on.")
    return pd.DataFrame({"id": recorded["id"], "label": recorded["label"], "recorded": recorded["score_1"],
                         "rescored": probs[:, 1]})


def shipped(df: pd.DataFrame) -> pd.DataFrame:
    """The records whose weights results/ ships."""
    return df[df["weights"].notna()].reset_index(drop=True) if "weights" in df else df.iloc[0:0]


# ---------------------------------------------------------------- keeping results/ small


def compact(*folders, min_bytes: int = 1 << 18) -> list[Path]:
    """Gzip each score file of the records under `folders` that is larger than `min_bytes`, after checking that
    the packed file reads back to the same table, and drop that split's MedMNIST evaluator copy (it holds the same
    numbers): what keeps large sets' records small enough for git. Every table reads them as before."""
    packed = []
    for root in folders:
        for folder in sorted(p.parent for p in Path(root).glob("*/run.json")):
            for split in ("val", "test"):
                plain = folder / f"{split}_scores.csv"
                if not plain.is_file() or plain.stat().st_size < min_bytes:
                    continue
                table = Run(folder).scores(split)  # a damaged file is refused here, never packed
                gz = plain.with_name(plain.name + ".gz")
                with atomic.atomic_path(gz) as tmp:
                    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
                        f.write(plain.read_bytes())  # no name, mtime 0: the same bytes every time
                if not pd.read_csv(gz).equals(table):
                    gz.unlink()
                    raise MedlibError(f"{gz} did not read back as {plain}; nothing was removed.")
                plain.unlink()
                for copy in folder.glob(f"*_{split}_[[]AUC[]]*@*.csv"):
                    copy.unlink()
                packed.append(gz)
    return packed


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
        raise MedlibError(f"{path} is not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r}); save it as "
                          "UTF-8, or pass the right file to --write-readme.") from None
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
        raise MedlibError(f"{path} keeps its tables: they rest on {old_runs} run record(s) and the new ones on none; "
                          "pass the folder that holds the run folders (e.g. results/, from the project root).")
    new = pattern.sub(lambda _: f"{begin}\n{text}{end}", doc)
    if new != doc:
        atomic.write_text(path, new)
    return new != doc
