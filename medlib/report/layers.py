"""The networks measured layer by layer from medlib's own modules: Report 1's Figure 2 (the ResNet layer table of
He et al. 2016) and Report 2's DenseNet (how its channels grow, its size on disk).

For each stage (conv1, conv2_x..conv5_x, pool + fc) we measure, rather than copy: the block layout, the
output size (forward hooks), the parameters, and the multiply-adds (MACs) of every Conv2d and Linear, counted
by `engine.cost.module_macs`, the FLOP counter behind the training-time estimates. The network is built on
PyTorch's `meta` device, so a 224-px ResNet-50 costs no memory or time.

"FLOPs" in He et al.'s table (and so in Report 1's Figure 2) are multiply-adds: ResNet-18 1.8e9, ResNet-50
3.8e9 at 224 px. medlib's ResNet-50, like torchvision's, puts the stride-2 of a down-sampling bottleneck
on its 3x3 convolution ("ResNet v1.5"); the 2015 paper put it on the first 1x1. Same parameters, but the
3x3 then runs at twice the resolution: 4.09e9 instead of 3.86e9 (which the paper prints as 3.8).
`resnet50_stride_variants` measures both.

The DenseNet-3D is opened up the same way (`growth_table`): one row per step of the network (stem, each dense
layer, each transition, the head) with its input and output channels, output cube side and parameters.
"""

from __future__ import annotations

import copy
import io

import pandas as pd
import torch
from torch import nn

from ..data import registry
from ..engine.cost import module_macs
from ..models import build_model, count_parameters
from ..models.densenet3d import DenseLayer, DenseNet3D
from ..models.resnet import BasicBlock, Bottleneck
from .reference import REPORT1_DATASETS
from .styled import StyledTable, style

STAGES = ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "pool + fc"]
_PREFIX = {
    "stem": "conv1",
    "layer1": "conv2_x",
    "layer2": "conv3_x",
    "layer3": "conv4_x",
    "layer4": "conv5_x",
    "pool": "pool + fc",
    "fc": "pool + fc",
}
PUBLISHED = {"resnet18": 11_689_512, "resnet50": 25_557_032}  # torchvision, 3 channels, 1000 classes


def build(arch: str, stem: str = "imagenet", in_channels: int = 3, num_classes: int = 1000) -> nn.Module:
    """The network on the meta device: shapes and parameter counts without memory or compute."""
    with torch.device("meta"):
        net = build_model(arch, in_channels, num_classes, stem=stem)
    return net.eval()


