"""The HTML report reads well offline: built from a tiny notebook, opened in headless Chromium.

The first tests check the page's text (no CDN script, maths as MathML, title, link to the index). The browser
test runs only where a Chromium is installed (Debian: `apt-get install chromium`): it loads the page through
the DevTools protocol, fails on any request that leaves the machine or any console error, checks that the
maths and the plotly figure were drawn, and saves a screenshot (kept under $MEDLIB_SCREENSHOTS if set).
"""

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medlib.book.build import build_report
from medlib.book.offline import offline_html, strip_remote_scripts, tex_to_mathml
from medlib.report.styled import number, style

TINY = [
    new_markdown_cell(
        "# A tiny page: maths, a table, a 3D figure\n\n"
        "Mixup trains on $\\tilde x = \\lambda x_i + (1-\\lambda) x_j$ with\n\n"
        "$$\\lambda \\sim \\mathrm{Beta}(\\alpha, \\alpha), \\quad \\alpha = 0.2$$"
    ),
    new_code_cell(
        "import numpy as np, pandas as pd\n"
        "from medlib.book import notebook\n"
        "from medlib.report import tables\n"
        "from medlib.report.nodule3d import nodule_figure\n"
        "notebook.setup()"
    ),
    new_code_cell(
        "tables.style(pd.DataFrame({'mixup_alpha': [0.0, 0.2], 'change %': [-16.2, 3.1],"
        " 's/epoch': [0.0, 14.1]}), 'tiny')"
    ),
    new_code_cell(
        "z, y, x = np.mgrid[:24, :24, :24]\n"
        "seg = (z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 < 36\n"
        "nodule_figure(np.where(seg, 200, 40).astype(np.uint8), seg, title='a ball', step_size=2)"
    ),
]


SECOND = [
    new_markdown_cell(
        "# A second page\n\n## Mixup once more\n\nThe word zanzibar is only here.\n\n### A third level\n\ntext"
    ),
    new_code_cell("print('hello')"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`build_report` on one tiny notebook: executed in a kernel, written as HTML beside an index."""
    root = tmp_path_factory.mktemp("report")
    books = root / "notebooks"
    books.mkdir()
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    nbformat.write(new_notebook(cells=TINY, metadata=meta), books / "01_tiny.ipynb")
    nbformat.write(new_notebook(cells=SECOND, metadata=meta), books / "02_second.ipynb")
    results = build_report("quick", root / "reports", notebooks=books, timeout=300, verbose=False)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    return root / "reports"


def test_page_text_needs_no_network(report):
    page = (report / "01_tiny.html").read_text()
    remote = re.findall(
        r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"' >]+)""", page
    )
    assert remote == []
    assert not re.search(r"<script[^>]*\bsrc=[^>]*(require|mathjax|mermaid)", page, re.I)
    assert re.search(r"<title>A tiny page: maths, a table, a 3D figure</title>", page)
    assert 'class="medlib-home" href="index.html"' in page and 'href="02_second.html" rel="next"' in page
    assert '<script src="plotly.min.js"></script>' in page and len(page) < 1_000_000  # plotly.js is not in the page
    assert page.count("<math") == 2 and "\\lambda" not in page  # TeX became MathML
    assert ">-16.2<" in page and ">0.2<" in page and "0.200000" not in page and "-16.200" not in page
    assert "Plotly.newPlot" in page


def test_report_is_a_book_with_one_plotly_js(report):
    assert sorted(p.name for p in report.iterdir()) == [
        "01_tiny.html",
        "01_tiny.ipynb",
        "02_second.html",
        "02_second.ipynb",
        "index.html",
        "medlib-site.js",
        "plotly.min.js",
        "search-index.js",
        "search-index.json",
    ]
    assert (report / "plotly.min.js").stat().st_size > 3e6
    second = (report / "02_second.html").read_text()
    assert 'href="01_tiny.html" rel="prev"' in second and 'rel="next"' not in second  # (nbconvert sorts attributes)
    # the sidebar lists both chapters, the current one with its contents (h2 and h3, not the h1 title)
    assert re.search(
        r'<li aria-current="page" class="current"><a href="02_second.html">A second page</a>'
        r'<ul class="medlib-toc"><li class="toc-h2"><a href="#Mixup-once-more">Mixup once more</a></li>'
        r'<li class="toc-h3"><a href="#A-third-level">A third level</a></li></ul>',
        second,
    )
    assert '<a href="01_tiny.html">A tiny page' in second
    entries = json.loads((report / "search-index.json").read_text())
    hit = [e for e in entries if "zanzibar" in e["text"]]
    assert [(e["href"], e["page"]) for e in hit] == [("02_second.html#Mixup-once-more", "A second page")]
    assert "¶" not in json.dumps(entries, ensure_ascii=False)
    index = (report / "index.html").read_text()
    assert "medlib-sidebar" in index and "search-index.js" in index


def test_a_lone_page_carries_its_plotly_js():
    import plotly.graph_objects as go

    nb = new_notebook(cells=[new_code_cell("")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.plotly.v1+json": go.Figure(go.Scatter(y=[1, 2])).to_plotly_json(),
                "image/png": "iVBORw0KGgo=",
            },
        )
    ]
    page = offline_html(nb, "t")
    assert "Plotly.newPlot" in page and "plotly.min.js" not in page and len(page) > 3e6
    assert "iVBORw0KGgo=" not in page  # the page draws the figure, so the still beside it is left out


