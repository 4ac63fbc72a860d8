"""One dataclass describes a run completely; its defaults are Report 1's settings (MedMNIST v1 recipe)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields

import torch

from .choices import OPTIMIZERS, PRECISIONS, STEMS
from .data import registry
from .data.cubes import ALL_FOLDS, M3DV, NODULE_CUBES, is_cube_set
from .data.nodules import FALLBACK
from .errors import MedlibError
from .models import MODELS


def knob(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    meanings: dict | None = None,
    min=None,
    above=None,
    max=None,
    why: str = "",
    unit: str = "",
    engineering: bool = False,
    added_later: bool = False,
    cubes: bool = False,
):
    """A config field described once, where it is declared: `help` (what it is), `choices` (the names it takes) and
    `meanings` (what some of those names do), a range (`min` <= value, or `above` < value, and value <= `max`; `why`
    says why when refused) and a `unit`. Three markers: `engineering` (how a run computes, not what: recorded in
    run.json, not hashed), `added_later` (hashed only when changed, so the run folders named before the field existed
    stay valid) and `cubes` (read by the nodule cubes' recipe only). Flags, help, validation, the hash and
    `describe_fields()` are generated from this metadata."""
    if meanings and not set(meanings) <= set(choices or ()):
        raise ValueError(f"meanings for names that are not choices: {sorted(set(meanings) - set(choices or ()))}")
    meta = {
        "help": help,
        "choices": choices,
        "meanings": meanings,
        "min": min,
        "above": above,
        "max": max,
        "why": why,
        "unit": unit,
        "engineering": engineering,
        "added_later": added_later,
        "cubes": cubes,
    }
    unset = [k for k, v in meta.items() if v is None or v is False or (isinstance(v, (str, dict)) and not v)]
    return field(default=default, metadata={k: v for k, v in meta.items() if k not in unset})  # min=0 stays


@dataclass
class TrainConfig:
    """Everything that decides a run's numbers. Its hash names the run folder, so equal configs reuse runs."""

    # data
    dataset: str = knob("breastmnist", "MedMNIST name (v1 organ names accepted) or m3dv")
    size: int = knob(28, "image side: 28/64/128/224 (3D: 28/64)", min=1, unit="px")
    max_train: int = knob(
        0, "train on a seeded random subset of this many (0 = all)", min=0, why="0 = all", unit="samples"
    )  # >0: the quick profile
    max_eval: int = knob(0, "same for val and test", min=0, why="0 = all", unit="samples")
    # the nodule cubes' recipe (Report 2)
    crop: int = knob(32, "3D: cube side around the nodule", min=1, unit="voxels", cubes=True)
    mask: bool = knob(True, "3D: keep only the segmented nodule", cubes=True)
    dilate: int = knob(0, "3D: grow the mask by this many voxels", min=0, unit="voxels", cubes=True)
    folds: int = knob(5, "M3DV: the number of cross-validation folds", min=2, cubes=True)
    fold: int = knob(
        0,
        "M3DV: the cross-validation fold used as test set (0..folds-1), or 'all' for the final model "
        "trained on every labelled cube",
        cubes=True,
    )  # 'all' is ALL_FOLDS; checked in validate()
    cv_fold: int = knob(
        -1,
        "2D sets: -1 trains on the official split; k (0..folds-1) pools train + val, validates on "
        "its stratified fold k of --folds and never reads the test split, to choose a recipe by "
        "cross-validation",
        min=-1,
        why="-1 = the official split",
        added_later=True,
    )
    # network
    model: str = knob("resnet18", "network", choices=MODELS)
    # the default: Report 1 built the torchvision stem even at 28 px
    stem: str = knob(
        "imagenet", "ResNets, 2D and 3D", choices=STEMS, meanings={"imagenet": "7x7/2 + pool", "small": "3x3/1"}
    )
    # optimisation: the MedMNIST v1 recipe that Report 1 built on
    epochs: int = knob(100, "training epochs; the epoch with the best validation AUC is kept", min=1)
    batch_size: int = knob(
        128,
        "samples per training step (shared out among torchrun's processes)",
        min=2,
        why="BatchNorm needs at least 2 samples per batch",
        unit="samples",
    )
    optimizer: str = knob("sgd", "optimiser", choices=OPTIMIZERS)
    lr: float = knob(1e-3, "learning rate (where a schedule starts)", above=0)  # a learning rate of 0 trains nothing
    momentum: float = knob(0.9, "SGD's momentum (the other optimisers ignore it)", min=0, max=1)
    weight_decay: float = knob(0.0, "weight decay, as the optimiser applies it (decoupled in adamw)", min=0)
    schedule: str = knob(
        "none",
        "learning rate over the epochs",
        choices=("none", "multistep", "cosine", "range"),
        meanings={
            "multistep": "x0.1 at 50% and 75% of the epochs, the official recipe",
            "cosine": "annealed to 0",
            "range": "a range test: climbs by the same factor each epoch to --lr-end",
        },
    )
    lr_end: float = knob(0.0, "schedule range: the last epoch's lr (0 = off)", min=0, why="0 = off", added_later=True)
    loss: str = knob(
        "auto",
        "training loss",
        choices=("auto", "ce", "bce"),
        added_later=True,
        meanings={
            "auto": "cross-entropy, BCE for multi-label",
            "bce": "BCE-with-logits on one-hot, Report 1's for its binary sets",
        },
    )
    # augmentation on the fly, on whole batches
    flip: bool = knob(False, "random flips, each spatial axis with probability 1/2")
    shift: int = knob(0, "random shift of up to this many pixels/voxels", min=0, unit="pixels/voxels")
    rot90: bool = knob(False, "random 90-degree rotations (any of the square's 4 or the cube's 24)")
    mixup_alpha: float = knob(0.0, "mixup Beta(a, a); 0 = off", min=0, why="0 = off")
    # Report 2's code, switchable to measure its flaws
    mixup_labels: str = knob(
        "soft",
        "mixup targets",
        choices=("soft", "hard"),
        added_later=True,
        meanings={"soft": "interpolated", "hard": "Report 2's code: rounded to 0/1"},
    )
    scaling: str = knob(
        "centered",
        "uint8 inputs",
        choices=("centered", "report2"),
        added_later=True,
        meanings={"centered": "x/127.5 - 1", "report2": "Report 2's code: x/127"},
    )
    val_split: str = knob(
        "before",
        "cubes' validation set",
        choices=("before", "after"),
        added_later=True,
        cubes=True,
        meanings={"before": "drawn before augmentation", "after": "Report 2's code: from augmented copies, leaky"},
    )
    # the seed (hashed), then engineering: how a run computes, recorded in run.json but not hashed
    seed: int = knob(0, "seeds the weights, batch order, augmentation and subsets", min=0, max=2**63 - 1)
    device: str = knob("auto", "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps", engineering=True)
    amp: str = knob(
        "auto",
        "precision",
        choices=PRECISIONS,
        engineering=True,
        meanings={"auto": "bf16 where the hardware computes it natively: Ampere+ GPU, AVX512-BF16 CPU"},
    )
    channels_last: str = knob(
        "auto",
        "channels-last memory layout",
        choices=("auto", "on", "off"),
        engineering=True,
        meanings={"auto": "on for CUDA and CPU"},
    )
    compile: bool = knob(False, "torch.compile the training network", engineering=True)
    eval_batch_size: int = knob(
        0,
        "batch size for scoring (0 = sized from memory)",
        min=0,
        why="0 = sized from memory",
        unit="samples",
        engineering=True,
    )

    def __post_init__(self):
        self.amp = normalize_precision(self.amp)  # records before 0.2 stored bools
        self.channels_last = normalize_layout(self.channels_last)

    def key(self) -> str:
        """Short hash of the fields that decide the result; engineering choices (device, precision, layout) are
        recorded in run.json, not hashed, and fields added later are hashed only when not at their default."""
        d = {
            k: v
            for k, v in asdict(self).items()
            if k not in ENGINEERING and not (k in ADDED_LATER and v == ADDED_LATER[k])
        }
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def replace(self, **kw) -> "TrainConfig":
        check_fields(kw)
        return dataclasses.replace(self, **kw)

    def validate(self) -> "TrainConfig":
        if self.model not in MODELS:
            raise MedlibError(f"--model {self.model!r} is unknown; choose one of {', '.join(MODELS)}.")
        for name in CHECKED_CHOICES:
            ok = FIELDS[name].metadata["choices"]
            if getattr(self, name) not in ok:
                raise MedlibError(f"--{name.replace('_', '-')} {getattr(self, name)!r} is not one of {', '.join(ok)}.")
        check_numbers(self)
        check_device(self.device)
        if self.eval_batch_size < 0:
            raise MedlibError(
                f"--eval-batch-size must be 0 (sized from memory) or positive, not {self.eval_batch_size}."
            )
        if (self.schedule == "range") != (self.lr_end > 0):
            raise MedlibError(
                "--schedule range needs --lr-end (the last epoch's learning rate, above --lr), and "
                f"--lr-end is used by no other schedule; got --schedule {self.schedule} "
                f"--lr-end {self.lr_end:g}."
            )
        if self.schedule == "range" and self.lr_end <= self.lr:
            raise MedlibError(f"--lr-end {self.lr_end:g} must be above --lr {self.lr:g}: the range test climbs.")
        if self.mixup_labels != "soft" and self.mixup_alpha <= 0:
            raise MedlibError(
                f"--mixup-labels {self.mixup_labels} changes mixup's targets and needs --mixup-alpha > 0."
            )
        if self.val_split != "before" and self.fold == ALL_FOLDS:
            raise MedlibError(
                "--val-split after is Report 2's leaky fold split, measured by cross-validation; the "
                "final model (--fold all) has no test fold to show what it costs: drop one of them."
            )
        if self.cv_fold >= self.folds:
            raise MedlibError(
                f"--cv-fold {self.cv_fold} must be in 0..{self.folds - 1} (--folds {self.folds}), or -1 "
                "for the official split."
            )
        if not (0 <= self.fold < self.folds or self.fold == ALL_FOLDS):
            raise MedlibError(
                f"--fold {self.fold} must be in 0..{self.folds - 1} (--folds {self.folds}), or 'all' "
                "for the final model trained on every labelled sample."
            )
        check_applicable(self)
        check_shift(self)
        return self


def check_applicable(cfg) -> None:
    """Refuse cube-recipe flags on a dataset that ignores them: the same training would be hashed into a new run
    folder and could count twice in a table."""
    if not isinstance(cfg.dataset, str):
        return
    if is_cube_set(cfg.dataset):
        if cfg.cv_fold != FIELDS["cv_fold"].default:
            raise MedlibError(
                f"--cv-fold cross-validates a 2D set's official train + val; {cfg.dataset} has its own "
                "folds (--fold, --folds), so drop --cv-fold."
            )
        return
    # --folds is shared: a 2D set reads it for --cv-fold
    given = [f for f in CUBE_FIELDS if getattr(cfg, f) != FIELDS[f].default and not (f == "folds" and cfg.cv_fold >= 0)]
    if given:
        flags = " ".join(_flag(f) if f != "mask" else "--no-mask" for f in given)
        raise MedlibError(
            f"{flags} only apply to the nodule cubes ({M3DV}, {NODULE_CUBES}); {cfg.dataset} ignores "
            "them, so drop them."
        )


def check_shift(cfg) -> None:
    """Refuse a shift that can move a whole image out of its frame (it fills with zeros): a run on blanks."""
    side = cfg.crop if isinstance(cfg.dataset, str) and is_cube_set(cfg.dataset) else cfg.size
    most = max((side - 1) // 2, 0)
    if cfg.shift > most:
        what = f"{side}-voxel cubes" if is_cube_set(str(cfg.dataset)) else f"{side}-px images"
        raise MedlibError(
            f"--shift {cfg.shift} can move the {what} out of their frame (the gap fills with zeros) "
            f"and train on blanks; use at most {most} (a few pixels is usual)."
        )


FIELDS = {f.name: f for f in fields(TrainConfig)}
# the fields' markers (knob), gathered: what the hash leaves out, and the fields only the nodule cubes read
ENGINEERING = tuple(name for name, f in FIELDS.items() if f.metadata.get("engineering"))
ADDED_LATER = {name: f.default for name, f in FIELDS.items() if f.metadata.get("added_later")}
CUBE_FIELDS = tuple(name for name, f in FIELDS.items() if f.metadata.get("cubes"))
# the choices validate() checks; model has its own message, amp and channels_last are normalised on creation
CHECKED_CHOICES = tuple(
    name for name, f in FIELDS.items() if "choices" in f.metadata and name != "model" and name not in ENGINEERING
)
# (field, lowest, highest, why), from the fields' metadata: every number must be finite and in range. BatchNorm needs
# two samples per batch, so a batch (or a training subset) of one would train nothing and still be recorded as a run.
_RANGES = tuple(
    (name, m.get("min", m.get("above")), m.get("max"), m.get("why", ""))
    for name, m in ((f.name, f.metadata) for f in FIELDS.values())
    if "min" in m or "above" in m
)


def field_help(f: dataclasses.Field) -> str:
    """A field's help in one line, as the CLI shows it: what it is, then the names it takes, each with its meaning
    where it has one: 'ResNets, 2D and 3D: imagenet (7x7/2 + pool) | small (3x3/1)'."""
    meta = f.metadata
    if "choices" not in meta:
        return meta["help"]
    meanings = meta.get("meanings", {})
    names = " | ".join(f"{c} ({meanings[c]})" if c in meanings else c for c in meta["choices"])
    return f"{meta['help']}: {names}"


def describe_fields() -> list[dict]:
    """Every config field as one row: name, default, the help line the CLI shows (`text`) and what the metadata
    says (help, choices and their meanings, range, unit, markers)."""
    return [{"field": f.name, "default": f.default, "text": field_help(f), **f.metadata} for f in FIELDS.values()]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_numbers(cfg) -> None:
    """Refuse NaN, infinities, non-numbers and out-of-range values, in one line naming the flag."""
    for name, lo, hi, why in _RANGES:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise MedlibError(f"{_flag(name)} must be a finite number, not {v!r}.")
        strict = "above" in FIELDS[name].metadata
        if (v <= lo if strict else v < lo) or (hi is not None and v > hi):
            want = f"> {lo}" if strict else f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise MedlibError(f"{_flag(name)} must be {want}, not {v!r}{f' ({why})' if why else ''}.")
    for name in ("max_train", "max_eval"):
        if getattr(cfg, name) == 1:
            raise MedlibError(
                f"{_flag(name)} 1 keeps a single sample, which can neither train BatchNorm nor give an "
                "AUC; use 0 (all) or at least 2."
            )
    if cfg.dilate and not cfg.mask:
        raise MedlibError(
            f"--dilate {cfg.dilate} grows the nodule mask, so it needs --mask; drop --no-mask or --dilate."
        )


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(name: str) -> str:
    """'auto', or a device medlib can run on (cpu, cuda, cuda:N, mps); anything else is one clear error."""
    if name == "auto":
        return name
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise MedlibError(f"--device {name!r} is not a device medlib can use; pass auto, cpu, cuda, cuda:N or mps.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MedlibError(f"--device {name} asked for Apple MPS but this machine has none; use --device auto or cpu.")
    return name


def _choice(value, flag: str, choices: tuple, if_true: str, if_false: str) -> str:
    """A choice, with the bools that records before 0.2 stored mapped to their meaning."""
    if isinstance(value, bool):
        return if_true if value else if_false
    if value not in choices:
        raise MedlibError(f"{flag} {value!r} is not one of {', '.join(choices)}.")
    return value


def normalize_precision(value) -> str:
    """Old records stored amp as a bool: True meant 'bf16 where supported' (auto), False fp32."""
    return _choice(value, "--amp", PRECISIONS, "auto", "fp32")


def normalize_layout(value) -> str:
    return _choice(value, "--channels-last", FIELDS["channels_last"].metadata["choices"], "on", "off")


def check_fields(kw: dict) -> None:
    known = {f.name for f in fields(TrainConfig)}
    bad = sorted(set(kw) - known)
    if bad:
        raise MedlibError(f"Unknown config field(s) {', '.join(bad)}; known: {', '.join(sorted(known))}.")


# Presets are plain overrides. 'report1' is the default; 'official' is MedMNIST v2's benchmark recipe;
# 'report2' is Report 2's M3DV DenseNet; 'tuned' is medlib's own recipe for the 2D sets.
PRESETS = {
    "report1": {},
    "official": {"optimizer": "adam", "lr": 1e-3, "schedule": "multistep", "epochs": 100, "stem": "small"},
    "tuned": {
        "optimizer": "sgd",
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "epochs": 100,
        "stem": "small",
        "flip": True,
        "shift": 2,
    },
    "report2": {
        "dataset": M3DV,
        "model": "densenet3d",
        "optimizer": "adamax",
        "lr": 2e-3,
        "batch_size": 30,
        "epochs": 26,
        "shift": 5,
        "rot90": True,
        "flip": True,
        "mixup_alpha": 0.2,
        "crop": 32,
        "mask": True,
    },
}
# The recipe a dataset was reported with, used when a command names the data but no --preset: Report 1's
# MedMNIST defaults (batch 128) would not even fit a laptop for M3DV's DenseNet; Report 2 trained it at 30.
NATURAL_PRESETS = {M3DV: "report2"}


def natural_preset(dataset) -> str:
    return NATURAL_PRESETS.get(str(dataset or "").strip().lower(), "report1")


# Profiles shrink a preset for CPU: `quick` runs in minutes on real data (few epochs, subsets).
PROFILES = {
    "quick": {"epochs": 3, "max_train": 512, "max_eval": 256, "batch_size": 64},
    "full": {},
}


def profile_name(value: str = "") -> str:
    """`value` if given (a notebook parameter, e.g. papermill -p PROFILE full), else $MEDLIB_PROFILE, else quick."""
    source = "PROFILE" if value else "MEDLIB_PROFILE"
    p = (value or os.environ.get("MEDLIB_PROFILE", "quick")).strip().lower()
    if p not in PROFILES:
        raise MedlibError(f"{source}={p!r} is not one of {', '.join(PROFILES)}.")
    return p


def make_config(preset: str = "report1", profile: str = "full", **overrides) -> TrainConfig:
    """Preset, then profile, then explicit overrides (later wins)."""
    if preset not in PRESETS:
        raise MedlibError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if profile not in PROFILES:
        raise MedlibError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    kw = {**PRESETS[preset], **PROFILES[profile], **overrides}
    check_fields(kw)
    cfg = TrainConfig(**kw)
    if is_cube_set(cfg.dataset):
        cfg.dataset = cfg.dataset.strip().lower()
        if cfg.dataset == NODULE_CUBES:  # the source volumes' side; --crop cuts the cube
            registry.check_size(FALLBACK, cfg.size)
    else:
        cfg.dataset = registry.canonical(cfg.dataset)  # v1 names and case map to one run folder
        registry.check_size(cfg.dataset, cfg.size)
    return cfg.validate()
