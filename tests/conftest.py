import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MEDLIB_QUIET", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own MD5-verdict cache, so one test's verdict cannot leak into another."""
    monkeypatch.setenv("MEDLIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def real_data():
    """The shared real-data root (MEDLIB_DATA); skip when it is not configured."""
    root = os.environ.get("MEDLIB_DATA")
    if not root or not (Path(root) / "medmnist").is_dir():
        pytest.skip("real data not configured: set MEDLIB_DATA to a folder holding medmnist/ (CI does)")
    return Path(root)


@pytest.fixture
def m3dv_root(tmp_path, monkeypatch):
    """A generated M3DV folder (30 cubes of 24³, labels alternating) under a data root MEDLIB_DATA points at."""
    from synth_m3dv import write_m3dv

    write_m3dv(tmp_path / "data" / "m3dv", n=30, size=24)
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "data"))
    return tmp_path / "data" / "m3dv"


@pytest.fixture
def synth_root(tmp_path, monkeypatch):
    """A data root of generated files, with MEDLIB_DATA pointing at it and MD5 checks satisfied."""
    import medlib.data.files as files

    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    monkeypatch.setattr(files, "md5_status", lambda path, expected, use_cache=True: "ok")
    return root
