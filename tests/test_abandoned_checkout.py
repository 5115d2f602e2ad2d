"""Abandoned checkout: POST /api/orders/{id}/cancel, and its races with a payment.
"""
import sqlite3

import pytest
import requests
import stripe

from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from .failure_lab import assert_error_shape, failure_lab  # noqa: F401 (a fixture)
from .running_lab import RunningLab, drop_webhooks, run_cli, wait_for


# --- (d) abandoned checkout: POST /api/orders/{id}/cancel ---------------------------------------

def cancel(lab: RunningLab, order_id: str) -> requests.Response:
    return lab.post(f"/api/orders/{order_id}/cancel")


@pytest.mark.parametrize("before_cancel", ["nothing", "declined", "3ds-pending"])
def test_abandoned_checkout_cancels_the_order_and_its_payment_intent(failure_lab, before_cancel):
    lab = failure_lab
    order = lab.order("prod_enamel_mug", 2, f"cus_cancel_{before_cancel}")["order"]
    pi = order["payment_intent"]
    if before_cancel == "declined":
        pay_with_test_card(lab.gateway(), pi, "declined")
        lab.wait_for_status(order["id"], "attempted")
    elif before_cancel == "3ds-pending":
        assert pay_with_test_card(lab.gateway(), pi, "3ds")["status"] == "requires_action"

    r = cancel(lab, order["id"])
    assert r.status_code == 200, r.text
    canceled = r.json()["order"]
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "abandoned")
    assert canceled["amount_paid"] == 0
    assert lab.gateway().retrieve_payment_intent(pi)["status"] == "canceled"

    # Idempotent: again, the same answer and nothing changes.
    before = lab.snapshot()
    again = cancel(lab, order["id"])
    assert again.status_code == 200 and again.json()["order"] == canceled
    assert lab.snapshot() == before

    # The customer comes back and tries to pay: Stripe refuses; the order stays canceled.
    with pytest.raises(stripe.InvalidRequestError):
        pay_with_test_card(lab.gateway(), pi, "success")
    # Late or replayed events about its PaymentIntent do not resurrect it.
    intent = lab.gateway().retrieve_payment_intent(pi)
    for event_type in ("payment_intent.payment_failed", "payment_intent.succeeded"):
        r = lab.post_event(payment_intent_event(intent, event_type))
        assert r.status_code == 200 and r.json()["outcome"] == "no_change", r.text
    assert lab.order_status(order["id"]) == canceled
    assert lab.get(f"/api/orders/{order['id']}").json()["order"] == canceled


def test_canceling_a_paid_order_is_refused_and_changes_nothing(failure_lab):
    lab = failure_lab
    order = lab.order("prod_drip_bags", 2, "cus_cancel_paid")["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    before = lab.snapshot()
    r = cancel(lab, order["id"])
    assert r.status_code == 409
    error = assert_error_shape(r)
    assert error["code"] == "order_already_paid" and "refund" in error["message"]
    assert lab.snapshot() == before
    assert lab.gateway().retrieve_payment_intent(order["payment_intent"])["status"] == "succeeded"


def test_canceling_an_unknown_order_is_a_404(failure_lab):
    r = cancel(failure_lab, "order_doesnotexist00")
    assert r.status_code == 404
    assert assert_error_shape(r)["param"] == "id"
    assert failure_lab.get("/api/orders/x/cancel").status_code == 405


def test_cancel_races_with_payment(fresh_lab):
    """Races between a cancel and the customer's payment, with the success webhook lost so the
    server only knows what it asks Stripe:
    - the customer paid just before the cancel: the cancel is refused (409) and the order is
      settled as paid, once;
    - a cancel that reached Stripe but not the database (a crash between the two): the cancel
      endpoint and reconcile both finish it;
    - an order canceled in the database only, whose PaymentIntent then succeeded: the money was
      taken, so the order is marked paid and fulfilled, with an error in the log for a person."""
    lab = fresh_lab
    drop_webhooks(lab)
    gateway = lab.gateway()

    paid_first = lab.order("prod_pour_over_kit", 1, "cus_race")["order"]
    pay_with_test_card(gateway, paid_first["payment_intent"], "success")
    r = cancel(lab, paid_first["id"])
    assert r.status_code == 409 and assert_error_shape(r)["code"] == "order_already_paid"
    settled = lab.order_status(paid_first["id"])
    assert (settled["status"], settled["amount_paid"], settled["attempts"]) == ("paid", 1340, 1)
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", paid_first["id"])) == 1

    half_done = lab.order("prod_enamel_mug", 1, "cus_race")["order"]
    gateway.cancel_payment_intent(half_done["payment_intent"])  # Stripe canceled, DB not
    r = cancel(lab, half_done["id"])
    assert r.status_code == 200 and r.json()["order"]["status"] == "canceled"
    reconciled = lab.order("prod_enamel_mug", 1, "cus_race")["order"]
    gateway.cancel_payment_intent(reconciled["payment_intent"])
    result = run_cli(lab, "reconcile")
    assert "1 canceled: their PaymentIntent was canceled at Stripe" in result.stdout
    assert lab.order_status(reconciled["id"])["cancellation_reason"] == "payment_intent_canceled"

    late = lab.order("prod_drip_bags", 3, "cus_race")["order"]
    db = sqlite3.connect(lab.db_path)
    with db:  # canceled here only (say, by a clean-up job), while the customer pays at Stripe
        db.execute("UPDATE orders SET status = 'canceled', cancellation_reason = 'abandoned' "
                   "WHERE id = ?", (late["id"],))
    db.close()
    intent = pay_with_test_card(gateway, late["payment_intent"], "success")
    r = lab.post_event(payment_intent_event(intent))
    assert r.status_code == 200 and r.json()["outcome"] == "fulfilled_after_cancel"
    status = lab.order_status(late["id"])
    assert (status["status"], status["amount_paid"]) == ("paid", 1500)
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", late["id"])) == 1
    again = lab.post_event(payment_intent_event(intent))
    assert again.json()["outcome"] == "already_paid"
    wait_for(lambda: "was canceled (abandoned) but Stripe says" in lab.log(), timeout=5)
