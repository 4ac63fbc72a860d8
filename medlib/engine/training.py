"""fit(config) -> a run folder: train, keep the best-validation-AUC model, evaluate, record everything.

The steps, in order: reuse a finished run, load data, claim the folder, set up (device, precision, model,
optimiser, resume), train epochs (checkpoint every epoch), evaluate the best weights, write the record.
A run that fails or is interrupted leaves an honest record: status, epochs done, and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from .. import atomic
from ..config import TrainConfig
from ..data.base import Dataset
from ..errors import MedlibError
from ..evalformat import write_evaluator_csv
from ..metrics import evaluate
from ..models import build_model, count_parameters, model_dims
from ..progress import tqdm
from . import checkpoint, distributed, observe
from .cost import estimate_seconds, too_slow_message
from .device import device_name, resolve_device, seed_everything, versions
from .hardware import (
    StepSettings,
    allocator_state,
    available_bytes,
    memory_format,
    step_settings,
    tune_allocator,
)
from .loop import predict, train_epoch
from .memory import TRAIN_FRACTION, activation_bytes, check_train_batch, eval_batch_size
from .runs import Run, check_resume, check_reuse, claim, discard_outputs, remove_if_empty, run_dir, write_scores
from .splits import load_for_config

CHECKPOINT_SECONDS = None  # seconds between checkpoints; None reads $MEDLIB_CHECKPOINT_SECONDS (default 30)


def checkpoint_seconds() -> float:
    """CHECKPOINT_SECONDS, else $MEDLIB_CHECKPOINT_SECONDS, read when a run starts (a bad value must not break
    `import medlib`, nor every command that never trains)."""
    if CHECKPOINT_SECONDS is not None:
        return float(CHECKPOINT_SECONDS)
    text = os.environ.get("MEDLIB_CHECKPOINT_SECONDS", "30")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise MedlibError(
            f"MEDLIB_CHECKPOINT_SECONDS={text!r} is not a number of seconds >= 0; set it to e.g. 30 "
            "(0 = after every epoch), or unset it."
        )
    return value


OPTIMIZER_CLASSES = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adamax": torch.optim.Adamax,
}  # one per name in medlib.choices.OPTIMIZERS


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return OPTIMIZER_CLASSES[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg, opt):
    if cfg.schedule == "multistep":  # what each schedule is: its field's help (config.TrainConfig.schedule)
        return torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.5 * cfg.epochs), int(0.75 * cfg.epochs)], 0.1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    if cfg.schedule == "range":  # Smith 2017: the one factor that takes lr to lr_end over the last epochs - 1
        return torch.optim.lr_scheduler.ExponentialLR(opt, (cfg.lr_end / cfg.lr) ** (1 / max(1, cfg.epochs - 1)))
    return None


def weights_bytes(net) -> int:
    """Size of the weights alone as torch.save writes them (best.pt also holds the optimiser state)."""
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.tell()


def quiet() -> bool:
    """Progress bars stay off under CI and when MEDLIB_QUIET is set."""
    return bool(os.environ.get("CI") or os.environ.get("MEDLIB_QUIET"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _row_metrics(prefix: str, scores, labels, task) -> dict:
    m = evaluate(labels, scores, task) if scores is not None else {"auc": math.nan, "acc": math.nan}
    return {f"{prefix}_auc": m["auc"], f"{prefix}_acc": m["acc"]}


@dataclass
class Training:
    """Everything one training session holds between its steps."""

    cfg: TrainConfig
    ds: Dataset
    folder: Path | None  # None: a session that writes nothing (benchmarks/train_speed.py)
    device: torch.device
    how: StepSettings
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator
    owned_group: bool = False
    eval_batch: int = 0
    start_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    history: list = field(default_factory=list)
    started: str = field(default_factory=_now)
    train_seconds: float = 0.0
    saved_epochs: int = 0  # epochs that last.pt holds: where a resume starts

    @property
    def meta(self):
        return self.ds.meta


def check_model_fits_data(cfg, meta) -> None:
    if model_dims(cfg.model) != meta.dims:
        three = "3D (densenet3d, baseline3d, resnet18_3d)"
        raise MedlibError(
            f"--model {cfg.model} is a {model_dims(cfg.model)}D network but {meta.name} is {meta.dims}D; "
            f"pick a {three if meta.dims == 3 else '2D (resnet18, resnet50)'} model."
        )


def set_up(cfg: TrainConfig, ds: Dataset, folder: Path | None, resume: bool, verbose: bool) -> Training:
    """Device, precision and layout for this machine; seeded model and optimiser; resume from last.pt (when
    `resume`: `folder` is read only then)."""
    meta = ds.meta
    device, owned_group = distributed.setup(resolve_device(cfg.device), cfg.batch_size)
    if device.type == "cpu":
        tune_allocator()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    how = step_settings(cfg, device, meta.dims)
    generator = seed_everything(cfg.seed)
    net = build_model(cfg.model, meta.n_channels, meta.n_classes, stem=cfg.stem).to(device)
    if how.channels_last:
        net = net.to(memory_format=memory_format(meta.dims))
    sample_shape = tuple(ds["train"].X.shape[1:])
    # the batch a step really holds: a --batch-size above the training set trains on the whole set at once
    batch = min(cfg.batch_size, len(ds["train"])) // distributed.world_size()
    check_train_batch(net, sample_shape, max(batch, 1), device, f" for {cfg.model} on {meta.name} at {meta.size}")
    opt = make_optimizer(cfg, net.parameters())
    largest = max(len(s) for s in ds.splits.values())
    t = Training(
        cfg,
        ds,
        folder,
        device,
        how,
        net,
        opt,
        make_scheduler(cfg, opt),
        generator,
        owned_group,
        eval_batch=fitting_eval_batch(net, sample_shape, device, cfg.eval_batch_size, largest),
    )
    last = folder / "last.pt" if resume else None
    if last is not None and last.exists():
        resume_from(t, checkpoint.load(last, map_location=device), last)
        if verbose:
            print(f"resuming {folder} at epoch {t.start_epoch}")
    return t


def resume_from(t: Training, ck: dict, last) -> None:
    """Load a last.pt into the session: only this config's own (checked by config key and data), whole and fitting."""
    check_resume(ck, t.meta, last, t.cfg)
    try:
        t.net.load_state_dict(ck["model"])
        t.opt.load_state_dict(ck["optimizer"])
        if t.sched is not None and ck["scheduler"] is not None:
            t.sched.load_state_dict(ck["scheduler"])
        t.start_epoch, t.best_score, t.best_epoch, t.history = (
            int(ck["epoch"]) + 1,
            float(ck["best_score"]),
            int(ck["best_epoch"]),
            list(ck["history"]),
        )
        if ck["rng"] is not None:
            t.generator.set_state(ck["rng"])
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as e:
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise MedlibError(
            f"{last} does not fit this run's {t.cfg.model} ({first[:160]}); the file was altered or "
            "comes from another run. Pass --fresh to discard it and start the run again."
        ) from None
    if not 0 < t.start_epoch <= t.cfg.epochs:
        raise MedlibError(
            f"{last} says epoch {t.start_epoch} of this {t.cfg.epochs}-epoch run was done; "
            "pass --fresh to discard it and start the run again."
        )
    t.saved_epochs = t.start_epoch


