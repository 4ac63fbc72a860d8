"""Training images/s: the official MedMNIST recipe against medlib's engine, same network, same data, one run.

official: per-sample PIL image -> ToTensor/Normalize (emulated with numpy, as MedMNIST/experiments does with
torchvision) in a Dataset, DataLoader(shuffle=True), fp32, default memory format, loss.item() every step.
medlib: the uint8 set resident on the device, index-sliced batches normalised on the fly, and
`medlib.engine.loop.train_epoch` itself, with bf16 autocast + channels_last on CUDA.

    python benchmarks/train_speed.py [--device cpu|cuda] [--dataset breastmnist]
        [--models resnet18,resnet50,densenet3d] [--batches N] [--out results.json] [--cpu-quick]
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from medlib import atomic, make_config
from medlib.data import load_medmnist
from medlib.data.base import Dataset, Meta, Split
from medlib.engine.device import device_name, resolve_device
from medlib.engine.loop import prepare, train_epoch
from medlib.engine.training import make_optimizer, set_up
from medlib.errors import MedlibError
from medlib.models import build_model, model_dims
from medlib.tasks import BINARY

SIDE_3D = 32  # M3DV crops (Report 2)
FULL = dict(device="auto", batches=20, warmup=3, repeats=3, batch_size=128, batch_size_3d=32)
QUICK = dict(device="cpu", batches=2, warmup=1, repeats=2, batch_size=32, batch_size_3d=2)


class PILImages(torch.utils.data.Dataset):
    """MedMNIST's 2D dataset as the official code feeds it: a PIL image per sample, then ToTensor +
    Normalize(.5, .5)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels  # (N, H, W) or (N, H, W, 3) uint8; (N, 1) int

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])
        # transforms.ToTensor(): HWC uint8 -> CHW float in [0, 1]
        a = np.array(img, dtype=np.uint8, copy=True)
        x = torch.from_numpy(a[:, :, None] if a.ndim == 2 else a).permute(2, 0, 1).contiguous().float().div(255)
        return x.sub_(0.5).div_(0.5), self.labels[i]  # transforms.Normalize(mean=[.5], std=[.5])


class NumpyVolumes(torch.utils.data.Dataset):
    """A 3D dataset as per-sample code feeds it: uint8 cube -> float32 numpy -> tensor, per item."""

    def __init__(self, volumes: np.ndarray, labels: np.ndarray):
        self.volumes, self.labels = volumes, labels  # (N, D, H, W) uint8; (N, 1) int

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, i):
        v = (self.volumes[i].astype(np.float32) / 255.0 - 0.5) / 0.5
        return torch.from_numpy(v[None]), self.labels[i]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def official_steps(net, opt, loader, device, steps: int) -> int:
    """MedMNIST/experiments' train(): fp32, per-batch copy to the device, loss.item() each step."""
    net.train()
    seen, losses = 0, []
    for i, (x, y) in enumerate(loader):
        if i == steps:
            break
        x, y = x.to(device), y.to(device).squeeze(1).long()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        losses.append(loss.item())  # the official loop syncs here every step
        loss.backward()
        opt.step()
        seen += len(x)
    return seen


def official_input(loader, device, steps: int) -> int:
    """The official input pipeline alone: batches as the training loop receives them, on the device."""
    seen = 0
    for i, (x, y) in enumerate(loader):
        if i == steps:
            break
        x, y = x.to(device), y.to(device)
        seen += len(x)
    return seen


def official_runner(name, meta, data, cfg, device, args, batch):
    """(train, input): steps -> images, the official way: a fresh shuffled DataLoader pass over PIL / numpy samples."""
    images, labels = data
    torch.manual_seed(0)
    net = build_model(name, meta.n_channels, meta.n_classes, stem=cfg.stem).to(device)
    opt = make_optimizer(cfg, net.parameters())
    ds = (PILImages if meta.dims == 2 else NumpyVolumes)(images, labels)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=args.workers)

    def run(steps: int) -> int:
        torch.backends.cudnn.benchmark = False  # PyTorch's default, which the official code keeps
        return official_steps(net, opt, loader, device, steps)

    return run, lambda steps: official_input(loader, device, steps)


