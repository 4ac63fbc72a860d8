"""fit(config) -> a run folder: train, keep the best-validation-AUC model, evaluate, record everything."""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from datetime import datetime, timezone

import pandas as pd
import torch

from .. import io
from ..metrics import evaluate
from ..models import build_model, count_parameters, model_dims
from ..errors import MedlibError
from . import checkpoint, distributed
from .data import load_for_config
from .device import device_name, resolve_device, seed_everything, versions
from .loop import predict, train_epoch
from .runs import Run, claim, run_dir, write_scores


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}[cfg.optimizer]
    return opt(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg, opt):
    if cfg.schedule == "multistep":  # the official MedMNIST recipe: x0.1 at 50% and 75% of the epochs
        return torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.5 * cfg.epochs), int(0.75 * cfg.epochs)], 0.1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    return None


def weights_bytes(net) -> int:
    """Size of the weights alone as torch.save writes them (best.pt also holds the optimiser state)."""
    import io as _io

    buf = _io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.tell()


def quiet() -> bool:
    """Progress bars stay off under CI and when MEDLIB_QUIET is set."""
    return bool(os.environ.get("CI") or os.environ.get("MEDLIB_QUIET"))


def _row_metrics(prefix: str, scores, labels, task) -> dict:
    m = evaluate(labels, scores, task) if scores is not None else {"auc": math.nan, "acc": math.nan}
    return {f"{prefix}_auc": m["auc"], f"{prefix}_acc": m["acc"]}


