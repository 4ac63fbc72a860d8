"""DenseNet3D's memory-efficient training (recomputation in backward) against the plain network it replaces.

The oracle is the plain forward, `net.fc(net.features(x))`: every DenseLayer concatenates as before and
autograd keeps everything. Same parameters, same state_dict, same outputs, gradients and BatchNorm running
statistics after an optimiser step, to float tolerance.
"""

import copy

import pytest
import torch

from medlib.engine import memory
from medlib.models.densenet3d import DenseNet3D


def plain(net: DenseNet3D) -> DenseNet3D:
    ref = copy.deepcopy(net)
    for m in ref.modules():
        if hasattr(m, "memory_efficient"):
            m.memory_efficient = False
    ref.forward = lambda x: ref.fc(ref.features(x))  # the network as it was: one concatenation per layer
    return ref


def pair(channels_last: bool, seed: int = 0):
    torch.manual_seed(seed)
    net = DenseNet3D(block_layers=(3, 2))
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(4, 1, 16, 16, 16).contiguous(memory_format=fmt)
    return net, plain(net), x


def close(a, b, what):
    assert a.shape == b.shape, what
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"{what}: {m}")


def as_accurate(ours, plain32, exact, what):
    """ours (float32) is as close to the float64 plain network (`exact`) as the float32 plain network is,
    or within close()'s tolerance of it. At this size BatchNorm's backward over 4 cubes is ill-conditioned:
    the plain network's own float32 gradients are off by up to 1 % of their largest, so a sound reordering
    of the sums (the recomputation's map-by-map BatchNorm and 1³ conv) cannot match its rounding."""
    assert ours.shape == exact.shape, what
    err, err_plain = (ours.double() - exact).abs().max(), (plain32.double() - exact).abs().max()
    bound = max(2 * float(err_plain), 1e-5 + 1e-4 * float(exact.abs().max()))
    assert err <= bound, f"{what}: off by {float(err):.2e} from float64, plain float32 by {float(err_plain):.2e}"


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_outputs_gradients_and_running_stats_match_the_plain_network(channels_last):
    net, ref, x = pair(channels_last)
    assert list(net.state_dict()) == list(ref.state_dict())  # committed checkpoints still load
    exact = copy.deepcopy(ref).double()
    exact.forward = lambda x: exact.fc(exact.features(x))
    nets, xs = (net, ref, exact), (x, x, x.double())
    # SGD, not Report 2's Adamax: the stem's bias feeds a BatchNorm, so its true gradient is 0 and Adamax
    # would scale float noise (1e-9) up to a full step, differently in any two correct implementations
    opts = [torch.optim.SGD(m.parameters(), 0.1, momentum=0.9) for m in nets]
    for step in range(2):  # two steps: the second starts from updated weights and running statistics
        outs = []
        for m, opt, xi in zip(nets, opts, xs):
            opt.zero_grad()
            out = m(xi)
            (out * torch.arange(1.0, 3.0, dtype=xi.dtype)).sum().backward()
            outs.append(out)
        as_accurate(*outs, f"step {step} output")
        for (name, p), q, e in zip(net.named_parameters(), ref.parameters(), exact.parameters()):
            as_accurate(p.grad, q.grad, e.grad, f"step {step} grad {name}")
        for opt in opts:
            opt.step()
    sd, sd_ref, sd_exact = net.state_dict(), ref.state_dict(), exact.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            assert int(sd[k]) == int(sd_ref[k]) == 2, k  # once per step, not again in the recomputation
        else:
            as_accurate(sd[k], sd_ref[k], sd_exact[k], k)
    for m in nets:
        m.eval()
    with torch.no_grad():
        as_accurate(net(x), ref(x), exact(x.double()), "eval output")


def test_input_gradient_matches():
    net, ref, x = pair(True)
    exact = copy.deepcopy(ref).double()
    exact.forward = lambda x: exact.fc(exact.features(x))
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_(), x.double().requires_grad_()]
    for m, xi in zip((net, ref, exact), xs):
        m(xi).sum().backward()
    as_accurate(*(xi.grad for xi in xs), "input grad")


def test_bf16_autocast_recomputes_under_autocast():
    net, ref, x = pair(True)
    outs = []
    for m in (net, ref):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x)
        out.float().sum().backward()
        outs.append(out.float())
    torch.testing.assert_close(outs[0], outs[1], rtol=0.05, atol=0.05)
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        if name.endswith("conv.bias") or (p.ndim == 1 and q.grad.abs().max() < 1e-3):
            continue  # a conv bias feeding a BatchNorm has a true gradient of 0: bf16 leaves only noise
        torch.testing.assert_close(p.grad, q.grad, rtol=0.1, atol=0.05 * float(q.grad.abs().max()) + 1e-6)
    for (k, b), b_ref in zip(net.named_buffers(), ref.buffers()):
        if k.endswith("num_batches_tracked"):
            assert int(b) == int(b_ref) == 1, k