def fitting_eval_batch(net, sample_shape, device, requested: int, largest: int) -> int:
    """The evaluation batch: sized from memory (0), or `requested` capped at the largest split and at what can fit in
    memory at all (an explicit --eval-batch-size 100000000 must not end in an allocator error)."""
    if requested <= 0:
        return eval_batch_size(net, sample_shape, device)
    batch = min(requested, max(largest, 1))
    per_sample = 2 * activation_bytes(net, sample_shape)["max"]
    fits = max(1, int(TRAIN_FRACTION * available_bytes(device)) // max(per_sample, 1))
    if batch > fits:
        print(
            f"medlib: warning: --eval-batch-size {requested} needs about {batch * per_sample / 2**30:.1f} GiB but "
            f"{device} has {available_bytes(device) / 2**30:.1f} GiB free; evaluating {fits} at a time instead."
        )
        batch = fits
    return batch


def announce(t: Training) -> None:
    """One line on what runs where, and a warning when a CPU cannot finish it in reasonable time."""
    tr, meta = t.ds["train"], t.meta
    n_eval = len(t.ds["val"])
    print(
        f"{meta.name} {t.cfg.model} on {device_name(t.device)} ({t.how.precision}"
        f"{', channels_last' if t.how.channels_last else ''}): train {len(tr)}, val {n_eval}, "
        f"test {len(t.ds.splits.get('test', []))}; {count_parameters(t.net):,} parameters"
    )
    cfg = t.cfg.replace(epochs=t.cfg.epochs - t.start_epoch)
    warning = too_slow_message(
        estimate_seconds(cfg, meta, len(tr), n_eval, t.device, t.how.precision),
        f"{t.cfg.model} on {meta.name} ({cfg.epochs} epochs)",
    )
    if warning:
        print(f"medlib: warning: {warning}")


def write_progress(t: Training, status: str = "running", **extra) -> None:
    """run.json while training (and after a failure): how far it got, who trains it, and why it stopped."""
    atomic.write_json(
        t.folder / "run.json",
        {
            "status": status,
            "config": asdict(t.cfg),
            "key": t.cfg.key(),
            "started": t.started,
            "updated": _now(),
            "epochs_done": len(t.history),
            "epochs_saved": t.saved_epochs,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": device_name(t.device),
            "precision": t.how.precision,
            **extra,
        },
    )


def train_epochs(t: Training, main: bool, show: bool) -> None:
    """The epoch loop: train, validate, track the best validation AUC (strictly better), save checkpoints.

    Checkpoints are written every checkpoint_seconds() and after the last epoch, not every epoch: on small sets
    two ~90 MB files per sub-second epoch cost more than the training. An interrupted run loses at most that
    much time, and resumes exactly (last.pt holds the RNG state).
    """
    cfg, meta, va = t.cfg, t.meta, t.ds["val"]
    X, y, Xva = t.ds["train"].X.to(t.device), t.ds["train"].y.to(t.device), va.X.to(t.device)
    train_net = distributed.wrap(t.net, t.device)
    train_net = torch.compile(train_net) if cfg.compile else train_net
    unit = "cube" if meta.dims == 3 else "img"
    bar = tqdm(range(t.start_epoch, cfg.epochs), desc=f"{meta.name}/{cfg.model}", disable=not show, leave=False)
    every = checkpoint_seconds()
    t0 = flushed = time.perf_counter()
    best_weights = None
    for epoch in bar:
        te = time.perf_counter()
        lr = t.opt.param_groups[0]["lr"]
        with tqdm(
            total=len(X),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit=unit,
            unit_scale=False,
            leave=False,
            disable=not show,
            delay=2,
        ) as steps:
            stats = train_epoch(train_net, t.opt, X, y, cfg, meta, t.device, t.generator, t.how, steps)
        if t.sched is not None:
            t.sched.step()
        if not main:
            continue
        val_scores, val_loss = predict(
            t.net, Xva, t.device, meta.task, batch_size=t.eval_batch, y=va.y, how=t.how, loss=cfg.loss
        )
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": stats["loss"],
            **_row_metrics("train", stats.get("scores"), stats.get("labels"), meta.task),
            "val_loss": val_loss,
            **_row_metrics("val", val_scores, va.y.numpy(), meta.task),
            "seconds": time.perf_counter() - te,
        }
        t.history.append(row)
        observe.epoch_done(t.folder.name, cfg, t.history)  # a live plot in a notebook, TensorBoard files (optional)
        score = row["val_auc"] if not math.isnan(row["val_auc"]) else -math.inf
        if score > t.best_score:  # strictly better: ties keep the earlier, simpler model
            t.best_score, t.best_epoch = score, epoch + 1
            best_weights = {k: v.detach().clone() for k, v in t.net.state_dict().items()}
        if epoch + 1 == cfg.epochs or time.perf_counter() - flushed >= every:
            save_checkpoints(t, epoch, best_weights)
            best_weights, flushed = None, time.perf_counter()
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_auc=f"{row['val_auc']:.3f}")
    bar.close()
    t.train_seconds = time.perf_counter() - t0


