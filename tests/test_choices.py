"""Each config field is described once, in its metadata (config.knob), and each list of choices has one source
(its field, or medlib.choices where another layer reads it too; models: medlib.models.MODELS): validation, ranges,
the hash's markers and the CLI help are all generated from it."""

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import medlib
from medlib import choices, config, flags
from medlib.engine.training import OPTIMIZER_CLASSES
from medlib.errors import MedlibError
from medlib.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def test_every_optimizer_name_builds_one():
    assert tuple(OPTIMIZER_CLASSES) == choices.OPTIMIZERS


@pytest.mark.parametrize("field", config.CHECKED_CHOICES)
def test_validation_accepts_exactly_the_listed_choices(field):
    values = config.FIELDS[field].metadata["choices"]
    needs = {"range": {"lr_end": 1.0}}  # the range test needs its end point
    for v in values:
        kw = {"dataset": "m3dv"} if field in config.CUBE_FIELDS else {}
        kw |= {"mixup_alpha": 0.2} if field == "mixup_labels" else {}
        medlib.TrainConfig(**{field: v}, **needs.get(v, {}), **kw).validate()
    with pytest.raises(MedlibError, match=", ".join(values)):
        medlib.TrainConfig(**{field: "nonsense"}).validate()


def test_help_lists_the_same_choices():
    out = subprocess.run(
        [sys.executable, "-m", "medlib", "train", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "1000"},
    ).stdout  # wide: no line breaks at hyphens
    flat = " ".join(out.split())
    for name, f in config.FIELDS.items():  # each field's line, '%' included (argparse would format it)
        assert config.field_help(f) in flat, name
    for values in (choices.OPTIMIZERS, choices.STEMS, choices.PRECISIONS, MODELS):
        assert all(f" {v}" in flat for v in values)
    assert "--model MODEL network: " + " | ".join(MODELS) in flat


def test_the_shared_lists_are_the_fields_choices():
    for name, values in (
        ("optimizer", choices.OPTIMIZERS),
        ("stem", choices.STEMS),
        ("amp", choices.PRECISIONS),
        ("model", MODELS),
    ):
        assert config.FIELDS[name].metadata["choices"] == values


def test_each_field_is_described_once_in_its_metadata():
    """Every field has its help in its metadata; ranges, the hash's markers and the help lines are derived."""
    keys = {"help", "choices", "meanings", "min", "above", "max", "why", "unit", "engineering", "added_later", "cubes"}
    for name, f in config.FIELDS.items():
        assert set(f.metadata) <= keys, name
        assert isinstance(f.metadata.get("help"), str) and f.metadata["help"].strip(), f"{name} has no help"
        assert set(f.metadata.get("meanings", {})) <= set(f.metadata.get("choices", ())), name
        if "choices" in f.metadata:
            assert config.field_help(f).startswith(f.metadata["help"] + ": "), name
        else:
            assert config.field_help(f) == f.metadata["help"], name
    ranged = {name for name, f in config.FIELDS.items() if {"min", "above"} & set(f.metadata)}
    assert {r[0] for r in config._RANGES} == ranged
    for name, lo, _, _ in config._RANGES:
        with pytest.raises(MedlibError, match=f"--{name.replace('_', '-')} must be"):
            config.check_numbers(config.TrainConfig(**{name: lo - 1}))
    rows = {r["field"]: r for r in config.describe_fields()}
    assert rows["batch_size"]["min"] == 2 and rows["crop"]["unit"] == "voxels" and rows["model"]["choices"] == MODELS
    assert rows["stem"]["text"] == "ResNets, 2D and 3D: imagenet (7x7/2 + pool) | small (3x3/1)"
    assert set(rows) == set(config.FIELDS) and all(r["text"] for r in rows.values())


def test_the_hash_markers_come_from_the_fields_and_keep_every_key():
    """ENGINEERING, ADDED_LATER and CUBE_FIELDS are the fields' markers: the same sets the hand lists held, so every
    config key (run folder) stays what it was."""
    assert set(config.ENGINEERING) == {"device", "eval_batch_size", "amp", "channels_last", "compile"}
    assert config.ADDED_LATER == {
        "cv_fold": -1,
        "loss": "auto",
        "lr_end": 0.0,
        "mixup_labels": "soft",
        "scaling": "centered",
        "val_split": "before",
    }
    assert config.CUBE_FIELDS == ("crop", "mask", "dilate", "folds", "fold", "val_split")
    for name in config.ADDED_LATER:
        assert config.ADDED_LATER[name] == config.FIELDS[name].default
    # the keys the hand lists gave: results/m3dv-densenet3d-f0-s0-756c000cc9 is Report 2's DenseNet, fold 0
    assert config.TrainConfig().key() == "e0d6327759" and config.TrainConfig(loss="bce").key() == "cacc2be8bc"
    assert config.make_config("report2").key() == "756c000cc9"
    assert config.make_config("report2", mixup_labels="hard", scaling="report2").key() == "b9b155ec01"
    assert config.TrainConfig().replace(device="cpu", amp="fp32", compile=True).key() == config.TrainConfig().key()
    assert config.TrainConfig(loss="ce").key() != config.TrainConfig().key()


def test_a_field_added_with_metadata_appears_in_the_cli_help(monkeypatch):
    @dataclasses.dataclass
    class Extended(config.TrainConfig):
        extra_knob: str = config.knob(
            "low", "a knob only this test declares", choices=("low", "high"), meanings={"high": "more"}
        )

    monkeypatch.setattr(flags, "TrainConfig", Extended)
    p = argparse.ArgumentParser()
    flags.add_config_flags(p)
    text = " ".join(p.format_help().split())
    assert "--extra-knob EXTRA_KNOB a knob only this test declares: low | high (more) (default low)" in text
    assert p.parse_args(["--extra-knob", "high"]).extra_knob == "high"
