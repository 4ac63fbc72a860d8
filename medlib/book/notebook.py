"""What every notebook does first: set up the renderers, say which profile, device and date made its outputs, check
the data root, find (or fetch) the sets it trains on, and say what its training will cost on this machine before
it starts."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from ..data.files import ENV_ROOT, data_root, ensure_medmnist, find_medmnist
from ..engine.cost import estimate_seconds
from ..engine.device import device_name, resolve_device
from ..engine.hardware import resolve_precision, sgemm_gflops
from ..engine.runs import run_dir
from ..engine.splits import split_sizes
from ..errors import MedlibError
from ..experiments.reproduce import run_status
from ..version import __version__
from .live import turn_on

# Set by `python -m medlib report`: figures then carry plotly.js inside the HTML, so the report works offline.
EMBED_ENV = "MEDLIB_EMBED_PLOTLYJS"


def plotly_renderer(embed: bool | None = None) -> str | None:
    """The plotly renderer medlib picks, or None to leave plotly's own choice (JupyterLab, VS Code, Colab, Kaggle
    and $PLOTLY_RENDERER all detected by plotly itself). medlib picks only where it builds the outputs: 'notebook'
    (plotly.js embedded once per page, works offline in the exported HTML) for the report, 'plotly_mimetype'
    (figure JSON only) when re-executing the notebooks that git keeps. $PLOTLY_RENDERER always wins."""
    if os.environ.get("PLOTLY_RENDERER"):
        return None
    if embed is None:
        if os.environ.get(EMBED_ENV) is None:
            return None
        embed = os.environ[EMBED_ENV] not in ("", "0")
    return "notebook" if embed else "plotly_mimetype"


def setup(embed_plotlyjs: bool | None = None) -> None:
    """matplotlib inline (also under MPLBACKEND=Agg), a live loss/AUC plot while a cell trains (not under CI or
    MEDLIB_QUIET), the plotly renderer where medlib builds the outputs (else plotly's own choice), and roomier
    pandas tables."""
    import plotly.io as pio

    # tqdm.auto asks for ipywidgets in a notebook (the notebooks extra installs it); the engine's bars are off in CI
    warnings.filterwarnings("ignore", message="IProgress not found")

    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    if ip is not None:
        ip.run_line_magic("matplotlib", "inline")
        turn_on()  # the loss/AUC curves redrawn while a cell trains; off under CI and MEDLIB_QUIET
    renderer = plotly_renderer(embed_plotlyjs)
    if renderer:
        pio.renderers.default = renderer
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)


def provenance(profile: str) -> str:
    """One line for the top of a notebook: profile, device, date and versions that made these outputs."""
    dev = device_name(resolve_device("auto"))
    what = (
        "every run of the reports' settings this notebook has (the full profile)"
        if profile == "full"
        else "the runs a laptop finishes in minutes, each at its report's full settings (the quick profile, the "
        "default; `MEDLIB_PROFILE=full` trains every run)"
    )
    return (
        f"Outputs made on {dev}, {date.today().isoformat()} (medlib {__version__}, torch {torch.__version__}), "
        f"training {what}."
    )


def start(profile: str):
    """A notebook's one preamble call: `setup()`, then the provenance banner (displayed as the cell's value)."""
    setup()
    return banner(profile)


def banner(profile: str):
    """`provenance` as rendered Markdown in a notebook."""
    from IPython.display import Markdown

    return Markdown(provenance(profile))


class NotebookStop(MedlibError):
    """A notebook stops here on purpose: Jupyter shows the one line that says what to do, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of the traceback
        return [f"medlib: {self}"]


DATA_FOLDERS = ("medmnist", "m3dv")  # what a data root holds (either is enough)


def check_data_root(data: str = "", needed: bool = True) -> Path:
    """The data root a notebook reads (`data`, a notebook parameter, else $MEDLIB_DATA, else the project's data/),
    checked in its first cells: a wrong root is one line saying what to set (NotebookStop), not a traceback at the
    last cell. With `needed=False` (a notebook that reads no data) the line is printed and the notebook goes on."""
    if data:
        os.environ[ENV_ROOT] = str(data)  # the parameter wins, for every cell after this one
    root = data_root()
    source = "the DATA parameter" if data else f"${ENV_ROOT}" if os.environ.get(ENV_ROOT) else "the default"
    if not root.is_dir():
        problem = "does not exist"
    elif not any((root / d).is_dir() for d in DATA_FOLDERS):
        problem = f"holds neither {' nor '.join(f'{d}/' for d in DATA_FOLDERS)}"
    else:
        return root
    message = (
        f"The data root {root} ({source}) {problem}; set {ENV_ROOT} (or DATA in the parameters cell) "
        "to the folder that holds medmnist/ and m3dv/, then run the notebook again."
    )
    if not needed:
        print(f"{message.split(';')[0]} (this notebook reads no data, so it goes on).")
        return root
    raise NotebookStop(message)


