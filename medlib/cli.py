"""`python -m medlib`: train, evaluate, info (and the 3D / report commands), errors printed in one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings

import pandas as pd

from . import submission
from .book import build as report_build
from .book import kernel
from .config import check_device
from .data.info import info_table
from .engine import fit, hardware
from .engine.checkpoint import check_compatible, load_model
from .engine.device import resolve_device
from .engine.distributed import is_main
from .engine.splits import load_for_config
from .engine.training import is_out_of_memory, score_split
from .errors import MedlibError, MedlibWarning
from .experiments import cv, reproduce, sweep
from .flags import add_config_flags, config_from_args
from .metrics import evaluate
from .report import studies
from .version import __version__

# every sub-command beyond train / evaluate / info lives beside the code it drives and registers itself
SUBCOMMANDS = (submission, sweep, cv, reproduce, studies, report_build, kernel)


def cmd_train(args) -> None:
    cfg = config_from_args(args)
    # --no-reuse trains a complete run again from scratch; --fresh also discards an interrupted run's last.pt
    run = fit(cfg, out=args.out, reuse=not (args.no_reuse or args.fresh), resume=not args.fresh)
    if is_main():  # under torchrun only rank 0 reports
        print(f"run folder: {run.dir}")


def cmd_evaluate(args) -> None:
    device = resolve_device(check_device(args.device))
    net, cfg, meta = load_model(args.checkpoint)
    if args.dataset:
        cfg = cfg.replace(dataset=args.dataset)
    try:  # the data the checkpoint's own config asks for: an error must name the checkpoint it came from
        ds = load_for_config(cfg.replace(max_eval=0, max_train=0), check=False)  # a one-class split prints AUC nan
    except MedlibError as e:
        raise MedlibError(f"Checkpoint {args.checkpoint} (trained on {cfg.dataset}): {e}") from None
    check_compatible(args.checkpoint, meta, ds.meta)
    if args.split not in ds.splits:
        raise MedlibError(
            f"--split {args.split} does not exist for {cfg.dataset}; choose one of {', '.join(ds.splits)}."
        )
    s = ds[args.split]
    # the precision and layout the run itself evaluated with on this device, so the numbers agree
    probs, loss = score_split(net, cfg, meta, s.X, s.y, device)
    m = evaluate(s.y.numpy(), probs, meta.task)
    print(f"{cfg.dataset} {args.split} (n={len(s)}): AUC {m['auc']:.3f}  ACC {m['acc']:.3f}  loss {loss:.4f}")


def cmd_info(args) -> None:
    df = info_table(check_md5=not args.no_md5)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    # the name it was called by: `medlib` (the console script) or `python -m medlib` (argparse would say __main__.py)
    prog = "python -m medlib" if sys.argv[0].endswith("__main__.py") else None
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--version", action="version", version=f"medlib {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one config; prints its train/val/test AUC and ACC")
    add_config_flags(t)
    t.add_argument("--out", default=None, help="runs folder (default $MEDLIB_RUNS or ./runs)")
    t.add_argument(
        "--no-reuse", action="store_true", help="train again from scratch even if this config's run is complete"
    )
    t.add_argument(
        "--fresh", action="store_true", help="start from scratch, discarding the folder's last.pt (e.g. a damaged one)"
    )
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a split")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--dataset", default=None, help="evaluate on another dataset of the same shape")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_evaluate)
    i = sub.add_parser("info", help="the 18 MedMNIST sets and M3DV: present under the data root? MD5 ok?")
    i.add_argument("--no-md5", action="store_true", help="skip MD5 checks")
    i.set_defaults(func=cmd_info)
    for module in SUBCOMMANDS:
        module.add_command(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, `docker stop` and SLURM send), handled like Ctrl-C: the run records why it stopped
    and releases its folder."""


def _terminate(signum, _frame):
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """medlib's own warnings as one line each; any other warning as Python prints it."""
    if issubclass(category, MedlibWarning):
        print(f"medlib: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


TRAINING_COMMANDS = ("train", "cv", "sweep", "reproduce")


def relaunch_under_tcmalloc(argv: list[str]) -> None:
    """A training command starts again with tcmalloc preloaded when it is installed but not loaded: an allocator
    must be in place before Python starts (engine.hardware says what it saves). MEDLIB_MALLOC=glibc opts out."""
    if not argv or argv[0] not in TRAINING_COMMANDS:
        return
    env = hardware.tcmalloc_relaunch_env(os.environ, hardware.find_tcmalloc())
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "medlib", *argv], env)


def main(argv=None) -> int:
    if argv is None:  # a process of its own (`python -m medlib`, the `medlib` script), not a call from Python
        try:
            relaunch_under_tcmalloc(sys.argv[1:])
        except MedlibError as e:
            print(f"medlib: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        warnings.simplefilter("default", MedlibWarning)
        warnings.showwarning = _show_warning  # catch_warnings puts the original back
        return _run(args)


def _run(args) -> int:
    try:
        args.func(args)
    except MedlibError as e:
        print(f"medlib: error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as e:  # evaluate / predict: an allocator failure is one line too
        if not is_out_of_memory(e):
            raise
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        print(
            f"medlib: error: out of memory ({why}); free memory (close other programs) or run it on a machine "
            "with more.",
            file=sys.stderr,
        )
        return 2
    except OSError as e:  # a file problem no check foresaw: still one line, not a traceback
        print(f"medlib: error: {e}; check that file (missing, unreadable or on a full disk?).", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        why = f"{e}" if isinstance(e, Terminated) else "interrupted"
        print(f"medlib: {why}; the last completed epoch is in last.pt and `train` resumes from it.", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    return 0
