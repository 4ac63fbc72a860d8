"""medlib: reproduce, explain and outdo two course reports on medical image classification (MedMNIST, M3DV)."""

import os

# Before torch loads OpenMP: waiting threads spin 10,000 times (GNU OpenMP's default: 300,000) and then
# sleep. On a busy 2-core machine spinning threads wait on each other: ResNet-18 on BreastMNIST trained at
# 53 img/s with the default and 220 with this (benchmarks/results/cpu2d-native.json). Yours wins if set.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .config import TrainConfig, make_config  # noqa: E402
from .engine import fit, load_model, load_run
from .version import __version__

__all__ = ["TrainConfig", "make_config", "fit", "load_model", "load_run", "__version__"]
