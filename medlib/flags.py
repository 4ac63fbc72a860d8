"""One command-line flag per TrainConfig field, shared by every sub-command that trains (train, sweep, cv)."""
from __future__ import annotations

import argparse
from dataclasses import fields

from .choices import LAYOUTS, LOSSES, OPTIMIZERS, PRECISIONS, SCHEDULES
from .config import PRESETS, PROFILES, TrainConfig, make_config, natural_preset
from .data.cubes import ALL_FOLDS
from .models import MODELS

_HELP = {
    "dataset": "MedMNIST name (v1 organ names accepted) or m3dv", "size": "image side: 28/64/128/224 (3D: 28/64)",
    "model": " | ".join(MODELS), "stem": "ResNets, 2D and 3D: imagenet (7x7/2 + pool) | small (3x3/1)",
    "max_train": "train on a seeded random subset of this many (0 = all)", "max_eval": "same for val and test",
    "optimizer": " | ".join(OPTIMIZERS), "schedule": " | ".join(SCHEDULES), "loss": " | ".join(LOSSES),
    "amp": " | ".join(PRECISIONS), "channels_last": " | ".join(LAYOUTS),
    "shift": "random shift of up to this many pixels/voxels", "mixup_alpha": "mixup Beta(a, a); 0 = off",
    "crop": "3D: cube side around the nodule", "mask": "3D: keep only the segmented nodule",
    "dilate": "3D: grow the mask by this many voxels", "lr_end": "schedule range: the last epoch's lr (0 = off)",
    "fold": "M3DV: which cross-validation fold is the test set",
}


def fold_arg(text: str) -> int:
    """--fold takes a number or 'all' (stored as ALL_FOLDS)."""
    if text.strip().lower() == "all":
        return ALL_FOLDS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fold takes a fold number or 'all', not {text!r}") from None


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; defaults are None so only what is typed overrides the preset."""
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        if f.name == "fold":
            p.add_argument(flag, type=fold_arg, default=None, metavar="FOLD",
                           help="M3DV: the cross-validation fold used as test set (0..folds-1), or 'all' for the final "
                                "model trained on every labelled cube (default 0)")
        elif kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP.get(f.name))
        else:
            p.add_argument(flag, type=kind, default=None, metavar=f.name.upper(),
                           help=f"{_HELP.get(f.name, '')} (default {f.default})".strip())
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="base settings (default: report2 for --dataset m3dv, else report1)")
    p.add_argument("--profile", default="full", choices=sorted(PROFILES), help="quick shrinks the run for a CPU")


def config_from_args(args) -> TrainConfig:
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    preset = args.preset
    if preset is None:  # only the data named: its own report's recipe, said in one line
        preset = natural_preset(given.get("dataset"))
        if preset != "report1":
            kept = ", ".join(f"{k} {v}" for k, v in PRESETS[preset].items() if k not in given and k != "dataset")
            print(f"medlib: --dataset {given['dataset']} without --preset trains with --preset {preset} ({kept}); "
                  "flags you type win, --preset report1 gives the MedMNIST defaults.")
    return make_config(preset, args.profile, **given)
