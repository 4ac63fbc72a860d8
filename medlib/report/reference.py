"""The numbers medlib is compared with, as DataFrames: Report 1's tables, MedMNIST v2's benchmark, Report 2's figures.

The files in `reference/` are facts copied verbatim from the reports and medmnist.com (see its README);
this module only reads them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..errors import MedlibError

REFERENCE_DIR = Path(__file__).with_name("reference")

# Report 1's ten datasets in its column order (1. Pathmnist ... 10. organmnist_axial), today's names.
REPORT1_DATASETS = [
    "pathmnist",
    "chestmnist",
    "octmnist",
    "pneumoniamnist",
    "breastmnist",
    "dermamnist",
    "retinamnist",
    "organcmnist",
    "organsmnist",
    "organamnist",
]
# Report 1's row names, in its order (it spells them trainAUC ... testACC).
ROWS = ["trainAUC", "trainACC", "valAUC", "valACC", "testAUC", "testACC"]


@lru_cache(maxsize=None)
def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name)


def report1() -> pd.DataFrame:
    """Report 1, section 4.1, long form: model, dataset_v1, dataset, split, metric (AUC/ACC), value (120 rows)."""
    return _csv("report1_resnet_tables.csv").copy()


def report1_name(dataset: str) -> str:
    """A set as Report 1 named it where that differs: 'organamnist (organmnist_axial)'."""
    v1 = dict(zip(report1()["dataset"], report1()["dataset_v1"])).get(dataset, dataset)
    return dataset if v1 == dataset else f"{dataset} ({v1})"


def report1_table(model: str = "resnet18") -> pd.DataFrame:
    """One of Report 1's two tables as printed: rows trainAUC..testACC, one column per dataset."""
    df = report1()
    df = df[df["model"] == model]
    if df.empty:
        raise MedlibError(f"Report 1 has tables for resnet18 and resnet50, not {model!r}.")
    df = df.assign(row=df["split"] + df["metric"])
    return df.pivot(index="row", columns="dataset", values="value").loc[ROWS, REPORT1_DATASETS].rename_axis(None)


def official() -> pd.DataFrame:
    """MedMNIST v2 benchmark (Yang et al. 2023): dataset, method, test_auc, test_acc (18 sets x methods)."""
    return _csv("medmnist_v2_benchmark.csv").copy()


def official_scores(model: str, size: int = 28) -> pd.DataFrame:
    """Official test AUC/ACC of `model` (resnet18/resnet50) at 28 or 224 px, indexed by dataset."""
    df = official()
    df = df[df["method"] == f"{model}_{size}"]
    return df.set_index("dataset")[["test_auc", "test_acc"]]


def method_name(method: str) -> str:
    """The benchmark's method id as a reader writes it: 'resnet18_acs' -> 'ResNet-18+ACS', 'resnet50_28' ->
    'ResNet-50'."""
    m = re.fullmatch(r"resnet(\d+)_([\w.]+)", method)
    if not m:
        return method
    kind = m.group(2)
    return f"ResNet-{m.group(1)}" + ("" if kind == "28" else f" ({kind} px)" if kind.isdigit() else f"+{kind.upper()}")


def official_best(dataset: str) -> tuple[float, str]:
    """The best official ResNet test AUC on 28-px (28³) data for a set, and the method that reached it (the
    benchmark's 224-px rows are 28-px images upsampled: another input size, left out)."""
    df = official()
    df = df[(df["dataset"] == dataset) & df["method"].str.startswith("resnet") & ~df["method"].str.endswith("_224")]
    if df.empty:
        raise MedlibError(f"The MedMNIST v2 benchmark has no ResNet row for {dataset!r}.")
    best = df.loc[df["test_auc"].idxmax()]
    return float(best["test_auc"]), method_name(best["method"])


def report1_best(dataset: str) -> float:
    """The better of Report 1's two test AUCs on a set (NaN for a set Report 1 did not train)."""
    r1 = report1()
    r1 = r1[(r1["dataset"] == dataset) & (r1["split"] == "test") & (r1["metric"] == "AUC")]
    return float(r1["value"].max()) if len(r1) else float("nan")