def test_math_that_cannot_be_read_stays_visible():
    assert tex_to_mathml(r"\frac{a}{b}").startswith("<math")
    bad = tex_to_mathml(r"\frac{a}{")
    assert "medlib-tex-error" in bad or bad.startswith("<math")


def test_plotly_mathjax_tag_is_dropped_from_outputs():
    nb = new_notebook(cells=[new_code_cell("")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": '<div><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/'
                'tex-svg.min.js"></script><script>var a = 1;</script></div>'
            },
        )
    ]
    html = strip_remote_scripts(nb).cells[0].outputs[0]["data"]["text/html"]
    assert "cdnjs" not in html and "var a = 1" in html
    assert "cdnjs" not in offline_html(nb, "t")


@pytest.mark.parametrize(
    "value,text",
    [
        (0.2, "0.2"),
        (-16.2, "-16.2"),
        (0.0, "0"),
        (0.87654, "0.877"),
        (0.000123, "0.000123"),
        (15.0, "15"),
        (1234.5678, "1234.568"),
        (float("nan"), "–"),
    ],
)
def test_numbers_read_as_people_write_them(value, text):
    assert number(value) == text


def test_styled_tables_drop_pandas_six_decimals():
    html = style(pd.DataFrame({"a": [0.0, 0.2], "b": [np.float32(3.1), 14.0], "c": ["x", "y"]}), "t").to_html()
    assert re.findall(r'class="data row\d col\d" >([^<]*)<', html) == ["0", "3.1", "x", "0.2", "14", "y"]


