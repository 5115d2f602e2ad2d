"""An order's trace (the messages writer.py stored) as the six-step sequence diagram, in Mermaid's
text: the participants of the notebooks' diagrams, each message numbered with its step, times
counted from the order's first message, refusals and failures drawn with a cross.

    mermaid(messages) -> "sequenceDiagram ..."
    TraceDiagram       what lab.trace(order_id) shows in a notebook
"""
from __future__ import annotations

import unicodedata

PARTICIPANTS = {"client": ("C", "Client (browser / app)"), "server": ("S", "Merchant server"),
                "stripe": ("St", "Stripe")}  # as in the notebooks' diagrams
MAX_MESSAGES_PER_ORDER = 300  # writer.py keeps at most this many


def _since(ms: float) -> str:
    if ms < 1000:
        return f"+{ms:.0f} ms"
    if ms < 60_000:
        return f"+{ms / 1000:.2f} s"
    return f"+{int(ms // 60_000)} min {ms % 60_000 / 1000:.0f} s"


# Mermaid's own syntax, replaced by characters that look alike: statement separators (;),
# comments and directives (%%, {}), entities (#), HTML (< > " and backticks), arrows (>). Not
# Mermaid's entity codes (#59;): its line wrapping splits a long word, and a code with it.
_LOOK_ALIKES = str.maketrans({";": "\uff1b", "#": "\uff03", "%": "\uff05", "<": "\u2039",
                              ">": "\u203a", '"': "\u201d", "`": "\u02cb", "{": "\uff5b",
                              "}": "\uff5d", "\\": "\uff3c"})
_SPACE_CATEGORIES = ("Cc", "Zl", "Zp", "Zs")   # line breaks, controls, no-break spaces ...
_DROPPED_CATEGORIES = ("Cf", "Cs", "Co")       # format (zero-width, bidi), surrogates, private


def _text(text: str) -> str:
    """A label safe inside one Mermaid message: every control and format character (Unicode
    Cc, Cf, Zl, Zp, and spaces other than " ", no-break spaces included) becomes a space or
    goes, and Mermaid's syntax is replaced by look-alikes. Whatever the text, it stays one
    statement on one line, and Mermaid reads it as the message's text only."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(" " if unicodedata.category(c) in _SPACE_CATEGORIES else
                       "" if unicodedata.category(c) in _DROPPED_CATEGORIES else c for c in text)
        # Mermaid's own stand-ins for entities while it parses ("fl°35¶ß"): never in a label.
        text = text.replace("\ufb02\u00b0", "fl\u00b0").replace("\u00b6\u00df", "\u00b6 \u00df")
    return text.translate(_LOOK_ALIKES)


def describe(m: dict) -> tuple[str, str | None]:
    """The message's label, and the label of the answer arrow drawn under it (or None)."""
    kind, status = m["kind"], m.get("status")
    key = f", Idempotency-Key {m['idempotency_key']}" if m.get("idempotency_key") else ""
    if kind == "request":
        if m.get("path", "").startswith("/api/orders") and m.get("method") == "POST" \
                and m.get("purpose") is None:
            what = f"POST /api/orders: {m.get('product')} × {m.get('quantity')}{key}"
            return what + (" (a retry: replayed)" if m.get("replayed") else ""), None
        return f"{m.get('method')} {m.get('path')}", None
    if kind == "priced":
        return f"price the order: {m.get('amount')} {m.get('currency')} (minor units), recorded", None
    if kind == "answer":
        if m.get("client_secret") is not None or m.get("payment_intent") and m.get("purpose") is None:
            replay = " (replayed)" if m.get("replayed") else ""
            return (f"{status}{replay}: the order + client_secret of "
                    f"{m.get('payment_intent') or 'no PaymentIntent'}"), None
        parts = [str(status)]
        if m.get("order_status"):
            parts.append(f"order {m['order_status']}")
        if m.get("intent_status"):
            parts.append(f"{m.get('payment_intent')} {m['intent_status']}")
        if m.get("error"):
            parts.append(f"✗ {m['error']}")
        return ", ".join(parts), None
    if kind == "stripe":
        label = f"{m.get('method')} {m.get('path')}{key}"
        if status == "unreachable":
            return label, f"✗ unreachable ({m.get('error')})"
        answer = [str(status)]
        if m.get("object_id") and m.get("object_id") not in m.get("path", ""):
            answer.append(str(m["object_id"]))
        if m.get("intent_status"):
            answer.append(m["intent_status"])
        if m.get("error"):
            answer.append(f"✗ {m['error']}")
        if m.get("duration_ms") is not None:
            answer.append(f"{m['duration_ms']:.0f} ms")
        return label, " ".join(answer)
    if kind == "payment":
        if m.get("failed"):
            return f"pay with a card: ✗ declined ({m.get('error')}) [reported by Stripe]", None
        return f"pay with a card: {m.get('intent_status')} [reported by Stripe]", None
    if kind == "webhook":
        head = f"webhook {m.get('event_type')} {m.get('event_id')}"
        outcome = m.get("outcome", "")
        if m.get("signature") == "rejected":
            return f"{head}: ✗ refused, {outcome.removeprefix('rejected: ')} ({status})", None
        mark = "✗ " if m.get("failed") else ""
        return f"{head}: signature ok, {mark}{outcome} ({status})", None
    if kind == "reconcile":
        mark = "✗ " if m.get("failed") else ""
        return (f"{m.get('by')}: {m.get('payment_intent')} is {m.get('intent_status')} "
                f"→ {mark}{m.get('outcome')}"), None
    if kind == "poll":
        times = f" × {m['count']}" if m.get("count", 1) > 1 else ""
        return f"{m.get('method')} {m.get('path')}{times} → {m.get('order_status') or status}", None
    return kind, None


