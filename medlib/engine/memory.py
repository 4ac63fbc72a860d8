"""Batch sizes from a memory budget, so a 64³ set or 224 px images never ask for more memory than there is.

A fixed evaluation batch of 1024 asked for 17 GB on AdrenalMNIST3D at 64³. Here the per-sample activation
bytes are measured once (forward hooks on a 2-sample batch) and batches are sized to fit a budget.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from ..errors import MedlibError
from .hardware import available_bytes, total_bytes

GiB = 2**30
EVAL_BUDGET_CAP = 2 * GiB  # on CPU more buys no speed: evaluation is compute-bound long before this
TRAIN_FRACTION = 0.9  # a training batch may use this much of the memory that is free


def _meta_copy(net: nn.Module, recompute: bool | None = None) -> nn.Module:
    """A shapes-only copy; `recompute` forces DenseNet3D's choice (None: the one `net` will train with)."""
    probe = copy.deepcopy(getattr(net, "module", net)).to("meta")  # shapes only: no compute, no memory
    for m in probe.modules():
        if hasattr(m, "memory_efficient"):  # on meta, None would mean 'plain': measure what training keeps
            m.memory_efficient = m.memory_efficient is not False if recompute is None else recompute
    return probe


def activation_bytes(net: nn.Module, sample_shape: tuple[int, ...], recompute: bool | None = None) -> dict:
    """Per-sample fp32 bytes of activations: 'sum' of every leaf module's output, the largest input+output
    'max', and 'saved', what a training step really keeps for backward.

    'max' bounds what inference needs at one time. 'saved' counts each tensor that autograd saves once
    (saved-tensor hooks on a training forward): ResNet-50 at 224 px keeps 127 MiB, the known ~104 MB of
    activations plus the inputs its ReLUs and convolutions share; DenseNet3D at 32³ keeps 14 MiB, because it
    recomputes its concatenations in backward, where 'sum' (every module's output) says 175. All measured on
    a 2-sample batch on the meta device (shapes only, instant).
    """
    outs: list[int] = []
    pairs: list[int] = []

    def hook(_m, inputs, output):
        first = inputs[0].numel() if inputs and torch.is_tensor(inputs[0]) else 0
        out = output.numel() if torch.is_tensor(output) else 0
        outs.append(out * 4 // 2)
        pairs.append((first + out) * 4 // 2)

    probe = _meta_copy(net, recompute).eval()
    handles = [m.register_forward_hook(hook) for m in probe.modules() if not list(m.children())]
    x = torch.zeros((2, *sample_shape), device="meta")
    with torch.no_grad():
        probe(x)
    for h in handles:
        h.remove()
    kept: dict[int, tuple[torch.Tensor, int]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, nn.Parameter):
            kept[id(t)] = (t, t.numel() * 4)  # holding t keeps its id unique while counting
        return t

    probe.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        probe(x.requires_grad_())
    return {"sum": sum(outs), "max": max(pairs, default=0), "saved": sum(b for _, b in kept.values()) // 2}


def train_bytes_per_sample(net: nn.Module, sample_shape, recompute: bool | None = None) -> int:
    """Upper bound on a training step's per-sample memory: what backward keeps, plus room for the largest
    layer's input, output and their gradients at once (DenseNet3D on M3DV: 64 MiB; 56 measured live)."""
    b = activation_bytes(net, sample_shape, recompute)
    return b["saved"] + 2 * b["max"]


COMFORTABLE = 0.25  # the share of the machine's memory a training batch may take without recomputation


def choose_recompute(net: nn.Module, sample_shape, batch_size: int, device: torch.device) -> bool | None:
    """Set DenseNet3D's recomputation for this run: on where the plain network's batch would take more than
    COMFORTABLE of the device's memory (an 8-16 GB laptop at Report 2's batch 30), off where it fits easily,
    since recomputing costs speed (benchmarks/cpu3d.py: 'plain' against 'fp32'). None for other networks."""
    layers = [m for m in getattr(net, "module", net).modules() if hasattr(m, "memory_efficient")]
    if not layers:
        return None
    on = batch_size * train_bytes_per_sample(net, sample_shape, recompute=False) > COMFORTABLE * total_bytes(device)
    for m in layers:
        m.memory_efficient = on
    return on


def eval_batch_size(net: nn.Module, sample_shape, device: torch.device, requested: int = 0) -> int:
    """`requested` if > 0, else the largest batch whose activations fit the evaluation budget (at least 1)."""
    if requested > 0:
        return requested
    per_sample = 2 * activation_bytes(net, sample_shape)["max"]  # input + output, and a concat or workspace
    budget = available_bytes(device) // 4
    if device.type == "cpu":
        budget = min(EVAL_BUDGET_CAP, budget)
    return int(max(1, min(4096, budget // max(per_sample, 1))))


def check_train_batch(net: nn.Module, sample_shape, batch_size: int, device: torch.device, what: str = "") -> int:
    """Refuse, before the first step, a training batch whose activations cannot fit in the device's memory at all;
    warn when they may not fit in what is free now. The estimate is an upper bound (train_bytes_per_sample):
    DenseNet3D at batch 128 on M3DV is estimated at 8 GiB (the leaf-output sum said 31), so free memory,
    which other processes move, must not refuse a run that fits. DenseNet3D's recomputation is chosen first
    (choose_recompute), so the bound is the network that will really train."""
    choose_recompute(net, sample_shape, batch_size, device)
    per_sample = train_bytes_per_sample(net, sample_shape)
    need = batch_size * per_sample
    total, free = total_bytes(device), available_bytes(device)
    fits = int(TRAIN_FRACTION * total // max(per_sample, 1))
    if batch_size > fits:
        raise MedlibError(
            f"--batch-size {batch_size} needs up to {need / GiB:.1f} GiB of activations{what} but {device} has "
            f"{total / GiB:.1f} GiB in all; the largest batch that fits is about {max(fits, 1)}: "
            f"pass --batch-size {max(fits, 1)} (scale --lr with it)."
        )
    if need > TRAIN_FRACTION * free:
        warnings.warn(
            f"--batch-size {batch_size} may need up to {need / GiB:.1f} GiB of activations{what} and "
            f"{free / GiB:.1f} GiB is free on {device} now; training goes on (the estimate is an upper bound).",
            stacklevel=2,
        )
    return need