def fit(cfg, out=None, dataset=None, reuse: bool = True, resume: bool = True, progress: bool | None = None,
        verbose: bool = True) -> Run:
    """Train `cfg`; a complete run with the same config under `out` is reused, an interrupted one resumed."""
    from tqdm.auto import tqdm

    cfg.validate()
    main = distributed.is_main()  # under torchrun only rank 0 writes, prints and evaluates
    verbose = verbose and main
    folder = run_dir(cfg, out)
    run = Run(folder)
    if reuse and run.complete:
        if verbose:
            print(f"reusing {folder}")
        return run
    ds = dataset if dataset is not None else load_for_config(cfg)
    meta = ds.meta
    if model_dims(cfg.model) != meta.dims:
        raise MedlibError(f"--model {cfg.model} is a {model_dims(cfg.model)}D network but {meta.name} is {meta.dims}D; "
                          f"pick a {'3D (densenet3d, baseline3d, resnet18_3d)' if meta.dims == 3 else '2D (resnet18, resnet50)'} model.")
    lock = claim(folder) if main else None
    device, owned_group = distributed.setup(resolve_device(cfg.device), cfg.batch_size)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    generator = seed_everything(cfg.seed)
    net = build_model(cfg.model, meta.n_channels, meta.n_classes, stem=cfg.stem).to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last if meta.dims == 2 else torch.channels_last_3d)
    opt = make_optimizer(cfg, net.parameters())
    sched = make_scheduler(cfg, opt)

    start_epoch, best_score, best_epoch, history = 0, -math.inf, -1, []
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    if resume and last_path.exists():
        ck = checkpoint.load(last_path, map_location=device)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck["scheduler"] is not None:
            sched.load_state_dict(ck["scheduler"])
        start_epoch, best_score, best_epoch, history = ck["epoch"] + 1, ck["best_score"], ck["best_epoch"], ck["history"]
        if ck["rng"] is not None:
            generator.set_state(ck["rng"])
        if verbose:
            print(f"resuming {folder} at epoch {start_epoch}")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        io.write_json(folder / "run.json", {"status": "running", "config": asdict(cfg), "key": cfg.key(), "started": started})

    train_net = distributed.wrap(net, device)
    train_net = torch.compile(train_net) if cfg.compile else train_net
    tr, va = ds["train"], ds["val"]
    # The whole (uint8) dataset moves to the device once; batches are index slices of it.
    Xtr, ytr, Xva = tr.X.to(device), tr.y.to(device), va.X.to(device)
    if verbose:
        print(f"{meta.name} {cfg.model} on {device_name(device)}: train {len(tr)}, val {len(va)}, "
              f"test {len(ds.splits.get('test', []))}; {count_parameters(net):,} parameters")
    show = main and ((not quiet()) if progress is None else progress)
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, cfg.epochs), desc=f"{meta.name}/{cfg.model}", disable=not show, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        stats = train_epoch(train_net, opt, Xtr, ytr, cfg, meta, device, generator)
        if sched is not None:
            sched.step()
        if not main:
            continue
        val_scores, val_loss = predict(net, Xva, device, meta.task, cfg.eval_batch_size, va.y, cfg.amp, cfg.channels_last)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": stats["loss"],
               **_row_metrics("train", stats.get("scores"), stats.get("labels"), meta.task),
               "val_loss": val_loss, **_row_metrics("val", val_scores, va.y.numpy(), meta.task),
               "seconds": time.perf_counter() - te}
        history.append(row)
        score = row["val_auc"] if not math.isnan(row["val_auc"]) else -math.inf
        common = dict(model=net, optimizer=opt, scheduler=sched, config=cfg, meta=meta, history=history, generator=generator)
        if score > best_score:  # strictly better: ties keep the earlier, simpler model
            best_score, best_epoch = score, epoch + 1
            checkpoint.save(best_path, epoch=epoch, best_score=best_score, best_epoch=best_epoch, **common)
        checkpoint.save(last_path, epoch=epoch, best_score=best_score, best_epoch=best_epoch, **common)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_auc=f"{row['val_auc']:.3f}")
    bar.close()
    if not main:
        distributed.barrier(device)  # wait for rank 0 to finish the run folder
        distributed.cleanup(owned_group)
        return run
    train_seconds = time.perf_counter() - t0
    hist = pd.DataFrame(history)
    io.write_text(folder / "history.csv", hist.to_csv(index=False))

    # Final numbers come from the best-validation-AUC weights, in eval mode, on every split.
    best_net, _, _ = checkpoint.load_model(best_path if best_path.exists() else last_path, map_location=device)
    best_net.to(device)
    metrics = {}
    for split, s in ds.splits.items():
        probs, loss = predict(best_net, s.X, device, meta.task, cfg.eval_batch_size, s.y, cfg.amp)
        metrics[split] = {**evaluate(s.y.numpy(), probs, meta.task), "loss": loss, "n": len(s)}
        if split != "train":
            write_scores(folder / f"{split}_scores.csv", probs, s.y.numpy(), s.ids)
    n_epochs_run = len(history) - (start_epoch if start_epoch else 0)
    record = {
        "status": "complete", "config": asdict(cfg), "key": cfg.key(), "versions": versions(),
        "data": {"name": meta.name, "size": meta.size, "task": meta.task, "md5": meta.md5, "source": meta.source,
                 **{f"n_{k}": len(v) for k, v in ds.splits.items()}},
        "device": device_name(device), "world_size": distributed.world_size(), "started": started,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(train_seconds, 2),
        "seconds_per_epoch": round(float(hist["seconds"].mean()), 3) if len(hist) else None,
        "epochs_this_session": n_epochs_run,
        "model": {"name": cfg.model, "parameters": count_parameters(net),
                  "weights_mb": round(weights_bytes(net) / 2**20, 3),
                  "checkpoint_mb": round(best_path.stat().st_size / 2**20, 3) if best_path.exists() else None},
        "best_epoch": best_epoch, "best_val_auc": best_score, "metrics": metrics,
    }
    io.write_json(folder / "run.json", record)
    lock.unlink(missing_ok=True)
    if verbose:
        print(format_metrics(record))
    distributed.barrier(device)
    distributed.cleanup(owned_group)
    return Run(folder)


def format_metrics(record: dict) -> str:
    """The report's layout: one row per split, AUC and ACC."""
    m = record["metrics"]
    lines = [f"{record['data']['name']} {record['config']['model']} (best epoch {record['best_epoch']}, "
             f"{record['wall_time_s']:.1f}s on {record['device']})", f"{'split':<6} {'AUC':>6} {'ACC':>6}"]
    lines += [f"{s:<6} {v['auc']:>6.3f} {v['acc']:>6.3f}" for s, v in m.items()]
    return "\n".join(lines)
