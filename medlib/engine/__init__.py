"""Training and evaluation: fit(config) -> run folder (the `training` module); checkpoints; run records."""

from .checkpoint import load_model
from .loop import predict
from .runs import Run, load_run, run_dir
from .training import fit, format_metrics

__all__ = ["fit", "format_metrics", "predict", "load_model", "Run", "load_run", "run_dir"]
