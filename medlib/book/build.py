"""`python -m medlib report`: execute every notebook under a profile and write a browsable, offline HTML report.

For each `notebooks/NN_*.ipynb` (in order) the notebook runs in a fresh `python3` kernel whose working
folder is `notebooks/` and whose environment has MEDLIB_PROFILE set; the executed copy and an HTML page
land in `out/`, with an `index.html`. The pages read as a book offline (`site`): a chapter sidebar with the
page's contents, prev/next links, a search box over every section, and one `plotly.min.js` beside them that
draws every 3D figure (the figures stay plotly JSON in the executed notebooks). Every file is written
atomically. A notebook that fails still gets its partial HTML (with the error), is marked failed in the index
and the sidebar, and the build goes on with the next one.

`in_place=True` instead re-executes the notebooks where they are (their outputs are what git keeps):
then plotly figures stay as JSON (no 5 MB of plotly.js in git), no HTML is written, and a notebook whose
execution fails is left as it was.
"""

from __future__ import annotations

import html
import importlib.util
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import atomic
from ..config import PROFILES, profile_name
from ..data.files import data_root
from ..errors import MedlibError
from . import site
from .notebook import EMBED_ENV, provenance
from .offline import offline_html

KERNEL = "python3"


@dataclass
class Result:
    name: str
    title: str
    ok: bool
    seconds: float
    error: str = ""
    html: str | None = None
    ipynb: str | None = None


# what executing and exporting the notebooks needs: the notebooks extra
NOTEBOOK_TOOLS = ("nbformat", "nbclient", "nbconvert", "jinja2", "latex2mathml", "ipykernel")


def require_notebook_tools(command: str = "medlib report") -> None:
    """One line naming the extra to install when the notebook tools are missing, instead of ModuleNotFoundError."""
    missing = [m for m in NOTEBOOK_TOOLS if importlib.util.find_spec(m) is None]
    if missing:
        raise MedlibError(
            f"`{command}` needs the notebooks extra ({', '.join(missing)} missing): "
            'pip install "medlib[notebooks]" (in a checkout: pip install -e ".[notebooks]").'
        )


def packaged_notebooks() -> Path:
    """The notebooks as installed: medlib/notebooks in a wheel, the project's notebooks/ in a checkout."""
    wheel = Path(__file__).resolve().parents[1] / "notebooks"
    return wheel if wheel.is_dir() else Path(__file__).resolve().parents[2] / "notebooks"


def notebooks_dir() -> Path:
    """The project's notebooks/ (beside the package in a checkout), else ./notebooks."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def copy_notebooks(dest, force: bool = False) -> list[Path]:
    """Copy the numbered notebooks and their README into `dest` (made if missing); refuses to overwrite a notebook
    there unless `force`, since it may hold the user's own edits."""
    src = packaged_notebooks()
    files = sorted(src.glob("[0-9][0-9]_*.ipynb")) + [p for p in [src / "README.md"] if p.exists()]
    if not files:
        raise MedlibError(f"No notebooks in {src}: this installation lacks them; reinstall medlib.")
    dest = Path(dest)
    clash = [p.name for p in files if (dest / p.name).exists()]
    if clash and not force:
        raise MedlibError(
            f"{dest} already holds {', '.join(clash)}; pass --force to overwrite them (edits in them are "
            "lost) or name another folder."
        )
    for p in files:
        atomic.write_text(dest / p.name, p.read_text(encoding="utf-8"))
    return [dest / p.name for p in files]


def cmd_notebooks(args) -> None:
    copied = copy_notebooks(args.dir, args.force)
    print(
        f"copied {len(copied)} files to {args.dir}; open them with `jupyter lab {args.dir}` (pip install "
        '"medlib[notebooks]" first), with MEDLIB_DATA set to your data root. Their "reproduction" parts read '
        "the run records committed in the repository's results/ (RESULTS in the parameters cell)."
    )