def save_checkpoints(t: Training, epoch: int, best_weights: dict | None) -> None:
    """best.pt (weights of the best epoch so far, when it changed since the last save), then last.pt, then run.json."""
    common = dict(config=t.cfg, meta=t.meta, history=t.history, best_score=t.best_score, best_epoch=t.best_epoch)
    if best_weights is not None:  # weights only: resuming uses last.pt
        checkpoint.save(t.folder / "best.pt", model=best_weights, epoch=t.best_epoch - 1, **common)
    checkpoint.save(
        t.folder / "last.pt",
        model=t.net,
        optimizer=t.opt,
        scheduler=t.sched,
        epoch=epoch,
        generator=t.generator,
        **common,
    )
    t.saved_epochs = epoch + 1
    write_progress(t)


def evaluate_best(t: Training) -> dict:
    """Final numbers from the best-validation-AUC weights, in eval mode, on every split; val/test scores saved."""
    best = t.folder / "best.pt"
    net, _, _ = checkpoint.load_model(best if best.exists() else t.folder / "last.pt", map_location=t.device)
    net.to(t.device)
    if t.how.channels_last:
        net = net.to(memory_format=memory_format(t.meta.dims))
    metrics = {}
    for split, s in t.ds.splits.items():
        probs, loss = predict(
            net, s.X, t.device, t.meta.task, batch_size=t.eval_batch, y=s.y, how=t.how, loss=t.cfg.loss
        )
        metrics[split] = {**evaluate(s.y.numpy(), probs, t.meta.task), "loss": loss, "n": len(s)}
        if split != "train":
            write_scores(t.folder / f"{split}_scores.csv", probs, s.y.numpy(), s.ids)
            write_evaluator_csv(
                t.folder,
                t.meta.name,
                t.meta.size,
                split,
                probs,
                metrics[split]["auc"],
                metrics[split]["acc"],
                t.folder.name,
            )
    return metrics


