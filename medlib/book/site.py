"""What makes the HTML report a book: a chapter sidebar, each page's contents, prev/next, search, one plotly.js.

Everything stays on the disk beside the pages, so the report works from `file://` with no network: plotly.js is
written once as `plotly.min.js` (figures in the pages are plotly's JSON turned into a `Plotly.newPlot` call), the
search index is JSON wrapped in a script (`search-index.js`; browsers refuse `fetch` of a file from a `file://`
page, but load its scripts) and `medlib-site.js` is the dozen lines that search it.
"""

from __future__ import annotations

import copy
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import atomic

PLOTLY_MIME = "application/vnd.plotly.v1+json"
PLOTLY_JS, SITE_JS, INDEX_JS = "plotly.min.js", "medlib-site.js", "search-index.js"
SNIPPET = 1500  # characters of a section's text kept in the search index


@dataclass
class Chapter:
    href: str
    title: str
    ok: bool = True


def plotly_outputs_as_html(nb):
    """A copy of `nb` whose plotly figures (JSON outputs) are a div and a `Plotly.newPlot` call that uses the shared
    plotly.min.js; the static PNG beside a figure is dropped there, since the page draws the figure itself."""
    import plotly.io as pio

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            fig = out.get("data", {}).get(PLOTLY_MIME)
            if fig is not None:
                div = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False)
                out["data"] = {"text/html": div}
    return nb


_HEADING = re.compile(r'<h([1-3])\b[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")
_PROMPT = re.compile(r"\b(?:In|Out)\s*\[\d*\]:")  # the cells' prompts, noise in a search index


def _text(fragment: str) -> str:
    fragment = re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.S | re.I)
    text = html.unescape(_TAG.sub(" ", fragment)).replace("¶", " ")
    return " ".join(_PROMPT.sub(" ", text).split())


def headings(body: str) -> list[tuple[int, str, str]]:
    """(level, id, text) of the page's h1-h3, in order (nbconvert gives each Markdown heading an id)."""
    return [(int(level), hid, _text(inner)) for level, hid, inner in _HEADING.findall(body)]


def sections(body: str, href: str, page_title: str) -> list[dict]:
    """Search entries: one per heading, with the text up to the next heading (Markdown, tables, printed output)."""
    marks = list(_HEADING.finditer(body))
    entries = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(body)
        entries.append(
            {
                "page": page_title,
                "title": _text(m.group(3)),
                "href": f"{href}#{m.group(2)}",
                "text": _text(body[m.end() : end])[:SNIPPET],
            }
        )
    return entries


def toc(heads: list[tuple[int, str, str]]) -> str:
    """The page's contents: its h2 and h3 headings as nested links (the h1 is the page's title)."""
    items = [
        f'<li class="toc-h{level}"><a href="#{html.escape(hid)}">{html.escape(text)}</a></li>'
        for level, hid, text in heads
        if level > 1
    ]
    return f'<ul class="medlib-toc">{"".join(items)}</ul>' if items else ""


def sidebar(chapters: list[Chapter], current: int | None, page_toc: str = "") -> str:
    """The chapters, the current one marked and followed by its contents, and the search box."""
    rows = []
    for i, c in enumerate(chapters):
        mark = "" if c.ok else ' <b class="medlib-failed">failed</b>'
        here = ' class="current" aria-current="page"' if i == current else ""
        rows.append(
            f'<li{here}><a href="{html.escape(c.href)}">{html.escape(c.title)}</a>{mark}'
            f"{page_toc if i == current else ''}</li>"
        )
    return (
        f'<nav class="medlib-sidebar" aria-label="chapters"><a class="medlib-home" href="index.html">'
        f'medlib report</a><input id="medlib-search" type="search" placeholder="Search the report" '
        f'aria-label="search"><ol id="medlib-results"></ol><ol class="medlib-chapters">{"".join(rows)}</ol></nav>'
    )