def find_notebooks(folder=None, only=None) -> list[Path]:
    """`NN_*.ipynb` in order; `only` keeps those whose number or name starts with one of the given strings."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    if not folder.is_dir():
        raise MedlibError(f"No notebooks folder at {folder}; run from the project root or pass --notebooks.")
    books = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [p for p in books if any(p.name.startswith(o) or p.stem == o for o in only)]
    if not books:
        raise MedlibError(f"No notebooks matching {only or 'NN_*.ipynb'} in {folder}.")
    return books


def title_of(nb) -> str:
    """The first Markdown heading of a notebook, else its name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def execute(path: Path, profile: str, timeout: int = 3600, embed_plotlyjs: bool = True):
    """Run one notebook in a fresh kernel (cwd: its folder). Returns (executed notebook, error text or '')."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    # MEDLIB_QUIET: no progress bars in the outputs
    env = {
        **os.environ,
        "MEDLIB_PROFILE": profile,
        "MEDLIB_QUIET": "1",
        EMBED_ENV: "1" if embed_plotlyjs else "0",
        # the kernel runs in notebooks/, so paths the user gave relative to here must become absolute
        "MEDLIB_DATA": str(data_root()),
    }
    if os.environ.get("MEDLIB_RUNS"):
        env["MEDLIB_RUNS"] = str(Path(os.environ["MEDLIB_RUNS"]).resolve())
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL, record_timing=False, resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        return nb, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    return nb, ""


def to_html(nb, title: str = "", index_href: str = "index.html", chapters=None, current: int | None = None) -> str:
    """Standalone HTML of an executed notebook (JupyterLab look; outputs and images inline; maths as MathML;
    nothing loaded from the network), titled `title`; in the report (`chapters`) with its navigation and the
    shared plotly.min.js, alone with a link back to `index_href` and plotly.js inline."""
    return offline_html(nb, title or title_of(nb), index_href, chapters, current)


def _index(results: list[Result], profile: str, started: str, chapters=None) -> str:
    ok, failed = "<span style=color:#080>ok</span>", "<b style=color:#b00>failed</b>"
    rows = "\n".join(
        f"<tr><td>{ok if r.ok else failed}</td>"
        f"<td><a href='{html.escape(r.html or '')}'>{html.escape(r.title or r.name)}</a></td>"
        f"<td><a href='{html.escape(r.ipynb or '')}'>{html.escape(r.name)}.ipynb</a></td>"
        f"<td style='text-align:right'>{r.seconds:.0f} s</td><td>{html.escape(r.error)}</td></tr>"
        for r in results
    )
    line = provenance(profile).replace("**", "")
    nav = site.sidebar(chapters, None) if chapters else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>medlib report ({profile})</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
{site.CSS + "body{padding-left:18.5rem!important}" if chapters else ""}</style>
{site.head_js() if chapters else ""}
</head><body>
{nav}
<h1>medlib: the two reports, reproduced and explained</h1>
<p>{html.escape(line)} Built {html.escape(started)}.</p>
<table><tr><th></th><th>notebook</th><th>executed copy</th><th>time</th><th>error</th></tr>
{rows}
</table>
<p>Report 1: hand-built ResNet-18/50 on ten MedMNIST sets. Report 2: a 3D DenseNet on M3DV lung nodules.
Every page works offline: images inline, one plotly.js and the search index beside the pages.</p>
</body></html>
"""