# ---------------------------------------------------------------- the browser


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class DevTools:
    """Just enough of the Chrome DevTools protocol: send a command, collect the events that arrive."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.events, self._id = [], 0

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > end:
                raise TimeoutError(method)
            self.events.append(json.loads(self.ws.recv()))

    def settle(self, seconds: float) -> None:
        """Keep collecting events for a while (scripts that run after the load event)."""
        self.ws.settimeout(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # noqa: BLE001 (a read timeout: nothing arrived)
                pass
        self.ws.settimeout(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client is in the test extra")
    profile = tmp_path_factory.mktemp("chromium-profile")
    # no traffic of Chromium's own (updates, sync, field trials), so any request seen comes from the page
    proc = subprocess.Popen(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file, end = profile / "DevToolsActivePort", time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > end or proc.poll() is not None:
            proc.kill()
            pytest.fail("Chromium did not open its DevTools port")
        time.sleep(0.2)
    port = int(port_file.read_text().split()[0])
    yield port
    proc.terminate()
    proc.wait(timeout=30)


def _open(port: int, path: Path, shot: Path):
    """Load `path` in a new tab; return (DevTools session, external requests, console errors)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    target = json.loads(urllib.request.urlopen(req, timeout=30).read())
    dt = DevTools(target["webSocketDebuggerUrl"])
    for domain in ("Network", "Runtime", "Log", "Page"):
        dt.send(f"{domain}.enable")
    dt.send("Page.navigate", url=path.resolve().as_uri())
    dt.wait_for("Page.loadEventFired", timeout=60)
    dt.settle(3.0)  # plotly draws after load
    shot.write_bytes(base64.b64decode(dt.send("Page.captureScreenshot", format="png")["data"]))
    urls = [e["params"]["request"]["url"] for e in dt.events if e.get("method") == "Network.requestWillBeSent"]
    external = [u for u in urls if not u.startswith(("file:", "data:", "blob:", "about:"))]
    errors = [
        e["params"]
        for e in dt.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    return dt, external, errors


def _js(dt: DevTools, expr: str):
    return dt.send("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")


def test_page_in_chromium_is_offline_clean_and_drawn(browser, report, tmp_path):
    shots = Path(os.environ.get("MEDLIB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    dt, external, errors = _open(browser, report / "01_tiny.html", shots / "01_tiny.png")
    assert external == [] and errors == []
    assert _js(dt, "document.title") == "A tiny page: maths, a table, a 3D figure"
    # MathML laid out by the browser: the block formula has a real width and height, the TeX is gone
    box = _js(
        dt,
        "(() => { const r = document.querySelector('math[display=block]').getBoundingClientRect();"
        " return [r.width, r.height]; })()",
    )
    assert box[0] > 50 and box[1] > 10
    assert "\\lambda" not in _js(dt, "document.body.innerText")
    assert _js(dt, "document.querySelectorAll('.js-plotly-plot').length") == 1  # the shared plotly.js drew it
    # the slice slider's steps animate the plane through the figure's frames, no kernel: step 3 puts it at slice 6
    moved = dt.send(
        "Runtime.evaluate",
        awaitPromise=True,
        returnByValue=True,
        expression=(
            "(async () => { const gd = document.querySelector('.js-plotly-plot'), st = gd.layout.sliders[0].steps[3];"
            " await Plotly.animate(gd, st.args[0], st.args[1]);"
            " const p = gd._fullData[gd._transitionData._frames[0].traces[0]];"  # what is drawn (typed arrays decoded)
            " return [st.label, Number(p.x[0][0]), p.surfacecolor.length]; })()"
        ),
    )["result"].get("value")
    assert moved == ["6", 6, 24]
    assert _js(dt, "document.querySelector('nav a').getAttribute('href')") == "index.html"
    assert (shots / "01_tiny.png").stat().st_size > 20_000
    # the sidebar stands beside the notebook, not over it
    side, main = _js(
        dt,
        "(() => { const s = document.querySelector('nav.medlib-sidebar').getBoundingClientRect(),"
        " m = document.querySelector('.jp-Cell').getBoundingClientRect();"
        " return [s.right, m.left]; })()",
    )
    assert 0 < side <= main
    # search: typing finds the section on the other page, as a link
    _js(
        dt,
        "(() => { const b = document.getElementById('medlib-search'); b.value = 'ZANZIBAR';"
        " b.dispatchEvent(new Event('input')); })()",
    )
    assert _js(dt, "[...document.querySelectorAll('#medlib-results a')].map(a => a.getAttribute('href'))") == [
        "02_second.html#Mixup-once-more"
    ]
    shot = dt.send("Page.captureScreenshot", format="png")["data"]
    (shots / "01_tiny_search.png").write_bytes(base64.b64decode(shot))
    _js(dt, "document.querySelector('a[rel=next]').click()")
    dt.settle(2.0)
    assert _js(dt, "document.title") == "A second page"
    assert [
        e
        for e in dt.events
        if e.get("method") == "Network.requestWillBeSent"
        and not e["params"]["request"]["url"].startswith(("file:", "data:", "blob:", "about:"))
    ] == []

    dt, external, errors = _open(browser, report / "index.html", shots / "index.png")
    assert external == [] and errors == []
    assert _js(dt, "[...document.querySelectorAll('table a')].map(a => a.getAttribute('href'))")[:2] == [
        "01_tiny.html",
        "01_tiny.ipynb",
    ]
