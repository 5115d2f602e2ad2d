"""The other way (tutorial_server/checkout_sessions.py): an order paid on Stripe's hosted Checkout
page. The server prices it and makes the session; a signed checkout.session.completed or
payment_intent.succeeded, in either order, fulfils it once; a forged or wrong-amount session
event fulfils nothing; an expired session cancels the order; sync, cancel and reconcile
understand session orders. Against the shared offline stand-in and its Checkout Sessions.
"""
from __future__ import annotations

import secrets
import time

import pytest
import requests

from tutorial_server import checkout_sessions
from tutorial_server.db import get_db, transaction
from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from ..webhook_cases import database_unchanged

MUG = "prod_enamel_mug"


def session_order(lab, quantity: int = 2, customer: str | None = None, **kw) -> dict:
    body = {"productId": MUG, "quantity": quantity, "payWith": "checkout_session"}
    if customer:
        body["customer"] = customer
    r = lab.post("/api/orders", json=body, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def session_event(session: dict, event_type: str = "checkout.session.completed") -> dict:
    return {"id": "evt_" + secrets.token_hex(12), "object": "event", "type": event_type,
            "created": int(time.time()), "livemode": False, "data": {"object": session}}


def pay(lab, session_id: str, scenario: str = "success") -> dict:
    """The customer on Stripe's page (offline: what the lab's page does): pay its PaymentIntent."""
    answer = requests.get(f"{lab.backend_url}/_lab/checkout/sessions/{session_id}/payment",
                          headers={"Authorization": f"Bearer {lab.backend_key}"}, timeout=10)
    return pay_with_test_card(lab.gateway(), answer.json()["payment_intent"], scenario)


def test_the_server_prices_the_session_and_the_browser_gets_no_client_secret(fast_lab):
    answer = session_order(fast_lab, 2)
    order, session = answer["order"], answer["checkout_session"]
    assert answer["client_secret"] is None
    assert (order["pay_with"], order["checkout_session"], order["payment_intent"]) == \
        ("checkout_session", session["id"], None)
    assert session["url"] == f"/offline-checkout/{session['id']}"
    at_stripe = fast_lab.gateway().retrieve_checkout_session(session["id"])
    assert (at_stripe["amount_total"], at_stripe["currency"]) == (order["amount"],
                                                                  order["currency"])
    assert at_stripe["metadata"]["order_id"] == at_stripe["client_reference_id"] == order["id"]
    assert at_stripe["success_url"].endswith(
        f"/checkout/{order['id']}/complete?session_id={{CHECKOUT_SESSION_ID}}")
    assert at_stripe["cancel_url"].endswith(f"/checkout/{order['id']}")
    items = fast_lab.gateway().client.v1.checkout.sessions.line_items.list(session["id"])
    assert [(i.quantity, i.price.unit_amount) for i in items.data] == \
        [(2, order["amount"] // 2)]


def test_a_volume_discount_is_one_line_at_the_servers_total(fast_lab):
    order = session_order(fast_lab, 12)["order"]
    assert order["discount"] > 0
    items = fast_lab.gateway().client.v1.checkout.sessions.line_items.list(
        order["checkout_session"])
    assert [(i.quantity, i.amount_total) for i in items.data] == [(1, order["amount"])]
    assert "volume discount" in items.data[0].description


def test_a_replayed_order_gets_the_same_session(fast_lab):
    key = {"Idempotency-Key": "ik_" + secrets.token_hex(8)}
    first = session_order(fast_lab, headers=key)
    again = session_order(fast_lab, headers=key)
    assert again["checkout_session"]["id"] == first["checkout_session"]["id"]
    made = fast_lab.post(f"/api/orders/{first['order']['id']}/checkout-session")
    assert made.json()["checkout_session"]["id"] == first["checkout_session"]["id"]


@pytest.mark.parametrize("pay_with", ["checkout", "", None, ["checkout_session"], 1])
def test_an_unknown_way_to_pay_is_refused_and_makes_nothing(fast_lab, pay_with):
    with database_unchanged(fast_lab):
        r = fast_lab.post("/api/orders", json={"productId": MUG, "quantity": 1,
                                               "payWith": pay_with})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "payWith"


def test_a_payment_intent_order_has_no_session(fast_lab):
    order = fast_lab.order(MUG, 1)["order"]
    r = fast_lab.post(f"/api/orders/{order['id']}/checkout-session")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "order_pays_with_payment_intent")


@pytest.mark.parametrize("first", ["checkout.session.completed", "payment_intent.succeeded"])
def test_either_event_first_fulfils_once_and_the_other_finds_it_paid(fast_lab, customer, first):
    order = session_order(fast_lab, 3, customer)["order"]
    intent = pay(fast_lab, order["checkout_session"])
    assert intent["status"] == "succeeded"
    session = fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])
    events = {"checkout.session.completed": session_event(session),
              "payment_intent.succeeded": payment_intent_event(intent)}
    second = next(t for t in events if t != first)
    assert fast_lab.post_event(events[first]).json()["outcome"] == "fulfilled"
    assert fast_lab.post_event(events[second]).json()["outcome"] == "already_paid"
    recorded = fast_lab.query("SELECT type, payment_intent FROM webhook_events WHERE order_id = ?",
                              order["id"])
    assert sorted(tuple(r) for r in recorded) == [("checkout.session.completed", intent["id"]),
                                                  ("payment_intent.succeeded", intent["id"])]
    paid = fast_lab.order_status(order["id"])
    assert (paid["status"], paid["amount_paid"], paid["payment_intent"]) == \
        ("paid", order["amount"], intent["id"])
    assert len(fast_lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1


@pytest.mark.parametrize("change", [{"amount_total": -1}, {"amount_total": +1},
                                    {"currency": "eur"}, {"currency": "zar"}],
                         ids=["amount-1", "amount+1", "currency before", "currency after"])
def test_a_signed_session_event_with_another_amount_fulfils_nothing(fast_lab, change):
    order = session_order(fast_lab)["order"]
    pay(fast_lab, order["checkout_session"])
    session = fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])
    doctored = session_event({**session, "amount_total": session["amount_total"]
                              + change.get("amount_total", 0),
                              "currency": change.get("currency", session["currency"])})
    assert fast_lab.post_event(doctored).json()["outcome"] == "amount_mismatch"
    assert fast_lab.order_status(order["id"])["status"] == "created"
    alerts = fast_lab.query("SELECT kind FROM order_alerts WHERE order_id = ?", order["id"])
    assert [a["kind"] for a in alerts] == ["amount_mismatch"]