def build_report(
    profile: str = "quick",
    out="reports",
    notebooks=None,
    only=None,
    timeout: int = 3600,
    in_place: bool = False,
    verbose: bool = True,
) -> list[Result]:
    """Execute the notebooks with MEDLIB_PROFILE=profile; write executed copies, HTML pages and index.html to `out`."""
    require_notebook_tools()
    import nbformat

    if profile not in PROFILES:
        raise MedlibError(f"--profile {profile!r} is not one of {', '.join(PROFILES)}.")
    books = find_notebooks(notebooks, only)
    out = Path(out)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # the report's chapters, known before any runs, so every page links to every other (failures marked as found)
    chapters = [site.Chapter(f"{p.stem}.html", title_of(nbformat.read(p, as_version=4)) or p.stem) for p in books]
    results, executed = [], []
    for k, path in enumerate(books):
        t0 = time.perf_counter()
        if verbose:
            print(f"{path.name} ...", end=" ", flush=True)
        # figures stay plotly JSON in the outputs: the report's pages draw them with one shared plotly.min.js
        nb, error = execute(path, profile, timeout, embed_plotlyjs=False)
        r = Result(path.stem, title_of(nb), not error, time.perf_counter() - t0, error)
        if in_place:  # a failed execution is never written over the notebook git keeps
            if not error:
                atomic.write_text(path, nbformat.writes(nb) + "\n")
            r.ipynb = str(path)
        else:
            chapters[k].ok = r.ok
            atomic.write_text(out / f"{path.stem}.ipynb", nbformat.writes(nb) + "\n")
            page = to_html(nb, r.title or path.stem, chapters=chapters, current=k)
            atomic.write_text(out / f"{path.stem}.html", page)
            r.html, r.ipynb = f"{path.stem}.html", f"{path.stem}.ipynb"
            executed.append(nb)
        results.append(r)
        if verbose:
            print(f"{'ok' if r.ok else 'FAILED'} ({r.seconds:.0f} s){': ' + error if error else ''}", flush=True)
    if not in_place:
        entries = []
        for k, (nb, r) in enumerate(zip(executed, results)):
            page = out / f"{r.name}.html"
            if any(not c.ok for c in chapters[k + 1 :]):  # written before a later chapter failed: mark it there too
                atomic.write_text(page, to_html(nb, r.title or r.name, chapters=chapters, current=k))
            entries += site.sections(page.read_text(encoding="utf-8"), r.html, r.title or r.name)
        site.write_assets(out, entries)
        atomic.write_text(out / "index.html", _index(results, profile, started, chapters))
        if verbose:
            print(f"report: {out / 'index.html'}")
    return results


def cmd_report(args) -> None:
    results = build_report(
        args.profile or profile_name(), args.out, args.notebooks, args.only, args.timeout, args.in_place
    )
    failed = [r for r in results if not r.ok]
    if failed and args.in_place:
        raise MedlibError(
            f"{len(failed)} notebook(s) failed and were left as they were: "
            + "; ".join(f"{r.name} ({r.error})" for r in failed)
        )
    if failed:
        raise MedlibError(
            f"{len(failed)} notebook(s) failed: {', '.join(r.name for r in failed)}; see their pages "
            f"in {args.out} for the error."
        )


def add_command(sub) -> None:
    """`python -m medlib report [--profile quick|full] [--out reports] [--only 00 03] [--in-place]`, and
    `python -m medlib notebooks DIR`."""
    p = sub.add_parser("report", help="execute every notebook and write an offline HTML report with an index")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="quick (CPU, minutes) or full (the reports' settings); default $MEDLIB_PROFILE or quick",
    )
    p.add_argument("--out", default="reports", help="folder for the executed notebooks and HTML (default reports)")
    p.add_argument("--notebooks", default=None, help="folder of NN_*.ipynb (default the project's notebooks/)")
    p.add_argument("--only", nargs="+", default=None, metavar="NN", help="only these notebooks (numbers or names)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell (default 3600)")
    p.add_argument(
        "--in-place",
        action="store_true",
        help="re-execute the notebooks where they are (the outputs git keeps) instead of writing a report",
    )
    p.set_defaults(func=cmd_report)
    n = sub.add_parser("notebooks", help="copy the notebooks (installed with medlib) into a folder to open in Jupyter")
    n.add_argument("dir", help="folder to copy them into (made if missing)")
    n.add_argument("--force", action="store_true", help="overwrite notebooks of the same name there")
    n.set_defaults(func=cmd_notebooks)
