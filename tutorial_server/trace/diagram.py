"""An order's trace (the messages writer.py stored) as the six-step sequence diagram, in Mermaid's
text: the participants of the notebooks' diagrams, each message numbered with its step, times
counted from the order's first message, refusals and failures drawn with a cross.

    mermaid(messages) -> "sequenceDiagram ..."
    condensed(messages) -> the same, one arrow per step with counts (for a long trace)
    TraceDiagram       what lab.trace(order_id) shows in a notebook
"""
from __future__ import annotations

import unicodedata
from collections import Counter

PARTICIPANTS = {"client": ("C", "Client (browser / app)"), "server": ("S", "Merchant server"),
                "stripe": ("St", "Stripe")}  # as in the notebooks' diagrams
# Drawn only when the trace holds a delivery the lab's own code forged (messages.py).
FORGER = {"notebook": ("N", "You (signing with the lab secret)")}
MAX_MESSAGES_PER_ORDER = 300  # writer.py keeps at most this many
CONDENSE_OVER = 15  # a longer trace is shown condensed first (a notebook cell, the dashboard)


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


def _stripe_gloss(method: str, path: str) -> str:
    """What a call to Stripe's Checkout Sessions does, in words (the other way)."""
    if not path.startswith("/v1/checkout/sessions"):
        return ""
    if path == "/v1/checkout/sessions":
        return ": create the Checkout Session (Stripe's page for this order)"
    if path.endswith("/expire"):
        return ": expire the Checkout Session (nobody can pay on it any more)"
    if path.endswith("/line_items"):
        return ": the Checkout Session's line items"
    return ": read the Checkout Session" if method == "GET" else ""


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
        if m.get("checkout_session"):
            return (f"{status}: the order + the url of Checkout Session {m['checkout_session']}"
                    " (no client secret): the customer pays on Stripe's page"), None
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
        label = f"{m.get('method')} {m.get('path')}{_stripe_gloss(m.get('method', ''), m.get('path', ''))}{key}"
        if status == "unreachable":
            return label, f"✗ unreachable ({m.get('error')})"
        answer = [str(status)]
        if m.get("object_id") and m.get("object_id") not in m.get("path", ""):
            answer.append(str(m["object_id"]))
        if m.get("intent_status"):
            answer.append(m["intent_status"])
        if m.get("session_status"):
            answer.append(f"session {m['session_status']}")
        if m.get("error"):
            answer.append(f"✗ {m['error']}")
        if m.get("duration_ms") is not None:
            answer.append(f"{m['duration_ms']:.0f} ms")
        return label, " ".join(answer)
    if kind == "payment":
        how = "pay on Stripe's page" if m.get("where") == "stripes_page" else "pay with a card"
        if m.get("failed"):
            return f"{how}: ✗ declined ({m.get('error')}) [reported by Stripe]", None
        return f"{how}: {m.get('intent_status')} [reported by Stripe]", None
    if kind == "webhook":
        head = f"webhook {m.get('event_type')} {m.get('event_id')}"
        if m.get("checkout_session"):
            head += f" (Checkout Session {m['checkout_session']}, {m.get('payment_intent')})"
        outcome = m.get("outcome", "")
        if m.get("signature") == "rejected":
            return f"{head}: ✗ refused, {outcome.removeprefix('rejected: ')} ({status})", None
        mark = "✗ " if m.get("failed") else ""
        forged = (f", forged by {m['signed_by']} with the lab's secret, not sent by Stripe"
                  if m.get("signed_by") else "")
        return f"{head}: signature ok{forged}, {mark}{outcome} ({status})", None
    if kind == "reconcile":
        mark = "✗ " if m.get("failed") else ""
        return (f"{m.get('by')}: {m.get('payment_intent')} is {m.get('intent_status')} "
                f"→ {mark}{m.get('outcome')}"), None
    if kind == "poll":
        times = f" × {m['count']}" if m.get("count", 1) > 1 else ""
        return f"{m.get('method')} {m.get('path')}{times} → {m.get('order_status') or status}", None
    return kind, None


def _participants(messages: list[dict]) -> dict:
    forged = any(m["from"] in FORGER for m in messages)
    return {**PARTICIPANTS, **(FORGER if forged else {})}


def _head(messages: list[dict]) -> list[str]:
    return ["sequenceDiagram", *(f"    participant {short} as {name}"
                                 for short, name in _participants(messages).values())]


def mermaid(messages: list[dict]) -> str:
    lines = _head(messages)
    participants = _participants(messages)
    for m in messages:
        label, answer = describe(m)
        a, b = participants[m["from"]][0], participants[m["to"]][0]
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


# kind -> (one, several), for the condensed drawing's counts
KIND_NAMES = {"request": ("request", "requests"), "priced": ("pricing", "pricings"),
              "answer": ("answer", "answers"), "stripe": ("call to Stripe", "calls to Stripe"),
              "payment": ("card payment", "card payments"), "webhook": ("webhook", "webhooks"),
              "reconcile": ("sync or reconcile", "syncs or reconciles"), "poll": ("poll", "polls")}