def test_training_keeps_a_fraction_of_what_the_plain_network_kept():
    net = DenseNet3D()
    b = memory.activation_bytes(net, (1, 32, 32, 32))
    assert b["saved"] < b["sum"] / 8  # 14 MiB per 32³ cube kept for backward, against 175 of module outputs
    # the refusal's bound moved with it: batch 128 on M3DV is about 8 GiB, not 31
    assert 6 < memory.train_bytes_per_sample(net, (1, 32, 32, 32)) * 128 / memory.GiB < 10


def test_naming_only_m3dv_gets_report2s_recipe_said_in_one_line(capsys):
    from medlib.cli import build_parser
    from medlib.config import make_config
    from medlib.flags import config_from_args

    args = build_parser().parse_args(["train", "--dataset", "m3dv", "--model", "densenet3d", "--epochs", "1"])
    cfg = config_from_args(args)
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "--preset report2" in said[0] and "batch_size 30" in said[0]
    assert cfg == make_config("report2", epochs=1)  # the same run folder as typing --preset report2
    typed = config_from_args(
        build_parser().parse_args(["train", "--dataset", "m3dv", "--preset", "report1", "--model", "densenet3d"])
    )
    assert typed.batch_size == 128 and capsys.readouterr().out == ""  # a typed preset is obeyed, silently
    other = config_from_args(build_parser().parse_args(["train", "--dataset", "breastmnist"]))
    assert other == make_config("report1", dataset="breastmnist") and capsys.readouterr().out == ""


def test_recomputation_is_chosen_where_the_plain_network_would_crowd_the_machine(monkeypatch):
    net, cpu = DenseNet3D(), torch.device("cpu")
    layers = [m for m in net.modules() if hasattr(m, "memory_efficient")]
    monkeypatch.setattr(memory, "total_bytes", lambda device: 8 * memory.GiB)  # a student's laptop
    assert memory.choose_recompute(net, (1, 32, 32, 32), 30, cpu) is True
    assert all(m.memory_efficient is True for m in layers)
    monkeypatch.setattr(memory, "total_bytes", lambda device: 64 * memory.GiB)  # plenty: keep the faster path
    assert memory.choose_recompute(net, (1, 32, 32, 32), 30, cpu) is False
    assert all(m.memory_efficient is False for m in layers)
    assert memory.choose_recompute(torch.nn.Linear(2, 2), (2,), 30, cpu) is None


def test_flops_of_a_recomputing_network_are_the_networks_work():
    """engine.cost.network_flops on a DenseNet3D set to recompute counts its plain forward + backward, as the
    shapes-only count from its name does (a training run's network, as benchmarks/cpu3d.py counts it)."""
    from medlib.engine.cost import flops_per_sample, network_flops

    net = DenseNet3D(in_channels=1, num_classes=2)
    for m in net.modules():
        if hasattr(m, "memory_efficient"):
            m.memory_efficient = True
    assert network_flops(net, (1, 32, 32, 32)) == flops_per_sample("densenet3d", 1, 2, (1, 32, 32, 32))


@pytest.mark.parametrize(
    "shape,fmt,pool",
    [
        ((3, 5, 8, 6, 4), torch.channels_last_3d, torch.nn.AvgPool3d(2)),  # the transition's: written channels_last
        ((3, 5, 8, 6, 4), torch.contiguous_format, torch.nn.AvgPool3d(2)),
        ((2, 4, 7, 7, 7), torch.channels_last_3d, torch.nn.AvgPool3d(2)),  # odd sizes: aten's kernel
        ((2, 4, 9, 9, 9), torch.channels_last_3d, torch.nn.AvgPool3d(3, stride=2, padding=1)),
        ((2, 4, 8, 8, 8), torch.channels_last_3d, torch.nn.AvgPool3d(2, divisor_override=3)),
    ],
    ids=["2-cl", "2-contiguous", "2-odd", "3-stride2-pad1", "divisor"],
)
def test_transition_pool_gradient_is_autograds_in_the_maps_format(shape, fmt, pool):
    from medlib.models.densenet3d import _avg_pool_backward

    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    out = pool(x)
    g = torch.randn_like(out)
    (expected,) = torch.autograd.grad(out, x, g)
    got = _avg_pool_backward(pool, g, x.shape, fmt)
    torch.testing.assert_close(got, expected)
    assert got.is_contiguous(memory_format=fmt)
