"""Chromium for the browser tests: Debian's chromium driven by Playwright from PyPI (never
`playwright install`), fresh pages that collect script errors, and screenshots for people to
look at (test-artifacts/screenshots/). The `browser` fixture is in conftest.py."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

# The flags keep it from calling home: this machine has no network but the package registries.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def browser_page(browser, width: int, height: int, console_error=lambda text: True):
    """A fresh page in its own context; `page.problems` collects uncaught script errors and the
    console errors `console_error` picks, for the test to assert on."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.problems = problems
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and console_error(m.text) else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    """The whole page as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