def prev_next(chapters: list[Chapter], current: int) -> str:
    """Links to the previous and next chapters (the index before the first)."""
    prev = chapters[current - 1] if current > 0 else Chapter("index.html", "index")
    parts = [f'<a class="medlib-prev" rel="prev" href="{html.escape(prev.href)}">&larr; {html.escape(prev.title)}</a>']
    if current + 1 < len(chapters):
        nxt = chapters[current + 1]
        parts.append(
            f'<a class="medlib-next" rel="next" href="{html.escape(nxt.href)}">{html.escape(nxt.title)} &rarr;</a>'
        )
    return f'<nav class="medlib-prevnext">{"".join(parts)}</nav>'


CSS = """
nav.medlib-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 17rem; overflow-y: auto; padding: 1rem;
  box-sizing: border-box; border-right: 1px solid #ddd; background: #fafafa; font: 14px/1.4 system-ui, sans-serif;
  z-index: 10; }
body { padding-left: 17rem !important; }
@media (max-width: 60rem) { nav.medlib-sidebar { position: static; width: auto; border-right: 0; }
  body { padding-left: 0 !important; } }
nav.medlib-sidebar a { text-decoration: none; color: #0550ae; }
.medlib-home { font-weight: 600; display: block; margin-bottom: .5rem; }
#medlib-search { width: 100%; box-sizing: border-box; padding: .3rem; margin-bottom: .3rem; }
#medlib-results { padding-left: 1.2rem; margin: 0 0 .5rem; font-size: 13px; }
#medlib-results small { display: block; color: #555; }
ol.medlib-chapters { padding-left: 1.2rem; }
ol.medlib-chapters > li { margin: .3rem 0; }
ol.medlib-chapters > li.current > a { font-weight: 600; color: #000; }
ul.medlib-toc { padding-left: .8rem; list-style: none; font-size: 13px; }
ul.medlib-toc li.toc-h3 { padding-left: .8rem; }
.medlib-failed { color: #b00; }
nav.medlib-prevnext { display: flex; justify-content: space-between; padding: .8rem 1rem;
  font-family: system-ui, sans-serif; border-top: 1px solid #ddd; border-bottom: 1px solid #ddd; margin: .5rem 0; }
nav.medlib-prevnext a { text-decoration: none; }
"""

# the search: every word typed must occur in a section's title or text; the first 20 sections found are listed
SEARCH_JS = """(function () {
  var box = document.getElementById("medlib-search"), list = document.getElementById("medlib-results");
  if (!box || !window.MEDLIB_SEARCH) { return; }
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), found = [];
    list.textContent = "";
    if (!words.length) { return; }
    window.MEDLIB_SEARCH.forEach(function (e) {
      var hay = (e.title + " " + e.text).toLowerCase();
      if (found.length < 20 && words.every(function (w) { return hay.indexOf(w) >= 0; })) { found.push(e); }
    });
    found.forEach(function (e) {
      var li = document.createElement("li"), a = document.createElement("a"), small = document.createElement("small");
      a.href = e.href; a.textContent = e.title; small.textContent = e.page;
      li.appendChild(a); li.appendChild(small); list.appendChild(li);
    });
    if (!found.length) { list.textContent = "nothing found"; }
  });
})();
"""


def head_js() -> str:
    """The scripts every page loads from its folder: plotly.js (before the figures) and the search."""
    return (
        f'<script src="{PLOTLY_JS}"></script><script defer src="{INDEX_JS}"></script>'
        f'<script defer src="{SITE_JS}"></script>'
    )


def write_assets(out, entries: list[dict]) -> None:
    """plotly.min.js (once for every page), the search index and its script, atomically."""
    from plotly.offline import get_plotlyjs

    out = Path(out)
    atomic.write_text(out / PLOTLY_JS, get_plotlyjs())
    atomic.write_text(out / INDEX_JS, "window.MEDLIB_SEARCH = " + json.dumps(entries, ensure_ascii=False) + ";\n")
    atomic.write_text(out / "search-index.json", json.dumps(entries, ensure_ascii=False, indent=0) + "\n")
    atomic.write_text(out / SITE_JS, SEARCH_JS)
