"""`results --compact`: large score files gzipped, every table and metric read back the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from medlib import results
from medlib.engine.runs import Run
from medlib.errors import MedlibError

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _copy(tmp_path: Path) -> Path:
    src = sorted(p.parent for p in RESULTS.glob("pneumoniamnist_28-resnet18-*/run.json"))[0]
    folder = tmp_path / src.name
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.pt", ".lock"))
    return folder


def test_compact_keeps_every_number_and_shrinks_the_folder(tmp_path):
    folder = _copy(tmp_path)
    before = results.records(tmp_path)
    scores = {s: Run(folder).scores(s) for s in ("val", "test")}
    size = sum(p.stat().st_size for p in folder.iterdir())
    packed = results.compact(tmp_path, min_bytes=1)
    assert {p.name for p in packed} == {"val_scores.csv.gz", "test_scores.csv.gz"}
    assert not list(folder.glob("*@*.csv")) and not (folder / "test_scores.csv").exists()
    assert sum(p.stat().st_size for p in folder.iterdir()) < size / 2
    for s, table in scores.items():
        pd.testing.assert_frame_equal(Run(folder).scores(s), table)
    pd.testing.assert_frame_equal(results.records(tmp_path).drop(columns="dir"), before.drop(columns="dir"))
    assert results.pooled(results.records(tmp_path))["auc"] == results.pooled(before)["auc"]
    assert results.compact(tmp_path, min_bytes=1) == []  # nothing left to pack
    first = (folder / "test_scores.csv.gz").read_bytes()
    shutil.rmtree(folder)
    _copy(tmp_path)
    results.compact(tmp_path, min_bytes=1)
    assert (folder / "test_scores.csv.gz").read_bytes() == first  # the same bytes every time (mtime 0)


def test_compact_refuses_a_damaged_file_and_removes_nothing(tmp_path):
    folder = _copy(tmp_path)
    path = folder / "test_scores.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-10]))  # cut
    with pytest.raises(MedlibError, match="test_scores.csv"):
        results.compact(tmp_path, min_bytes=1)
    assert path.exists() and not (folder / "test_scores.csv.gz").exists()
