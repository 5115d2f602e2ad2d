"""Orders paid the other way (a Checkout Session) on the dashboard and in the trace: how they
pay, the session's requests and events drawn in words, and the session's id (its hosted page's
address) never whole where a classmate reads it: the dashboard, an order read by another
learner, the trace."""
from __future__ import annotations

import json

from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.trace.diagram import describe
from tutorial_server.trace.messages import clean

from .test_checkout_sessions import pay, session_event, session_order

CLASSMATE = {"REMOTE_ADDR": "10.0.0.66"}


def test_the_dashboard_says_how_a_session_order_pays_and_shortens_its_session(fast_lab):
    answer = session_order(fast_lab, 1)
    session_id = answer["checkout_session"]["id"]
    r = fast_lab.get("/api/dashboard")
    row = next(o for o in r.json()["orders"] if o["id"] == answer["order"]["id"])
    assert row["pay_with"] == "checkout_session" and row["step"] == 4  # waiting for the customer
    assert row["checkout_session"] == session_id[:14] + "…"
    assert session_id not in json.dumps(r.json())
    assert r.json()["steps"][3]["count"] >= 1  # counted at step 4 too


def test_a_classmate_reads_the_order_without_its_session_the_owner_with_it(app, fast_lab):
    app.config.update(LISTEN_HOST="0.0.0.0")
    client = app.test_client()
    r = client.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 1,
                                         "payWith": "checkout_session"}, environ_base=CLASSMATE)
    answer = r.get_json()
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    other = client.get(f"/api/orders/{order_id}", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.get_json()["order"]["checkout_session"] == session_id[:14] + "…"
    owner = client.get(f"/api/orders/{order_id}", environ_base=CLASSMATE,
                       headers={"X-Order-Access": answer["access"]})
    assert owner.get_json()["order"]["checkout_session"] == session_id
    dashboard = client.get("/api/dashboard", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert session_id not in dashboard.get_data(as_text=True)


def test_the_trace_draws_the_session_in_words_without_its_whole_id(fast_lab):
    answer = session_order(fast_lab, 1)
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    pay(fast_lab, session_id)
    session = fast_lab.gateway().retrieve_checkout_session(session_id)
    assert fast_lab.post_event(session_event(session)).json()["outcome"] == "fulfilled"
    trace = fast_lab.get(f"/api/orders/{order_id}/trace").json()
    text = json.dumps(trace, ensure_ascii=False)
    assert session_id not in text, text[text.index(session_id) - 300:text.index(session_id) + 80]
    assert session_id[:14] + "…" in text
    drawn = trace["mermaid"]
    assert "POST /v1/checkout/sessions: create the Checkout Session" in drawn
    assert "the url of Checkout Session cs_test_" in drawn and "(no client secret)" in drawn
    assert "webhook checkout.session.completed" in drawn
    assert "pay on Stripe's page: succeeded [reported by Stripe]" in drawn


def test_session_labels():
    assert clean("GET /v1/checkout/sessions/cs_test_abcdefGHIJKLmnop/line_items") == \
        "GET /v1/checkout/sessions/cs_test_abcdef…/line_items"
    stripe = {"kind": "stripe", "method": "POST", "path": "/v1/checkout/sessions",
              "status": "200", "object_id": "cs_test_abcdef…", "session_status": "open",
              "duration_ms": 4.0}
    assert describe(stripe) == (
        "POST /v1/checkout/sessions: create the Checkout Session (Stripe's page for this order)",
        "200 cs_test_abcdef… session open 4 ms")
    expire = {**stripe, "path": "/v1/checkout/sessions/cs_test_abcdef…/expire",
              "object_id": None, "session_status": "expired"}
    assert describe(expire)[0].endswith(": expire the Checkout Session (nobody can pay on it "
                                        "any more)")
    webhook = {"kind": "webhook", "status": "200", "event_type": "checkout.session.completed",
               "event_id": "evt_1", "signature": "verified", "outcome": "fulfilled",
               "checkout_session": "cs_test_abcdef…", "payment_intent": "pi_1"}
    assert describe(webhook)[0] == ("webhook checkout.session.completed evt_1 (Checkout "
                                    "Session cs_test_abcdef…, pi_1): signature ok, fulfilled "
                                    "(200)")
    payment = {"kind": "payment", "where": "stripes_page", "intent_status": "succeeded"}
    assert describe(payment)[0] == "pay on Stripe's page: succeeded [reported by Stripe]"


def test_the_success_page_waits_for_a_session_paid_after_a_declined_attempt(fast_lab):
    """The customer declined once, then paid on Stripe's page, and lands on the success page
    before the webhook: the order still names the declined PaymentIntent, but the session is
    complete, so the page waits ("do not pay again") instead of sending them to pay again."""
    answer = session_order(fast_lab, 1)
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    declined = pay(fast_lab, session_id, "declined")
    assert fast_lab.post_event(payment_intent_event(declined)).json()["outcome"] == \
        "attempt_recorded"
    assert fast_lab.order_status(order_id)["payment_intent"] == declined["id"]
    assert pay(fast_lab, session_id)["status"] == "succeeded"  # its events not delivered yet
    page = fast_lab.get(f"/checkout/{order_id}/complete")
    assert 'data-payment-underway="true"' in page.text