def _counted(n: int, kind: str) -> str:
    one, several = KIND_NAMES.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else several}"


def condensed(messages: list[dict]) -> str:
    """The trace in one arrow per step (in the order the steps first appear), each saying how
    many messages of which kinds it holds, how many failed, and when the step began; a note at
    the end says how many messages there are in all. The full list: mermaid(messages)."""
    lines = _head(messages)
    participants = _participants(messages)
    steps: dict[int, list[dict]] = {}
    for m in messages:
        steps.setdefault(m["step"], []).append(m)
    for step, ms in steps.items():
        # The step's arrow goes the way most of its messages go (the first such way on a tie).
        (sender, receiver), _ = Counter((m["from"], m["to"]) for m in ms).most_common(1)[0]
        kinds = Counter(m["kind"] for m in ms)
        what = ", ".join(_counted(n, k) for k, n in kinds.items())
        asked = sum(m.get("count", 1) for m in ms if m["kind"] == "poll")
        if asked > kinds["poll"]:  # polls in a row fold into one message (writer.py)
            what = what.replace(_counted(kinds["poll"], "poll"),
                                f"{_counted(kinds['poll'], 'poll')} ({asked} requests)")
        forged = sum(1 for m in ms if m.get("signed_by"))
        failed = sum(1 for m in ms if m.get("failed"))
        notes = (f", {forged} forged with the lab's secret" if forged else "") + \
            (f", ✗ {failed} failed" if failed else "")
        arrow = "-x" if failed else "->>"
        lines.append(f"    {participants[sender][0]}{arrow}{participants[receiver][0]}: {step}. "
                     f"{len(ms)} {'message' if len(ms) == 1 else 'messages'}: {_text(what)}{notes} · {_since(ms[0]['t_ms'])}")
    lines.append(f"    Note over C,St: condensed: {len(messages)} messages in {len(steps)} steps,"
                 f" one arrow per step")
    return "\n".join(lines)


# --- in a notebook: lab.trace(order_id) ------------------------------------------------------------

MERMAID_MIME = "text/vnd.mermaid"  # JupyterLab 4 draws it (@jupyterlab/mermaid-extension)


class TraceDiagram:
    """An order's trace as a notebook shows it: a display object whose Mermaid output
    (text/vnd.mermaid) JupyterLab draws as the diagram, never a Markdown fence that a label
    could close; a plain console prints the diagram's text. `.data` holds the messages.

    A trace of more than CONDENSE_OVER messages is drawn condensed, one arrow per step with its
    counts (readable in a notebook cell); `.full()` draws every message, `.by_step()` condenses
    a short one too. `.mermaid` is always the full diagram's text, `.condensed` the other."""

    def __init__(self, order_id: str, body: dict, dashboard_url: str | None = None,
                 full: bool | None = None) -> None:
        self.order_id, self.data, self.mermaid = order_id, body["data"], body["mermaid"]
        self.condensed = body.get("condensed") or condensed(self.data)
        self.dashboard_url = dashboard_url
        self.is_full = len(self.data) <= CONDENSE_OVER if full is None else full

    @classmethod
    def of(cls, lab, order) -> "TraceDiagram":
        order_id = order["id"] if isinstance(order, dict) else str(order)
        response = lab.get(f"/api/orders/{order_id}/trace")
        if response.status_code != 200:
            raise LookupError(response.json().get("error", {}).get("message", response.text))
        return cls(order_id, response.json(), lab.public_url(f"/dashboard#follow={order_id}"))

    def _as(self, full: bool) -> "TraceDiagram":
        body = {"data": self.data, "mermaid": self.mermaid, "condensed": self.condensed}
        return TraceDiagram(self.order_id, body, self.dashboard_url, full=full)

    def full(self) -> "TraceDiagram":
        """The same trace, every message drawn."""
        return self._as(True)

    def by_step(self) -> "TraceDiagram":
        """The same trace, one arrow per step with its counts."""
        return self._as(False)

    @property
    def drawn(self) -> str:
        """The Mermaid text shown: the full diagram or the condensed one."""
        return self.mermaid if self.is_full else self.condensed

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
        lines = self.drawn.split("\n")
        how = "" if self.is_full else ", condensed by step: .full() draws each one"
        title = f"    title Order {_text(self.order_id)}: {len(self.data)} messages{_text(how)}"
        where = f"\n(also on the dashboard: {self.dashboard_url})" if self.dashboard_url else ""
        return {MERMAID_MIME: "\n".join([lines[0], title, *lines[1:]]),
                "text/plain": f"Order {self.order_id}: {len(self.data)} messages{how}{where}\n"
                              f"{self.drawn}"}

    def __repr__(self) -> str:
        return self.drawn