def final_record(t: Training, metrics: dict) -> dict:
    cfg, meta, hist = t.cfg, t.meta, pd.DataFrame(t.history)
    best = t.folder / "best.pt"
    return {
        "status": "complete",
        "config": asdict(cfg),
        "key": cfg.key(),
        "versions": versions(),
        "data": {
            "name": meta.name,
            "size": meta.size,
            "task": meta.task,
            "md5": meta.md5,
            "source": meta.source,
            **({"content_md5": meta.content_md5} if meta.content_md5 else {}),
            **{f"n_{k}": len(v) for k, v in t.ds.splits.items()},
        },
        "device": device_name(t.device),
        "precision": t.how.precision,
        "channels_last": t.how.channels_last,
        "allocator": allocator_state() if t.device.type == "cpu" else None,
        "world_size": distributed.world_size(),
        "started": t.started,
        "finished": _now(),
        "wall_time_s": round(t.train_seconds, 2),
        "seconds_per_epoch": round(float(hist["seconds"].mean()), 3) if len(hist) else None,
        "epochs_this_session": len(t.history) - t.start_epoch,
        "model": {
            "name": cfg.model,
            "parameters": count_parameters(t.net),
            "weights_mb": round(weights_bytes(t.net) / 2**20, 3),
            "checkpoint_mb": round(best.stat().st_size / 2**20, 3) if best.exists() else None,
        },
        "best_epoch": t.best_epoch,
        "best_val_auc": t.best_score,
        "metrics": metrics,
    }


