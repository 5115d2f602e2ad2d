"""The MyST AST of one page (mdast, as `jupyter-book build` serves it) as HTML: every text value
escaped, links resolved to the book's own files, headings with ids (MyST's, and GitHub's slug
where it differs, so links written for GitHub land too), notebook cells and their stored outputs
(outputs.py), Mermaid diagrams as source text that diagrams.js draws in the browser."""
from __future__ import annotations

import re
import sys
from html import escape

from outputs import mermaid_block, render_output
from sanitise import sanitise_html

INLINE = {"emphasis": "em", "strong": "strong", "delete": "del", "subscript": "sub",
          "superscript": "sup", "underline": "u", "smallcaps": "span"}
BLOCK = {"blockquote": "blockquote", "tableRow": "tr", "caption": "figcaption"}
SKIP = {"comment", "footnoteDefinition", "mystTarget"}
LONG_WORD = re.compile(r"[^\s&;]{20,}")
BREAK_AFTER = re.compile(r"([/._])(?=\w)")


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def plain_text(node: dict) -> str:
    if "value" in node and node.get("type") in ("text", "inlineCode"):
        return node["value"]
    return "".join(plain_text(c) for c in node.get("children", []) or [])


class PageRenderer:
    """One page's HTML. `href(url)` turns a MyST url into the book's link (None: not in the
    book); `after_title` is inserted after the page's first level-1 heading."""

    def __init__(self, href, fetch, after_title: str = ""):
        self.href, self.fetch, self.after_title = href, fetch, after_title
        self.ids: set[str] = set()
        self.diagrams = 0
        self.title_done = False
        self.in_cell = False
        self.problems: list[str] = []

    def render(self, node: dict) -> str:
        kind = node.get("type")
        method = getattr(self, f"node_{kind}", None)
        if method is not None:
            return method(node)
        if kind in SKIP:
            return ""
        if kind in INLINE:
            return f"<{INLINE[kind]}>{self.children(node)}</{INLINE[kind]}>"
        if kind in BLOCK:
            return f"<{BLOCK[kind]}>{self.children(node)}</{BLOCK[kind]}>"
        if "children" in node:
            return self.children(node)
        return escape(str(node.get("value", "")))

    def children(self, node: dict) -> str:
        return "".join(self.render(c) for c in node.get("children", []) or [])

    # blocks
    def node_block(self, node):
        if node.get("visibility") == "remove":
            return ""
        cls = "cell" if node.get("kind") == "notebook-code" else "block"
        return f'<div class="{cls}">{self.children(node)}</div>\n'

    def node_heading(self, node):
        depth = max(1, min(6, int(node.get("depth", 2))))
        ident = node.get("html_id") or node.get("identifier") or github_slug(plain_text(node))
        self.ids.add(ident)
        alias = github_slug(plain_text(node))
        extra = ""
        if alias and alias != ident and alias not in self.ids:
            self.ids.add(alias)
            extra = f'<span id="{escape(alias)}"></span>'
        html = (f'<h{depth} id="{escape(ident)}">{extra}{self.children(node)}'
                f' <a class="anchor" href="#{escape(ident)}" aria-hidden="true" tabindex="-1">#</a>'
                f'</h{depth}>\n')
        if depth == 1 and not self.title_done:
            self.title_done = True
            html += self.after_title
        return html

    def node_paragraph(self, node):
        return f"<p>{self.children(node)}</p>\n"

    def node_thematicBreak(self, node):
        return "<hr>\n"

    def node_break(self, node):
        return "<br>"

    def node_list(self, node):
        tag = "ol" if node.get("ordered") else "ul"
        start = node.get("start")
        attr = f' start="{int(start)}"' if tag == "ol" and start not in (None, 1) else ""
        return f"<{tag}{attr}>{self.children(node)}</{tag}>\n"

    def node_listItem(self, node):
        return f"<li>{self.children(node)}</li>\n"

    def node_table(self, node):
        rows = node.get("children", [])
        head = [r for r in rows if all(c.get("header") for c in r.get("children", []))][:1]
        body = [r for r in rows if r not in head]
        # A table wider than the page scrolls in its own box, which Tab reaches (named by its
        # column headers for screen readers).
        columns = ", ".join(plain_text(c) for c in head[0]["children"]) if head else ""
        html = (f'<div class="table-scroll" role="region" tabindex="0" '
                f'aria-label="{escape("Table: " + columns if columns else "Table")}"><table>')
        if head:
            html += f"<thead>{self.render(head[0])}</thead>"
        return (html + "<tbody>" + "".join(self.render(r) for r in body)
                + "</tbody></table></div>\n")

    def node_tableCell(self, node):
        self.in_cell = True
        inner = self.children(node)
        self.in_cell = False
        return f'<th scope="col">{inner}</th>' if node.get("header") else f"<td>{inner}</td>"

    def node_details(self, node):
        return f"<details>{self.children(node)}</details>\n"

    def node_summary(self, node):
        return f"<summary>{self.children(node)}</summary>"

    def node_admonition(self, node):
        kind = escape(str(node.get("kind", "note")))
        return f'<aside class="admonition {kind}">{self.children(node)}</aside>\n'

    def node_admonitionTitle(self, node):
        return f'<p class="admonition-title">{self.children(node)}</p>'

    def node_code(self, node):
        if node.get("visibility") == "remove":
            return ""
        lang = escape(str(node.get("lang") or ""))
        label = ' aria-label="Code"' if node.get("executable") else ""
        return (f'<pre class="code" data-lang="{lang}"{label}><code>{escape(node.get("value", ""))}'
                f"</code></pre>\n")

    def node_mermaid(self, node):
        self.diagrams += 1
        return mermaid_block(node.get("value", ""))

    def node_outputs(self, node):
        if node.get("visibility") == "remove" or not node.get("children"):
            return ""
        inner = "".join(self.render(c) for c in merge_streams(node["children"]))
        return f'<div class="outputs" role="group" aria-label="Output">{inner}</div>\n'

    def node_output(self, node):
        html, diagrams = render_output(node.get("jupyter_data") or {}, self.fetch)
        self.diagrams += diagrams
        return html

    def node_html(self, node):
        return sanitise_html(node.get("value", ""))

    def node_image(self, node):
        return f'<img src="{escape(node.get("url", ""))}" alt="{escape(node.get("alt", ""))}">'

    # inline
    def node_text(self, node):
        text = escape(node.get("value", ""))
        if self.in_cell:  # a long name (payment_intent.payment_failed) may wrap after . / _
            text = LONG_WORD.sub(lambda m: BREAK_AFTER.sub(r"\1<wbr>", m.group(0)), text)
        return text

    def node_inlineCode(self, node):
        return f"<code>{escape(node.get('value', ''))}</code>"

    def node_inlineMath(self, node):
        return f"<code>{escape(node.get('value', ''))}</code>"

    def node_math(self, node):
        return f"<pre>{escape(node.get('value', ''))}</pre>"

    def node_cite(self, node):
        return escape("@" + str(node.get("label", "")))

    def node_link(self, node):
        url = node.get("url", "")
        target = self.href(url)
        if target is None:
            self.problems.append(f"a link that leaves the book: {url}")
            return self.children(node)
        external = target.startswith(("http://", "https://", "mailto:"))
        rel = ' rel="noopener"' if external else ""
        return f'<a href="{escape(target)}"{rel}>{self.children(node)}</a>'

    def node_crossReference(self, node):
        url, ident = node.get("url", ""), node.get("html_id") or node.get("identifier", "")
        target = self.href(f"{url}#{ident}" if url else f"#{ident}")
        if target is None:
            self.problems.append(f"an unresolved reference: {url}#{ident}")
            return self.children(node)
        return f'<a href="{escape(target)}">{self.children(node)}</a>'

    def node_footnoteReference(self, node):
        return f"<sup>{escape(str(node.get('label', '')))}</sup>"


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Consecutive prints to the same stream as one block, as Jupyter shows them."""
    merged: list[dict] = []
    for node in outputs:
        data = node.get("jupyter_data") or {}
        last = merged[-1].get("jupyter_data", {}) if merged else {}
        if (data.get("output_type") == "stream" and last.get("output_type") == "stream"
                and data.get("name") == last.get("name")):
            text = "".join(last.get("text", "")) + "".join(data.get("text", ""))
            merged[-1] = {**merged[-1], "jupyter_data": {**last, "text": text}}
        else:
            merged.append(node)
    return merged


def warn(problems: list[str], page: str) -> None:
    for problem in problems:
        print(f"render.py: {page}: {problem}", file=sys.stderr)
