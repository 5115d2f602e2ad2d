"""Our MyST site template's renderer (template.yml: `build: render`), standard library only.

`jupyter-book build --html` serves the built site's JSON on CONTENT_CDN and runs this in the
template's folder; it writes the static book into BUILD_DIRECTORY: one HTML file per page
(index.html, then <slug>.html), book.css, diagrams.js and the vendored Mermaid library. No page
loads anything from another site. BOOK_META (written by book/build.py) says which pages are
chapters, their notebooks and launch links.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from layout import nav_html, page_html, prev_next, run_box
from mdast import PageRenderer, warn

HERE = Path(__file__).resolve().parent


def fetch(path: str) -> bytes:
    with urllib.request.urlopen(os.environ["CONTENT_CDN"] + path, timeout=60) as answer:
        return answer.read()


def make_href(files: dict[str, str], current: str):
    """MyST's urls (`/`, `/slug`, `/slug#id`, `#id`, external) as the book's relative links."""
    def href(url: str) -> str | None:
        if url.startswith(("http://", "https://", "mailto:")):
            return url
        if url.startswith("#"):
            return url
        parts = urlsplit(url)
        slug = parts.path.strip("/") or "index"
        if slug not in files:
            return None
        page = "" if files[slug] == current and parts.fragment else files[slug]
        return page + (f"#{parts.fragment}" if parts.fragment else "")
    return href


def main() -> None:
    out = Path(os.environ["BUILD_DIRECTORY"])
    meta = json.loads(Path(os.environ["BOOK_META"]).read_text(encoding="utf-8"))
    project = json.loads(fetch("/config.json"))["projects"][0]
    index = json.loads(fetch(f"/content/{project['index']}.json"))
    entries = [{"slug": project["index"], "file": "index.html",
                "title": index["frontmatter"].get("title", "Contents")}]
    for page in project["pages"]:
        if "slug" not in page:  # a part: its title only
            entries.append({"title": page["title"]})
        else:
            entries.append({"slug": page["slug"], "file": f"{page['slug']}.html",
                            "title": page["title"]})
    pages = [e for e in entries if "slug" in e]
    files = {e["slug"]: e["file"] for e in pages}
    out.mkdir(parents=True, exist_ok=True)
    problems = 0
    for number, entry in enumerate(pages):
        data = index if number == 0 else json.loads(fetch(f"/content/{entry['slug']}.json"))
        info = meta["pages"].get(data.get("location", ""), {})
        box = run_box(info["notebook"], info.get("launch")) if info.get("kind") == "chapter" else ""
        renderer = PageRenderer(make_href(files, entry["file"]), fetch, after_title=box)
        frontmatter = data.get("frontmatter", {})
        body = renderer.render(data["mdast"])
        title = frontmatter.get("title", entry["title"])
        if not frontmatter.get("content_includes_title"):
            body = f'<h1 id="page-title">{escape(title)}</h1>\n{box}{body}'
        elif not renderer.title_done:
            body = box + body
        html = page_html(
            book_title=meta["title"], title=entry["title"], body=body,
            nav=nav_html(entries, entry["file"]),
            pager=prev_next(pages[number - 1] if number else None,
                            pages[number + 1] if number + 1 < len(pages) else None),
            diagrams=renderer.diagrams > 0, key=bool(meta.get("key")))
        (out / entry["file"]).write_text(html, encoding="utf-8")
        warn(renderer.problems, entry["file"])
        problems += len(renderer.problems)
    shutil.copyfile(HERE / "book.css", out / "book.css")
    shutil.copyfile(HERE / "diagrams.js", out / "diagrams.js")
    (out / "vendor").mkdir(exist_ok=True)
    shutil.copyfile(meta["mermaid"], out / "vendor" / "mermaid.min.js")
    print(f"render.py: {len(pages)} pages into {out}")
    if problems:
        sys.exit(f"render.py: {problems} problems (above)")


if __name__ == "__main__":
    main()
