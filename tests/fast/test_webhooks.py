"""POST /webhook: the server believes only signed, fresh, well-formed events, and fulfils once.

The tests sign their own events the way Stripe does (and stripe-python's own tests do):
`Stripe-Signature: t={ts},v1={hex HMAC-SHA256 of f"{ts}.{payload}"}` with the lab's secret.
Every rejection is a 400 in the API's error shape and leaves the database unchanged.

Fast tier: the app runs in this process; no webhook of the offline Stripe's own reaches it
(tests/test_webhook_security.py has the cases that pay and wait for the real delivery).
"""
from __future__ import annotations

import json
import secrets
import time

import pytest

from tutorial_server.lab.webhook_sender import payment_intent_event

from ..signing import sign
from ..webhook_cases import (SIGNATURE_CASES, assert_rejected, database_unchanged, events_for,
                             inventory_rows, post_raw, succeeded_event_for_unknown_intent,
                             test_event_id)


@pytest.mark.parametrize("make_header", SIGNATURE_CASES.values(), ids=SIGNATURE_CASES.keys())
def test_event_without_a_valid_fresh_signature_is_rejected(fast_lab, make_header):
    payload = json.dumps(succeeded_event_for_unknown_intent()).encode()
    header = make_header(fast_lab, payload)
    with database_unchanged(fast_lab):
        r = post_raw(fast_lab, payload, header)
    assert_rejected(r, "Stripe-Signature")


def test_body_changed_after_signing_is_rejected(fast_lab, customer):
    # A real PaymentIntent of a real order: the forged body would pay it if it got through.
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    intent = fast_lab.gateway().retrieve_payment_intent(order["payment_intent"])
    payload = json.dumps(payment_intent_event(intent, event_id=test_event_id())).encode()
    header = sign(payload, fast_lab.webhook_secret)
    forged = payload.replace(b'"requires_payment_method"', b'"succeeded"')
    assert forged != payload
    with database_unchanged(fast_lab):
        r = post_raw(fast_lab, forged, header)
    assert_rejected(r, "Stripe-Signature")
    assert fast_lab.order_status(order["id"])["status"] == "created"


# --- Rejections: signed, but not a usable event --------------------------------------------------

def _event(data) -> bytes:
    return json.dumps({"id": test_event_id(), "object": "event",
                       "type": "payment_intent.succeeded", "data": data}).encode()


BODY_CASES = {
    "not-json": lambda: b"this is not JSON",
    "truncated-json": lambda: b'{"id": "evt_1", "type": ',
    "not-utf8": lambda: b'{"id": "evt_\xff\xfe"}',
    "empty-body": lambda: b"",
    "json-list": lambda: b"[]",
    "json-object-empty": lambda: b"{}",
    "json-null": lambda: b"null",
    "json-number": lambda: b"42",
    "json-string": lambda: b'"payment_intent.succeeded"',
    "no-id": lambda: json.dumps({"type": "payment_intent.succeeded", "data": {}}).encode(),
    "no-type": lambda: json.dumps({"id": test_event_id(), "data": {}}).encode(),
    "id-not-string": lambda: json.dumps({"id": 7, "type": "payment_intent.succeeded"}).encode(),
    "type-not-string": lambda: json.dumps({"id": test_event_id(), "type": ["x"]}).encode(),
    "no-data": lambda: json.dumps({"id": test_event_id(),
                                   "type": "payment_intent.succeeded"}).encode(),
    "data-is-list": lambda: _event([]),
    "object-missing": lambda: _event({}),
    "object-is-string": lambda: _event({"object": "pi_123"}),
    "object-is-list": lambda: _event({"object": []}),
    "object-without-id": lambda: _event({"object": {"object": "payment_intent"}}),
    "object-id-not-string": lambda: _event({"object": {"id": 5, "object": "payment_intent"}}),
    "object-is-a-charge": lambda: _event({"object": {"id": "ch_" + secrets.token_hex(8),
                                                     "object": "charge", "amount": 1200}}),
    "charge-with-pi-id": lambda: _event({"object": {"id": "pi_" + secrets.token_hex(8),
                                                    "object": "charge", "amount": 1200}}),
    "payment-failed-customer": lambda: json.dumps({
        "id": test_event_id(), "type": "payment_intent.payment_failed",
        "data": {"object": {"id": "cus_123", "object": "customer"}}}).encode(),
}


@pytest.mark.parametrize("make_body", BODY_CASES.values(), ids=BODY_CASES.keys())
def test_signed_body_that_is_not_a_payment_intent_event_is_rejected(fast_lab, make_body):
    payload = make_body()
    with database_unchanged(fast_lab):
        r = post_raw(fast_lab, payload, sign(payload, fast_lab.webhook_secret))
    assert_rejected(r, None)


# --- Acceptance ------------------------------------------------------------------------------

@pytest.mark.parametrize("age", [0, 240, -240], ids=["now", "4min-old", "4min-ahead"])
def test_event_type_the_server_ignores_is_acknowledged(fast_lab, age):
    event = {"id": test_event_id(), "object": "event", "type": "customer.created",
             "created": int(time.time()),
             "data": {"object": {"id": "cus_" + secrets.token_hex(6), "object": "customer"}}}
    orders_before = fast_lab.snapshot()["orders"]
    r = fast_lab.post_event(event, timestamp=int(time.time()) - age)
    assert r.status_code == 200, r.text
    assert r.json()["received"] is True
    assert fast_lab.snapshot()["orders"] == orders_before
    # Recorded, so a redelivery of it is recognised too.
    assert [e["outcome"] for e in fast_lab.query("SELECT * FROM webhook_events WHERE id = ?",
                                        event["id"])] == ["ignored_type"]


def test_event_for_a_payment_intent_stripe_does_not_know_fulfils_nothing(fast_lab):
    before = fast_lab.snapshot()
    r = fast_lab.post_event(succeeded_event_for_unknown_intent())
    assert r.status_code == 200, r.text
    assert r.json()["received"] is True
    after = fast_lab.snapshot()
    assert (after["orders"], after["inventory"]) == (before["orders"], before["inventory"])


def inventory_rows_api(fast_lab, customer: str) -> list[dict]:
    r = fast_lab.get(f"/api/customers/{customer}/inventory")
    assert r.status_code == 200
    return r.json()["data"]


def test_forged_amount_for_an_unpaid_order_does_not_fulfil(fast_lab, customer):
    order = fast_lab.order("prod_coffee_beans", 1, customer)["order"]
    pi = order["payment_intent"]
    intent = fast_lab.gateway().retrieve_payment_intent(pi)
    forged = {**intent, "status": "succeeded", "amount": 100, "amount_received": 100}
    event = payment_intent_event(forged, event_id=test_event_id())
    r = fast_lab.post_event(event)
    assert r.status_code == 200 and r.json()["received"] is True
    # The server re-read the PaymentIntent: nothing has been paid.
    status = fast_lab.order_status(order["id"])
    assert (status["status"], status["amount_paid"], status["attempts"]) == ("created", 0, 0)
    assert inventory_rows(fast_lab, order["id"]) == []
    [recorded] = events_for(fast_lab, pi)
    assert recorded["outcome"] in ("no_change", "amount_mismatch")