def layer_count(arch: str) -> str:
    """How a ResNet's name counts its layers: the stem conv, every conv on a block's main path, and the fc layer
    (shortcut projections are not counted)."""
    net = build(arch)
    blocks = [m for m in net.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    main = sum(isinstance(m, nn.Conv2d) for b in blocks for _, m in b.named_children())
    projections = sum(not isinstance(b.shortcut, nn.Identity) for b in blocks)
    return (
        f"{arch}: 1 stem conv + {main} block convs + 1 fc = {1 + main + 1} layers; "
        f"{len(blocks)} blocks, {projections} with a projection shortcut"
    )


def _stage(name: str) -> str:
    return _PREFIX[name.split(".")[0]]


def _k(conv: nn.Conv2d) -> str:
    return f"{conv.kernel_size[0]}×{conv.kernel_size[1]}"


def describe(net: nn.Module) -> dict[str, str]:
    """The block layout of each stage in He et al.'s notation, read off the modules."""
    conv0 = net.stem[0]
    out = {"conv1": f"{_k(conv0)}, {conv0.out_channels}, stride {conv0.stride[0]}"}
    pool = [m for m in net.stem if isinstance(m, nn.MaxPool2d)]
    for i, stage in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
        block = stage[0]
        convs = [m for n, m in block.named_children() if isinstance(m, nn.Conv2d)]
        text = "[" + "; ".join(f"{_k(c)}, {c.out_channels}" for c in convs) + f"] ×{len(stage)}"
        if i == 0 and pool:
            text = f"{pool[0].kernel_size}×{pool[0].kernel_size} max pool, stride {pool[0].stride}; " + text
        out[STAGES[i + 1]] = text
    out["pool + fc"] = f"average pool, {net.fc.out_features}-d fc"
    return out


def stage_profile(
    arch: str = "resnet18",
    size: int = 224,
    stem: str = "imagenet",
    in_channels: int = 3,
    num_classes: int = 1000,
    net: nn.Module | None = None,
) -> pd.DataFrame:
    """Per stage: output (C, H, W), parameters and multiply-adds for one image of `size` px; plus a total row."""
    net = net if net is not None else build(arch, stem, in_channels, num_classes)
    shapes: dict[str, tuple] = {}
    hooks = []

    def shape(stage):
        def hook(mod, inp, out):
            shapes[stage] = tuple(out.shape[1:])

        return hook

    # conv1's output is the stem before its max-pool (He et al. count the pool in conv2_x)
    hooks.append(net.stem[2].register_forward_hook(shape("conv1")))
    for i, layer in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
        hooks.append(layer.register_forward_hook(shape(STAGES[i + 1])))
    hooks.append(net.fc.register_forward_hook(shape("pool + fc")))
    try:
        counted = module_macs(net, torch.empty(1, in_channels, size, size, device=next(net.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    macs = dict.fromkeys(STAGES, 0)
    for name, stage in _PREFIX.items():  # the stem, the four stages, the pool and the fc
        macs[stage] += counted.get(name, 0)
    params = dict.fromkeys(STAGES, 0)
    for name, p in net.named_parameters():
        params[_stage(name)] += p.numel()
    rows = [{"stage": s, "output": shapes[s], "params": params[s], "macs": macs[s]} for s in STAGES]
    rows.append({"stage": "total", "output": None, "params": sum(params.values()), "macs": sum(macs.values())})
    return pd.DataFrame(rows).set_index("stage")


def _size(shape) -> str:
    if shape is None:
        return ""
    if len(shape) == 1:
        return f"{shape[0]}-d"
    c, h, w = shape
    return f"{h}×{w}×{c}"


def layer_table(
    arch: str = "resnet18", sizes=(224, 28), stems=("imagenet", "small"), in_channels: int = 3, num_classes: int = 1000
):
    """Report 1's Figure 2 for one network, measured: per stage the layout, parameters per stem, and the output
    size and mega multiply-adds for every (stem, size). A StyledTable (reproducible output for nbval)."""
    data: dict[tuple, list] = {}
    nets = {stem: build(arch, stem, in_channels, num_classes) for stem in stems}
    layout = {stem: describe(net) for stem, net in nets.items()}
    index = STAGES + ["total"]
    data[("", "layout")] = [" | ".join(dict.fromkeys(layout[s][st] for s in stems)) for st in STAGES] + [""]
    profiles = {
        (stem, size): stage_profile(arch, size, stem, in_channels, num_classes, net=nets[stem])
        for stem in stems
        for size in sizes
    }
    for stem in stems:
        data[("params", f"{stem} stem")] = [f"{v:,}" for v in profiles[(stem, sizes[0])]["params"]]
    for stem in stems:
        for size in sizes:
            p = profiles[(stem, size)]
            key = f"{stem} stem, {size} px"
            data[(key, "output")] = [_size(s) for s in p["output"]]
            data[(key, "M mult-adds")] = [f"{v / 1e6:,.1f}" for v in p["macs"]]
    table = pd.DataFrame(data, index=index)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    st = StyledTable(table, name=f"layers_{arch}")
    st.set_properties(subset=[("", "layout")], **{"text-align": "left", "font-size": "90%"})
    st.set_properties(subset=pd.IndexSlice["total", :], **{"font-weight": "bold"})
    st.set_caption(
        f"{arch}: Report 1's Figure 2 measured from medlib's modules ({in_channels} channels, {num_classes} classes)"
    )
    return st


def macs(arch: str, size: int = 224, stem: str = "imagenet", **kw) -> int:
    """Total multiply-adds of one forward pass of one image."""
    return int(stage_profile(arch, size, stem, **kw).at["total", "macs"])


def stride_on_1x1(net: nn.Module) -> nn.Module:
    """A copy of a ResNet-50 with each down-sampling bottleneck's stride moved from its 3x3 to its first 1x1
    (the 2015 paper's "v1"). Output sizes and parameters stay the same."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, Bottleneck) and m.conv2.stride != (1, 1):
            m.conv1.stride, m.conv2.stride = m.conv2.stride, (1, 1)
    return net


def resnet50_stride_variants(size: int = 224):
    """ResNet-50 at `size` px with the stride on the 3x3 (medlib, torchvision: v1.5) and on the first 1x1 (v1)."""
    net = build("resnet50")
    rows = []
    for name, n in (
        ("stride on the 3×3 (v1.5: medlib, torchvision)", net),
        ("stride on the first 1×1 (v1: He et al. 2016)", stride_on_1x1(net)),
    ):
        p = stage_profile(size=size, net=n)
        rows.append(
            {
                "ResNet-50": name,
                "parameters": f"{count_parameters(n):,}",
                "G mult-adds": f"{p.at['total', 'macs'] / 1e9:.2f}",
            }
        )
    df = pd.DataFrame(rows).set_index("ResNet-50")
    df.loc["Report 1's Figure 2 (from He et al.)"] = ["", "3.8"]
    return style(df, "resnet50_stride", f"ResNet-50 at {size} px: where the stride sits decides the FLOPs")


def parameter_counts(datasets=None, stem: str = "imagenet"):
    """Parameters of medlib's ResNet-18/50 with torchvision's ImageNet head (vs the published counts) and with the
    input channels and classes of each MedMNIST set (Report 1's networks)."""
    rows = []
    for arch in ("resnet18", "resnet50"):
        rows.append(
            {
                "network": arch,
                "input": "3 × 224 × 224",
                "classes": 1000,
                "parameters": count_parameters(build(arch, stem, 3, 1000)),
                "published": PUBLISHED[arch],
            }
        )
    for d in datasets or REPORT1_DATASETS:
        inf = registry.info(d)
        for arch in ("resnet18", "resnet50"):
            rows.append(
                {
                    "network": f"{arch} · {d}",
                    "input": f"{inf['n_channels']} × 28 × 28",
                    "classes": len(inf["label"]),
                    "parameters": count_parameters(build(arch, stem, inf["n_channels"], len(inf["label"]))),
                    "published": None,
                }
            )
    df = pd.DataFrame(rows)
    df["published"] = df["published"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
    df["parameters"] = df["parameters"].map(lambda v: f"{v:,}")
    st = style(df, f"params_{stem}", f"Parameters ({stem} stem); the published counts are torchvision's")
    st.hide(axis="index")
    return st


# ---------------------------------------------------------------- Report 2's DenseNet, opened up

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
        rows.append(
            {
                "step": name,
                "channels in": cin,
                "channels out": out.shape[1],
                "output side": "–" if out.ndim == 2 else out.shape[-1],
                "parameters": count_parameters(module),
            }
        )
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

    return pd.DataFrame(
        [
            {"file": "medlib best.pt (weights only)", "MB": mb(net.state_dict())},
            {"file": "medlib weights + Adamax state", "MB": mb({"model": net.state_dict(), "opt": opt.state_dict()})},
            {"file": "Report 2's Keras file (weights + Adamax state)", "MB": REPORT2_FILE_MB},
        ]
    )
