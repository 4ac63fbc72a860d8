"""The lists of names that more than one layer reads: the models below config (STEMS), the engine (OPTIMIZERS,
one optimiser class each) and the commands beside train (PRECISIONS, reproduce --amp). What each name means, and
every list only the config reads, is in its field's metadata (config.TrainConfig); models: `medlib.models.MODELS`."""

OPTIMIZERS = ("sgd", "adam", "adamw", "adamax")
STEMS = ("imagenet", "small")
PRECISIONS = ("auto", "bf16", "fp32")
