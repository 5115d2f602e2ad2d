"""The course as a book (`make book`, book/): built offline from the notebooks' stored outputs
and the guides, then read in Chromium. Built once per module: the learners' book with a sample
hub and repository (launch links, repository links), and the instructor's key with neither
(no launch link; files outside the book named as plain text).
Screenshots: test-artifacts/screenshots/book-*.png; axe results in test-artifacts/axe-results.json;
the build times in test-artifacts/book-build-time.txt.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tutorial_server.course.solutions import SOLUTIONS

from .axe import record, run_axe
from .book_site import (ROOT, SAMPLE_HUB, SAMPLE_REPOSITORY, broken_links, build_book,
                        read_pages, serve)
from .browsers import browser_page, screenshot
from .test_notebooks import SECRET

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACT = ROOT / "test-artifacts" / "book-build-time.txt"
GUIDES = ["learner", "instructor", "jupyterhub", "security", "api-and-cli", "testing"]


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """{'learner': folder, 'key': folder}, each built once, without network."""
    tmp = tmp_path_factory.mktemp("books")
    built, times = {}, []
    sample = {"hub_url": SAMPLE_HUB, "repository": SAMPLE_REPOSITORY, "branch": "main"}
    bare = {"hub_url": "", "repository": "", "branch": "main"}  # whatever book/launch.ini says
    for name, key, config in (("learner", False, sample), ("key", True, bare)):
        seconds, output, offline = build_book(tmp / name, key=key, **config)
        network = "no network (unshare -n)" if offline else "network present"
        times.append(f"book build ({name}): {seconds:.1f} s, {network}")
        print(f"\n{times[-1]}\n{output.strip()}")
        built[name] = (tmp / name, output, offline)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text("\n".join(times) + "\n")  # for people: pytest keeps prints to itself
    return built


def chapter_pages(folder: Path) -> dict[Path, str]:
    """Each notebook and the page of the book that holds it (found by its run box)."""
    found = {}
    for page in folder.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for notebook in NOTEBOOKS:
            if f"then open <code>notebooks/{notebook.name}</code> in" in text:  # its run box
                found[notebook] = page.name
    return found


def test_the_book_is_built_offline_with_every_chapter_and_guide(books):
    for name, (folder, output, offline) in books.items():
        assert (folder / "index.html").is_file()
        assert set(chapter_pages(folder)) == set(NOTEBOOKS), name
        assert {f"{g}.html" for g in GUIDES} <= {p.name for p in folder.glob("*.html")}
        assert (folder / "vendor" / "mermaid.min.js").is_file()
        # MyST's only warnings: GitHub-style heading anchors it does not know (the theme gives
        # each heading that anchor too; the link test below proves they land)
        warnings = [line for line in output.splitlines() if "⚠️" in line]
        assert all("No target for internal reference" in w
                   or "Cross reference target was not found" in w for w in warnings), warnings
    if not books["learner"][2]:
        pytest.skip("this machine cannot take the network away (unshare -n): built with it")


def test_no_page_refers_to_a_file_or_anchor_that_is_not_there(books):
    for name, (folder, _, _) in books.items():
        assert broken_links(folder) == [], name


def test_files_outside_the_book_become_repository_links_or_plain_text(books):
    learner = (books["learner"][0] / "learner.html").read_text(encoding="utf-8")
    repository = "https://github.com/example-school/stripe-payments-lab"
    assert f'href="{repository}/blob/main/tutorial_server/checkout.py"' in learner
    key = (books["key"][0] / "learner.html").read_text(encoding="utf-8")
    assert "tutorial_server/checkout.py" in key and "checkout.py\"" not in key
    for folder in (books["learner"][0], books["key"][0]):
        hrefs = [h for page in read_pages(folder).values() for h in page.hrefs]
        assert not [h for h in hrefs if h.split("#")[0].endswith((".md", ".ipynb", ".py"))
                    and not h.startswith("https://")]


def test_each_chapter_has_a_run_box_and_with_a_hub_an_nbgitpuller_launch_link(books):
    folder = books["learner"][0]
    for notebook, page in chapter_pages(folder).items():
        text = (folder / page).read_text(encoding="utf-8")
        assert "Run this chapter" in text and "<code>make lab</code>" in text
        assert "python -m tutorial_server.lab lab" in text
        launch = [h for h in read_pages(folder)[page].hrefs if h.startswith(SAMPLE_HUB)]
        assert len(launch) == 1, page
        url = urlsplit(launch[0])
        assert url.path == "/hub/user-redirect/git-pull"
        opens = f"lab/tree/stripe-payments-lab/notebooks/{notebook.name}"
        assert parse_qs(url.query) == {"repo": [SAMPLE_REPOSITORY], "branch": ["main"],
                                       "urlpath": [opens]}
        assert url.query.index("repo=") < url.query.index("branch=") < url.query.index("urlpath=")
    key = books["key"][0]
    assert not any('class="launch"' in p.read_text(encoding="utf-8") for p in key.glob("*.html"))


def test_no_file_of_the_built_books_holds_a_secret(books):
    for name, (folder, _, _) in books.items():
        files = [p for p in folder.rglob("*")
                 if p.is_file() and p.suffix in (".html", ".js", ".css", ".json")]
        assert len(files) > 17
        for path in files:
            found = SECRET.search(path.read_text(encoding="utf-8", errors="replace"))
            assert not found, f"{name}: {path.name}: {found.group(0)[:12]}..."


def test_the_learners_book_has_no_solution_and_the_key_has_each(books):
    learner = "".join(p.read_text(encoding="utf-8") for p in books["learner"][0].glob("*.html"))
    key = "".join(p.read_text(encoding="utf-8") for p in books["key"][0].glob("*.html"))
    assert "### BEGIN SOLUTION\n" not in learner and "### BEGIN SOLUTION\n" in key
    for number, solution in SOLUTIONS.items():
        assert escape(solution.rstrip()) in key, number
        assert escape(solution.rstrip()) not in learner, number
    pages = len(list(books["key"][0].glob("*.html")))
    assert pages >= 18  # the front page, 10 chapters, the appendix, 6 guides
    assert key.count('<meta name="robots" content="noindex, nofollow">') == pages
    assert "The instructor's key" in key and "robots" not in learner


def _stored_text(notebook: Path) -> str:
    """The first stream output the notebook stored, as the page shows it (first line)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                return "".join(output["text"]).strip().splitlines()[0]
    return ""


