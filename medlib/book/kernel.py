"""`python -m medlib kernel`: a Jupyter kernel that starts with tcmalloc preloaded, so a notebook trains in the
memory the command line does (DenseNet-3D at Report 2's batch 30: 1.97 GiB instead of glibc's 3.56)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import atomic
from ..engine.hardware import TCMALLOC_ENV, find_tcmalloc
from ..errors import MedlibError

NAME = "medlib"
INSTALL_HINT = "conda install -c conda-forge gperftools, or on Debian/Ubuntu apt install libtcmalloc-minimal4"


def kernel_spec(library: str, python: str = sys.executable) -> dict:
    """Jupyter's kernel.json for this Python with `library` preloaded."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (medlib, tcmalloc)",
        "language": "python",
        "env": {"LD_PRELOAD": library, **TCMALLOC_ENV},
        "metadata": {"debugger": True},
    }


def install(kernels_dir: str | Path | None = None, library: str | None = None) -> Path:
    """Write kernels_dir/medlib/kernel.json (default: the user's Jupyter data folder); returns its path."""
    library = library or find_tcmalloc()
    if not library:
        raise MedlibError(f"No tcmalloc library found to preload: install it ({INSTALL_HINT}) and run this again.")
    if kernels_dir is None:
        from jupyter_core.paths import jupyter_data_dir

        kernels_dir = Path(jupyter_data_dir()) / "kernels"
    path = Path(kernels_dir) / NAME / "kernel.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, kernel_spec(library))
    return path


def cmd_kernel(args) -> None:
    path = install(args.kernels_dir)
    print(f"{path}: in JupyterLab choose the kernel 'Python 3 (medlib, tcmalloc)' (Kernel > Change Kernel)")


def add_command(sub) -> None:
    p = sub.add_parser("kernel", help="install a Jupyter kernel that preloads tcmalloc (less memory when training)")
    p.add_argument("--kernels-dir", default=None, help="folder of kernel specs (default: your Jupyter data folder)")
    p.set_defaults(func=cmd_kernel)
