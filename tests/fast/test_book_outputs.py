"""How the book shows a notebook's stored outputs and a page's AST (book/theme/outputs.py,
mdast.py): each kind of output, escaped text, headings with GitHub's anchors too."""
from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

THEME = Path(__file__).resolve().parents[2] / "book" / "theme"
sys.path.insert(0, str(THEME))  # the theme's modules import each other as render.py runs them

from mdast import PageRenderer, github_slug  # noqa: E402
from outputs import render_output  # noqa: E402

pytestmark = pytest.mark.fast
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def no_fetch(path):
    raise AssertionError(f"nothing to fetch here: {path}")


def test_each_kind_of_output_in_its_richest_safe_form():
    stream, _ = render_output({"output_type": "stream", "name": "stderr",
                               "text": "<x> \x1b[31mred"}, no_fetch)
    assert stream == '<pre class="output stream stderr">&lt;x&gt; red</pre>'
    diagram, drawn = render_output({"output_type": "display_data", "data": {
        "text/vnd.mermaid": {"content": "sequenceDiagram\n A->>B: <hi>"},
        "text/plain": {"content": "the same as text"}}}, no_fetch)
    assert drawn == 1
    assert '<pre class="mermaid">sequenceDiagram\n A-&gt;&gt;B: &lt;hi&gt;</pre>' in diagram
    widget, _ = render_output({"output_type": "display_data", "data": {
        "application/vnd.jupyter.widget-view+json": {"content": {"model_id": "x"}},
        "text/plain": {"content": "VBox(...)"}}}, no_fetch)
    assert "run the notebook in Jupyter" in widget and "VBox" not in widget
    image, _ = render_output({"output_type": "display_data", "data": {
        "image/png": {"content": PNG}, "text/plain": {"content": "<Figure>"}}}, no_fetch)
    assert image == f'<img class="output" src="data:image/png;base64,{PNG}" alt="&lt;Figure&gt;">'
    html, _ = render_output({"output_type": "execute_result", "data": {
        "text/html": {"content": "<b>ok</b><script>x()</script>"}}}, no_fetch)
    assert html == '<div class="output html"><b>ok</b></div>'
    error, _ = render_output({"output_type": "error", "ename": "E", "evalue": "v",
                              "traceback": ["\x1b[0;31mValueError\x1b[0m: <bad>"]}, no_fetch)
    assert error == '<pre class="output error">ValueError: &lt;bad&gt;</pre>'


def test_a_large_output_is_fetched_from_the_content_server():
    image, _ = render_output({"output_type": "display_data", "data": {
        "image/png": {"path": "/big.png"}}}, lambda path: b"\x89PNG\r\n\x1a\n")
    assert f'src="data:image/png;base64,{PNG}"' in image


def test_headings_carry_myst_s_id_and_github_s_anchor_and_text_is_escaped():
    page = PageRenderer(lambda url: url, no_fetch, after_title="<aside>run</aside>")
    html = page.render({"type": "root", "children": [
        {"type": "heading", "depth": 1, "html_id": "id-3-d-secure",
         "children": [{"type": "text", "value": "3-D Secure <now>"}]},
        {"type": "paragraph", "children": [{"type": "text", "value": "a < b & c"}]}]})
    assert html.startswith('<h1 id="id-3-d-secure"><span id="3-d-secure-now"></span>'
                           "3-D Secure &lt;now&gt;")
    assert "</h1>\n<aside>run</aside><p>a &lt; b &amp; c</p>" in html
    slug = github_slug("See your own payment: an order's trace")
    assert slug == "see-your-own-payment-an-orders-trace"


def test_a_link_that_leaves_the_book_is_text_and_a_problem():
    page = PageRenderer(lambda url: None, no_fetch)
    html = page.render({"type": "link", "url": "/x.py",
                        "children": [{"type": "text", "value": "x"}]})
    assert html == "x" and page.problems == ["a link that leaves the book: /x.py"]


def test_a_table_has_column_headers_scrolls_in_its_box_and_long_names_may_wrap():
    cell = {"type": "tableCell",
            "children": [{"type": "text", "value": "payment_intent.payment_failed ok"}]}
    table = {"type": "table", "children": [
        {"type": "tableRow", "children": [{"type": "tableCell", "header": True,
                                           "children": [{"type": "text", "value": "event"}]}]},
        {"type": "tableRow", "children": [cell]}]}
    html = PageRenderer(lambda url: url, no_fetch).render(table)
    assert html.startswith('<div class="table-scroll" role="region" tabindex="0" '
                           'aria-label="Table: event"><table><thead><tr><th scope="col">event</th>')
    assert "<td>payment_<wbr>intent.<wbr>payment_<wbr>failed ok</td>" in html
