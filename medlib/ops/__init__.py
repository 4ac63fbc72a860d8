"""Pure tensor / array operations: crop and mask volumes, augment batches, mix them up."""

from .augment import augment_batch, random_flip, random_rot90, random_shift, rotate, rotations
from .crop import apply_mask, auto_mask, crop_cube, mask_centroid
from .mixup import mixup, sample_lambda, soft_loss, soft_targets

__all__ = [
    "augment_batch",
    "random_flip",
    "random_rot90",
    "random_shift",
    "rotate",
    "rotations",
    "apply_mask",
    "auto_mask",
    "crop_cube",
    "mask_centroid",
    "mixup",
    "sample_lambda",
    "soft_loss",
    "soft_targets",
]
