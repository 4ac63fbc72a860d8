"""Report 2's DenseNet opened up: how the channels grow through a dense block, layer by layer, and its size on disk.

Measured from medlib's own `DenseNet3D` with forward hooks on the meta device (no memory, no compute):
each row is one step of the network with its input and output channels, output cube side and parameters.
"""
from __future__ import annotations

import io

import pandas as pd
import torch
from torch import nn

from ..models import count_parameters
from ..models.densenet3d import DenseLayer, DenseNet3D

REPORT2_FILE_MB = 1.77  # Report 2's Keras .h5 (weights + Adamax state)


def _steps(net: DenseNet3D):
    """(name, module) for the stem, each dense layer, each transition, and the head."""
    feats = list(net.features)
    i, block, layer = 0, 1, 0
    yield "stem conv 3³", feats[0]
    i = 1
    while i < len(feats):
        m = feats[i]
        if isinstance(m, DenseLayer):
            layer += 1
            yield f"block {block} · dense layer {layer}", m
            i += 1
        elif isinstance(m, nn.BatchNorm3d) and i + 3 < len(feats) and isinstance(feats[i + 2], nn.Conv3d):
            yield f"transition {block} (BN-ReLU-conv 1³-avg pool 2)", nn.Sequential(*feats[i : i + 4])
            block, layer, i = block + 1, 0, i + 4
        else:
            yield "head (BN-ReLU-global pool-fc)", nn.Sequential(*feats[i:], net.fc)
            break


def growth_table(size: int = 32, **kw) -> pd.DataFrame:
    """One row per step: channels in -> out, output side, parameters; dense layers add `growth` channels each."""
    with torch.device("meta"):
        net = DenseNet3D(**kw).eval()
    rows, x = [], torch.zeros(1, net.features[0].in_channels, size, size, size, device="meta")
    for name, module in _steps(net):
        cin = x.shape[1]
        x = module(x) if not name.startswith("head") else module[:-1](x)
        out = net.fc(x) if name.startswith("head") else x
        rows.append({"step": name, "channels in": cin, "channels out": out.shape[1],
                     "output side": "–" if out.ndim == 2 else out.shape[-1], "parameters": count_parameters(module)})
    return pd.DataFrame(rows)


def size_on_disk(net: nn.Module | None = None) -> pd.DataFrame:
    """Bytes torch.save writes: weights alone, and weights + Adamax state (what Report 2's Keras file held)."""
    net = net or DenseNet3D()
    opt = torch.optim.Adamax(net.parameters())
    net(torch.zeros(2, 1, 8, 8, 8)).sum().backward()
    opt.step()  # creates the optimiser's two moment buffers

    def mb(obj) -> float:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return round(buf.tell() / 2**20, 2)

    return pd.DataFrame([
        {"file": "medlib best.pt (weights only)", "MB": mb(net.state_dict())},
        {"file": "medlib weights + Adamax state", "MB": mb({"model": net.state_dict(), "opt": opt.state_dict()})},
        {"file": "Report 2's Keras file (weights + Adamax state)", "MB": REPORT2_FILE_MB},
    ])