def mermaid(messages: list[dict]) -> str:
    lines = ["sequenceDiagram"]
    lines += [f"    participant {short} as {name}" for short, name in PARTICIPANTS.values()]
    for m in messages:
        label, answer = describe(m)
        a, b = PARTICIPANTS[m["from"]][0], PARTICIPANTS[m["to"]][0]
        failed = m.get("failed")
        arrow = "-x" if failed and answer is None else ("-->>" if m["kind"] == "answer" else "->>")
        if m["kind"] == "answer" and failed:
            arrow = "--x"
        lines.append(f"    {a}{arrow}{b}: {m['step']}. {_text(label)} · {_since(m['t_ms'])}")
        if answer is not None:
            back = "--x" if failed else "-->>"
            lines.append(f"    {b}{back}{a}: {_text(answer)}")
    if len(messages) >= MAX_MESSAGES_PER_ORDER:
        lines.append(f"    Note over C,St: only the first {MAX_MESSAGES_PER_ORDER} messages are kept")
    return "\n".join(lines)


# --- in a notebook: lab.trace(order_id) ------------------------------------------------------------

MERMAID_MIME = "text/vnd.mermaid"  # JupyterLab 4 draws it (@jupyterlab/mermaid-extension)


class TraceDiagram:
    """An order's trace as a notebook shows it: a display object whose Mermaid output
    (text/vnd.mermaid) JupyterLab draws as the diagram, never a Markdown fence that a label
    could close; a plain console prints the diagram's text. `.data` holds the messages."""

    def __init__(self, order_id: str, body: dict, dashboard_url: str | None = None) -> None:
        self.order_id, self.data, self.mermaid = order_id, body["data"], body["mermaid"]
        self.dashboard_url = dashboard_url

    @classmethod
    def of(cls, lab, order) -> "TraceDiagram":
        order_id = order["id"] if isinstance(order, dict) else str(order)
        response = lab.get(f"/api/orders/{order_id}/trace")
        if response.status_code != 200:
            raise LookupError(response.json().get("error", {}).get("message", response.text))
        return cls(order_id, response.json(), lab.public_url(f"/dashboard#follow={order_id}"))

    @property
    def steps(self) -> list[int]:
        """The steps in the order they first appear."""
        seen: list[int] = []
        for m in self.data:
            if m["step"] not in seen:
                seen.append(m["step"])
        return seen

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The diagram for JupyterLab, its text for everything else. The title says whose trace
        it is; the order id, like every label, is cleaned first."""
        lines = self.mermaid.split("\n")
        title = f"    title Order {_text(self.order_id)}: {len(self.data)} messages"
        where = f"\n(also on the dashboard: {self.dashboard_url})" if self.dashboard_url else ""
        return {MERMAID_MIME: "\n".join([lines[0], title, *lines[1:]]),
                "text/plain": f"Order {self.order_id}: {len(self.data)} messages{where}\n"
                              f"{self.mermaid}"}

    def __repr__(self) -> str:
        return self.mermaid
