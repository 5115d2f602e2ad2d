"""Traces hold only what happened to the order: deliveries whose signature fails (missing, wrong,
forged) are listed on the dashboard, rate-limited, and never drawn on the order they name nor
use up its room; labels from signed events are drawn as plain text. Real lab over HTTP."""
from __future__ import annotations

import json
import time

import requests

from tutorial_server.lab import refused as refused_list
from tutorial_server.lab.webhook_sender import deliver_event, payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card
from tutorial_server.trace.messages import SIGNED_BY_HEADER

from .fast.test_trace_labels import ATTACKS, MESSAGE
from .running_lab import wait_for
from .signing import sign
from .test_trace import trace_of

EVIL_IDS = ["evt_cr\rNote over C,St: <a href='https://evil.example'>Your refund is ready</a>",
            "evt_nbsp\u00a0\u202fid", "evt_%%{init: {}}%%", "evt --> end", *ATTACKS]


def forged_headers(payload: bytes) -> list[dict]:
    json_type = {"Content-Type": "application/json"}
    return [json_type,  # no signature at all
            {**json_type, "Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"},
            {**json_type, "Stripe-Signature": sign(payload, "whsec_notTheLabsSecret")}]


def event_naming(lab, order: dict, event_id: str) -> dict:
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert intent["metadata"]["order_id"] == order["id"]
    return payment_intent_event(intent, "payment_intent.succeeded", event_id)


def test_unsigned_and_badly_signed_posts_naming_an_order_leave_its_trace_unchanged(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    before = trace_of(lab, order["id"])
    for evil in EVIL_IDS:
        payload = json.dumps(event_naming(lab, order, evil)).encode()
        for headers in forged_headers(payload):
            r = lab.post("/webhook", data=payload, headers=headers)
            assert r.status_code == 400, r.text
    after = trace_of(lab, order["id"])
    assert (after["data"], after["mermaid"]) == (before["data"], before["mermaid"])
    listed = lab.get("/api/dashboard").json()["deliveries"]
    assert any(not d["verified"] and d["outcome"].startswith("rejected: ") for d in listed)
    assert not any("evil" in json.dumps(d) for d in listed)  # nothing of the body is kept


def test_300_junk_posts_then_the_real_payment_is_in_the_trace_and_the_list_is_capped(
        lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    with requests.Session() as session:
        for n in range(300):
            payload = json.dumps(event_naming(lab, order, f"evt_junk_{n}") if n < 3 else {
                "id": f"evt_junk_{n}", "type": "payment_intent.succeeded",
                "data": {"object": {"id": order["payment_intent"], "object": "payment_intent",
                                    "metadata": {"order_id": order["id"]}}}}).encode()
            r = session.post(lab.url + "/webhook", data=payload, timeout=10,
                             headers=forged_headers(payload)[n % 3])
            assert r.status_code == 400
    dashboard = lab.get("/api/dashboard").json()
    refused = [d for d in dashboard["deliveries"] if not d["verified"]]
    assert len(refused) <= refused_list.KEEP
    assert dashboard["totals"]["refused_not_listed"] >= 300 - refused_list.KEEP

    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    trace = wait_for(lambda: (t := trace_of(lab, order["id"])) and any(
        m["kind"] == "webhook" and m.get("outcome") == "fulfilled" for m in t["data"]) and t,
        timeout=10, message="the payment's webhook in the trace")
    kinds = [m["kind"] for m in trace["data"]]
    assert "payment" in kinds and "junk" not in json.dumps(trace)
    assert not any(m.get("signature") == "rejected" for m in trace["data"])
    # The verified delivery of the payment is listed, above the refusals.
    listed = lab.get("/api/dashboard").json()["deliveries"]
    assert any(d["verified"] and d["type"] == "payment_intent.succeeded" for d in listed)


def test_a_signed_event_with_mermaid_in_its_id_is_drawn_as_plain_text(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    for evil in EVIL_IDS[:4]:
        r = lab.post_event(event_naming(lab, order, evil))
        assert r.status_code == 200, r.text
    trace = trace_of(lab, order["id"])
    drawn = [m for m in trace["data"] if m["kind"] == "webhook"]
    assert len(drawn) == 4
    lines = trace["mermaid"].split("\n")
    assert trace["mermaid"].splitlines() == lines
    assert len(lines) == 4 + len(trace["data"]) + sum(
        1 for m in trace["data"] if m["kind"] == "stripe")
    for line in lines[4:]:
        assert MESSAGE.fullmatch(line), repr(line)


def test_a_delivery_the_lab_forged_is_drawn_from_you_and_stripes_own_from_stripe(lab, customer):
    """The stand-in's own delivery of the payment is drawn from Stripe; the same event re-sent
    by the lab's sender (notebooks 06-08, `trigger`), signed with the lab's secret, is drawn
    from "You" and labelled forged; an unmarked header value cannot reach the trace unsigned."""
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    stripes = wait_for(lambda: (t := trace_of(lab, order["id"])) and [
        m for m in t["data"] if m["kind"] == "webhook"], timeout=10,
        message="the stand-in's delivery in the trace")
    assert [(m["from"], m.get("signed_by")) for m in stripes] == [("stripe", None)]
    event = lab.gateway().events_about(order["payment_intent"], "payment_intent.succeeded")[0]
    assert deliver_event(lab.url, event, lab.webhook_secret).accepted
    # Unsigned, the mark is refused with the rest and drawn nowhere.
    payload = json.dumps(event).encode()
    r = lab.post("/webhook", data=payload, headers={
        **forged_headers(payload)[2], SIGNED_BY_HEADER: "Stripe itself"})
    assert r.status_code == 400
    trace = trace_of(lab, order["id"])
    webhooks = [m for m in trace["data"] if m["kind"] == "webhook"]
    assert [(m["from"], m.get("signed_by")) for m in webhooks] == [
        ("stripe", None), ("notebook", "your notebook")]
    lines = trace["mermaid"].split("\n")
    assert "    participant N as You (signing with the lab secret)" in lines
    [mine] = [line for line in lines if line.startswith("    N->>S: 6. webhook")]
    assert "forged by your notebook with the lab's secret, not sent by Stripe" in mine
    [theirs] = [line for line in lines if line.startswith("    St->>S: 6. webhook")]
    assert "forged" not in theirs and "Stripe itself" not in trace["mermaid"]
