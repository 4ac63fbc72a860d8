"""A notebook says what its training costs before it starts, and stops on a CPU when that is hours (issue 25).

The rate is injected (`gflops=`), so no test depends on this machine's speed."""

import pytest

from medlib.book import notebook
from medlib.book.notebook import NotebookStop, check_data_root, check_training_time, training_estimate
from medlib.config import make_config
from medlib.plans import report1_epochs
from medlib.report.reference import REPORT1_DATASETS

FULL_02 = [
    make_config("report1", dataset=d, model=m, seed=s, epochs=report1_epochs(d))
    for d in REPORT1_DATASETS
    for m in ("resnet18", "resnet50")
    for s in (0, 1, 2)
]
QUICK_02 = [make_config("report1", dataset="breastmnist", model="resnet18", seed=3, epochs=50)]


def test_estimate_scales_with_the_injected_rate(tmp_path):
    slow = training_estimate(QUICK_02, tmp_path, "cpu", gflops=10.0)
    fast = training_estimate(QUICK_02, tmp_path, "cpu", gflops=20.0)
    assert slow["runs"] == 1 and slow["finished"] == 0
    assert slow["seconds"] == pytest.approx(2 * fast["seconds"])


def test_full_profile_on_a_slow_cpu_stops_with_one_line_and_a_choice(tmp_path, capsys):
    cmd = "python -m medlib reproduce --only 'report1/*'"
    with pytest.raises(NotebookStop) as e:
        check_training_time(FULL_02, tmp_path, on_gpu=cmd, device="cpu", gflops=50.0)
    out = capsys.readouterr().out
    assert "60 run(s), 0 already finished" in out and "CPU-hours" in out  # the estimate is printed first
    msg = str(e.value)
    assert 'PROFILE = "quick"' in msg and cmd in msg and "ALLOW_CPU_HOURS = True" in msg
    assert e.value._render_traceback_() == [f"medlib: {msg}"] and "\n" not in msg  # Jupyter shows one line


def test_allowed_or_fast_enough_trains_on(tmp_path, capsys):
    est = check_training_time(FULL_02, tmp_path, allow=True, device="cpu", gflops=50.0)
    assert est["seconds"] > 2 * 3600
    est = check_training_time(QUICK_02, tmp_path, device="cpu", gflops=1e4)
    assert est["seconds"] < 3600 and "min on cpu" in capsys.readouterr().out


def test_finished_runs_cost_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(notebook, "run_status", lambda folder: ("complete", 50))
    est = check_training_time(FULL_02, tmp_path, device="cpu", gflops=1.0)  # would be years, but all are done
    assert est == {**est, "finished": 60, "seconds": 0.0}
    assert "60 already finished" in capsys.readouterr().out


def test_limit_is_a_parameter(tmp_path):
    with pytest.raises(NotebookStop, match="more than the 0.001 h"):
        check_training_time(QUICK_02, tmp_path, limit_hours=0.001, device="cpu", gflops=10.0)
    assert notebook.CPU_STOP_HOURS == 2.0


def test_a_wrong_data_root_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))  # check_data_root sets it from DATA; put it back after
    with pytest.raises(NotebookStop, match="does not exist") as e:
        check_data_root(str(tmp_path / "nowhere"))
    assert len(e.value._render_traceback_()) == 1


def test_plotly_keeps_its_own_renderer_choice(monkeypatch):
    import plotly.io as pio

    from medlib.book.notebook import EMBED_ENV, plotly_renderer, setup

    monkeypatch.delenv(EMBED_ENV, raising=False)
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    assert plotly_renderer() is None  # JupyterLab, VS Code, Colab, Kaggle: plotly detects them itself
    monkeypatch.setenv(EMBED_ENV, "1")
    assert plotly_renderer() == "notebook"  # medlib builds the outputs (the HTML report)
    monkeypatch.setenv(EMBED_ENV, "0")
    assert plotly_renderer() == "plotly_mimetype"  # re-executing the notebooks git keeps
    monkeypatch.setenv("PLOTLY_RENDERER", "vscode")
    assert plotly_renderer() is None  # the user's choice always wins
    before = pio.renderers.default
    monkeypatch.setattr(pio.renderers, "default", "browser")
    setup()
    assert pio.renderers.default == "browser"
    monkeypatch.setattr(pio.renderers, "default", before)
