"""Build the course as a static book with Jupyter Book 2, offline.

    .venv/bin/python book/build.py          # the learners' book: build/book/index.html
    .venv/bin/python book/build.py --key    # the instructor's key, with solutions: build/book-key/
    .venv/bin/python book/build.py [--key] --out DIR    # into DIR (its sources in DIR-src/)

The chapters are notebooks/00-08 with their stored outputs (nothing is executed), then the
offline-differences appendix; the guides in docs/ are the second part. The sources are copied
into a staging folder (build/book-src/), their links to files outside the book rewritten
(book/links.py), and `jupyter-book build --html` runs there with our own site template
(book/theme/): Jupyter Book's default theme would be downloaded, ours is a small renderer in
this repository, so the build needs no network. The Mermaid library comes from `make client`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from links import rewrite_links
from theme.launch import launch_url, read_launch_config

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
MERMAID = ROOT / "client" / "dist" / "vendor" / "mermaid.min.js"
TITLE = "Stripe payments, step by step"
INDEX = "notebooks/README.md"
APPENDIX = "notebooks/offline_differences.md"
GUIDES = ["docs/learner.md", "docs/instructor.md", "docs/jupyterhub.md", "docs/security.md",
          "docs/api-and-cli.md", "docs/testing.md"]
# Prose MyST would misread: `@stripe/stripe-js` as a citation, "$0.50 ... $0.50" as maths.
CITATION = re.compile(r"(?:(?<=\s)|^)@(?=\w)")
DOLLAR = re.compile(r"(?<!\\)\$(?=\d)")
CODE_SPAN = re.compile(r"(`+).+?\1")


def chapters() -> list[str]:
    return [f"notebooks/{p.name}" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def solved_notebooks(folder: Path) -> Path:
    """The instructor's key (tools/exercise_copies.py key): each answer cell holds its solution."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "exercise_copies.py"), "key", str(folder)],
                   check=True, stdout=subprocess.DEVNULL)
    return folder


def markdown_for_book(text: str, source: str, in_book: set[str], config: dict) -> str:
    text = rewrite_links(text, source, in_book, ROOT, config["repository"], config["branch"])
    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        fenced = not fenced if line.lstrip().startswith(("```", "~~~")) else fenced
        out.append(line if fenced else _escape_prose(line))
    return "".join(out)


def _escape_prose(line: str) -> str:
    """`line` with @ and $ escaped outside its code spans."""
    pieces, last = [], 0
    for span in CODE_SPAN.finditer(line):
        pieces += [DOLLAR.sub(r"\\$", CITATION.sub(r"\\@", line[last:span.start()])), span.group(0)]
        last = span.end()
    pieces.append(DOLLAR.sub(r"\\$", CITATION.sub(r"\\@", line[last:])))
    return "".join(pieces)


def stage(staging: Path, key: bool, config: dict) -> dict:
    """Copy the book's sources into `staging`, ready for MyST; return what the renderer needs."""
    shutil.rmtree(staging, ignore_errors=True)
    notebooks = chapters()
    in_book = {INDEX, APPENDIX, *GUIDES, *notebooks}
    for source in (INDEX, APPENDIX, *GUIDES):
        target = staging / source
        target.parent.mkdir(parents=True, exist_ok=True)
        text = (ROOT / source).read_text(encoding="utf-8")
        target.write_text(markdown_for_book(text, source, in_book, config), encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        origin = solved_notebooks(Path(tmp)) if key else ROOT / "notebooks"
        for source in notebooks:
            nb = json.loads((origin / Path(source).name).read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    text = "".join(cell["source"])
                    cell["source"] = markdown_for_book(text, source, in_book, config)
            (staging / source).write_text(json.dumps(nb, indent=1, ensure_ascii=False),
                                          encoding="utf-8")
    toc = [{"file": INDEX},
           {"title": "The course", "children": [{"file": f} for f in (*notebooks, APPENDIX)]},
           {"title": "The guides", "children": [{"file": f} for f in GUIDES]}]
    title = TITLE + (" (instructor's key, with solutions)" if key else "")
    # JSON is YAML: myst.yml written with json.dumps needs no YAML library.
    myst = {"version": 1, "project": {"title": title, "toc": toc},
            "site": {"template": str(BOOK / "theme")}}
    (staging / "myst.yml").write_text(json.dumps(myst, indent=1) + "\n", encoding="utf-8")
    pages = {f"/{n}": {"kind": "chapter", "notebook": n,
                       "launch": launch_url(config["hub_url"], config["repository"],
                                            config["branch"], n)} for n in notebooks}
    pages.update({f"/{g}": {"kind": "guide"} for g in GUIDES})
    pages[f"/{APPENDIX}"] = {"kind": "appendix"}
    return {"title": title, "key": key, "mermaid": str(MERMAID), "pages": pages, **config}


def build(key: bool = False, out: Path | None = None) -> Path:
    """Build the book into `out` (build/book/ or build/book-key/) and return that folder."""
    if not MERMAID.exists():
        raise SystemExit(f"{MERMAID.relative_to(ROOT)} is missing: run `make client` first.")
    started = time.monotonic()
    name = "book-key" if key else "book"
    out = out or ROOT / "build" / name
    staging = out.parent / f"{out.name}-src"
    meta = stage(staging, key, read_launch_config(BOOK / "launch.ini"))
    (staging / "book-meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    env = {**os.environ, "BOOK_META": str(staging / "book-meta.json"),
           # render.py runs as `python3`: this interpreter's, first on PATH
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           # MyST serves the pages to render.py on loopback only
           "HOST": "127.0.0.1", "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "CI": "1",
           "DO_NOT_TRACK": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    run = subprocess.run([sys.executable, "-m", "jupyter_book", "build", "--html"], cwd=staging,
                         env=env, capture_output=True, text=True, timeout=600)
    html = staging / "_build" / "html"
    warnings = [line for line in run.stdout.splitlines() + run.stderr.splitlines()
                if ("⚠️" in line or "⛔️" in line or "Traceback" in line)
                and "implicit heading reference" not in line]  # GitHub-style links: fine here
    for line in warnings:
        print(line.strip())
    if run.returncode != 0 or not (html / "index.html").exists():
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
        raise SystemExit(f"jupyter-book build failed (exit {run.returncode})")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(html, out)
    pages = len(list(out.glob("*.html")))
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"Built the {'key' if key else 'book'}: {pages} pages in "
          f"{time.monotonic() - started:.1f} s: {shown}/index.html")
    return out


def main(args: list[str]) -> None:
    key = "--key" in args
    rest = [a for a in args if a != "--key"]
    if rest and (len(rest) != 2 or rest[0] != "--out"):
        raise SystemExit(__doc__)
    build(key=key, out=Path(rest[1]).resolve() if rest else None)


if __name__ == "__main__":
    main(sys.argv[1:])
