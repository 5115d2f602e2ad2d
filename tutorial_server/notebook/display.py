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
from ..trace.diagram import MERMAID_MIME, describe
from ..trace.diagram import _text as mermaid_text

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



# --- two orders' traces, drawn side by side -----------------------------------------------------

_IDS = re.compile(r"\b(pi|cs_test|cs_live|evt|ch|re|order|pm|tok|card)_[A-Za-z0-9]+\u2026?")


def _kind_of(m: dict) -> str | None:
    """What a message is, without its ids or timing; None for the client's reads (polls)."""
    kind = m["kind"]
    if kind in ("poll", "reconcile") or (kind == "request" and m.get("method") == "GET"):
        return None
    if kind in ("request", "stripe"):
        return f"{m.get('method')} {_IDS.sub('{id}', str(m.get('path')))}"
    if kind == "answer":
        if m.get("checkout_session"):
            return "answer: the order + the session's url"
        return "answer: the order + client_secret" if m.get("client_secret") else \
            f"answer: {m.get('status')}"
    if kind == "payment":
        where = " on Stripe's page" if m.get("where") == "stripes_page" else ""
        return f"the customer pays{where}" + (": ✗ declined" if m.get("failed") else "")
    if kind == "webhook":
        return f"webhook {m.get('event_type')}"
    return describe(m)[0]


class _TracesSideBySide:
    """Two traces as one Mermaid flowchart of two columns, one box per step with its messages
    (JupyterLab and the book draw it); its text for everything else."""

    def __init__(self, traces: tuple[Any, Any], titles: tuple[str, str]) -> None:
        self.traces, self.titles = traces, titles

    @staticmethod
    def _steps(trace: Any) -> list[tuple[int, list[str]]]:
        """Each step's kinds of message, ids left out, sorted: the same for every run."""
        steps: dict[int, set[str]] = {}
        for m in trace.data:
            label = _kind_of(m)
            if label:
                steps.setdefault(m["step"], set()).add(label)
        return [(step, sorted(labels)) for step, labels in sorted(steps.items())]

    def mermaid(self) -> str:
        lines = ["flowchart LR"]
        for column, (trace, title) in enumerate(zip(self.traces, self.titles)):
            lines += [f'    subgraph c{column}["{mermaid_text(title)}"]', "    direction TB"]
            nodes = [f"c{column}s{step}" for step, _ in self._steps(trace)]
            for node, (step, labels) in zip(nodes, self._steps(trace)):
                text = "<br/>".join(mermaid_text(label) for label in labels)
                lines.append(f'    {node}["step {step}<br/>{text}"]')
            lines += [f"    {a} --> {b}" for a, b in zip(nodes, nodes[1:])] + ["    end"]
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {MERMAID_MIME: self.mermaid(), "text/plain": repr(self)}

    def __repr__(self) -> str:
        return "\n".join(f"--- {title} ---\n" + "\n".join(
            f"step {step}: " + " | ".join(labels) for step, labels in self._steps(trace))
            for trace, title in zip(self.traces, self.titles))


def traces_side_by_side(left: Any, right: Any,
                        titles: tuple[str, str] = ("left", "right")) -> _TracesSideBySide:
    """Two orders' traces (lab.trace(...)) next to each other, step by step (notebook 09)."""
    return _TracesSideBySide((left, right), titles)
