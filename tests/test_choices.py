"""Each list of choices has one source (medlib.choices / medlib.models.MODELS) that validation and help both use."""
import subprocess
import sys
from pathlib import Path

import pytest

import medlib
from medlib import choices
from medlib.engine.training import OPTIMIZER_CLASSES
from medlib.errors import MedlibError
from medlib.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def test_every_optimizer_name_builds_one():
    assert tuple(OPTIMIZER_CLASSES) == choices.OPTIMIZERS


@pytest.mark.parametrize("field, values", [("optimizer", choices.OPTIMIZERS), ("schedule", choices.SCHEDULES),
                                           ("stem", choices.STEMS), ("loss", choices.LOSSES)])
def test_validation_accepts_exactly_the_listed_choices(field, values):
    needs = {"range": {"lr_end": 1.0}}  # the range test needs its end point
    for v in values:
        medlib.TrainConfig(**{field: v}, **needs.get(v, {})).validate()
    with pytest.raises(MedlibError, match=", ".join(values)):
        medlib.TrainConfig(**{field: "nonsense"}).validate()


def test_help_lists_the_same_choices():
    out = subprocess.run([sys.executable, "-m", "medlib", "train", "--help"], capture_output=True, text=True,
                         cwd=ROOT).stdout
    flat = " ".join(out.split())
    for values in (choices.OPTIMIZERS, choices.SCHEDULES, choices.LOSSES, choices.PRECISIONS, MODELS):
        assert " | ".join(values) in flat


def test_each_field_is_described_once_in_its_metadata():
    """Help, choices and ranges come from the fields (config.knob): flags._HELP and config._RANGES are derived."""
    from medlib import config, flags

    assert set(flags._HELP) <= set(config.FIELDS)
    for name, f in config.FIELDS.items():
        assert set(f.metadata) <= {"help", "choices", "min", "above", "max", "why", "unit"}, name
        if "choices" in f.metadata:
            assert flags._HELP[name] == f.metadata.get("help", " | ".join(f.metadata["choices"]))
    ranged = {name for name, f in config.FIELDS.items() if {"min", "above"} & set(f.metadata)}
    assert {r[0] for r in config._RANGES} == ranged
    for name, lo, _, _ in config._RANGES:
        with pytest.raises(MedlibError, match=f"--{name.replace('_', '-')} must be"):
            config.check_numbers(config.TrainConfig(**{name: lo - 1}))
    rows = {r["field"]: r for r in config.describe_fields()}
    assert rows["batch_size"]["min"] == 2 and rows["crop"]["unit"] == "voxels" and rows["model"]["choices"] == MODELS
