"""Notebooks are papermill-safe: the `parameters` cell holds literal defaults only, and what papermill injects wins."""

import ast
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_literal_assignments(path):
    cells = _cells(path)
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for node in ast.parse("".join(params[0]["source"])).body:
        assert isinstance(node, ast.Assign), f"{path.name}: only assignments in the parameters cell"
        ast.literal_eval(node.value)  # raises on anything computed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_parameter_overrides_the_environment(path, monkeypatch, tmp_path):
    parameterize = pytest.importorskip("papermill.parameterize")
    from papermill.iorw import load_notebook_node

    monkeypatch.setenv("MEDLIB_PROFILE", "quick")
    if not os.environ.get("MEDLIB_DATA"):  # a data root the derived-values cell accepts (00 checks it first)
        (tmp_path / "medmnist").mkdir()
        monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    nb = parameterize.parameterize_notebook(load_notebook_node(str(path)), {"PROFILE": "full"})
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    i = next(k for k, t in enumerate(tags) if "injected-parameters" in t)
    assert "parameters" in tags[i - 1]
    namespace: dict = {}
    for cell in nb.cells[i - 1 : i + 2]:  # parameters, injected parameters, the derived-values cell
        exec(cell.source, namespace)  # noqa: S102 - the notebook's own code
    assert namespace["PROFILE"] == "full"
