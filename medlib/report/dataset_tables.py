"""The datasets as tables (notebook 00): the registry's facts, and which files are here with their MD5 verdicts.
Which sets a notebook can train on (and fetching the missing ones) is `book.notebook.usable`."""
from __future__ import annotations

from ..data import registry
from ..data.info import info_table
from .reference import REPORT1_DATASETS
from .styled import BAD, GOOD, MUTED, StyledTable

# ---------------------------------------------------------------- datasets (notebook 00)

FACT_COLUMNS = ["dataset", "dims", "task", "channels", "classes", "train", "val", "test", "sizes"]


def dataset_facts() -> StyledTable:
    """The 18 MedMNIST sets as the registry knows them (no files needed): task, classes, split sizes, sizes."""
    df = info_table(check_md5=False)
    df = df[df["dataset"] != "m3dv"][FACT_COLUMNS].reset_index(drop=True)
    df.insert(1, "Report 1", ["✓" if d in REPORT1_DATASETS else "" for d in df["dataset"]])
    st = StyledTable(df, name="dataset_facts")
    st.hide(axis="index")
    st.format({c: "{:,}" for c in ("train", "val", "test")})
    st.set_caption("MedMNIST v2: 12 2D and 6 3D sets (✓: one of Report 1's ten)")
    return st


def dataset_status(check_md5: bool = True) -> StyledTable:
    """Which files are present under the data root, their MD5 verdicts, and how to get the others."""
    df = info_table(check_md5=check_md5)[["dataset", "present", "md5"]]

    def how(d: str, p: str) -> str:
        if p != "-":
            return ""
        if d == "m3dv":
            return "the EE369 course data: m3dv/train_val/*.npz + train_val.csv"
        model = " --model resnet18_3d" if registry.is_3d(d) else ""
        return f"python -m medlib train --dataset {d}{model} (downloads {registry.file_name(d)} first)"

    df["how to get"] = [how(d, p) for d, p in zip(df["dataset"], df["present"])]
    st = StyledTable(df.reset_index(drop=True), name="dataset_status")
    st.hide(axis="index")

    def colour(row):
        if "mismatch" in row["md5"]:
            return [BAD] * len(row)
        return [GOOD if row["present"] != "-" else MUTED] * len(row)

    st.apply(colour, axis=1)
    st.set_caption("Files under the data root ($MEDLIB_DATA); MD5 checked against the official values")
    return st


def missing_note(dataset: str, study: str = "report1") -> str:
    """Why a set has no medlib records in a table, and the one command that fills it (the same words on every
    machine, so a committed table does not depend on which data the machine that rendered it had)."""
    return (f"no records in results/ yet: `python -m medlib reproduce --only '{study}/{dataset}/*'` "
            f"(downloads {registry.file_name(dataset)} if it is missing)")