def fit(
    cfg,
    out=None,
    dataset=None,
    reuse: bool = True,
    resume: bool = True,
    progress: bool | None = None,
    verbose: bool = True,
) -> Run:
    """Train `cfg`; a complete run with the same config under `out` is reused, an interrupted one resumed."""
    cfg.validate()
    main = distributed.is_main()  # under torchrun only rank 0 writes, prints and evaluates
    verbose = verbose and main
    folder = run_dir(cfg, out)
    done = Run(folder).complete
    if reuse and done:
        check_reuse(Run(folder), cfg)  # refused when it was made from other data
        if verbose:
            print(f"reusing {folder}")
        return Run(folder)
    resume = resume and not done  # a complete run's last.pt is its final epoch: resuming would train nothing
    distributed.check_launch()
    checkpoint_seconds()  # a bad $MEDLIB_CHECKPOINT_SECONDS is refused before any folder is made
    ds = dataset if dataset is not None else load_for_config(cfg)
    check_model_fits_data(cfg, ds.meta)
    lock = claim(folder) if main else None
    t = None
    try:
        if main and not (resume and (folder / "last.pt").exists()):
            discard_outputs(folder)  # starting over: no old checkpoint or scores may outlive this attempt
        t = set_up(cfg, ds, folder, resume, verbose)
        if main:
            write_progress(t)
        if verbose:
            announce(t)
        with out_of_memory_as_error(t):
            train_epochs(t, main, show=main and ((not quiet()) if progress is None else progress))
            if main:
                atomic.write_text(folder / "history.csv", pd.DataFrame(t.history).to_csv(index=False))
                record = final_record(t, evaluate_best(t))
                atomic.write_json(folder / "run.json", record)
                if verbose:
                    print(format_metrics(record))
        distributed.barrier(t.device)  # ranks > 0 wait for rank 0 to finish the run folder
    except BaseException as e:
        if main and t is not None:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            try:
                write_progress(t, status, reason=str(e) or type(e).__name__, finished=_now())
            except (OSError, MedlibError):
                pass  # e.g. the disk that failed the checkpoint is still full: the original error is what counts
        raise
    finally:
        if lock is not None:
            lock.release()
            if lock.created and t is None:
                remove_if_empty(folder)  # a run refused before it began leaves no empty folder behind
        if t is not None:
            distributed.cleanup(t.owned_group)
    return Run(folder)


OOM_MARKERS = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(e: BaseException) -> bool:
    """True for an allocator failure (torch's CPU and CUDA allocators raise RuntimeErrors that say so)."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(m in str(e).lower() for m in OOM_MARKERS))


@contextlib.contextmanager
def out_of_memory_as_error(t: Training):
    """An allocator failure mid-run becomes one MedlibError naming the batch sizes to lower (last.pt keeps the
    epochs done, so the run resumes with the smaller batch)."""
    try:
        yield
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        raise MedlibError(
            f"{t.meta.name} {t.cfg.model} ran out of memory on {t.device} (--batch-size "
            f"{t.cfg.batch_size}, evaluation batch {t.eval_batch}); pass a smaller --batch-size (and "
            "--lr with it) or --eval-batch-size, or free memory; `train` resumes from last.pt."
        ) from None


def format_metrics(record: dict) -> str:
    """The report's layout: one row per split, AUC and ACC."""
    m = record["metrics"]
    lines = [
        f"{record['data']['name']} {record['config']['model']} (best epoch {record['best_epoch']}, "
        f"{record['wall_time_s']:.1f}s on {record['device']})",
        f"{'split':<6} {'AUC':>6} {'ACC':>6}",
    ]
    lines += [f"{s:<6} {v['auc']:>6.3f} {v['acc']:>6.3f}" for s, v in m.items()]
    return "\n".join(lines)


def score_split(net, cfg, meta, X, y=None, device="cpu", precision: str | None = None) -> tuple:
    """P(class) (N, K) and mean loss of a trained net on samples X, with the precision and layout its config
    evaluates with on `device` (or `precision`, e.g. the one a record was made with), so numbers agree with fit's."""
    device = torch.device(device) if isinstance(device, str) else device
    how = step_settings(cfg, device, meta.dims)
    if precision:
        how = dataclasses.replace(how, precision=precision)
    net = net.to(device)
    if how.channels_last:
        net = net.to(memory_format=memory_format(meta.dims))
    batch = fitting_eval_batch(net, tuple(X.shape[1:]), device, cfg.eval_batch_size, len(X))
    return predict(net, X, device, meta.task, batch_size=batch, y=y, how=how, loss=cfg.loss)
