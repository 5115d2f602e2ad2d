"""The notebooks' display helpers: JSON shown readably, side by side, exercise checks, links, and
the offline differences table. Anything shaped like a Stripe secret is masked before it is shown.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

from IPython.display import Markdown

from ..course.differences import differences_markdown

# Anything shaped like a Stripe secret is masked before it is displayed, whatever it is in.
_SECRET = re.compile(r"\b(sk|rk)_(test|live)_[0-9A-Za-z_]+|\bwhsec_[0-9A-Za-z_]+")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(0).split("_")[0] + "_...REDACTED", text)


# --- showing things ---------------------------------------------------------------------------

def to_json(obj: Any) -> str:
    return redact(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def show(obj: Any, keys: list[str] | None = None) -> None:
    """Print a JSON object readably (only `keys`, if given). Secrets are always masked."""
    if keys is not None and isinstance(obj, dict):
        obj = {k: obj.get(k) for k in keys}
    print(to_json(obj))


class _SideBySide:
    def __init__(self, left: Any, right: Any, titles: tuple[str, str]) -> None:
        self.left, self.right, self.titles = left, right, titles

    def _text(self, obj: Any) -> str:
        return obj if isinstance(obj, str) else to_json(obj)

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<td style="vertical-align:top;padding:0 1em"><b>{html.escape(t)}</b>'
            f'<pre style="text-align:left">{html.escape(self._text(o))}</pre></td>'
            for t, o in zip(self.titles, (self.left, self.right)))
        return f"<table><tr>{cells}</tr></table>"

    def __repr__(self) -> str:
        return "\n".join(f"--- {t} ---\n{self._text(o)}"
                         for t, o in zip(self.titles, (self.left, self.right)))


def side_by_side(left: Any, right: Any, titles: tuple[str, str] = ("left", "right")) -> _SideBySide:
    """Two JSON documents next to each other (e.g. the article's payload and the lab's)."""
    return _SideBySide(left, right, titles)


def check(condition: bool, success: str, hint: str) -> None:
    """An exercise check: prints a tick or a hint; never raises, so you can try again."""
    print(("✓ " + success) if condition else ("✗ Not yet: " + hint))


def show_differences() -> Markdown:
    """The table of what the offline stand-in does differently from real Stripe, straight from
    course/differences.py (each row names the code that absorbs the difference)."""
    return Markdown(differences_markdown())


# --- links -------------------------------------------------------------------------

class Link:
    """A clickable link in a notebook (text/plain shows the address, for plain terminals)."""

    def __init__(self, url: str, text: str | None = None) -> None:
        self.url, self.text = url, text or url

    def _repr_html_(self) -> str:
        return (f'<a href="{html.escape(self.url)}" target="_blank" rel="noopener">'
                f'{html.escape(self.text)}</a>')

    def __repr__(self) -> str:
        return self.url if self.text == self.url else f"{self.text}: {self.url}"


def link(url: str, text: str | None = None) -> Link:
    """Show `url` as a link that opens in a new tab: `link(lab.public_url("/dashboard"))`."""
    return Link(url, text)

