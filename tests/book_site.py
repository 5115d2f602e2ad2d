"""The built book for tests/test_book.py: building it (without network where this machine can
take the network away), serving its folder on 127.0.0.1, and reading its pages' links and ids."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "book" / "build.py"
SAMPLE_HUB = "https://hub.example.edu"
SAMPLE_REPOSITORY = "https://github.com/example-school/stripe-payments-lab.git"


def no_network_prefix() -> list[str]:
    """`unshare -n` (a network namespace with loopback only; as a user, `unshare -rn`) when this
    machine lets the tests make one; else nothing."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        return []
    for flags in (["-n"], ["-r", "-n"]):
        if subprocess.run([unshare, *flags, ip, "link", "set", "lo", "up"],
                          capture_output=True).returncode == 0:
            return [unshare, *flags, "sh", "-c", f'{ip} link set lo up && exec "$@"', "offline"]
    return []


def build_book(out: Path, key: bool = False, **config: str) -> tuple[float, str, bool]:
    """Build the book into `out` with launch settings `config` (hub_url, repository, branch);
    (seconds, what the build printed, whether it ran without network)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOK_")}
    env.update({f"BOOK_{k.upper()}": v for k, v in config.items()})
    prefix = no_network_prefix()
    started = time.monotonic()
    run = subprocess.run([*prefix, sys.executable, str(BUILD), *(["--key"] if key else []),
                          "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout + run.stderr
    return seconds, run.stdout + run.stderr, bool(prefix)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path):
    """The folder on http://127.0.0.1:<free port>, stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("script", "img", "link") and (attrs.get("src") or attrs.get("href")):
            self.sources.append(attrs.get("src") or attrs.get("href"))


def read_pages(folder: Path) -> dict[str, _Page]:
    pages = {}
    for path in sorted(folder.glob("*.html")):
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.name] = parser
    return pages


def broken_links(folder: Path) -> list[str]:
    """Every link or file reference in the book's pages that lands nowhere: a relative target
    that is not a file of the book, or an #anchor no element of its page has."""
    pages = read_pages(folder)
    broken = []
    for name, page in pages.items():
        for href in page.hrefs + page.sources:
            parts = urlsplit(href)
            if parts.scheme in ("http", "https", "mailto", "data"):
                continue
            target = parts.path or name
            if not (folder / target).is_file():
                broken.append(f"{name}: {href} (no such file)")
            elif parts.fragment and (target not in pages
                                     or parts.fragment not in pages[target].ids):
                broken.append(f"{name}: {href} (no such anchor)")
    return broken
