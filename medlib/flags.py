"""One command-line flag per TrainConfig field, shared by every sub-command that trains (train, sweep, cv)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from .config import PRESETS, PROFILES, TrainConfig, field_help, make_config, natural_preset
from .data.cubes import ALL_FOLDS


def fold_arg(text: str) -> int:
    """--fold takes a number or 'all' (stored as ALL_FOLDS)."""
    if text.strip().lower() == "all":
        return ALL_FOLDS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fold takes a fold number or 'all', not {text!r}") from None


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, its help generated from the field's metadata (config.knob, where what each
    flag means is written once); defaults are None so only what is typed overrides the preset."""
    for f in fields(TrainConfig):
        flag, text = "--" + f.name.replace("_", "-"), field_help(f).replace("%", "%%")  # argparse formats with %
        kind = type(f.default)
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:  # --fold also takes 'all'
            p.add_argument(
                flag,
                type=fold_arg if f.name == "fold" else kind,
                default=None,
                metavar=f.name.upper(),
                help=f"{text} (default {f.default})",
            )
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="base settings (default: report2 for --dataset m3dv, else report1)",
    )
    p.add_argument("--profile", default="full", choices=sorted(PROFILES), help="quick shrinks the run for a CPU")


def config_from_args(args) -> TrainConfig:
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    preset = args.preset
    if preset is None:  # only the data named: its own report's recipe, said in one line
        preset = natural_preset(given.get("dataset"))
        if preset != "report1":
            kept = ", ".join(f"{k} {v}" for k, v in PRESETS[preset].items() if k not in given and k != "dataset")
            print(
                f"medlib: --dataset {given['dataset']} without --preset trains with --preset {preset} ({kept}); "
                "flags you type win, --preset report1 gives the MedMNIST defaults."
            )
    return make_config(preset, args.profile, **given)
