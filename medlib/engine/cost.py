"""What a run costs before it starts: FLOPs per sample (counted, not guessed) and a time estimate for this CPU.

The one counter is torch's FlopCounterMode (every convolution and matrix product, forward and backward); a
multiply-add is two of its FLOPs. `module_macs` gives its forward count per submodule (Report 1's layer table,
`report.layers`), `flops_per_sample` the totals a training-time estimate needs.

ResNet-18-3D costs 106 GFLOP per 28³ cube forward + backward (850 at 64³): about half an hour per
AdrenalMNIST3D epoch on 2 CPU cores even at half of their SGEMM rate. Saying so up front beats starting
what cannot finish.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data.cubes import is_cube_set
from ..models import build_model
from .hardware import sgemm_gflops

# Fraction of the SGEMM rate that real training reaches (benchmarks/cpu3d.py measures it per machine;
# 0.5 is the floor medlib's 3D path is held to) and the speed-up of native bf16 over fp32 on CPU.
CPU_EFFICIENCY = 0.5
BF16_SPEEDUP = 1.8
CPU_WARN_HOURS = 2.0


def module_macs(net: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Multiply-adds of one forward pass of `x`, per submodule: keys as `net.named_modules()` names them ("" is
    the whole network; a module's count includes its children's)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    root, out = type(net).__name__, {}
    for name, ops in counter.get_flop_counts().items():
        if name == root or name.startswith(root + "."):  # the tracker names modules from the root's class name
            out[name[len(root) + 1 :]] = sum(ops.values()) // 2
    return out


@lru_cache(maxsize=64)
def flops_per_sample(model: str, in_channels: int, n_classes: int, sample_shape: tuple, stem: str = "small") -> dict:
    """{'train': forward+backward FLOPs, 'eval': forward FLOPs} for one sample, counted on the meta device."""
    with torch.device("meta"):
        net = build_model(model, in_channels, n_classes, stem=stem)
    return network_flops(net, sample_shape)


def network_flops(net: torch.nn.Module, sample_shape: tuple) -> dict:
    """flops_per_sample for a built network as it is set (e.g. a convolution's one-position path switched
    off), counted on a shapes-only copy: what its own forward and backward compute."""
    probe = copy.deepcopy(getattr(net, "module", net)).to("meta").train()
    for m in probe.modules():
        if hasattr(m, "memory_efficient"):  # DenseNet3D: count the network's work, not what it recomputes
            m.memory_efficient = False
    x = torch.zeros((2, *sample_shape), device="meta")  # BatchNorm needs 2 in training mode
    with FlopCounterMode(display=False) as fwd:
        out = probe(x)
    with FlopCounterMode(display=False) as bwd:
        out.sum().backward()
    f, b = fwd.get_total_flops(), bwd.get_total_flops()
    return {"train": (f + b) // 2, "eval": f // 2}


def estimate_seconds(
    cfg, meta, n_train: int, n_eval: int, device: torch.device, precision: str = "fp32", gflops: float | None = None
) -> float | None:
    """Seconds for the whole run on this CPU from counted FLOPs and the SGEMM rate (`gflops`, measured here when
    None: measure once and pass it when estimating many runs); None off CPU."""
    if device.type != "cpu":
        return None
    shape = (meta.n_channels, *[cfg.crop if is_cube_set(cfg.dataset) else meta.size] * meta.dims)
    f = flops_per_sample(cfg.model, meta.n_channels, meta.n_classes, shape, cfg.stem)
    rate = (gflops or sgemm_gflops()) * 1e9 * CPU_EFFICIENCY * (BF16_SPEEDUP if precision == "bf16" else 1.0)
    return cfg.epochs * (f["train"] * n_train + f["eval"] * n_eval) / rate


def too_slow_message(seconds: float | None, what: str) -> str | None:
    """A warning when a CPU run would take longer than CPU_WARN_HOURS, pointing at a GPU."""
    if seconds is None or seconds < CPU_WARN_HOURS * 3600:
        return None
    return (
        f"{what} needs about {seconds / 3600:.1f} h on this CPU (counted FLOPs at half its measured SGEMM rate); "
        "this is a GPU job: run it where `--device cuda` works (see README, 'On a GPU')."
    )
