"""After the payment, in the fast tier: a refund that fails (refund.failed), a dispute that
closes (charge.dispute.closed), each settled exactly once whatever the order its events come
in; and an unfulfilable amount mismatch warned about once per order, not every reconcile round.
Events are signed by the tests (tests/signing.py through fast_lab.post_event)."""
from __future__ import annotations

import logging
import uuid

import pytest

from tutorial_server import refunds
from tutorial_server.db import get_db, transaction
from tutorial_server.lab.offline_stripe import fail_refund
from tutorial_server.lab.webhook_sender import (
    charge_refunded_event,
    lab_dispute,
    payment_intent_event,
)
from tutorial_server.notebook.customer import pay_with_test_card
from tutorial_server.reconcile import BackgroundReconcile


def paid(fast_lab, customer, quantity: int = 1) -> dict:
    order = fast_lab.order("prod_enamel_mug", quantity, customer)["order"]
    intent = pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "success")
    assert fast_lab.post_event(payment_intent_event(intent)).json()["outcome"] == "fulfilled"
    return fast_lab.order_status(order["id"])


def refund(fast_lab, order_id: str, amount: int | None = None) -> dict:
    r = fast_lab.post(f"/api/orders/{order_id}/refund",
                      json={} if amount is None else {"amount": amount},
                      headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return r.json()["refund"]


def outcome(fast_lab, event: dict) -> str:
    r = fast_lab.post_event(event)
    assert r.status_code == 200, r.text
    return r.json()["outcome"]


def failed_event(fast_lab, refund_id: str) -> dict:
    """Stripe's refund.failed: the Refund as Stripe holds it now."""
    return payment_intent_event(fast_lab.gateway().retrieve_refund(refund_id), "refund.failed")


def state(fast_lab, order_id: str) -> tuple:
    o = fast_lab.order_status(order_id)
    items = fast_lab.query("SELECT * FROM inventory WHERE order_id = ?", order_id)
    return o["status"], o["amount_refunded"], len(items)


# --- refund.failed ----------------------------------------------------------------------------

def test_a_failed_full_refund_counts_no_more_and_gives_the_goods_back_once(fast_lab, customer):
    order = paid(fast_lab, customer)
    made = refund(fast_lab, order["id"])
    assert state(fast_lab, order["id"]) == ("refunded", 1200, 0)
    fail_refund(fast_lab.backend_url, fast_lab.backend_key, made["id"])  # the bank refused it
    event = failed_event(fast_lab, made["id"])
    assert event["data"]["object"]["status"] == "failed"
    assert outcome(fast_lab, event) == "refund_failed"
    assert state(fast_lab, order["id"]) == ("paid", 0, 1)
    assert outcome(fast_lab, event) == "duplicate"
    # Reported again and late, by other events: nothing changes any more.
    again = failed_event(fast_lab, made["id"])
    late = charge_refunded_event(fast_lab.gateway(), fast_lab.gateway().retrieve_payment_intent(
        order["payment_intent"]))
    assert [outcome(fast_lab, e) for e in (again, late)] == ["refund_already_recorded"] * 2
    assert state(fast_lab, order["id"]) == ("paid", 0, 1)
    [row] = fast_lab.query("SELECT status FROM refunds WHERE order_id = ?", order["id"])
    assert row["status"] == "failed"
    # A stale description of the refund (succeeded) cannot bring it back: failed is final.
    with fast_lab.app.app_context():
        db = get_db()
        with transaction(db):
            stale = {**made, "status": "succeeded", "payment_intent": order["payment_intent"]}
            current = db.execute("SELECT * FROM orders WHERE id = ?", (order["id"],)).fetchone()
            assert refunds.settle_refunds(db, current, [stale]) == "refund_already_recorded"
    assert state(fast_lab, order["id"]) == ("paid", 0, 1)
    # The dashboard says what a person must do, once; the event list shows the failure.
    data = fast_lab.get("/api/dashboard").json()
    [shown] = [o for o in data["orders"] if o["id"] == order["id"]]
    assert len(shown["alerts"]) == 1 and "failed" in shown["alerts"][0], shown
    assert any(e["type"] == "refund.failed" and e["outcome"] == "refund_failed"
               for e in data["events"])


def test_a_failed_partial_refund_puts_the_order_back_to_paid(fast_lab, customer):
    order = paid(fast_lab, customer, quantity=2)
    first, second = refund(fast_lab, order["id"], 500), refund(fast_lab, order["id"], 300)
    assert state(fast_lab, order["id"]) == ("partially_refunded", 800, 1)
    fail_refund(fast_lab.backend_url, fast_lab.backend_key, second["id"])
    assert outcome(fast_lab, failed_event(fast_lab, second["id"])) == "refund_failed"
    assert state(fast_lab, order["id"]) == ("partially_refunded", 500, 1)
    fail_refund(fast_lab.backend_url, fast_lab.backend_key, first["id"])
    assert outcome(fast_lab, failed_event(fast_lab, first["id"])) == "refund_failed"
    assert state(fast_lab, order["id"]) == ("paid", 0, 1)


def test_a_refund_that_failed_before_the_server_heard_of_it_never_counts(fast_lab, customer):
    """Made at Stripe (the Dashboard), failed, and its events arrive failed first."""
    order = paid(fast_lab, customer)
    made = fast_lab.gateway().client.v1.refunds.create(
        params={"payment_intent": order["payment_intent"]})
    fail_refund(fast_lab.backend_url, fast_lab.backend_key, made.id)
    late = charge_refunded_event(fast_lab.gateway(), fast_lab.gateway().retrieve_payment_intent(
        order["payment_intent"]))
    assert outcome(fast_lab, failed_event(fast_lab, made.id)) == "refund_already_recorded"
    assert outcome(fast_lab, late) == "refund_already_recorded"
    assert state(fast_lab, order["id"]) == ("paid", 0, 1)


# --- charge.dispute.closed --------------------------------------------------------------------

def dispute_event(fast_lab, order: dict, event_type: str, status: str) -> dict:
    intent = fast_lab.gateway().retrieve_payment_intent(order["payment_intent"])
    return payment_intent_event(lab_dispute(intent, status), event_type)


def test_a_won_dispute_pays_the_order_again_once(fast_lab, customer):
    order = paid(fast_lab, customer, quantity=2)
    refund(fast_lab, order["id"], 400)
    opened = dispute_event(fast_lab, order, "charge.dispute.created", "needs_response")
    assert outcome(fast_lab, opened) == "disputed"
    won = dispute_event(fast_lab, order, "charge.dispute.closed", "won")
    assert outcome(fast_lab, won) == "dispute_won"
    assert state(fast_lab, order["id"]) == ("partially_refunded", 400, 1)
    assert outcome(fast_lab, won) == "duplicate"
    # The same closing as a new event, then the opening delivered late: nothing reopens it.
    for late in (dispute_event(fast_lab, order, "charge.dispute.closed", "lost"),
                 dispute_event(fast_lab, order, "charge.dispute.created", "needs_response")):
        assert outcome(fast_lab, late) == "dispute_already_closed"
    assert state(fast_lab, order["id"]) == ("partially_refunded", 400, 1)
    [row] = fast_lab.query("SELECT status FROM disputes WHERE order_id = ?", order["id"])
    assert row["status"] == "won"


@pytest.mark.parametrize("opened_first", [True, False])
def test_a_lost_dispute_stays_disputed_with_its_amount(fast_lab, customer, opened_first):
    order = paid(fast_lab, customer)
    opened = dispute_event(fast_lab, order, "charge.dispute.created", "needs_response")
    lost = dispute_event(fast_lab, order, "charge.dispute.closed", "lost")
    outcomes = [outcome(fast_lab, e) for e in ((opened, lost) if opened_first else (lost, opened))]
    assert outcomes == (["disputed", "dispute_lost"] if opened_first
                        else ["dispute_lost", "dispute_already_closed"])
    assert fast_lab.order_status(order["id"])["status"] == "disputed"
    [row] = fast_lab.query("SELECT status, amount FROM disputes WHERE order_id = ?", order["id"])
    assert (row["status"], row["amount"]) == ("lost", 1200)
    [shown] = [o for o in fast_lab.get("/api/dashboard").json()["orders"] if o["id"] == order["id"]]
    assert len(shown["alerts"]) == 1 and "lost" in shown["alerts"][0]


def test_a_closed_dispute_with_an_open_status_is_refused(fast_lab, customer):
    order = paid(fast_lab, customer)
    before = fast_lab.snapshot()
    r = fast_lab.post_event(dispute_event(fast_lab, order, "charge.dispute.closed",
                                          "needs_response"))
    assert r.status_code == 400, r.text
    assert fast_lab.snapshot() == before


# --- an amount mismatch: one warning per order, not one per reconcile round -------------------

def test_two_reconcile_rounds_warn_once_about_a_mismatched_payment(fast_lab, customer, caplog):
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    gateway = fast_lab.gateway()
    gateway.client.v1.payment_intents.update(order["payment_intent"], params={"amount": 100})
    pay_with_test_card(gateway, order["payment_intent"], "success")
    rounds = BackgroundReconcile(fast_lab.app, interval=30, grace=0)
    with caplog.at_level(logging.WARNING):
        first, second = rounds.run_once(), rounds.run_once()
    assert first["amount_mismatch"] == second["amount_mismatch"] == 1
    lines = [r for r in caplog.records if "not fulfilled" in r.getMessage()
             and order["id"] in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "charged 100 usd but the order is 1200 usd" in lines[0].getMessage()
    [shown] = [o for o in fast_lab.get("/api/dashboard").json()["orders"] if o["id"] == order["id"]]
    assert shown["alerts"] == [lines[0].getMessage()]
