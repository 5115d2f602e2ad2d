"""A notebook's stored outputs as HTML, the richest safe form first: a Mermaid diagram
(text/vnd.mermaid, drawn by diagrams.js), sanitised HTML, an image, then plain text. A widget
cannot run in a static page: a note says so."""
from __future__ import annotations

import base64
import re
from html import escape

from sanitise import sanitise_html

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WIDGET = "application/vnd.jupyter.widget-view+json"
IMAGES = ("image/png", "image/jpeg", "image/gif")


def mermaid_block(source: str) -> str:
    """A diagram diagrams.js draws from its source; the source stays readable under it."""
    return ('<figure class="diagram"><pre class="mermaid">' + escape(source) + "</pre>"
            '<details class="diagram-source"><summary>Diagram source (Mermaid)</summary>'
            '<pre class="code">' + escape(source) + "</pre></details></figure>\n")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _content(entry, fetch) -> str | bytes:
    """MyST keeps small outputs inline ({content}) and large ones as files ({path})."""
    if isinstance(entry, dict):
        if "content" in entry:
            return _text(entry["content"])
        if "path" in entry:
            return fetch(entry["path"])
        return ""
    return _text(entry)


def _pre(text: str, cls: str) -> str:
    return f'<pre class="output {cls}">{escape(ANSI.sub("", text))}</pre>'


def render_output(output: dict, fetch) -> tuple[str, int]:
    """(html, number of diagrams) for one Jupyter output."""
    kind = output.get("output_type")
    if kind == "stream":
        return _pre(_text(output.get("text", "")), f"stream {output.get('name', 'stdout')}"), 0
    if kind == "error":
        summary = f"{output.get('ename')}: {output.get('evalue')}"
        trace = "\n".join(output.get("traceback") or [summary])
        return _pre(trace, "error"), 0
    data = output.get("data") or {}
    if "text/vnd.mermaid" in data:
        return mermaid_block(_text(_content(data["text/vnd.mermaid"], fetch))), 1
    if WIDGET in data:  # its text form is only the widget's repr: say what it is instead
        return ('<p class="widget-fallback">Here the notebook shows an interactive widget; it '
                "works when you run the notebook in Jupyter.</p>"), 0
    if "text/html" in data:
        html = sanitise_html(_text(_content(data["text/html"], fetch)))
        return f'<div class="output html">{html}</div>', 0
    for mime in IMAGES:
        if mime in data:
            raw = _content(data[mime], fetch)
            b64 = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw.strip()
            alt = _text(_content(data.get("text/plain", ""), fetch)) or "an image the cell made"
            return f'<img class="output" src="data:{mime};base64,{b64}" alt="{escape(alt)}">', 0
    if "text/plain" in data:
        return _pre(_text(_content(data["text/plain"], fetch)), "plain"), 0
    return "", 0
