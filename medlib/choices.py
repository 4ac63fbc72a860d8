"""Every list of named choices a config field takes, in one leaf module: validation, help text and messages
are derived from these (models are listed by `medlib.models.MODELS`)."""

OPTIMIZERS = ("sgd", "adam", "adamw", "adamax")
# multistep: x0.1 at 50% and 75% of the epochs (the official recipe); range: lr climbs to lr_end (a range test)
SCHEDULES = ("none", "multistep", "cosine", "range")
STEMS = ("imagenet", "small")  # 7x7/2 + max-pool (Report 1, torchvision) | 3x3/1 (MedMNIST's 28 px ResNets)
LOSSES = ("auto", "ce", "bce")
PRECISIONS = ("auto", "bf16", "fp32")
LAYOUTS = ("auto", "on", "off")
# Report 2's code, kept switchable so its flaws can be measured (notebook 04): medlib's way first
MIXUP_LABELS = ("soft", "hard")  # mixed targets as probabilities | rounded back to 0/1 (the larger share's label)
SCALINGS = ("centered", "report2")  # uint8 -> x / 127.5 - 1, in [-1, 1] | x / 127, in [0, 2.01]
VAL_SPLITS = ("before", "after")  # cubes: validation drawn before augmentation | from augmented copies (leaky)
