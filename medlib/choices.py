"""Every list of named choices a config field takes, in one leaf module: validation, help text and messages
are derived from these (models are listed by `medlib.models.MODELS`)."""

OPTIMIZERS = ("sgd", "adam", "adamw", "adamax")
# multistep: x0.1 at 50% and 75% of the epochs (the official recipe); range: lr climbs to lr_end (a range test)
SCHEDULES = ("none", "multistep", "cosine", "range")
STEMS = ("imagenet", "small")  # 7x7/2 + max-pool (Report 1, torchvision) | 3x3/1 (MedMNIST's 28 px ResNets)
LOSSES = ("auto", "ce", "bce")
PRECISIONS = ("auto", "bf16", "fp32")
LAYOUTS = ("auto", "on", "off")
