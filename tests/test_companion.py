"""What students reach for around the training (issue 25, item 8): a Dataset view of a split, every epoch told to
observers (a live plot in a notebook, quiet in CI; TensorBoard files where tensorboard is installed)."""

import warnings

import numpy as np
import pytest
import torch
from synth_medmnist import write_npz
from torch.utils.data import DataLoader

import medlib
from medlib.book import live
from medlib.data import load_medmnist
from medlib.data.base import Split, normalize
from medlib.engine import fit, observe
from medlib.errors import MedlibWarning

TINY = dict(model="resnet18", stem="imagenet", epochs=2, batch_size=16, optimizer="adam", lr=1e-3)


@pytest.fixture
def breast(synth_root):
    write_npz(synth_root, "breastmnist", n=(48, 24, 24))
    return synth_root


def test_a_split_as_a_torch_dataset(breast):
    train = load_medmnist("breastmnist")["train"]
    ds = train.as_dataset()
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) == len(train) == 48
    x, y = ds[5]
    assert x.dtype == torch.float32 and torch.equal(x, normalize(train.X[5])) and y == train.y[5]
    xb, yb = next(iter(DataLoader(ds, batch_size=16)))
    assert xb.shape == (16, *train.X.shape[1:]) and torch.equal(yb, train.y[:16])
    raw, _ = train.as_dataset(transform=None)[0]
    assert raw.dtype == torch.uint8
    flipped, _ = Split(train.X, train.y).as_dataset(transform=lambda t: t.flip(-1))[0]
    assert torch.equal(flipped, train.X[0].flip(-1))


def test_every_epoch_reaches_the_observers_and_a_failing_one_is_dropped(breast, tmp_path):
    seen = []

    def record(name, cfg, history):
        seen.append((name, history[-1]["epoch"], round(history[-1]["train_loss"], 6)))

    def broken(name, cfg, history):
        raise ValueError("no display")

    observe.add(record)
    observe.add(broken)
    try:
        with pytest.warns(MedlibWarning, match="no display"):
            run = fit(medlib.make_config(dataset="breastmnist", **TINY), out=tmp_path, verbose=False)
    finally:
        observe.remove(record)
        observe.remove(broken)
    assert broken not in observe._observers
    hist = run.history
    assert seen == [(run.dir.name, e, round(loss, 6)) for e, loss in zip(hist["epoch"], hist["train_loss"])]


def test_live_plot_draws_both_curves_and_is_quiet_in_ci(monkeypatch):
    history = [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.69, "train_auc": 0.6, "val_auc": 0.55},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "train_auc": 0.8, "val_auc": 0.7},
    ]
    fig = live.figure("breastmnist_28-resnet18-s0-x", history, epochs=5)
    loss, auc = fig.axes
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert np.allclose(loss.lines[1].get_ydata(), [0.69, 0.6]) and auc.get_xlim() == (0.5, 5.5)
    assert "epoch 2/5" in fig._suptitle.get_text()
    monkeypatch.setenv("CI", "true")
    assert live.turn_on() is None and not any(isinstance(o, live.LivePlot) for o in observe._observers)


def test_tensorboard_without_the_package_is_one_warning(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_tensorboard(name, *args, **kwargs):
        if name == "torch.utils.tensorboard":
            raise ImportError("no tensorboard")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_tensorboard)
    monkeypatch.setenv(observe.TENSORBOARD_ENV, "/nonexistent")
    monkeypatch.setattr(observe, "_env_checked", [])
    with pytest.warns(MedlibWarning, match=r'pip install "medlib\[tensorboard\]"'):
        observe.epoch_done("run", None, [{"epoch": 1}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        observe.epoch_done("run", None, [{"epoch": 2}])  # said once per process


def test_tensorboard_event_files(breast, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.setenv(observe.TENSORBOARD_ENV, str(tmp_path / "tb"))
    monkeypatch.setattr(observe, "_env_checked", [])
    monkeypatch.setattr(observe, "_observers", [])
    run = fit(medlib.make_config(dataset="breastmnist", **TINY), out=tmp_path / "runs", verbose=False)
    events = list((tmp_path / "tb" / run.dir.name).glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 100
