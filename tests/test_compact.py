"""`results --compact`: score files packed as xz, every table and metric read back the same; the evaluator copies
it drops are written again by `results --evaluator-files`, and medmnist's own Evaluator re-scores them."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from medmnist import Evaluator

from medlib import results
from medlib.engine.runs import EVALUATOR_GLOB, Run
from medlib.errors import MedlibError

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _copy(tmp_path: Path, pattern: str = "pneumoniamnist_28-resnet18-*") -> Path:
    src = sorted(p.parent for p in RESULTS.glob(f"{pattern}/run.json"))[0]
    folder = tmp_path / src.name
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.pt", ".lock"))
    return folder


def _unpack(folder: Path) -> None:
    """Back to what training writes: plain score files (as the committed records were before compact)."""
    for packed in [*folder.glob("*_scores.csv.xz"), *folder.glob("*_scores.csv.gz")]:
        pd.read_csv(packed).to_csv(packed.with_suffix(""), index=False)
        packed.unlink()


def test_compact_keeps_every_number_and_shrinks_the_folder(tmp_path):
    folder = _copy(tmp_path)
    _unpack(folder)
    (folder / "pneumoniamnist_test_[AUC]0.900_[ACC]0.800@x.csv").write_text("0,0.5,0.5\n")  # an evaluator copy
    before = results.records(tmp_path)
    scores = {s: Run(folder).scores(s) for s in ("val", "test")}
    size = sum(p.stat().st_size for p in folder.iterdir())
    packed = results.compact(tmp_path, min_bytes=1)
    assert {p.name for p in packed} == {"val_scores.csv.xz", "test_scores.csv.xz"}
    assert not list(folder.glob("*@*.csv")) and not (folder / "test_scores.csv").exists()
    assert sum(p.stat().st_size for p in folder.iterdir()) < size / 2
    for s, table in scores.items():
        pd.testing.assert_frame_equal(Run(folder).scores(s), table)
    pd.testing.assert_frame_equal(results.records(tmp_path).drop(columns="dir"), before.drop(columns="dir"))
    assert results.pooled(results.records(tmp_path))["auc"] == results.pooled(before)["auc"]
    assert results.compact(tmp_path, min_bytes=1) == []  # nothing left to pack
    first = (folder / "test_scores.csv.xz").read_bytes()
    shutil.rmtree(folder)
    _unpack(_copy(tmp_path))
    results.compact(tmp_path, min_bytes=1)
    assert (folder / "test_scores.csv.xz").read_bytes() == first  # the same bytes every time


def test_compact_repacks_an_older_gzip_file_as_the_same_table(tmp_path):
    folder = _copy(tmp_path)
    _unpack(folder)
    plain = folder / "test_scores.csv"
    table = Run(folder).scores("test")
    (folder / "test_scores.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    assert [p.name for p in results.compact(tmp_path, min_bytes=1 << 30)] == ["test_scores.csv.xz"]  # gz: always
    assert not (folder / "test_scores.csv.gz").exists()
    pd.testing.assert_frame_equal(Run(folder).scores("test"), table)
    assert (folder / "val_scores.csv").exists()  # under min_bytes: left as it is


def test_compact_refuses_a_damaged_file_and_removes_nothing(tmp_path):
    folder = _copy(tmp_path)
    _unpack(folder)
    path = folder / "test_scores.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-10]))  # cut
    with pytest.raises(MedlibError, match="test_scores.csv"):
        results.compact(tmp_path, min_bytes=1)
    assert path.exists() and not (folder / "test_scores.csv.xz").exists()


def test_a_cut_xz_file_is_one_error_naming_it(tmp_path):
    folder = _copy(tmp_path)
    _unpack(folder)
    results.compact(tmp_path, min_bytes=1)
    path = folder / "test_scores.csv.xz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MedlibError, match="test_scores.csv.xz"):
        Run(folder).scores("test")


def test_committed_results_are_compacted_and_fit_the_budget():
    """results/ as committed: no score file `compact` would still pack, no evaluator copy, under 25 MB in all."""
    files = [p for p in RESULTS.rglob("*") if p.is_file() and p.name not in ("best.pt", "last.pt", ".lock")]
    scores = [p for p in files if p.name.split(".")[0] in ("val_scores", "test_scores")]
    assert not [p for p in scores if p.suffix == ".gz" or p.suffix == ".csv" and p.stat().st_size >= 1 << 15]
    assert not list(RESULTS.glob(f"*/{EVALUATOR_GLOB}"))
    assert sum(p.stat().st_size for p in files) < results.BUDGET_BYTES


@pytest.fixture
def evaluator_root(monkeypatch, real_data):
    """parse_and_evaluate builds `Evaluator(flag, split, size)`, whose root default was fixed at import time."""
    monkeypatch.setattr(Evaluator.__init__, "__defaults__", (None, str(real_data / "medmnist")))


@pytest.mark.parametrize("pattern", ["pneumoniamnist_28-resnet18-*", "organamnist_28-resnet18-*"])
def test_evaluator_files_from_packed_scores_rescore_to_the_record(tmp_path, evaluator_root, pattern):
    """The oracle: medmnist's Evaluator, on files written from committed (xz) scores, gives the recorded metrics."""
    folder = _copy(tmp_path / "records", pattern)
    written = results.evaluator_files(tmp_path / "official", tmp_path / "records")
    flag = pattern.split("_")[0]
    assert sorted(p.name.split("_[AUC]")[0] for p in written) == [f"{flag}_test", f"{flag}_val"]
    metrics = Run(folder).record["metrics"]
    for path in written:
        split = "test" if "_test_" in path.name else "val"
        official = Evaluator.parse_and_evaluate(str(path))
        assert official.AUC == pytest.approx(metrics[split]["auc"], abs=1e-12)
        assert official.ACC == pytest.approx(metrics[split]["acc"], abs=1e-12)


def test_evaluator_files_refuse_a_folder_inside_the_records(tmp_path):
    _copy(tmp_path)
    with pytest.raises(MedlibError, match="--evaluator-files .* lies inside"):
        results.evaluator_files(tmp_path / "x", tmp_path)
    assert not (tmp_path / "x").exists()
