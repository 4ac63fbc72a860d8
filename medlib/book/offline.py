"""A notebook as one HTML page that needs nothing from the network: maths as MathML, no CDN scripts.

nbconvert's `lab` template loads require.js, MathJax and mermaid from a CDN, and plotly's notebook renderer
adds a MathJax `<script src=...>` to every figure; offline, the maths then shows as raw TeX. Here the TeX
of Markdown cells is turned into MathML when the page is built (`latex2mathml`; browsers draw MathML
themselves), the CDN scripts are left out, and every page gets its notebook's title and the report's
navigation (`site`: chapters, contents, prev/next, search, one shared plotly.js).
"""

from __future__ import annotations

import copy
import html
import re

from . import site

# The lab template with its network-loading blocks emptied, a title, the report's navigation and its scripts.
TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{{ resources.medlib_head_js }}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
nav.medlib-nav { padding: .6em 1em; border-bottom: 1px solid #ddd; font-family: system-ui, sans-serif; }
nav.medlib-nav a { text-decoration: none; }
math[display="block"] { margin: .6em 0; font-size: 115%; }
math { font-size: 110%; }
.medlib-tex-error { color: #a00; }
{{ resources.medlib_css }}
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.medlib_top }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.medlib_bottom }}
</main>
</body>
{%- endblock body_footer -%}
"""
TOC_MARK = "<!--medlib-toc-->"

# <script src="http(s)://..."></script>, as plotly's renderer writes for MathJax
_REMOTE_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//[^>]*>\s*</script>""", re.I)


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML for one TeX formula; a formula latex2mathml cannot read stays visible as code, not lost."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 (latex2mathml raises many kinds; any of them means "show the TeX")
        return f'<code class="medlib-tex-error">{html.escape(tex)}</code>'


def _renderer_class():
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        """nbconvert's Markdown renderer, with maths as MathML instead of `$...$` left for MathJax."""

        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    return MathMLRenderer


def _exporter():
    # nbconvert and jinja2 are the notebooks extra: imported here so `python -m medlib train` needs neither
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    renderer_class = _renderer_class()

    class OfflineHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = renderer_class(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return OfflineHTMLExporter(
        template_name="lab",
        template_file="medlib_offline.html.j2",
        extra_loaders=[DictLoader({"medlib_offline.html.j2": TEMPLATE})],
    )


def strip_remote_scripts(nb):
    """A copy of `nb` whose HTML outputs load no script from the network (plotly's MathJax CDN tag)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                text = data["text/html"]
                text = "".join(text) if isinstance(text, list) else text
                data["text/html"] = _REMOTE_SCRIPT.sub("", text)
    return nb


def offline_html(nb, title: str = "", index_href: str = "index.html", chapters=None, current: int | None = None) -> str:
    """Standalone HTML of an executed notebook: its `title`, no network requests. A lone page links to `index_href`
    and carries plotly.js inline where it has a figure; a page of the report (`chapters`, a list of
    `site.Chapter`, this one at `current`) gets the chapter sidebar with its own contents, prev/next links, the
    search box, and the report's one shared plotly.min.js."""
    nb = site.plotly_outputs_as_html(strip_remote_scripts(nb))
    if title:
        nb.metadata["title"] = title
    nb.metadata.pop("widgets", None)  # widget state would pull the widget manager from a CDN
    if chapters is None:
        has_figure = any(
            "Plotly.newPlot" in str(o.get("data", {}).get("text/html", ""))
            for c in nb.cells
            for o in c.get("outputs", [])
        )
        head = f"<script>{_plotlyjs()}</script>" if has_figure else ""
        top = (
            f'<nav class="medlib-nav"><a href="{html.escape(index_href)}">&larr; medlib report index</a>'
            f" &middot; <strong>{html.escape(nb.metadata.get('title', ''))}</strong></nav>"
        )
        resources = {"medlib_head_js": head, "medlib_css": "", "medlib_top": top, "medlib_bottom": ""}
    else:
        resources = {
            "medlib_head_js": site.head_js(),
            "medlib_css": site.CSS,
            "medlib_top": site.sidebar(chapters, current, TOC_MARK) + site.prev_next(chapters, current),
            "medlib_bottom": site.prev_next(chapters, current),
        }
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    return body.replace(TOC_MARK, site.toc(site.headings(body)), 1)


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
