"""Edges of step 6 that earlier tests let through (each a mutant that survived): the exact
bounds of the signature window, a webhook that arrives while Stripe cannot be reached for the
re-read, a sync while 3-D Secure is pending, and what the receiver records of each delivery.

Events are signed by tests/signing.py (the tests' own oracle), never by the package.
"""
from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from tutorial_server.config import load_settings
from tutorial_server.errors import ApiError
from tutorial_server.gateway import make_gateway
from tutorial_server.lab.offline_stripe import CHECK_METADATA_KEY, WebhookWatchdog
from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.webhooks import TOLERANCE_SECONDS, verify_event
from tutorial_server.notebook.customer import pay_with_test_card

from ..signing import sign

SECRET = "whsec_edges_of_the_window"
EVENT = json.dumps(payment_intent_event({"id": "pi_1", "object": "payment_intent"})).encode()


# --- the 300 s window, both ways -------------------------------------------------------------

def test_the_window_is_stripes_300_seconds():
    assert TOLERANCE_SECONDS == 300


@pytest.mark.parametrize("offset", [-299, -1, 0, 1, 299, 300])
def test_signatures_inside_the_window_are_accepted(offset):
    now = int(time.time())
    event = verify_event(EVENT, sign(EVENT, SECRET, now + offset), SECRET, now=now)
    assert event["type"] == "payment_intent.succeeded"


@pytest.mark.parametrize("offset", [-301, -3600, 301, 3600])
def test_signatures_outside_the_window_are_refused(offset):
    now = int(time.time())
    with pytest.raises(ApiError) as refused:
        verify_event(EVENT, sign(EVENT, SECRET, now + offset), SECRET, now=now)
    assert refused.value.status == 400 and refused.value.param == "Stripe-Signature"


def test_the_future_bound_follows_now():
    # `now` moves the future bound: a timestamp 301 s ahead of one clock is 299 s ahead of
    # a clock two seconds later.
    now = int(time.time())
    header = sign(EVENT, SECRET, now + 301)
    with pytest.raises(ApiError):
        verify_event(EVENT, header, SECRET, now=now)
    assert verify_event(EVENT, header, SECRET, now=now + 2)["id"]


@pytest.mark.parametrize("secret, header, param", [
    (None, "t=1,v1=00", None), ("", "t=1,v1=00", None),
    (SECRET, None, "Stripe-Signature"), (SECRET, "", "Stripe-Signature"),
])
def test_no_secret_or_no_header_is_refused(secret, header, param):
    with pytest.raises(ApiError) as refused:
        verify_event(EVENT, header, secret)
    assert refused.value.status == 400 and refused.value.param == param


@pytest.mark.parametrize("body, message", [
    (b"not json", "not valid JSON"), (b"[1, 2]", "not a JSON object"), (b"7", "not a JSON object"),
])
def test_signed_bodies_that_are_not_events(body, message):
    with pytest.raises(ApiError) as refused:
        verify_event(body, sign(body, SECRET), SECRET)
    assert refused.value.status == 400 and message in refused.value.message


# --- Stripe unreachable for the re-read ------------------------------------------------------

def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_webhook_while_stripe_is_unreachable_is_a_503_then_a_redelivery_fulfils(
        app, fast_lab, customer):
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    paid = pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "success")
    event = payment_intent_event(paid)
    reachable = app.extensions["gateway"]
    app.extensions["gateway"] = make_gateway(load_settings({}), closed_port_url())
    before = fast_lab.snapshot()
    r = fast_lab.post_event(event)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "api_connection_error"
    assert fast_lab.snapshot() == before, "an unconfirmed event must record nothing"
    assert fast_lab.order_status(order["id"])["status"] == "created"

    app.extensions["gateway"] = reachable  # Stripe is back; Stripe delivers the event again
    r = fast_lab.post_event(event)
    assert r.status_code == 200 and r.json()["outcome"] == "fulfilled", r.text
    assert fast_lab.order_status(order["id"])["status"] == "paid"
    assert fast_lab.post_event(event).json()["outcome"] == "duplicate"


def test_a_sync_while_stripe_is_unreachable_is_a_503_and_changes_nothing(app, fast_lab, customer):
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "success")
    app.extensions["gateway"] = make_gateway(load_settings({}), closed_port_url())
    before = fast_lab.snapshot()
    r = fast_lab.post(f"/api/orders/{order['id']}/sync")
    assert r.status_code == 503 and r.json()["error"]["type"] == "api_connection_error"
    assert fast_lab.snapshot() == before


# --- 3-D Secure pending ----------------------------------------------------------------------

def test_a_sync_while_3ds_is_pending_records_no_attempt(fast_lab, customer):
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    pending = pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "3ds")
    assert pending["status"] == "requires_action"
    for _ in range(2):  # however often the customer's page asks
        synced = fast_lab.post(f"/api/orders/{order['id']}/sync").json()
        assert synced["payment_intent"]["status"] == "requires_action"
        assert synced["order"]["status"] in ("created", "attempted")
        assert synced["order"]["attempts"] == 0 and synced["order"]["amount_paid"] == 0
    assert fast_lab.query("SELECT * FROM counted_failures WHERE order_id = ?", order["id"]) == []
    assert fast_lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"]) == []


# --- what the receiver records ---------------------------------------------------------------

