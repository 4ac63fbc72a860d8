"""What every notebook does first: pick the renderers, and say which profile, device and date made its outputs."""
from __future__ import annotations

import os
import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from ..data.files import ENV_ROOT, data_root
from ..engine.device import device_name, resolve_device
from ..errors import MedlibError
from ..version import __version__

# Set by `python -m medlib report`: figures then carry plotly.js inside the HTML, so the report works offline.
EMBED_ENV = "MEDLIB_EMBED_PLOTLYJS"


def plotly_renderer(embed: bool | None = None) -> str:
    """'notebook' (plotly.js embedded once per notebook, ~5 MB, works offline in the exported HTML) for reports;
    'plotly_mimetype' (figure JSON only; JupyterLab and VS Code draw it) for the notebooks kept in git."""
    if embed is None:
        embed = os.environ.get(EMBED_ENV, "") not in ("", "0")
    return "notebook" if embed else "plotly_mimetype"


def setup(embed_plotlyjs: bool | None = None) -> None:
    """matplotlib inline (also under MPLBACKEND=Agg), the plotly renderer, and roomier pandas tables."""
    import plotly.io as pio

    # tqdm.auto asks for ipywidgets in a notebook; the engine's bars are off under CI anyway
    warnings.filterwarnings("ignore", message="IProgress not found")

    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    if ip is not None:
        ip.run_line_magic("matplotlib", "inline")
    pio.renderers.default = plotly_renderer(embed_plotlyjs)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)


def provenance(profile: str) -> str:
    """One line for the top of a notebook: profile, device, date and versions that made these outputs."""
    dev = device_name(resolve_device("auto"))
    return (f"Outputs made with the **{profile}** profile on {dev}, {date.today().isoformat()} "
            f"(medlib {__version__}, torch {torch.__version__}).")


def start(profile: str):
    """A notebook's one preamble call: `setup()`, then the provenance banner (displayed as the cell's value)."""
    setup()
    return banner(profile)


def banner(profile: str):
    """`provenance` as rendered Markdown in a notebook."""
    from IPython.display import Markdown

    return Markdown(provenance(profile))


DATA_FOLDERS = ("medmnist", "m3dv")  # what a data root holds (either is enough)


def check_data_root(data: str = "") -> Path:
    """The data root a notebook reads (`data`, a notebook parameter, else $MEDLIB_DATA, else the project's data/),
    checked in its first cells: a wrong root is one line saying what to set, not a traceback at the last cell."""
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
    raise MedlibError(f"The data root {root} ({source}) {problem}; set {ENV_ROOT} (or DATA in the parameters cell) "
                      "to the folder that holds medmnist/ and m3dv/, then run the notebook again.")