def _has_diagram(notebook: Path) -> bool:
    text = notebook.read_text(encoding="utf-8")
    return "```mermaid" in text or "text/vnd.mermaid" in text


def test_in_chromium_every_page_answers_its_links_land_its_diagrams_and_outputs_show(books,
                                                                                     browser):
    folder = books["learner"][0]
    chapters = {page: notebook for notebook, page in chapter_pages(folder).items()}
    links, ids = [], {}
    with serve(folder) as site, browser_page(browser, 1200, 900) as page:
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        for html in sorted(p.name for p in folder.glob("*.html")):
            answer = page.goto(f"{site}/{html}")
            assert answer.status == 200, html
            hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
            links += [(html, href) for href in hrefs]
            ids[f"/{html}"] = set(page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
            drawings = page.locator("pre.mermaid").count()
            if drawings:
                page.wait_for_selector("body[data-diagrams=drawn]", timeout=20_000)
                assert page.locator("pre.mermaid svg").count() == drawings, html
            if html in chapters:
                notebook = chapters[html]
                assert page.locator(".outputs").count() > 0, html
                assert _stored_text(notebook) in page.locator("main").inner_text(), html
                assert drawings > 0 or not _has_diagram(notebook), html
            assert page.problems == [], f"{html}: {page.problems}"
        # the trace diagram a cell printed (text/vnd.mermaid) is drawn too
        page.goto(f"{site}/{[p for p, n in chapters.items() if n.name.startswith('06')][0]}")
        page.wait_for_selector("body[data-diagrams=drawn]", timeout=20_000)
        assert page.locator(".outputs figure.diagram svg").count() >= 1
    assert requested and all(url.startswith(site) for url in requested), \
        [u for u in requested if not u.startswith(site)]
    # every link on the book's own origin lands on a page of the book, and on an id there
    for html, href in links:
        url = urlsplit(href)
        if f"{url.scheme}://{url.netloc}" == site:
            assert url.path in ids, f"{html}: {href}"
            assert not url.fragment or url.fragment in ids[url.path], f"{html}: {href}"


def test_axe_finds_nothing_serious_on_the_index_a_chapter_and_a_guide(books, browser):
    folder = books["learner"][0]
    chapter = [p for n, p in chapter_pages(folder).items() if n.name.startswith("06")][0]
    with serve(folder) as site, browser_page(browser, 1200, 900) as page:
        for name, html in (("index", "index.html"), ("chapter", chapter),
                           ("guide", "learner.html")):
            page.goto(f"{site}/{html}")
            if page.locator("pre.mermaid").count():
                page.wait_for_selector("body[data-diagrams=drawn]", timeout=20_000)
            screenshot(page, f"book-{name}")
            violations = run_axe(page)
            record(f"book {name} ({html})", violations)
            serious = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{html}: {serious}"
            assert page.problems == []
