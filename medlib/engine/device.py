"""Device choice, seeding, autocast and the versions that go into every run record."""

from __future__ import annotations

import contextlib
import os
import platform
import random

import numpy as np
import torch

from ..errors import MedlibError
from ..version import __version__
from .hardware import usable_cpus


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is absent is an error. On CPU, torch's
    threads are fitted to the CPUs this process may use (set_cpu_threads)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        set_cpu_threads()
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MedlibError(f"--device {name} asked for CUDA but this machine has none; use --device auto or cpu.")
    if dev.type == "cpu":
        set_cpu_threads()
    return dev


def set_cpu_threads() -> int:
    """torch's intra-op threads: $MEDLIB_THREADS if set, else at most the CPUs this process may use (affinity
    mask, cgroup quota; hardware.usable_cpus). Only ever lowered, so a caller's own split (a sweep's workers,
    OMP_NUM_THREADS) stands. Returns the thread count now in use."""
    wanted = os.environ.get("MEDLIB_THREADS", "").strip()
    if wanted:
        try:
            n = int(wanted)
        except ValueError:
            raise MedlibError(f"MEDLIB_THREADS={wanted!r} must be a whole number of threads, e.g. 1.") from None
        if n < 1:
            raise MedlibError(f"MEDLIB_THREADS={wanted!r} must be at least 1.")
    else:
        n = min(torch.get_num_threads(), usable_cpus())
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator for batch order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast (no loss scaling needed) when `precision` is 'bf16' (see hardware.resolve_precision)."""
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> dict:
    import sklearn

    return {
        "medlib": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "cuda": torch.version.cuda,
    }
