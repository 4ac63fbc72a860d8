"""'The reproduction' parts of the notebooks and the HTML report: committed run records rendered as tables.

Each function takes `results.records(...)` and returns something to display: a styled table whose caption
is its provenance line (devices, dates, seeds or folds, epochs, command), or a short note naming the
command that would make the missing records. Nothing here trains.
"""

from __future__ import annotations

from IPython.display import Markdown
from matplotlib.figure import Figure

from .. import results
from . import confusion as confusion_
from . import studies, tables


class Note(Markdown):
    """A Markdown note whose plain-text form is its text (not `<Markdown object>`), so nbval can compare it."""

    def __repr__(self) -> str:
        return self.data


def _missing(study: str, what: str = "") -> Note:
    return Note(
        f"*No `{study}` {what}records in results/ yet.* Make them with `{results.study_command(study)}` "
        "(resumable; `--dry-run` shows the plan and its time on this machine)."
    )


def report1(rec, model: str = "resnet18"):
    """Report 1's table for `model` (train/val/test AUC and ACC, mean ± std over seeds) beside Report 1 and official."""
    d = results.select(rec, "report1", model=model)
    if d.empty:
        return _missing("report1", f"{model} ")
    st = tables.compare(results.runs(d), model)
    return st.set_caption(f"{st.caption}<br><small>{results.provenance(d, results.study_command('report1'))}</small>")


def r18_vs_r50(rec):
    d = results.select(rec, "report1")
    if d["model"].nunique() < 2:
        return _missing("report1", "resnet18 + resnet50 ")
    st = tables.r18_vs_r50(results.runs(d))
    return st.set_caption(f"{st.caption}<br><small>{results.provenance(d)}</small>")


def table(rec, name: str, title: str | None = None):
    """One of the study tables (see studies.STUDIES) by its function name, e.g. 'cv_table'."""
    for t, fn, names in studies.STUDIES:
        if getattr(fn, "__name__", "") == name or (title and t == title):
            df = fn(rec)
            if df.empty:
                return _missing(names[-1])
            used = studies.used_rows(rec, fn, names)
            st = tables.style(
                df,
                f"repro_{name}",
                f"{t}<br><small>{results.provenance(used, results.study_command(names[-1]))}</small>",
            )
            return st.hide(axis="index")
    raise ValueError(f"No results table named {name!r}; see medlib.report.studies.STUDIES.")


def batch_table(rec):
    return table(rec, "batch_table")


def study_runs(rec, study: str, **where) -> list:
    """The Run folders of a study (for curves and diagnoses drawn from the committed histories)."""
    return results.runs(results.select(rec, study, **where))


def lr_batch_figure(rec):
    """Test AUC (mean ± std over folds) against the learning rate, one line per batch size (full batch included)."""
    d = results.select(rec, "lr-batch")
    if d.empty:
        return _missing("lr-batch")
    agg = results.aggregate(d, ["batch_size", "lr"], ["test_auc", "best_epoch"])
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    auc_ax, ep_ax = fig.subplots(1, 2)
    for batch, g in agg.groupby("batch_size"):
        name = "full batch" if batch >= 512 else f"batch {batch}"
        auc_ax.errorbar(g["lr"], g["test_auc_mean"], yerr=g["test_auc_std"], marker="o", capsize=3, label=name)
        ep_ax.plot(g["lr"], g["best_epoch_mean"], marker="o", label=name)
    for ax, ylabel in ((auc_ax, "test AUC (mean ± std, 5 folds)"), (ep_ax, "best epoch (mean)")):
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (Adamax)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    auc_ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    auc_ax.legend(fontsize=8)
    fig.suptitle("Report 2's advice, measured: tune the batch size together with the learning rate")
    return fig


def confusion(rec, dataset: str):
    """The confusion matrices (counts, row-normalised) of a set's run chosen by validation AUC, or a note."""
    row = confusion_.chosen_run(rec, dataset)
    if row is None:
        return Note(f"*No {dataset} records in results/ yet.* Make them with "
                    f"`python -m medlib reproduce --only 'report1/{dataset}/*,medmnist2d/{dataset}/*'`.")
    return confusion_.confusion_figure(row)
