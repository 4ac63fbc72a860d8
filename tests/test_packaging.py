"""A pip user's medlib (issue 25): conda and pip lists in step, a lock that covers them, the notebooks in the wheel,
one-line errors for a missing extra, the program's real name and version, widget-less Jupyter without a stderr wall."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medlib.book import build
from medlib.errors import MedlibError
from medlib.version import __version__

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONDA_NAMES = {"torch": "pytorch"}  # pip name -> conda-forge name where they differ
OPTIONAL = {"tensorboard"}  # extras that no environment installs by default
NOT_PYTHON = {"gperftools"}  # conda packages with no pip twin: tcmalloc (engine.hardware preloads it)


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pip_names() -> set:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra, extra_reqs in project["optional-dependencies"].items():
        if extra not in OPTIONAL:
            reqs += extra_reqs
    return {_name(r) for r in reqs}


def _conda() -> dict:
    """name -> the pin after '=' ('' if none), from environment.yml's conda dependencies (not its pip: part)."""
    deps, text = {}, (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:") :].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)(?:([=<>]+)([^\s#]+))?", line)
        if m:
            deps[m.group(1).lower()] = m.group(3) or ""
    return deps


def test_environment_yml_and_pyproject_list_the_same_packages():
    conda = set(_conda()) - {"python", "pip"} - NOT_PYTHON
    pip = {CONDA_NAMES.get(n, n) for n in _pip_names()}
    assert conda == pip, f"only in environment.yml: {sorted(conda - pip)}; only in pyproject: {sorted(pip - conda)}"


def test_torch_and_ruff_pins_agree():
    bootstrap = re.search(r"MEDLIB_TORCH:-torch==([\d.]+)", (ROOT / "scripts/bootstrap.sh").read_text()).group(1)
    assert _conda()["pytorch"] == bootstrap == "2.13.0"
    ruff = next(r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if _name(r) == "ruff")
    assert _conda()["ruff"] == ruff.split("==")[1]


def test_lock_covers_every_dependency_but_torch():
    lock = (ROOT / "requirements-lock.txt").read_text()
    pinned = {_name(line) for line in lock.splitlines() if "==" in line and not line.startswith("#")}
    assert _pip_names() - {"torch"} <= pinned
    assert "torch" not in pinned and not any(n.startswith("nvidia") for n in pinned)  # torch comes from the CPU index


def test_every_package_folder_is_in_the_wheel_with_the_notebooks_and_py_typed():
    tool = PYPROJECT["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "medlib").rglob("__init__.py")}
    assert folders | {"medlib.notebooks"} == set(tool["packages"])
    assert tool["package-dir"] == {"medlib.notebooks": "notebooks"}
    assert "*.ipynb" in tool["package-data"]["medlib.notebooks"]
    assert "py.typed" in tool["package-data"]["medlib"] and (ROOT / "medlib" / "py.typed").exists()
    assert "/build/" in (ROOT / ".gitignore").read_text().split()


def test_notebooks_command_copies_and_never_overwrites(tmp_path, capsys):
    from medlib.cli import main

    assert main(["notebooks", str(tmp_path / "nb")]) == 0
    names = sorted(p.name for p in (tmp_path / "nb").iterdir())
    assert names == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + ["README.md"]
    assert main(["notebooks", str(tmp_path / "nb")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["notebooks", str(tmp_path / "nb"), "--force"]) == 0


def test_missing_notebook_tools_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nbformat" else real(name, *a))
    with pytest.raises(MedlibError, match=r'nbformat missing\): pip install "medlib\[notebooks\]"'):
        build.build_report("quick", "unused")


def test_program_name_and_version():
    run = [sys.executable, "-m", "medlib"]
    out = subprocess.run([*run, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"medlib {__version__}"
    assert subprocess.run([*run, "--help"], capture_output=True, text=True).stdout.startswith("usage: python -m medlib")
    script = Path(sys.executable).with_name("medlib")
    if script.exists():  # the console script says its own name
        assert subprocess.run([str(script), "--help"], capture_output=True, text=True).stdout.startswith(
            "usage: medlib "
        )


def test_kernelspec_is_the_installed_one():
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    installed = kernelspec.get_kernel_dict()["display_name"]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        spec = json.loads(path.read_text())["metadata"]["kernelspec"]
        assert (spec["name"], spec["display_name"]) == ("python3", installed), path.name


def test_jupyter_without_ipywidgets_has_no_text_bars():
    code = (
        "import sys, types\n"
        "sys.modules['ipykernel'] = types.ModuleType('ipykernel'); sys.modules['ipywidgets'] = None\n"
        "from medlib.progress import tqdm, text_bars_in_jupyter\n"
        "assert text_bars_in_jupyter() and tqdm(range(3)).disable\n"
        "for _ in tqdm(range(3)): pass\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