def outdo_references() -> pd.DataFrame:
    """Per set: an independent rerun of the official recipe (AUC mean, std) and a best-known result beyond the
    benchmark table, where known (outdo_references.csv); NaN elsewhere."""
    return _csv("outdo_references.csv").set_index("dataset")


def best_known(dataset: str) -> tuple[float, float, str]:
    """The best test AUC anyone reports for a set at 28 px (benchmark CSV, every method, or the quoted extras):
    (AUC, that method's ACC or NaN, method)."""
    df = official()
    df = df[(df["dataset"] == dataset) & ~df["method"].str.endswith("_224")]
    best = (float("nan"), float("nan"), "")
    if len(df):
        row = df.loc[df["test_auc"].idxmax()]
        best = (float(row["test_auc"]), float(row["test_acc"]), method_name(row["method"]).replace("_", " "))
    extra = outdo_references()
    if (
        dataset in extra.index
        and pd.notna(extra.at[dataset, "extra_best_auc"])
        and not (extra.at[dataset, "extra_best_auc"] <= best[0])
    ):
        e = extra.loc[dataset]
        best = (float(e["extra_best_auc"]), float(e["extra_best_acc"]), str(e["extra_best_method"]))
    return best


def report2_text() -> str:
    return (REFERENCE_DIR / "report2_m3dv.md").read_text(encoding="utf-8")


def report2() -> pd.DataFrame:
    """Report 2's summary as rows (topic, text), one per bullet of report2_m3dv.md."""
    rows = []
    for line in report2_text().splitlines():
        m = re.match(r"-\s+([^:]+):\s*(.*)", line)
        if m:
            rows.append({"topic": m.group(1).strip(), "text": m.group(2).strip()})
    return pd.DataFrame(rows)


# Report 2's numbers, each as it is written in report2_m3dv.md (a test checks that `as_written` occurs there).
REPORT2_FIGURES = [
    ("labelled samples (train_val)", 465, "samples", "465 labelled"),
    ("positive labelled samples", 247, "samples", "247 positive"),
    ("unlabelled test samples", 117, "samples", "117 unlabelled"),
    ("voxel cube side", 100, "voxels", "100x100x100"),
    ("crop side", 32, "voxels", "32x32x32"),
    ("random shift", 5, "voxels", "±5 voxels"),
    ("mixup alpha", 0.2, "", "Beta(0.2, 0.2)"),
    ("growth rate", 16, "channels", "growth rate 16"),
    ("bottleneck", 2, "x growth", "bottleneck 2"),
    ("compression", 2, "(halve channels)", "compression 2"),
    ("first conv channels", 32, "channels", "first conv 32 channels"),
    ("dense blocks x layers", "2 x 4", "", "2 blocks of 4 layers"),
    ("parameters (Keras summary)", 136_786, "", "136,786 parameters"),
    ("model file", 1.77, "MB", "1.77 MB"),
    ("batch size", 30, "", "batch 30"),
    ("epochs", 26, "", "26 epochs"),
    ("optimizer", "Adamax", "", "Adamax"),
    ("time per epoch (Tesla P4)", 57, "s", "57 s/epoch"),
    ("augmented training samples", 1700, "samples", "1,700 augmented"),
    ("leaderboard test AUC (DenseNet)", 0.66217, "AUC", "0.66217"),
    ("leaderboard test AUC (3-conv net)", 0.64, "AUC", "about 0.64"),
]


def report2_figures() -> pd.DataFrame:
    """Report 2's numbers: figure, value, unit, as_written (the phrase in report2_m3dv.md)."""
    return pd.DataFrame(REPORT2_FIGURES, columns=["figure", "value", "unit", "as_written"])


def report2_auc() -> float:
    """Report 2's leaderboard AUC on the hidden test labels (from REPORT2_FIGURES, the one place it is written)."""
    return next(v for figure, v, _, _ in REPORT2_FIGURES if figure == "leaderboard test AUC (DenseNet)")
