"""The reproduction's study tables as a registry: each table of `tables` with its title, the plan studies whose
records it shows and the command that makes them, and their rendering for `python -m medlib results`
(`--markdown` / `--write-readme`: the README's tables, each with its provenance line). `report.reproduction`
styles the same tables for the notebooks. Records and provenance come from `medlib.results`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..errors import MedlibError
from ..results import (
    compact,
    evaluator_files,
    provenance,
    records,
    results_root,
    study_command,
    study_rows,
    to_markdown,
    write_readme,
)
from .tables import (
    batch_rows,
    batch_table,
    curve_cases_table,
    cv_table,
    ensemble_table,
    final_table,
    flaw_rows,
    flaws_table,
    loss_rows,
    loss_table,
    lr_batch_table,
    medmnist2d_rows,
    medmnist2d_table,
    medmnist3d_table,
    outdo_table,
    outdo_verdict,
    report1_table,
    search_table,
    seed_ensemble_table,
    seed_rows,
    selection_table,
    shipped_rows,
    shipped_table,
    tuned_table,
    weighted_ensemble_table,
)


@dataclass(frozen=True)
class Study:
    """One table of the reproduction: its title, the function computing it from the records, the plan studies
    whose records it shows (the last names the command that makes them) and, where the table reads only some
    of those records, the function choosing them (for its provenance line)."""

    title: str
    table: Callable[[pd.DataFrame], pd.DataFrame]
    studies: tuple[str, ...]
    rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    note: Callable[[pd.DataFrame], str] | None = None  # a sentence read from the table, shown under it

    @property
    def name(self) -> str:
        return self.table.__name__

    @property
    def command(self) -> str:
        return study_command(self.studies[-1])

    def used(self, df: pd.DataFrame) -> pd.DataFrame:
        """The records this table is made from."""
        return self.rows(df) if self.rows is not None else study_rows(df, self.studies)


STUDIES = [
    Study("Report 1's recipe (ResNet-18/50, SGD lr 1e-3, batch 128, Report 1's epochs)", report1_table, ("report1",)),
    Study(
        "Loss: cross-entropy vs Report 1's BCE-with-logits (ResNet-18)", loss_table, ("report1", "loss-bce"), loss_rows
    ),
    Study(
        "MedMNIST 2D beyond Report 1 (its recipe and medlib's)",
        medmnist2d_table,
        ("tuned", "medmnist2d"),
        medmnist2d_rows,
    ),
    Study("medlib's CPU recipe (ResNet-18, ImageNet stem) against the goal", tuned_table, ("tuned",)),
    Study("BreastMNIST recipe search (ResNet-18, 60 epochs; chosen by validation AUC)", search_table, ("search",)),
    Study(
        "BreastMNIST finalists by 5-fold cross-validation on train + val (the test split unread)",
        selection_table,
        ("select",),
    ),
    Study("MedMNIST 3D", medmnist3d_table, ("medmnist3d",)),
    Study(
        "Outdo the references: medlib's recipe over >= 5 seeds, chosen without the test split",
        outdo_table,
        ("outdo",),
        note=outdo_verdict,
    ),
    Study("Report 2 on M3DV: 5-fold cross-validation (test = held-out fold)", cv_table, ("report2",)),
    Study("Report 2: ensembles (probabilities averaged per fold)", ensemble_table, ("report2",)),
    Study(
        "Report 2's weighted average of runs, weights chosen on validation only", weighted_ensemble_table, ("report2",)
    ),
    Study(
        "Report 2's code flaws, each put back alone (3-conv baseline, mixup 0.2, the same 5 folds)",
        flaws_table,
        ("report2", "report2-flaws"),
        flaw_rows,
    ),
    Study(
        "Report 2's recipe over several seeds: each seed alone and their average (per fold, pooled)",
        seed_ensemble_table,
        ("report2", "outdo", "report2-seeds"),
        seed_rows,
    ),
    Study("Report 2: batch-size study (DenseNet, 5 folds)", batch_table, ("report2", "report2-batch"), batch_rows),
    Study("Report 2: learning rate and batch size (3-conv baseline, 5 folds)", lr_batch_table, ("lr-batch",)),
    Study("Report 2's loss-curve cases, each on a real run", curve_cases_table, ("curves",)),
    Study("Report 2: final model on every labelled cube (`--fold all`)", final_table, ("report2-final",)),
    Study(
        "Report 2: the models whose weights results/ ships (weights.pt, checked against run.json's SHA-256)",
        shipped_table,
        ("report2", "report2-final"),
        shipped_rows,
    ),
]


def study(name: str) -> Study:
    """A study table by its function's name, e.g. 'cv_table'."""
    for st in STUDIES:
        if st.name == name:
            return st
    raise MedlibError(f"No results table named {name!r}; choose one of {', '.join(s.name for s in STUDIES)}.")


NO_RECORDS = "No reproduction records yet: `python -m medlib reproduce` writes them into results/."


def markdown(df: pd.DataFrame | None = None) -> str:
    """Every study's table as Markdown with its provenance line; what `--write-readme` puts in the README."""
    df = records(results_root()) if df is None else df
    if df.empty:  # Report 1's table lists its ten sets even then: say plainly that nothing was recorded
        return NO_RECORDS
    out = []
    for st in STUDIES:
        t = st.table(df)
        if t.empty:
            continue
        out += [f"#### {st.title}", "", to_markdown(t), "", f"<sub>{provenance(st.used(df), st.command)}</sub>", ""]
        out += [st.note(t), ""] if st.note else []
    if not out:
        return NO_RECORDS
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- `python -m medlib results`


def cmd_results(args) -> None:
    folders = args.dirs or [str(results_root())]
    if args.evaluator_files:
        written = evaluator_files(args.evaluator_files, *folders)
        print(f"{len(written)} MedMNIST evaluation file(s) written under {args.evaluator_files}")
        return
    if args.compact:
        packed = compact(*folders)
        print(f"{len(packed)} score file(s) packed as xz" + "".join(f"\n  {p}" for p in packed))
    df = records(*folders)
    if args.write_readme:
        changed = write_readme(args.write_readme, markdown(df))
        print(f"{args.write_readme}: {'updated' if changed else 'already up to date'} ({len(df)} runs)")
        return
    if args.markdown:
        print(markdown(df), end="")
        return
    for st in STUDIES:
        t = st.table(df)
        if not t.empty:
            print(f"\n{st.title}\n{t.to_string(index=False)}\n  {provenance(st.used(df))}")
    if df.empty:
        print(markdown(df))


def add_command(sub) -> None:
    p = sub.add_parser("results", help="the reproduction tables from run records (results/ by default)")
    p.add_argument("dirs", nargs="*", help="folders of run folders (default: $MEDLIB_RESULTS or ./results)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables with provenance lines")
    p.add_argument(
        "--compact",
        action="store_true",
        help="pack score files over 32 KiB as xz (checked to read back the same) and drop the evaluator copies",
    )
    p.add_argument(
        "--evaluator-files",
        metavar="DIR",
        default=None,
        help="write each record's val/test scores as MedMNIST evaluation files under DIR (outside the records), "
        "for medmnist.Evaluator.parse_and_evaluate",
    )
    p.add_argument(
        "--write-readme",
        metavar="README",
        default=None,
        help="replace the tables between the results markers of this file",
    )
    p.set_defaults(func=cmd_results)
