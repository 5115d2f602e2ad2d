"""A long trace drawn condensed: one arrow per step with its counts, the full drawing on demand
(TraceDiagram.full(), the dashboard's "full"); a delivery the lab's own code forged is drawn
from "You", not from Stripe. Pure functions: no lab."""
from __future__ import annotations

import re

from tutorial_server.trace.diagram import (CONDENSE_OVER, MERMAID_MIME, TraceDiagram, condensed,
                                           mermaid)

from .test_trace_labels import MESSAGE

NOTE = re.compile(r"    Note over C,St: [^;#%<>\"`{}\\]*")
FORGED_PARTICIPANT = "    participant N as You (signing with the lab secret)"


def msg(step: int, sender: str, receiver: str, kind: str, t: float, **detail) -> dict:
    return {"step": step, "from": sender, "to": receiver, "kind": kind, "t_ms": t,
            "status": "200", "failed": False, "count": 1, **detail}


def twenty_five() -> list[dict]:
    """An order of 25 messages over the six steps, two webhooks forged by a notebook."""
    ms = [msg(1, "client", "server", "request", 0, method="POST", path="/api/orders",
              product="prod_enamel_mug", quantity=2),
          msg(2, "server", "server", "priced", 1, amount=1200, currency="usd"),
          msg(3, "server", "stripe", "stripe", 2, method="POST", path="/v1/payment_intents"),
          msg(4, "server", "client", "answer", 3, payment_intent="pi_1", client_secret=True)]
    ms += [msg(5, "client", "server", "request", 10 + i, method="POST",
               path="/checkout/o/confirm", failed=i == 0) for i in range(4)]
    ms += [msg(5, "server", "stripe", "stripe", 20 + i, method="POST",
               path="/v1/payment_intents/pi_1/confirm") for i in range(4)]
    ms += [msg(6, "stripe", "server", "webhook", 100 + i, event_id=f"evt_{i}",
               event_type="payment_intent.succeeded", signature="verified",
               outcome="duplicate") for i in range(7)]
    ms += [msg(6, "notebook", "server", "webhook", 200 + i, event_id=f"evt_n{i}",
               event_type="payment_intent.succeeded", signature="verified",
               outcome="duplicate", signed_by="your notebook") for i in range(2)]
    ms += [msg(6, "client", "server", "poll", 300 + i, method="GET", path="/api/orders/o",
               count=5) for i in range(4)]
    assert len(ms) == 25
    return ms


def test_a_25_message_trace_condensed_has_one_arrow_per_step_with_counts():
    messages = twenty_five()
    text = condensed(messages)
    lines = text.split("\n")
    assert lines[0] == "sequenceDiagram" and lines[4] == FORGED_PARTICIPANT
    arrows = lines[5:-1]
    assert [a.split(": ")[1].split(".")[0] for a in arrows] == ["1", "2", "3", "4", "5", "6"]
    for arrow in arrows:
        assert re.fullmatch(r"    (C|S|St|N)(->>|-x)(C|S|St|N): [^;#%<>\"`{}\\]*", arrow), arrow
    assert arrows[4].startswith("    C-xS: 5. 8 messages: 4 requests, 4 calls to Stripe")
    assert "✗ 1 failed" in arrows[4]
    assert arrows[5].startswith("    St->>S: 6. 13 messages: 9 webhooks, 4 polls (20 requests)")
    assert "2 forged with the lab's secret" in arrows[5]
    assert NOTE.fullmatch(lines[-1]) and "25 messages in 6 steps" in lines[-1]


def test_the_full_drawing_has_every_message_and_draws_forged_ones_from_you():
    messages = twenty_five()
    lines = mermaid(messages).split("\n")
    assert lines[4] == FORGED_PARTICIPANT
    drawn = [line for line in lines[5:] if re.match(r"    \S+: \d\. ", line)]
    assert len(drawn) == 25  # one numbered arrow per message (Stripe's answers come unnumbered)
    forged = [line for line in drawn if line.startswith("    N->>S: 6. webhook")]
    assert len(forged) == 2
    assert all("forged by your notebook with the lab's secret, not sent by Stripe" in f
               for f in forged)
    from_stripe = [line for line in drawn if line.startswith("    St->>S: 6. webhook")]
    assert len(from_stripe) == 7 and not any("forged" in f for f in from_stripe)


def test_without_a_forged_delivery_there_is_no_fourth_participant():
    messages = [m for m in twenty_five() if m["from"] != "notebook"]
    for text in (mermaid(messages), condensed(messages)):
        assert "participant N" not in text and "N->>" not in text


def test_the_notebook_shows_a_long_trace_condensed_and_the_full_one_on_demand():
    messages = twenty_five()
    body = {"data": messages, "mermaid": mermaid(messages)}
    shown = TraceDiagram("order_1", body)
    assert len(messages) > CONDENSE_OVER and not shown.is_full
    bundle = shown._repr_mimebundle_()
    assert "condensed by step" in bundle[MERMAID_MIME].split("\n")[1]
    assert bundle[MERMAID_MIME].count("\n") == condensed(messages).count("\n") + 1
    full = shown.full()._repr_mimebundle_()[MERMAID_MIME]
    assert full.split("\n")[2:] == mermaid(messages).split("\n")[1:]
    assert "condensed" not in full.split("\n")[1]
    assert repr(shown.full()) == shown.mermaid and repr(shown) == shown.condensed
    short = TraceDiagram("order_2", {"data": messages[:4], "mermaid": mermaid(messages[:4])})
    assert short.is_full and repr(short.by_step()) == condensed(messages[:4])
