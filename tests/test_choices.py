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