def present(datasets: Iterable[str], size: int = 28) -> list[str]:
    """Those of `datasets` whose file is found (the data root, the flat layouts, ~/.medmnist; no download)."""
    return [d for d in datasets if find_medmnist(d, size).is_file()]


def usable(datasets: Iterable[str], download: bool = False, size: int = 28) -> list[str]:
    """Those of `datasets` found here, after downloading the missing ones when `download` (a failed download is
    reported in one line and skipped: a notebook goes on with what it has). Prints what it trains on."""
    datasets = list(datasets)
    found = present(datasets, size)
    if download and len(found) < len(datasets):
        for name in [d for d in datasets if d not in found]:
            try:
                ensure_medmnist(name, size)
            except MedlibError as e:
                print(e)
        found = present(datasets, size)
    absent = sorted(set(datasets) - set(found))
    print("training on:", ", ".join(found) or "nothing", "| absent:", ", ".join(absent) or "none")
    return found


# A notebook's whole training above this on a CPU stops before it starts, unless the notebook is told otherwise
CPU_STOP_HOURS = 2.0


def training_estimate(configs, runs=None, device="auto", gflops: float | None = None) -> dict:
    """What training `configs` costs here: {'runs', 'finished' (complete in `runs`, reused for free), 'seconds'
    (counted FLOPs at half the SGEMM rate `gflops`, measured once when None; None off CPU), 'device'}."""

    dev = resolve_device(device)
    total, finished = 0.0, 0
    rate = gflops or (sgemm_gflops() if dev.type == "cpu" else None)
    for cfg in configs:
        status, done = run_status(run_dir(cfg, runs))
        if status == "complete":
            finished += 1
            continue
        meta, n_train, n_eval = split_sizes(cfg, per_fold=False, check=False)
        left = cfg.replace(epochs=max(cfg.epochs - done, 1))
        sec = estimate_seconds(left, meta, n_train, n_eval, dev, resolve_precision(cfg.amp, dev), gflops=rate)
        total = None if sec is None or total is None else total + sec
    return {"runs": len(configs), "finished": finished, "seconds": total, "device": device_name(dev)}


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} CPU-hours" if seconds >= 3600 else f"{max(seconds / 60, 1):.0f} min"


def check_training_time(
    configs,
    runs=None,
    allow: bool = False,
    on_gpu: str = "",
    limit_hours: float = CPU_STOP_HOURS,
    device="auto",
    gflops: float | None = None,
) -> dict:
    """Before a notebook trains: print one line with what its training costs on this machine, and above
    `limit_hours` on a CPU stop (NotebookStop) with one line naming the ways on (a smaller profile, `on_gpu`, the
    command that runs the same plan on a GPU, or `allow`, the notebook's ALLOW_CPU_HOURS = True). Returns the
    estimate (`training_estimate`)."""
    est = training_estimate(configs, runs, device, gflops)
    todo = est["runs"] - est["finished"]
    head = f"Training here: {est['runs']} run(s), {est['finished']} already finished (reused)"
    if not todo:
        print(f"{head}; nothing to train.")
        return est
    if est["seconds"] is None:
        print(f"{head}; {todo} to train on {est['device']} (no time estimate off CPU).")
        return est
    cost = f"about {_duration(est['seconds'])} on {est['device']}"
    print(f"{head}; {todo} to train, {cost} (counted FLOPs at half this CPU's measured matrix-multiply rate).")
    if est["seconds"] > limit_hours * 3600 and not allow:
        gpu = f" run `{on_gpu}` on a GPU;" if on_gpu else ""
        raise NotebookStop(
            f"{todo} run(s) to train need {cost}, more than the {limit_hours:g} h a notebook trains on a CPU unasked. "
            f'Choose one: PROFILE = "quick" (minutes);{gpu} or ALLOW_CPU_HOURS = True in the parameters cell to '
            "train on this CPU anyway."
        )
    return est