def test_a_forged_session_event_is_refused_and_changes_nothing(fast_lab):
    order = session_order(fast_lab)["order"]
    session = fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])
    forged = session_event({**session, "status": "complete", "payment_status": "paid"})
    with database_unchanged(fast_lab):
        r = fast_lab.post_event(forged, secret="whsec_" + secrets.token_hex(16))
    assert r.status_code == 400


@pytest.mark.parametrize("object_id, kind", [
    ("pi_123", "checkout.session"), ("cs_test_" + "x" * 300, "checkout.session"),
    (None, "checkout.session"), ("cs_test_a b", "checkout.session"),
    ("cs_test_a1b2", "payment_intent"), ("cs_test_a1b2", "charge"), ("cs_test_a1b2", None)])
def test_a_session_event_whose_object_is_not_a_session_is_refused(fast_lab, object_id, kind):
    event = session_event({"id": object_id, "object": kind})
    with database_unchanged(fast_lab):
        r = fast_lab.post_event(event)
    assert r.status_code == 400


def test_a_session_event_about_a_session_that_is_not_ours_settles_nothing(fast_lab):
    order = session_order(fast_lab)["order"]
    sides = set()  # other sessions naming the order, their ids before and after the order's
    for _ in range(40):
        other = fast_lab.gateway().client.v1.checkout.sessions.create(params={
            "mode": "payment", "success_url": "http://127.0.0.1/ok", "metadata": {
                "order_id": order["id"]},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}}}]}).to_dict()
        side = other["id"] < order["checkout_session"]
        if side not in sides:
            sides.add(side)
            assert fast_lab.post_event(session_event(other)).json()["outcome"] == "unknown_order"
        if len(sides) == 2:
            break
    assert sides == {True, False}


def test_an_event_about_a_session_stripe_does_not_know_settles_nothing(fast_lab):
    unknown = session_event({"id": "cs_test_" + secrets.token_hex(20),
                             "object": "checkout.session"})
    r = fast_lab.post_event(unknown)
    assert (r.status_code, r.json()["outcome"]) == (200, "unknown_order")


@pytest.mark.parametrize("event_type, outcome, attempts", [
    ("checkout.session.async_payment_failed", "attempt_recorded", 1),
    ("checkout.session.completed", "no_change", 0)])
def test_only_async_payment_failed_counts_a_failure_its_payment_intent_does_not_show(
        fast_lab, event_type, outcome, attempts):
    order = session_order(fast_lab)["order"]
    opened = requests.get(f"{fast_lab.backend_url}/_lab/checkout/sessions/"
                          f"{order['checkout_session']}/payment", timeout=10,
                          headers={"Authorization": f"Bearer {fast_lab.backend_key}"})
    session = fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])
    assert session["payment_intent"] == opened.json()["payment_intent"]  # not paid, no error
    assert fast_lab.post_event(session_event(session, event_type)).json()["outcome"] == outcome
    now = fast_lab.order_status(order["id"])
    assert (now["attempts"], now["payment_intent"]) == (attempts, session["payment_intent"])


