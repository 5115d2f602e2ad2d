"""The frame around each page: skip link, header, the contents (parts and their pages), the
page's own content in <main>, previous and next, and, on a chapter, the "Run this chapter" box."""
from __future__ import annotations

from html import escape


def run_box(notebook: str, launch: str | None) -> str:
    """How to run this chapter: `make lab`, the same without make, the notebook's path, and the
    class hub's launch link when the book was built with one (book/launch.ini)."""
    launch_html = ""
    if launch:
        launch_html = (f'<p><a class="launch" href="{escape(launch)}">Launch on your class '
                       "hub</a>: opens this notebook in JupyterLab on the hub, with the course "
                       "pulled into your home folder (nbgitpuller).</p>")
    return f"""<aside class="run" aria-labelledby="run-this-chapter">
<h2 id="run-this-chapter">Run this chapter</h2>
<p>In a clone of the course: <code>make lab</code>, then open <code>{escape(notebook)}</code> in
JupyterLab. Without make (Windows, or pip only): <code>python -m pip install .</code> in the
clone, then <code>python -m tutorial_server.lab lab</code>.</p>
{launch_html}</aside>
"""


def nav_html(entries: list[dict], current: str) -> str:
    """The contents: the front page, then each part with its pages."""
    items, part = [], None
    for entry in entries:
        if "file" not in entry:
            if part is not None:
                items.append("</ul></li>")
            part = entry["title"]
            items.append(f'<li><span class="part">{escape(part)}</span><ul>')
            continue
        here = ' aria-current="page"' if entry["file"] == current else ""
        items.append(f'<li><a href="{escape(entry["file"])}"{here}>'
                     f'{escape(entry["title"])}</a></li>')
    if part is not None:
        items.append("</ul></li>")
    return ('<nav class="toc" aria-labelledby="toc-title"><h2 id="toc-title">In this book</h2><ul>'
            + "".join(items) + "</ul></nav>")


def prev_next(previous: dict | None, following: dict | None) -> str:
    links = []
    if previous:
        links.append(f'<a rel="prev" href="{escape(previous["file"])}">← Previous: '
                     f'{escape(previous["title"])}</a>')
    if following:
        links.append(f'<a rel="next" href="{escape(following["file"])}">Next: '
                     f'{escape(following["title"])} →</a>')
    return ('<nav class="pager" aria-label="Previous and next page">' + " ".join(links) + "</nav>"
            if links else "")


def page_html(*, book_title: str, title: str, body: str, nav: str, pager: str,
              diagrams: bool, key: bool = False) -> str:
    """One page. The instructor's key says so on every page and asks search engines to stay out."""
    scripts = ('<script src="vendor/mermaid.min.js"></script>\n<script src="diagrams.js"></script>'
               if diagrams else "")
    note_html = ('<p class="book-note">The instructor\'s key: it holds the exercises\' solutions; '
                 "do not publish it to learners.</p>") if key else ""
    robots = '<meta name="robots" content="noindex, nofollow">\n' if key else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{robots}<title>{escape(title)} · {escape(book_title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="book.css">
</head>
<body>
<a class="skip" href="#content">Skip to the content</a>
<header class="site">
<a class="book-title" href="index.html">{escape(book_title)}</a>{note_html}
</header>
<div class="layout">
{nav}
<main id="content" tabindex="-1">
{body}
{pager}
</main>
</div>
<footer class="site"><p>Built from the course repository with Jupyter Book 2 (MyST) and this
course's own offline theme (<code>book/theme/</code>).</p></footer>
{scripts}
</body>
</html>
"""
