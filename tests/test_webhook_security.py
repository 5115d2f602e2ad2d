"""POST /webhook against a lab process: fulfils once, with the offline Stripe's own deliveries
arriving too (the rejections and one-function edge cases are in tests/fast/test_webhooks.py).

The tests sign their own events the way Stripe does (and stripe-python's own tests do):
`Stripe-Signature: t={ts},v1={hex HMAC-SHA256 of f"{ts}.{payload}"}` with the lab's secret.
Every rejection is a 400 in the API's error shape and leaves the database unchanged.

The lab's offline Stripe also delivers its own signed event about 1 s after each payment;
tests that pay wait for that delivery to be recorded, so it never lands in another test.
"""
from __future__ import annotations

import threading

import pytest

from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from .webhook_cases import (database_unchanged, events_for, inventory_rows, test_event_id,
                            wait_for_real_delivery)


# --- Acceptance ------------------------------------------------------------------------------

def test_redelivered_and_new_events_for_a_paid_order_change_nothing(lab, customer):
    order = lab.order("prod_pour_over_kit", 2, customer)["order"]
    pi = order["payment_intent"]
    pay_with_test_card(lab.gateway(), pi, "success")
    paid = lab.wait_for_status(order["id"], "paid")
    real = wait_for_real_delivery(lab, pi)
    assert real["outcome"] == "fulfilled"
    intent = lab.gateway().retrieve_payment_intent(pi)

    # Stripe delivers the same event again: recognised, and nothing at all changes.
    with database_unchanged(lab):
        r = lab.post_event(payment_intent_event(intent, event_id=real["id"]))
    assert r.status_code == 200 and r.json()["received"] is True

    # A new event about the same payment: acknowledged, the order is not paid twice.
    again = lab.post_event(payment_intent_event(intent, event_id=test_event_id()))
    assert again.status_code == 200 and again.json()["received"] is True
    assert lab.order_status(order["id"]) == paid
    assert [(i["order"], i["quantity"]) for i in inventory_rows_api(lab, customer)] == [
        (order["id"], 2)]
    assert len(inventory_rows(lab, order["id"])) == 1


def inventory_rows_api(lab, customer: str) -> list[dict]:
    r = lab.get(f"/api/customers/{customer}/inventory")
    assert r.status_code == 200
    return r.json()["data"]


def test_duplicate_deliveries_of_one_event_fulfil_once(lab, customer):
    order = lab.order("prod_enamel_mug", 3, customer)["order"]
    pi = order["payment_intent"]
    intent = pay_with_test_card(lab.gateway(), pi, "success")
    assert intent["status"] == "succeeded"
    # The test's own event, before the offline Stripe's (about 1 s later) arrives.
    event = payment_intent_event(intent, event_id=test_event_id())
    first = lab.post_event(event)
    assert first.status_code == 200 and first.json()["received"] is True
    assert lab.order_status(order["id"])["status"] == "paid"
    second = lab.post_event(event)
    assert second.status_code == 200 and second.json()["received"] is True

    wait_for_real_delivery(lab, pi)
    paid = lab.order_status(order["id"])
    assert (paid["status"], paid["amount_paid"], paid["amount_due"], paid["attempts"]) == (
        "paid", 3600, 0, 1)
    assert len(inventory_rows(lab, order["id"])) == 1
    # Two distinct events (the test's and the offline Stripe's): one fulfilled the order.
    assert sorted(e["outcome"] for e in events_for(lab, pi)) == ["already_paid", "fulfilled"]


@pytest.mark.parametrize("same_event_id", [True, False], ids=["one-event", "distinct-events"])
def test_concurrent_deliveries_fulfil_once(lab, customer, same_event_id):
    order = lab.order("prod_drip_bags", 4, customer)["order"]
    pi = order["payment_intent"]
    intent = pay_with_test_card(lab.gateway(), pi, "success")
    event = payment_intent_event(intent, event_id=test_event_id())
    barrier = threading.Barrier(10)
    answers: list = [None] * 10

    def deliver(i: int) -> None:
        mine = event if same_event_id else {**event, "id": test_event_id()}
        barrier.wait()
        answers[i] = lab.post_event(mine)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    wait_for_real_delivery(lab, pi)
    assert len(inventory_rows(lab, order["id"])) == 1
    paid = lab.order_status(order["id"])
    assert (paid["status"], paid["amount_paid"], paid["attempts"]) == ("paid", 2000, 1)
    outcomes = [e["outcome"] for e in events_for(lab, pi)]
    assert outcomes.count("fulfilled") == 1
    assert len(outcomes) == (2 if same_event_id else 11)


def test_forged_amount_for_a_succeeded_payment_is_not_what_fulfils(lab, customer):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    pi = order["payment_intent"]
    intent = pay_with_test_card(lab.gateway(), pi, "success")
    event = payment_intent_event({**intent, "amount": 1}, event_id=test_event_id())
    r = lab.post_event(event)
    assert r.status_code == 200, r.text
    forged = lab.query("SELECT outcome FROM webhook_events WHERE id = ?", event["id"])
    assert [e["outcome"] for e in forged] == ["amount_mismatch"]
    # The offline Stripe's own, genuine event is what pays the order.
    assert wait_for_real_delivery(lab, pi)["outcome"] == "fulfilled"
    assert len(inventory_rows(lab, order["id"])) == 1


def test_payment_of_a_changed_amount_does_not_fulfil(lab, customer):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    pi = order["payment_intent"]
    gateway = lab.gateway()
    # Someone with the client's help changes what the PaymentIntent charges, then pays.
    gateway.client.v1.payment_intents.update(pi, params={"amount": 100})
    paid = pay_with_test_card(gateway, pi, "success")
    # (The offline Stripe stores an updated amount as the string "100".)
    assert (paid["status"], int(paid["amount"])) == ("succeeded", 100)
    real = wait_for_real_delivery(lab, pi)
    assert real["outcome"] == "amount_mismatch" and real["order_id"] == order["id"]
    status = lab.order_status(order["id"])
    assert (status["status"], status["amount_paid"]) == ("created", 0)
    assert inventory_rows(lab, order["id"]) == []
    assert inventory_rows_api(lab, customer) == []


def test_payment_on_another_payment_intent_naming_the_order_does_not_fulfil(lab, customer):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    gateway = lab.gateway()
    other = gateway.client.v1.payment_intents.create(params={
        "amount": order["amount"], "currency": order["currency"],
        "metadata": {"order_id": order["id"]}})
    pay_with_test_card(gateway, other.id, "success")
    assert wait_for_real_delivery(lab, other.id)["outcome"] == "unknown_order"
    assert lab.order_status(order["id"])["status"] == "created"
    assert inventory_rows(lab, order["id"]) == []


def test_payment_failed_after_paid_does_not_unpay_the_order(lab, customer):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    pi = order["payment_intent"]
    pay_with_test_card(lab.gateway(), pi, "success")
    paid = lab.wait_for_status(order["id"], "paid")
    wait_for_real_delivery(lab, pi)
    intent = lab.gateway().retrieve_payment_intent(pi)
    failed = {**intent, "status": "requires_payment_method",
              "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline",
                                     "message": "Your card was declined."}}
    r = lab.post_event(payment_intent_event(failed, "payment_intent.payment_failed",
                                            event_id=test_event_id()))
    assert r.status_code == 200 and r.json()["received"] is True
    assert lab.order_status(order["id"]) == paid
    assert len(inventory_rows(lab, order["id"])) == 1