@pytest.mark.parametrize("intent_id", ["pi_123", None])
def test_no_order_or_no_payment_intent_links_nothing(intent_id):
    # The session of a PaymentIntent event that is not (or no longer) one of our orders'.
    assert checkout_sessions.link_intent(None, None, {"payment_intent": intent_id}) is None


def test_only_an_expired_session_with_no_payment_cancels_and_nothing_unlinks(fast_lab):
    """settle_session on sessions Stripe could answer: a complete one whose PaymentIntent it
    cannot find cancels nothing; a session naming no PaymentIntent never unlinks the order's."""
    order = session_order(fast_lab)["order"]
    pay(fast_lab, order["checkout_session"], "declined")
    fast_lab.post(f"/api/orders/{order['id']}/sync")  # links the declined PaymentIntent
    linked = fast_lab.order_status(order["id"])["payment_intent"]
    session = fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])
    with fast_lab.app.app_context(), transaction(get_db()):
        db = get_db()
        complete = {**session, "status": "complete", "payment_intent": None}
        assert checkout_sessions.settle_session(db, complete, None) == ("no_change", order["id"])
        checkout_sessions.link_intent(db, checkout_sessions.order_of(db, session),
                                      {**session, "payment_intent": None})
    now = fast_lab.order_status(order["id"])
    assert (now["status"], now["payment_intent"]) == ("attempted", linked) and linked


def test_an_expired_session_cancels_the_unpaid_order(fast_lab):
    order = session_order(fast_lab)["order"]
    expired = fast_lab.gateway().expire_checkout_session(order["checkout_session"])
    answer = fast_lab.post_event(session_event(expired, "checkout.session.expired")).json()
    assert answer["outcome"] == "canceled"
    now = fast_lab.order_status(order["id"])
    assert (now["status"], now["cancellation_reason"]) == ("canceled",
                                                           "checkout_session_expired")


def test_cancel_expires_the_session_first(fast_lab):
    order = session_order(fast_lab)["order"]
    r = fast_lab.post(f"/api/orders/{order['id']}/cancel")
    assert r.json()["order"]["status"] == "canceled"
    assert fast_lab.gateway().retrieve_checkout_session(order["checkout_session"])["status"] \
        == "expired"


def test_cancel_after_the_customer_paid_refuses_and_settles(fast_lab):
    order = session_order(fast_lab)["order"]
    pay(fast_lab, order["checkout_session"])
    r = fast_lab.post(f"/api/orders/{order['id']}/cancel")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "order_already_paid")
    assert fast_lab.order_status(order["id"])["status"] == "paid"


def test_sync_settles_a_paid_session_whose_events_never_came(fast_lab):
    order = session_order(fast_lab)["order"]
    assert fast_lab.post(f"/api/orders/{order['id']}/sync").json()["order"]["status"] == \
        "created"
    pay(fast_lab, order["checkout_session"], "declined")
    assert fast_lab.post(f"/api/orders/{order['id']}/sync").json()["order"]["status"] == \
        "attempted"
    intent = pay(fast_lab, order["checkout_session"])  # the same PaymentIntent, another card
    synced = fast_lab.post(f"/api/orders/{order['id']}/sync").json()["order"]
    assert (synced["status"], synced["payment_intent"], synced["attempts"]) == \
        ("paid", intent["id"], 2)


def test_the_checkout_page_of_a_session_order_links_to_stripes_page(fast_lab):
    order = session_order(fast_lab)["order"]
    page = fast_lab.get(f"/checkout/{order['id']}")
    assert page.status_code == 200
    assert f'href="/offline-checkout/{order["checkout_session"]}"' in page.text
    assert "_secret_" not in page.text


def test_a_card_declined_on_stripes_page_counts_one_attempt_from_its_event(fast_lab):
    order = session_order(fast_lab)["order"]
    declined = pay(fast_lab, order["checkout_session"], "declined")
    event = payment_intent_event(declined, "payment_intent.payment_failed")
    assert fast_lab.post_event(event).json()["outcome"] == "attempt_recorded"
    assert fast_lab.post_event({**event, "id": "evt_" + secrets.token_hex(12)}).json()[
        "outcome"] == "attempt_already_recorded"
    now = fast_lab.order_status(order["id"])
    assert (now["status"], now["attempts"], now["payment_intent"]) == \
        ("attempted", 1, declined["id"])
