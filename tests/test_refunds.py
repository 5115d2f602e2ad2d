"""After the payment: refunds, disputes and Stripe's amount limits, over HTTP against a real lab
(the server, the offline Stripe and SQLite as their own processes).

Events about refunds and disputes are signed by the tests with the lab's secret (the offline
Stripe sends none), built from real Stripe's resource examples where the shape matters.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
import uuid

import pytest

from tutorial_server.lab import webhook_sender as webhook_delivery
from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS
from tutorial_server.lab.stripe_http import read_recorded
from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import run_cli, wait_for
from .stripe_reference import FIXTURES_NAME, find_reference_dir


def paid_order(lab, customer: str, product: str = "prod_enamel_mug", quantity: int = 1) -> dict:
    """An order the customer paid, once the offline Stripe's own webhook about it has been
    recorded (it arrives about 1 s after the payment; it must not land inside a test's
    before/after comparison of the database)."""
    order = lab.order(product, quantity, customer)["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    wait_for(lambda: lab.query(
        "SELECT 1 FROM webhook_events WHERE payment_intent = ? AND outcome != 'processing'",
        order["payment_intent"]), timeout=10, message="the offline Stripe's webhook")
    paid = lab.order_status(order["id"])
    assert paid["status"] == "paid", paid
    return paid


def refund(lab, order_id: str, body: dict | None = None, key: str | None = None,
           **kw):
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return lab.post(f"/api/orders/{order_id}/refund", json={} if body is None else body,
                    headers=headers, **kw)


def inventory(lab, customer: str) -> list[dict]:
    return lab.get(f"/api/customers/{customer}/inventory").json()["data"]


def assert_error(r, status: int, param: str | None = None, code: str | None = None):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"].strip()
    assert error.get("param") == param
    if code:
        assert error.get("code") == code


def signed_event(event_type: str, obj: dict, event_id: str | None = None) -> dict:
    return {**payment_intent_event(obj, event_type, event_id), "type": event_type}


# --- refunds through the API ------------------------------------------------------------------

def test_full_refund_gives_everything_back_and_takes_the_product_back_once(lab, customer):
    order = paid_order(lab, customer)
    assert [i["order"] for i in inventory(lab, customer)] == [order["id"]]

    r = refund(lab, order["id"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["order"]["status"] == "refunded"
    assert body["order"]["amount_refunded"] == order["amount"] == 1200
    assert body["refund"]["id"].startswith("re_") and body["refund"]["amount"] == 1200
    assert inventory(lab, customer) == []
    # Stripe holds exactly one refund of the whole amount for this payment.
    at_stripe = lab.gateway().refunds_of(order["payment_intent"])
    assert [(x["id"], x["amount"]) for x in at_stripe] == [(body["refund"]["id"], 1200)]

    before = lab.snapshot()
    assert_error(refund(lab, order["id"]), 409, code="charge_already_refunded")
    assert_error(refund(lab, order["id"], {"amount": 1}), 409, code="charge_already_refunded")
    assert lab.snapshot() == before
    assert lab.get(f"/api/orders/{order['id']}/refunds").json()["data"][0]["amount"] == 1200


def test_partial_refunds_add_up(lab, customer):
    order = paid_order(lab, customer)
    first = refund(lab, order["id"], {"amount": 500})
    assert first.status_code == 201, first.text
    assert first.json()["order"]["status"] == "partially_refunded"
    assert first.json()["order"]["amount_refunded"] == 500
    assert len(inventory(lab, customer)) == 1  # a partial refund leaves the goods

    second = refund(lab, order["id"], {"amount": 300})
    assert second.json()["order"]["amount_refunded"] == 800
    assert second.json()["order"]["status"] == "partially_refunded"
    rest = refund(lab, order["id"])  # no amount: what is left
    assert rest.status_code == 201, rest.text
    assert rest.json()["refund"]["amount"] == 400
    assert rest.json()["order"]["status"] == "refunded"
    assert rest.json()["order"]["amount_refunded"] == 1200
    assert inventory(lab, customer) == []
    assert sorted(x["amount"] for x in lab.gateway().refunds_of(order["payment_intent"])) == \
        [300, 400, 500]


def test_over_refund_and_bad_amounts_are_refused_and_change_nothing(lab, customer):
    order = paid_order(lab, customer)
    assert refund(lab, order["id"], {"amount": 1000}).status_code == 201
    before = lab.snapshot()
    # 200 is left: the offline Stripe would accept 201 (it checks nothing), the server does not.
    assert_error(refund(lab, order["id"], {"amount": 201}), 400, "amount", "amount_too_large")
    for bad in (0, -5, 1.5, "100", True, None and 0, [100], {"v": 1}):
        if bad is None:
            continue
        assert_error(refund(lab, order["id"], {"amount": bad}), 400, "amount")
    assert_error(refund(lab, order["id"], {"amount": 10, "reason": "x"}), 400, "reason")
    r = lab.post(f"/api/orders/{order['id']}/refund", json={})  # no Idempotency-Key
    assert_error(r, 400, "Idempotency-Key")
    assert_error(refund(lab, "order_doesnotexist", {"amount": 10}), 404, "id")
    assert lab.snapshot() == before
    assert len(lab.gateway().refunds_of(order["payment_intent"])) == 1

    unpaid = lab.order("prod_enamel_mug", 1, customer)["order"]
    before = lab.snapshot()
    assert_error(refund(lab, unpaid["id"]), 409, code="order_not_paid")
    assert lab.snapshot() == before


def test_a_retried_refund_request_refunds_once(lab, customer):
    order = paid_order(lab, customer)
    key = "refund-" + secrets.token_hex(8)
    first = refund(lab, order["id"], {"amount": 700}, key=key)
    again = refund(lab, order["id"], {"amount": 700}, key=key)  # the answer was lost; retry
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["refund"]["id"] == first.json()["refund"]["id"]
    assert again.json()["order"]["amount_refunded"] == 700
    assert len(lab.gateway().refunds_of(order["payment_intent"])) == 1
    # The same key for another amount is a client bug, refused.
    before = lab.snapshot()
    assert_error(refund(lab, order["id"], {"amount": 100}, key=key), 409, "Idempotency-Key")
    assert lab.snapshot() == before


def test_a_refunded_order_cannot_be_paid_again_by_a_late_event(lab, customer):
    order = paid_order(lab, customer)
    assert refund(lab, order["id"]).status_code == 201
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    r = lab.post_event(payment_intent_event(intent))
    assert r.status_code == 200 and r.json()["outcome"] == "already_paid", r.text
    assert lab.order_status(order["id"])["status"] == "refunded"
    assert inventory(lab, customer) == []
    assert_error(lab.post(f"/api/orders/{order['id']}/cancel", json={}), 409,
                 code="order_already_paid")


# --- refunds Stripe tells the server about (e.g. made in the Dashboard) -----------------------

def charge_refunded_event(lab, order: dict) -> dict:
    gateway = lab.gateway()
    return webhook_delivery.charge_refunded_event(
        gateway, gateway.retrieve_payment_intent(order["payment_intent"]))


def test_charge_refunded_delivered_twice_settles_once(lab, customer):
    order = paid_order(lab, customer)
    # A refund made at Stripe, not through this server (the Dashboard, in test mode).
    made = lab.gateway().client.v1.refunds.create(
        params={"payment_intent": order["payment_intent"], "amount": 450})
    event = charge_refunded_event(lab, order)
    first, second = lab.post_event(event), lab.post_event(event)
    assert first.json()["outcome"] == "partially_refunded", first.text
    assert second.json()["outcome"] == "duplicate"
    assert lab.order_status(order["id"])["amount_refunded"] == 450
    # Another event about the same refund (refund.updated) finds nothing new to settle.
    update = signed_event("refund.updated", {"id": made.id, "object": "refund",
                                             "amount": 450, "status": "succeeded"})
    assert lab.post_event(update).json()["outcome"] == "refund_already_recorded"
    # A doctored snapshot changes nothing: the server re-reads the refunds from Stripe.
    doctored = signed_event("refund.updated", {"id": made.id, "object": "refund",
                                               "amount": 1200, "status": "succeeded"})
    assert lab.post_event(doctored).json()["outcome"] == "refund_already_recorded"
    order_now = lab.order_status(order["id"])
    assert (order_now["status"], order_now["amount_refunded"]) == ("partially_refunded", 450)
    assert len(inventory(lab, customer)) == 1
    rows = lab.query("SELECT * FROM refunds WHERE order_id = ?", order["id"])
    assert [(r["id"], r["amount"]) for r in rows] == [(made.id, 450)]


def test_the_cli_plays_charge_refunded_after_a_refund_made_at_stripe(lab, customer):
    """Offline, `trigger charge.refunded --order ID` plays the event real Stripe would send."""
    order = paid_order(lab, customer)
    lab.gateway().client.v1.refunds.create(
        params={"payment_intent": order["payment_intent"]})  # all of it, at Stripe
    done = run_cli(lab, "trigger", "charge.refunded", "--order", order["id"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"outcome": "refunded"' in done.stdout
    assert lab.webhook_secret not in done.stdout + done.stderr
    assert lab.order_status(order["id"])["status"] == "refunded"
    assert inventory(lab, customer) == []
    # The dashboard shows it: the order's status, and how much went back.
    row = next(o for o in lab.get("/api/dashboard").json()["orders"] if o["id"] == order["id"])
    assert (row["status"], row["refunded"]) == ("refunded", "$12.00")


def test_refund_events_of_the_wrong_shape_are_refused(lab):
    before = lab.snapshot()
    for event in (signed_event("charge.refunded", {"id": "pi_x", "object": "payment_intent"}),
                  signed_event("refund.updated", {"id": "ch_x", "object": "charge"}),
                  signed_event("charge.dispute.created", {"id": "dp_x", "object": "dispute"})):
        r = lab.post_event(event)
        assert r.status_code == 400, r.text
    assert lab.snapshot() == before


# --- disputes ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_dispute() -> dict:
    folder = find_reference_dir()
    if folder is None:
        pytest.skip(f"{FIXTURES_NAME} (real Stripe's resource examples) not found beside the "
                    "repository")
    return json.loads((folder / FIXTURES_NAME).read_text())["resources"]["dispute"]


def test_a_dispute_flags_the_order_once(lab, customer, real_dispute):
    order = paid_order(lab, customer)
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    dispute = copy.deepcopy(real_dispute)
    dispute.update(id="dp_" + secrets.token_hex(10), charge=intent["latest_charge"],
                   payment_intent=order["payment_intent"], amount=order["amount"],
                   currency=order["currency"], reason="fraudulent",
                   status="needs_response")
    event = signed_event("charge.dispute.created", dispute)
    first = lab.post_event(event)
    assert first.status_code == 200 and first.json()["outcome"] == "disputed", first.text
    assert lab.post_event(event).json()["outcome"] == "duplicate"
    again = signed_event("charge.dispute.created", dispute)  # a new event, same dispute
    assert lab.post_event(again).json()["outcome"] == "already_disputed"
    assert lab.order_status(order["id"])["status"] == "disputed"
    assert len(lab.query("SELECT * FROM disputes WHERE order_id = ?", order["id"])) == 1
    # A disputed payment is not refunded by the merchant: the dispute decides.
    before = lab.snapshot()
    assert_error(refund(lab, order["id"]), 409, code="charge_disputed")
    assert lab.snapshot() == before


def test_a_dispute_of_a_charge_stripe_does_not_know_flags_nothing(lab, customer, real_dispute):
    order = paid_order(lab, customer)
    dispute = {**real_dispute, "id": "dp_" + secrets.token_hex(10),
               "charge": "ch_" + secrets.token_hex(10), "payment_intent": order["payment_intent"]}
    r = lab.post_event(signed_event("charge.dispute.created", dispute))
    assert r.json()["outcome"] == "unknown_order", r.text
    assert lab.order_status(order["id"])["status"] == "paid"


# --- Stripe's amount limits, checked before Stripe is asked -----------------------------------

def payment_intents_created() -> int:
    """PaymentIntent creations every process of the session sent to Stripe so far (the lab
    records each request it sends; see stripe_recorder)."""
    return sum(1 for r in read_recorded(os.environ[RECORD_STRIPE_REQUESTS])
               if r["method"] == "POST" and r["path"] == "/v1/payment_intents")


def test_an_order_below_stripes_minimum_is_refused_before_any_stripe_call(lab, customer):
    lab.order("prod_enamel_mug", 1, customer)
    created = payment_intents_created()
    assert created > 0  # the recorder sees the lab's calls
    before = lab.snapshot()
    r = lab.post("/api/orders", json={"productId": "prod_sugar_sachet", "quantity": 1,
                                      "customer": customer})
    assert_error(r, 400, "quantity", "amount_too_small")
    assert "₹0.50" in r.json()["error"]["message"]
    assert lab.snapshot() == before
    assert payment_intents_created() == created  # Stripe was never asked
    ok = lab.order("prod_sugar_sachet", 2, customer)["order"]  # ₹0.60: fine
    assert ok["amount"] == 60 and ok["payment_intent"]


# --- running it for real: the Stripe.js paired with the pinned API version -------------------

def test_test_mode_loads_the_stripe_js_release_paired_with_the_api_version():
    from tutorial_server.pages import REAL_STRIPE_JS
    from tutorial_server.gateway import API_VERSION
    assert API_VERSION.endswith(".endive")
    assert REAL_STRIPE_JS == "https://js.stripe.com/endive/stripe.js"


def test_concurrent_refund_requests_with_different_keys_refund_once(lab, customer):
    """Five clients press "refund" at once, each with its own key: one refund of the whole
    amount, the others refused (the offline Stripe would have made five)."""
    import threading
    order = paid_order(lab, customer)
    answers: list = []
    start = threading.Barrier(5)

    def press():
        start.wait()
        answers.append(refund(lab, order["id"]))
    threads = [threading.Thread(target=press) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409, 409], [r.text for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} <= {
        "refund_in_progress", "charge_already_refunded"}
    assert len(lab.gateway().refunds_of(order["payment_intent"])) == 1
    assert lab.order_status(order["id"])["amount_refunded"] == 1200
