"""Training and evaluation: fit(config) -> run folder; checkpoints; run records."""
from .checkpoint import load_model
from .fit import fit, format_metrics
from .loop import predict
from .runs import Run, load_run, run_dir

__all__ = ["fit", "format_metrics", "predict", "load_model", "Run", "load_run", "run_dir"]
