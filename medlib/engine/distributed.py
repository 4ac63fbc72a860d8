"""DistributedDataParallel under `torchrun`: one process per device, each training on its shard of every epoch.

Without `WORLD_SIZE > 1` in the environment every helper is a no-op, so the single-process path is unchanged.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import MedlibError


def requested() -> bool:
    """True when launched by torchrun (or any launcher) with more than one process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False  # check_launch names the bad value


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank; before the group is open, the launcher's RANK."""
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if requested() else 0


def is_main() -> bool:
    """Only rank 0 writes the run folder and prints."""
    return rank() == 0


LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def check_launch() -> None:
    """Refuse WORLD_SIZE > 1 without the rest of what torchrun sets (RANK, MASTER_ADDR, ...): before any folder is
    made, one line saying how to launch, instead of torch's ValueError."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        n = int(text)
    except ValueError:
        raise MedlibError(
            f"WORLD_SIZE={text!r} is not a number of processes; unset it, or launch with torchrun "
            "--nproc-per-node N python -m medlib train ..."
        ) from None
    missing = [v for v in LAUNCH_VARIABLES if not os.environ.get(v)]
    if n > 1 and missing:
        raise MedlibError(
            f"WORLD_SIZE={n} is set but {', '.join(missing)} are not: launch with `torchrun "
            f"--nproc-per-node {n} -m medlib train ...`, or unset WORLD_SIZE for one process."
        )


def setup(device: torch.device, batch_size: int) -> tuple[torch.device, bool]:
    """(this process's device, whether we opened the process group); nccl on CUDA, gloo elsewhere."""
    if not requested():
        return device, False
    n = int(os.environ["WORLD_SIZE"])
    if batch_size % n:
        raise MedlibError(
            f"--batch-size {batch_size} is the global batch and must divide by the {n} processes; "
            f"use a multiple of {n}."
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, True


def wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around `net` when distributed (gradients are averaged across ranks in backward), else `net`.

    BatchNorm keeps per-rank batch statistics (no SyncBatchNorm): cheaper, and the usual DDP default.
    """
    if not active():
        return net
    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def shard(perm: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s equal, disjoint share of a permutation every rank drew alike.

    Strided (perm[rank::world]), so global step k sees exactly the samples a single process would put in
    batch k; the last len % world samples are dropped so every rank runs the same number of steps.
    """
    n = len(perm) - len(perm) % world
    return perm[:n][rank::world]


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sums across ranks of a few numbers (loss sums, counts); the values themselves when not distributed."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate an equally shaped tensor from every rank (rank order)."""
    if not active():
        return t
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def barrier(device: torch.device) -> None:
    if not active():
        return
    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


def cleanup(owned: bool) -> None:
    """Close the process group if `setup` opened it (a caller's own group is left alone)."""
    if owned and dist.is_initialized():
        dist.destroy_process_group()
