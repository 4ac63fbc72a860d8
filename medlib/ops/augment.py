"""Batched on-the-fly augmentation (flips, integer shifts, 90° rotations) for 2D and 3D tensors on any device.

Every sample draws its own transform. Random numbers come from `generator` on its own device (CPU for
the engine's generator) and are moved to the batch's device, so a seed gives the same augmentation on
CPU and CUDA. Works for uint8 and float batches alike.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import MedlibError


def _spatial(x: torch.Tensor) -> tuple[int, ...]:
    if x.ndim not in (4, 5):
        raise MedlibError(f"Augmentation expects a batch (N, C, H, W) or (N, C, D, H, W), not shape {tuple(x.shape)}.")
    return tuple(x.shape[2:])


def _randint(high: int, shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Uniform ints in [0, high), drawn on the generator's device and returned on `device`."""
    dev = generator.device if generator is not None else device
    return torch.randint(high, shape, generator=generator, device=dev).to(device)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each sample along each spatial axis independently with probability 1/2."""
    _spatial(x)
    out = x
    for axis in range(2, x.ndim):
        flip = _randint(2, (len(x),), generator, x.device).bool()
        out = torch.where(flip.view(-1, *[1] * (x.ndim - 1)), out.flip(axis), out)
    return out


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each sample by its own integer offset in [-max_shift, max_shift] per axis, filling with zeros."""
    sp = _spatial(x)
    k = int(max_shift)
    if k != max_shift or k < 0:
        raise MedlibError(f"shift must be a whole number of voxels >= 0, not {max_shift!r}.")
    if k == 0:
        return x.clone()
    n, d = len(x), len(sp)
    offsets = _randint(2 * k + 1, (n, d), generator, x.device) - k
    padded = F.pad(x, (k, k) * d)  # zeros on every side, so source index i + k - offset is always valid
    batch = torch.arange(n, device=x.device).view(n, *[1] * d)
    index = [
        (torch.arange(s, device=x.device) + k - offsets[:, a, None]).view(n, *[s if b == a else 1 for b in range(d)])
        for a, s in enumerate(sp)
    ]
    # channels last so the advanced indices are adjacent and broadcast to (N, *spatial)
    return padded.movedim(1, -1)[(batch, *index)].movedim(-1, 1).contiguous()


def _parity(perm: tuple[int, ...]) -> int:
    inversions = sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm)))
    return -1 if inversions % 2 else 1


@lru_cache(maxsize=None)
def rotations(dims: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """The proper rotations of a square (4) or cube (24) as (axis permutation, axes to flip) pairs.

    A permutation followed by flips is a signed permutation matrix; keeping determinant +1 leaves
    exactly the rotations (the other half are mirror images).
    """
    group = []
    for perm in itertools.permutations(range(dims)):
        for flips in itertools.product((False, True), repeat=dims):
            if _parity(perm) * (-1) ** sum(flips) == 1:
                group.append((perm, tuple(a for a, f in enumerate(flips) if f)))
    return tuple(group)


def rotate(x: torch.Tensor, perm: tuple[int, ...], flips: tuple[int, ...]) -> torch.Tensor:
    """Apply one element of `rotations(dims)` to a batch (N, C, *spatial)."""
    y = x.permute(0, 1, *[2 + p for p in perm])
    return y.flip([2 + a for a in flips]) if flips else y


def random_rot90(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each sample by its own random element of the square's (4) or cube's (24) rotation group."""
    sp = _spatial(x)
    if len(set(sp)) != 1:
        raise MedlibError(f"90° rotations need equal spatial sides, not {sp}; crop or resize to a square/cube first.")
    group = rotations(len(sp))
    # choices live on the CPU so picking each group's samples needs no device sync
    choice = _randint(len(group), (len(x),), generator, "cpu")
    out = torch.empty_like(x)
    for i, (perm, flips) in enumerate(group):
        sel = (choice == i).nonzero().squeeze(1)
        if len(sel):
            sel = sel.to(x.device)
            out[sel] = rotate(x[sel], perm, flips)
    return out


def augment_batch(
    x: torch.Tensor,
    *,
    flip: bool = False,
    shift: int = 0,
    rot90: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The enabled augmentations in turn (flip, rot90, shift); always a new tensor of x's dtype, shape, device."""
    _spatial(x)
    out = x
    if flip:
        out = random_flip(out, generator)
    if rot90:
        out = random_rot90(out, generator)
    if shift:
        out = random_shift(out, shift, generator)
    return out.clone() if out is x else out
