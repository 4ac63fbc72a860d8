"""DenseSharp-style 3D DenseNet (Report 2): dense blocks of bottleneck layers joined by compressing transitions.

Training is memory-efficient (Pleiss et al. 2017, "Memory-Efficient Implementation of DenseNets"): a dense
layer's concatenation -> BN -> ReLU -> Conv1³ bottleneck is recomputed in the backward pass instead of kept,
and a block keeps its feature maps as a list. In fp32 the dense layers and transitions never concatenate it:
BN, ReLU and a 1³ conv act on each channel apart, so each map is normalised and convolved on its own and the
parts summed. The plain network kept a fresh, ever wider concatenation plus its normalised copy per layer
(7.6 GB at batch 30 on M3DV); the parameters and state_dict keys are the same either way, and the numbers as
close to float64 as the plain network's (tests/test_dense_memory.py).
Recomputing costs speed, so training chooses it per run (engine.memory.choose_recompute): on where the plain
network's batch would crowd the machine's memory, off where it fits easily.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


def _run(mods, feats, update_stats: bool) -> torch.Tensor:
    """mods applied to cat(feats). The recomputation in backward passes update_stats=False: a train-mode
    BatchNorm normalises with the batch's own statistics, so its output is the same, but the running
    mean/var (and num_batches_tracked) must move once per step, not twice."""
    x = torch.cat(feats, 1) if len(feats) > 1 else feats[0]
    for m in mods:
        if isinstance(m, nn.BatchNorm3d) and m.training and not update_stats:
            x = F.batch_norm(x, None, None, m.weight, m.bias, True, 0.0, m.eps)
        else:
            x = m(x)
    return x


def _autocast_state(kind: str) -> tuple:
    if not torch.amp.is_autocast_available(kind):  # the meta device has no autocast
        return kind, False, torch.float32
    return kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)


def _params(mods) -> list[torch.Tensor]:
    return [p for m in mods for p in m.parameters()]


class _Recomputed(torch.autograd.Function):
    """cat -> mods with nothing saved but the inputs (a block's feature maps, which are kept anyway).

    The parameters are inputs too, so their gradients flow through autograd (DDP's hooks see them); the
    recomputation runs under the forward's autocast state, so bf16 steps recompute in bf16.
    """

    @staticmethod
    def forward(ctx, mods, n, *tensors):  # tensors: n feature maps, then _params(mods)
        feats = tensors[:n]
        ctx.mods, ctx.n = mods, n
        ctx.autocast = _autocast_state(feats[0].device.type)
        ctx.save_for_backward(*feats)
        return _run(mods, feats, update_stats=True)  # autograd.Function runs its forward without grad

    @staticmethod
    def backward(ctx, grad):
        n, need = ctx.n, ctx.needs_input_grad[2:]
        feats = [f.detach().requires_grad_(w) for f, w in zip(ctx.saved_tensors, need[:n])]
        kind, enabled, dtype = ctx.autocast
        cast = torch.autocast(kind, dtype=dtype) if enabled else contextlib.nullcontext()
        with torch.enable_grad(), cast:
            out = _run(ctx.mods, feats, update_stats=False)
        wanted = [t for t, w in zip(feats + _params(ctx.mods), need) if w]
        grads = iter(torch.autograd.grad(out, wanted, grad))
        return (None, None, *(next(grads) if w else None for w in need))


def _bn_momentum(bn: nn.BatchNorm3d) -> float:
    """Counts one training step in num_batches_tracked and returns the momentum nn.BatchNorm3d would use."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else momentum
    return momentum


def _bn_train(bn: nn.BatchNorm3d, x: torch.Tensor):
    """Train-mode BatchNorm exactly as nn.BatchNorm3d runs it (running stats, num_batches_tracked), also
    returning the batch mean and inverse std that its backward needs."""
    momentum = _bn_momentum(bn)
    return torch.native_batch_norm(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, momentum, bn.eps)


def _bn_again(bn: nn.BatchNorm3d, x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor) -> torch.Tensor:
    """The forward's BatchNorm output again, in one pass: normalised with the batch statistics it saved."""
    return F.batch_norm(x, mean, invstd.pow(-2) - bn.eps, bn.weight, bn.bias, False, 0.0, bn.eps)


def _slices(feats):
    o = 0
    for f in feats:
        yield slice(o, o + f.shape[1])
        o += f.shape[1]


def _bn_relu_part(bn, f, s, mean, invstd) -> torch.Tensor:
    """relu(BN(x))[:, s] from the channels s of x alone (f), with the forward's batch statistics."""
    return F.batch_norm(f, mean[s], invstd[s].pow(-2) - bn.eps, bn.weight[s], bn.bias[s], False, 0.0, bn.eps).relu_()


def _conv_backward(g, x, conv, weight, bias: bool, pad: int):
    k = (1,) * 3
    return torch.ops.aten.convolution_backward(
        g, x, weight, [weight.shape[0]] if bias else None, k, (pad,) * 3, k, False, (0,) * 3, 1, [True, True, bias]
    )


def _relu_bn_backward(g, y, x, bn, s, mean, invstd, need_input: bool):
    """BN's train-mode backward on channels s, after ReLU's backward in one pass (threshold_backward, in place
    on g), where `g * (y > 0)` made a bool mask, a float copy of it and a product."""
    g = torch.ops.aten.threshold_backward.grad_input(g, y, 0, grad_input=g)  # in place on g
    return torch.ops.aten.native_batch_norm_backward(
        g, x, bn.weight[s], None, None, mean[s], invstd[s], True, bn.eps, [need_input, True, True]
    )


class _DenseLayerFn(torch.autograd.Function):
    """A whole dense layer in fp32 (cat -> BN -> ReLU -> Conv1³ -> BN -> ReLU -> Conv3³) that keeps for
    backward only its input feature maps (which the block keeps anyway) and four per-channel statistics.

    The backward recomputes the 1³ conv's output and the second BN-ReLU from the saved statistics, then
    runs autograd's own ATen kernels. The first BN, its ReLU and the 1³ conv act on each input channel
    apart, so their recomputation and backward go feature map by feature map, with no block-wide
    concatenation, normalised copy or gradient alive at once. Only the 1³ conv (about 4 % of the layer's
    FLOPs) is computed twice; the 3³ conv is not.
    """

    @staticmethod
    def forward(ctx, body, n, *tensors):  # tensors: n feature maps, then the parameters (autograd sees them)
        bn1, _, conv1, bn2, _, conv2 = body
        feats = tensors[:n]
        m, mean1, invstd1 = _cat_bn_relu_conv(bn1, conv1, feats)
        h, mean2, invstd2 = _bn_train(bn2, m)
        del m
        ctx.body, ctx.n = body, n
        ctx.save_for_backward(*feats, mean1, invstd1, mean2, invstd2)
        return F.conv3d(h.relu_(), conv2.weight, conv2.bias, conv2.stride, conv2.padding)

    @staticmethod
    def backward(ctx, gout):
        bn1, _, conv1, bn2, _, conv2 = ctx.body
        need = ctx.needs_input_grad[2:]
        *feats, mean1, invstd1, mean2, invstd2 = ctx.saved_tensors
        m = None  # the 1³ conv's output again, summed map by map: no block-wide concatenation in backward
        for f, s in zip(feats, _slices(feats)):
            y = _bn_relu_part(bn1, f, s, mean1, invstd1)
            part = F.conv3d(y, conv1.weight[:, s], conv1.bias if m is None else None)
            m = part if m is None else m.add_(part)
            del y, part
        h = _bn_again(bn2, m, mean2, invstd2).relu_()
        gh, gw3, gb3 = _conv_backward(
            gout.contiguous(memory_format=_format(h)), h, conv2, conv2.weight, conv2.bias is not None, conv2.padding[0]
        )
        every = slice(None)
        gm, gw2, gb2 = _relu_bn_backward(gh, h, m, bn2, every, mean2, invstd2, True)
        del gh, h, m
        fg, gwc, gw1, gb1 = [], [], [], []
        for f, s, w in zip(feats, _slices(feats), need):
            y = _bn_relu_part(bn1, f, s, mean1, invstd1)
            gy, gw, _ = _conv_backward(gm, y, conv1, conv1.weight[:, s].contiguous(memory_format=_format(y)), False, 0)
            gx, gwb, gbb = _relu_bn_backward(gy, y, f, bn1, s, mean1, invstd1, w)
            del y, gy
            fg.append(gx)
            gwc.append(gw)
            gw1.append(gwb)
            gb1.append(gbb)
        gc1 = [gm.sum((0, 2, 3, 4))] if conv1.bias is not None else []
        pg = [torch.cat(gw1), torch.cat(gb1), torch.cat(gwc, 1), *gc1, gw2, gb2, gw3]
        pg += [gb3] if conv2.bias is not None else []
        return (None, None, *(g if w else None for g, w in zip([*fg, *pg], need)))


def _cat_bn_relu_conv(bn, conv, feats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """conv(relu(bn(cat(feats)))) in training mode, with the BN's batch mean and inverse std (all the backward
    needs to recompute it map by map). BN, ReLU and a 1³ conv act on each input channel apart, so this too
    goes map by map, summing the conv's parts: the block-wide concatenation and its normalised copy (each
    up to 96 channels, 0.38 GB at batch 30 on M3DV) never exist, and nothing is copied into one."""
    if len(feats) == 1:
        y, mean, invstd = _bn_train(bn, feats[0])
        return F.conv3d(y.relu_(), conv.weight, conv.bias), mean, invstd
    momentum = _bn_momentum(bn)
    out, means, invstds = None, [], []
    for f, s in zip(feats, _slices(feats)):
        stats = (bn.running_mean[s], bn.running_var[s]) if bn.running_mean is not None else (None, None)
        y, mean, invstd = torch.native_batch_norm(f, bn.weight[s], bn.bias[s], *stats, True, momentum, bn.eps)
        part = F.conv3d(y.relu_(), conv.weight[:, s], conv.bias if out is None else None)
        out = part if out is None else out.add_(part)
        means.append(mean)
        invstds.append(invstd)
        del y, part
    return out, torch.cat(means), torch.cat(invstds)


def _format(t: torch.Tensor):
    return (
        torch.channels_last_3d
        if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d)
        else torch.contiguous_format
    )


class _Transition(torch.autograd.Function):
    """A transition's (or any) cat -> BN -> ReLU -> Conv1³ -> AvgPool in fp32, keeping for backward only the
    input feature maps and two per-channel statistics. BN, ReLU and a 1³ conv act on each input channel
    apart, so the backward runs feature map by feature map: no concatenation, no block-wide normalised copy
    and no block-wide gradient (1.8 GB at batch 30 on M3DV) exist at once; each kernel is autograd's own."""

    @staticmethod
    def forward(ctx, mods, n, *tensors):
        bn, _, conv, pool = mods
        feats = tensors[:n]
        c, mean, invstd = _cat_bn_relu_conv(bn, conv, feats)
        ctx.mods, ctx.n, ctx.c_shape, ctx.c_format = mods, n, c.shape, _format(c)
        ctx.save_for_backward(*feats, mean, invstd)
        return pool(c)

    @staticmethod
    def backward(ctx, gout):
        bn, _, conv, pool = ctx.mods
        need = ctx.needs_input_grad[2:]
        *feats, mean, invstd = ctx.saved_tensors
        gc = _avg_pool_backward(pool, gout, ctx.c_shape, ctx.c_format)
        fg, gws, gwbn, gbbn = [], [], [], []
        for f, s, w in zip(feats, _slices(feats), need):
            y = _bn_relu_part(bn, f, s, mean, invstd)
            gy, gw, _ = _conv_backward(gc, y, conv, conv.weight[:, s].contiguous(memory_format=_format(y)), False, 0)
            gx, gwb, gbb = _relu_bn_backward(gy, y, f, bn, s, mean, invstd, w)
            del y, gy
            fg.append(gx)
            gws.append(gw)
            gwbn.append(gwb)
            gbbn.append(gbb)
        pg = [torch.cat(gwbn), torch.cat(gbbn), torch.cat(gws, 1)]
        pg += [gc.sum((0, 2, 3, 4))] if conv.bias is not None else []
        return (None, None, *(g if w else None for g, w in zip([*fg, *pg], need)))


def _triple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3


def _avg_pool_backward(pool: nn.AvgPool3d, gout: torch.Tensor, shape, fmt) -> torch.Tensor:
    """The gradient of `pool`'s input (of `shape`), in memory format `fmt`. A 2³ / stride 2 pool over a
    channels_last map spreads each gradient over its 8 inputs: written straight in channels_last, where
    aten's kernel answers contiguous and every per-map convolution backward would reorder it again."""
    k, st, pad = _triple(pool.kernel_size), _triple(pool.stride or pool.kernel_size), _triple(pool.padding)
    b, c, *size = shape
    tiles = k == st and pad == (0, 0, 0) and pool.divisor_override is None
    if tiles and fmt == torch.channels_last_3d and list(size) == [n * s for n, s in zip(gout.shape[2:], k)]:
        g = (gout / (k[0] * k[1] * k[2])).permute(0, 2, 3, 4, 1)  # b, d, h, w, c
        d, h, w = g.shape[1:4]
        g = g[:, :, None, :, None, :, None].expand(b, d, k[0], h, k[1], w, k[2], c)
        return g.reshape(b, *size, c).permute(0, 4, 1, 2, 3)
    like = torch.empty(shape, dtype=gout.dtype, memory_format=fmt)  # shape only: never read
    g = torch.ops.aten.avg_pool3d_backward(
        gout.contiguous(memory_format=fmt),
        like,
        k,
        st,
        pad,
        pool.ceil_mode,
        pool.count_include_pad,
        pool.divisor_override,
    )
    return g.contiguous(memory_format=fmt)


def _is_transition(mods) -> bool:
    kinds = (nn.BatchNorm3d, nn.ReLU, nn.Conv3d, nn.AvgPool3d)
    if len(mods) != 4 or not all(isinstance(m, k) for m, k in zip(mods, kinds)):
        return False
    conv = mods[2]
    return conv.kernel_size == (1, 1, 1) and conv.stride == (1, 1, 1) and conv.groups == 1 and conv.padding == (0, 0, 0)


def recomputed(
    mods, feats: list[torch.Tensor], memory_efficient: bool | None, bottleneck: bool = False
) -> torch.Tensor:
    """mods(cat(feats)), recomputed in backward when training (memory_efficient None: except on the meta
    device, where shape and FLOP probes should see the network's own work); the plain path otherwise."""
    on = (not feats[0].is_meta) if memory_efficient is None else memory_efficient
    if on and torch.is_grad_enabled() and any(f.requires_grad for f in feats) and mods[0].training:
        autocast = _autocast_state(feats[0].device.type)[1]
        fp32 = not autocast and feats[0].dtype == torch.float32
        if fp32 and bottleneck:
            return _DenseLayerFn.apply(mods, len(feats), *feats, *_params(mods))
        if bottleneck:  # under autocast: recompute up to the 3³ conv, which keeps its input
            return mods[5](_Recomputed.apply(tuple(mods[:5]), len(feats), *feats, *_params(mods[:5])))
        if fp32 and _is_transition(mods):
            return _Transition.apply(tuple(mods), len(feats), *feats, *_params(mods))
        return _Recomputed.apply(tuple(mods), len(feats), *feats, *_params(mods))
    return _run(mods, feats, update_stats=True)


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1³ (bottleneck·growth) then BN-ReLU-Conv3³ (growth); its output joins its input."""

    def __init__(self, cin: int, growth: int, bottleneck: int):
        super().__init__()
        mid = bottleneck * growth
        self.body = nn.Sequential(
            *bn_relu(cin),
            nn.Conv3d(cin, mid, 1, bias=False),
            *bn_relu(mid),
            nn.Conv3d(mid, growth, 3, padding=1),  # Keras DenseSharp keeps this bias
        )
        # None: recompute in backward when training, except on the meta device; True / False force it
        self.memory_efficient: bool | None = None

    def new_features(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """This layer's `growth` new channels from the list of every earlier feature map in its block."""
        return recomputed(self.body, feats, self.memory_efficient, bottleneck=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.new_features([x])], 1)


class DenseNet3D(nn.Module):
    """3x3x3 stem, dense blocks with BN-ReLU-Conv1³-AvgPool2 transitions, BN-ReLU, global pool, linear.

    Defaults are Report 2's (growth 16, bottleneck 2, Keras "compression 2" = halve channels, 32 stem
    channels, blocks (4, 4)): 134,834 trainable parameters with 2 outputs. Keras' summary says 136,786
    because it also counts the 1,952 BatchNorm moving means/variances (976 channels x 2), which PyTorch
    keeps as buffers; the trainable counts match exactly. Works for any cube of side >= 2**(blocks-1).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        growth: int = 16,
        bottleneck: int = 2,
        compression: float = 0.5,
        init_channels: int = 32,
        block_layers=(4, 4),
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(in_channels, init_channels, 3, padding=1)]
        c = init_channels
        for i, n in enumerate(block_layers):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bottleneck))
                c += growth
            if i < len(block_layers) - 1:
                cout = int(c * compression)
                layers += [*bn_relu(c), nn.Conv3d(c, cout, 1), nn.AvgPool3d(2)]
                c = cout
        self.features = nn.Sequential(*layers, *bn_relu(c), nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                # Keras' he_uniform with zero biases, as in the report's code
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.memory_efficient: bool | None = None  # for the transitions and the head, as DenseLayer's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The same modules in the same order as `self.fc(self.features(x))`, but a block's feature maps stay a
        # list: each is written once, and what reads their concatenation (a dense layer, a transition's
        # BN-ReLU-Conv-Pool, the head's BN-ReLU-Pool) recomputes it in backward instead of keeping it.
        feats: list[torch.Tensor] = []
        mods = list(self.features)
        i = 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, DenseLayer):
                feats = feats or [x]
                feats.append(m.new_features(feats))
                i += 1
            elif feats:  # a transition or the head: everything up to the next dense layer
                j = next((k for k in range(i, len(mods)) if isinstance(mods[k], DenseLayer)), len(mods))
                x, feats, i = recomputed(mods[i:j], feats, self.memory_efficient), [], j
            else:
                x, i = m(x), i + 1
        return self.fc(x)