def medlib_runner(meta, X, y, cfg, device):
    """(train, input, seconds to put the set on the device); train runs medlib's own train_epoch on the session
    `training.set_up` builds for fit() (device settings, seeded model and optimiser, precision and layout)."""
    session = set_up(
        cfg.replace(device=str(device)), Dataset(meta, {"train": Split(X, y)}), folder=None, resume=False, verbose=False
    )
    net, opt, how, generator = session.net, session.opt, session.how, session.generator
    train_net = torch.compile(net) if cfg.compile else net
    t = time.perf_counter()
    Xd, yd = X.to(device), y.to(device)  # once per run, as fit() does
    sync(device)
    setup = time.perf_counter() - t

    def run(steps: int) -> int:
        torch.backends.cudnn.benchmark = device.type == "cuda"  # as fit() sets it
        n = steps * cfg.batch_size
        train_epoch(train_net, opt, Xd[:n], yd[:n], cfg, meta, device, generator, how)
        return n

    def batches(steps: int) -> int:  # train_epoch's input side: permute, slice, normalise on the device
        perm = torch.randperm(len(Xd), generator=generator).to(Xd.device)
        for start in range(0, steps * cfg.batch_size, cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            _batch = prepare(Xd[idx], device, how), yd[idx]  # the input side alone, timed
        return steps * cfg.batch_size

    return run, batches, setup


def timed(run, steps: int, device) -> tuple[int, float]:
    sync(device)
    t = time.perf_counter()
    n = run(steps)
    sync(device)
    return n, time.perf_counter() - t


def median_rate(trials: list[tuple[int, float]]) -> float:
    """The median images/s over the repeats (robust to a neighbour's burst on a shared machine)."""
    return round(float(np.median([n / s for n, s in trials])), 2)


def summary(trials: list[tuple[int, float]], batch: int, how: str) -> dict:
    return {
        "images_per_s": median_rate(trials),
        "images_per_s_each": [round(n / s, 2) for n, s in trials],
        "images": trials[0][0],
        "seconds_each": [round(s, 4) for _, s in trials],
        "batch_size": batch,
        "recipe": how,
    }


def tiled(n: int, total: int) -> np.ndarray:
    """Indices 0..n-1 repeated to `total`, so small sets still fill the timed steps."""
    return np.arange(total) % n


def data_2d(dataset: str, size: int, total: int):
    """(meta, uint8 (N, C, H, W) tensor, labels) from the real train split, and the same images as numpy HW[C]."""
    ds = load_medmnist(dataset, size)
    if ds.meta.multilabel:
        raise MedlibError(
            f"--dataset {dataset} is multi-label; the benchmark's official loop is cross-entropy, "
            "pick a binary or multi-class set such as breastmnist."
        )
    tr = ds["train"]
    idx = torch.from_numpy(tiled(len(tr), total))
    X, y = tr.X[idx], tr.y[idx]
    hw = X.permute(0, 2, 3, 1).numpy()
    return ds.meta, X, y, (hw[..., 0] if hw.shape[-1] == 1 else hw, y.numpy()[:, None])


def data_3d(total: int):
    """M3DV-shaped input: seeded uint8 32³ cubes with binary labels (only the shape matters for speed)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (total, 1, SIDE_3D, SIDE_3D, SIDE_3D), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 2, (total,), generator=g)
    meta = Meta(name="m3dv-shaped", task=BINARY, n_classes=2, n_channels=1, dims=3, size=SIDE_3D)
    return meta, X, y, (X[:, 0].numpy(), y.numpy()[:, None])


def bench(name: str, device: torch.device, args) -> dict:
    dims = model_dims(name)
    batch = args.batch_size if dims == 2 else args.batch_size_3d
    medlib_batch = batch * args.medlib_batch_scale
    total = max(args.warmup, args.batches) * max(batch, medlib_batch)
    no_aug = dict(flip=False, shift=0, rot90=False, mixup_alpha=0.0)
    gpu = device.type == "cuda"
    # Same optimiser for both recipes: MedMNIST v2's Adam for 2D, Report 2's Adamax for 3D.
    if dims == 2:
        meta, X, y, official_data = data_2d(args.dataset, args.size, total)
        cfg = make_config(
            "official",
            dataset=args.dataset,
            size=args.size,
            model=name,
            stem=args.stem,
            **no_aug,
            batch_size=medlib_batch,
            amp="auto" if gpu else "fp32",
            channels_last="on" if gpu else "off",
            compile=args.compile,
        )
    else:
        meta, X, y, official_data = data_3d(total)
        cfg = make_config(
            "report2",
            model=name,
            **no_aug,
            batch_size=medlib_batch,
            amp="auto" if gpu else "fp32",
            channels_last="on" if gpu else "off",
            compile=args.compile,
        )
    runners = {"official": official_runner(name, meta, official_data, cfg, device, args, batch)}
    *runners["medlib"], setup = medlib_runner(meta, X, y, cfg, device)
    for train, _ in runners.values():
        train(args.warmup)
    trials = {(k, part): [] for k in runners for part in ("train", "input")}
    for _ in range(args.repeats):
        for k, (train, batches) in runners.items():  # interleaved, so a change in the machine's load hits both alike
            trials[k, "train"].append(timed(train, args.batches, device))
            trials[k, "input"].append(timed(batches, args.batches, device))
    official = summary(
        trials["official", "train"],
        batch,
        "fp32, default memory format, DataLoader "
        f"(num_workers={args.workers}), per-sample {'PIL' if dims == 2 else 'numpy'} conversion",
    )
    ours = summary(
        trials["medlib", "train"],
        medlib_batch,
        f"{'bf16 autocast + channels_last' if gpu else 'fp32'}, uint8 set on the device, "
        f"index-sliced batches{', torch.compile' if cfg.compile else ''}",
    )
    for k, row in (("official", official), ("medlib", ours)):
        # the input pipeline alone: the ceiling a recipe puts on training speed, however fast the device
        row["input_images_per_s"] = median_rate(trials[k, "input"])
    ours["setup_s"] = round(setup, 4)
    return {
        "model": name,
        "data": meta.name,
        "shape": list(X.shape[1:]),
        "stem": cfg.stem if dims == 2 else None,
        "official": official,
        "medlib": ours,
        "ratio": round(ours["images_per_s"] / official["images_per_s"], 3),
        "input_ratio": round(ours["input_images_per_s"] / official["input_images_per_s"], 3),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cpu | cuda | auto (default)")
    p.add_argument("--dataset", default="breastmnist", help="2D MedMNIST set for the ResNets (default breastmnist)")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--models", default="resnet18,resnet50,densenet3d")
    p.add_argument("--stem", default="imagenet", help="2D ResNet stem: imagenet (Report 1) | small (MedMNIST 28 px)")
    p.add_argument("--batches", type=int, default=None, help="timed training steps per recipe (default 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed passes per recipe, interleaved; the median counts (default 3)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="2D batch (default the official 128)")
    p.add_argument("--batch-size-3d", type=int, default=None, help="3D batch (default 32)")
    p.add_argument("--medlib-batch-scale", type=int, default=1, help="medlib trains with this many times the batch")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the official recipe (it uses 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile medlib's net (warm-up includes compiling)")
    p.add_argument(
        "--cpu-quick",
        action="store_true",
        help="CPU, batches of 32 (3D: 2), 2 steps x 2 repeats: under 90 s on 2 cores",
    )
    p.add_argument("--out", default="train_speed.json", help="where the JSON goes")
    args = p.parse_args(argv)
    # flags typed explicitly win over the mode's defaults
    defaults = QUICK if args.cpu_quick else FULL
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for flag in ("batches", "warmup", "repeats", "batch_size", "batch_size_3d", "medlib_batch_scale"):
        if getattr(args, flag) < 1:
            raise MedlibError(f"--{flag.replace('_', '-')} must be at least 1, not {getattr(args, flag)}.")
    if args.batch_size < 2 or args.batch_size_3d < 2:
        raise MedlibError("--batch-size and --batch-size-3d must be at least 2 (BatchNorm needs two samples).")
    return args


def table(rows: list[dict]) -> str:
    lines = [
        f"{'model':<11} {'shape':<11} {'official img/s':>14} {'medlib img/s':>13} {'ratio':>6}   "
        f"{'input pipeline only: official':>30} {'medlib':>10} {'ratio':>7}"
    ]
    for r in rows:
        o, m = r["official"], r["medlib"]
        lines.append(
            f"{r['model']:<11} {'x'.join(map(str, r['shape'])):<11} {o['images_per_s']:>14.1f} "
            f"{m['images_per_s']:>13.1f} {r['ratio']:>5.2f}x   {o['input_images_per_s']:>30.0f} "
            f"{m['input_images_per_s']:>10.0f} {r['input_ratio']:>6.1f}x"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        device = resolve_device(args.device)
        rows = []
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            model_dims(name)  # an unknown name is one clear error
            print(f"timing {name} ...", flush=True)
            rows.append(bench(name, device, args))
    except MedlibError as e:
        print(f"train_speed: error: {e}", file=sys.stderr)
        return 2
    print(f"\n{device_name(device)}, torch {torch.__version__}")
    print(table(rows))
    record = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": rows,
    }
    atomic.write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