def test_each_delivery_is_recorded_for_the_dashboard(app, fast_lab):
    deliveries = app.extensions["webhook_deliveries"]
    r = fast_lab.post_event(payment_intent_event({"id": "pi_x"}, "customer.created",
                                            event_id="evt_test_ignored"))
    assert r.json()["outcome"] == "ignored_type"
    assert fast_lab.query("SELECT outcome FROM webhook_events WHERE id = 'evt_test_ignored'"
                          )[0][0] == "ignored_type"
    r = fast_lab.post_event(payment_intent_event({"id": "pi_x"}), secret="whsec_wrong")
    assert r.status_code == 400
    # The server's own list keeps the verified deliveries; the refused one is only in the
    # lab's bounded list of refusals (lab/refused.py), and the dashboard shows both.
    assert list(deliveries)[-1]["event"] == "evt_test_ignored"
    refused = app.extensions["refused_deliveries"].listed[-1]
    assert refused["event"] is None and refused["outcome"].startswith("rejected: Invalid signature")
    assert abs(refused["received_at"] - time.time()) < 60
    second, first = fast_lab.get("/api/dashboard").json()["deliveries"][:2]
    assert (first["event"], first["type"], first["outcome"], first["verified"]) == (
        "evt_test_ignored", "customer.created", "ignored_type", True)
    assert second["event"] is None and second["outcome"].startswith("rejected: Invalid signature")
    assert second["verified"] is False


@pytest.mark.parametrize("event", [
    {"object": "event", "type": "payment_intent.succeeded", "data": {}},
    {"id": "evt_test_no_type", "object": "event", "data": {}},
    {"id": 7, "type": "payment_intent.succeeded"},
])
def test_a_signed_event_without_an_id_or_type_is_refused(fast_lab, event):
    before = fast_lab.snapshot()
    r = fast_lab.post_event(event)
    assert r.status_code == 400 and "no id or type" in r.json()["error"]["message"]
    assert fast_lab.snapshot() == before


@pytest.mark.parametrize("intent_id", ["pi_", "xx_123", "pi_" + "a" * 256, "pi_a-b", 7])
def test_a_payment_intent_id_stripe_could_not_have_made_is_refused(fast_lab, intent_id):
    before = fast_lab.snapshot()
    r = fast_lab.post_event(payment_intent_event({"id": intent_id, "object": "payment_intent"}))
    assert r.status_code == 400, r.text
    assert fast_lab.snapshot() == before


def test_a_payment_failed_event_counts_one_attempt(fast_lab, customer):
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    failed = pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "declined")
    event = payment_intent_event(failed, "payment_intent.payment_failed")
    assert fast_lab.post_event(event).json()["outcome"] == "attempt_recorded"
    again = payment_intent_event(failed, "payment_intent.payment_failed")
    assert fast_lab.post_event(again).json()["outcome"] == "attempt_already_recorded"
    assert fast_lab.order_status(order["id"])["attempts"] == 1


def test_the_labs_own_delivery_check_is_answered_and_not_recorded(app, fast_lab, caplog):
    # What a lab process installs (offline_backend.WebhookWatchdog): its check events are
    # answered 200 and leave nothing behind; any other event goes on to be handled.
    watchdog = WebhookWatchdog(fast_lab.backend_url, "http://localhost/webhook",
                               fast_lab.webhook_secret, fast_lab.backend_key)
    app.extensions["webhook_watchdog"] = watchdog
    check = {"id": "evt_test_check", "object": "event", "type": "customer.updated",
             "data": {"object": {"id": "cus_check", "metadata": {CHECK_METADATA_KEY: "n1"}}}}
    before = fast_lab.snapshot()
    with caplog.at_level(logging.DEBUG, logger="tutorial_server.requests"):
        r = fast_lab.post_event(check)
    assert (r.status_code, r.json()) == (200, {"received": True, "outcome": "lab_check"})
    assert fast_lab.snapshot() == before
    # It comes every round of the background reconcile: logged only with --verbose.
    [logged] = [rec for rec in caplog.records if rec.name == "tutorial_server.requests"]
    assert logged.levelno == logging.DEBUG and "POST /webhook 200" in logged.getMessage()
    other = payment_intent_event({"id": "pi_x"}, "customer.created", event_id="evt_test_other")
    assert fast_lab.post_event(other).json()["outcome"] == "ignored_type"


def test_a_payment_failed_event_counts_even_when_stripe_shows_no_error(fast_lab, customer):
    # The customer's PaymentIntent at Stripe shows no error (never confirmed here), but the
    # event is a payment_failed one: one attempt, named by the event.
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    intent = fast_lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert intent["status"] == "requires_payment_method" and not intent["last_payment_error"]
    r = fast_lab.post_event(payment_intent_event(intent, "payment_intent.payment_failed"))
    assert r.json()["outcome"] == "attempt_recorded"
    assert fast_lab.post_event(payment_intent_event(intent)).json()["outcome"] == "no_change"
    assert fast_lab.order_status(order["id"])["attempts"] == 1


@pytest.mark.parametrize("kind", ["setup_intent", "charge", "refund"])
def test_an_event_about_another_kind_of_object_is_refused(fast_lab, kind):
    before = fast_lab.snapshot()
    r = fast_lab.post_event(payment_intent_event({"id": "pi_" + "a" * 24, "object": kind}))
    assert r.status_code == 400 and "not a PaymentIntent" in r.json()["error"]["message"]
    assert fast_lab.snapshot() == before
