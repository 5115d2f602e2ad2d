"""One Idempotency-Key sent many times at once, over HTTP against a real lab (the server with
its pool of threads, the offline Stripe, SQLite): one refund, one PaymentIntent.

The offline Stripe ignores Stripe's idempotency keys and accepts over-refunds, so whatever
reaches it twice happens twice: these tests count what it holds.
"""
from __future__ import annotations

import threading
import uuid

import pytest
import requests

from .test_refunds import paid_order, refund


def at_once(n: int, send) -> list:
    """Call `send()` from n threads released together; the answers, in any order."""
    start = threading.Barrier(n)
    answers: list = []
    lock = threading.Lock()

    def one():
        start.wait()
        answer = send()
        with lock:
            answers.append(answer)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == n, "a request did not come back"
    return answers


def payment_intents_of(lab, order_id: str) -> list[str]:
    """The PaymentIntents the offline Stripe holds for this order (its metadata names it),
    listed with plain HTTP (not a package call: the fidelity check would flag it) and the key
    the lab's own gateway uses for its stand-in (whatever that key is, fixed or per lab)."""
    key = lab.gateway().client._requestor.api_key
    found, after = [], None
    while True:
        params = {"limit": 100, **({"starting_after": after} if after else {})}
        page = requests.get(f"{lab.backend_url}/v1/payment_intents", params=params, timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).json()
        found += [p["id"] for p in page["data"]
                  if (p.get("metadata") or {}).get("order_id") == order_id]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


@pytest.mark.parametrize("n", [5, 20])
def test_one_refund_key_sent_at_once_refunds_once_and_every_answer_is_that_refund(
        lab, customer, n):
    order = paid_order(lab, customer)
    key = str(uuid.uuid4())
    answers = at_once(n, lambda: refund(lab, order["id"], key=key))

    assert [r.status_code for r in answers] == [201] * n, [r.text for r in answers]
    assert len({r.json()["refund"]["id"] for r in answers}) == 1
    replayed = sorted(r.headers.get("Idempotent-Replayed") == "true" for r in answers)
    assert replayed == [False] + [True] * (n - 1)  # the first made it; the others replay it
    assert {r.json()["order"]["amount_refunded"] for r in answers} == {order["amount"]}
    at_stripe = lab.gateway().refunds_of(order["payment_intent"])
    assert [x["amount"] for x in at_stripe] == [order["amount"]]
    assert lab.order_status(order["id"])["amount_refunded"] == order["amount"]
    assert lab.order_status(order["id"])["status"] == "refunded"


@pytest.mark.parametrize("n", [5, 20])
def test_different_refund_keys_at_once_never_refund_more_than_was_paid(lab, customer, n):
    order = paid_order(lab, customer)
    answers = at_once(n, lambda: refund(lab, order["id"], body={"amount": 500}))
    made = [r for r in answers if r.status_code == 201]
    assert len(made) == 2, [r.text for r in answers]  # 1,200 paid: two of 500, no third
    assert {r.json()["error"]["code"] for r in answers if r.status_code != 201} <= {
        "refund_in_progress", "amount_too_large"}
    at_stripe = lab.gateway().refunds_of(order["payment_intent"])
    assert sum(x["amount"] for x in at_stripe) == 1000 <= order["amount"]
    assert lab.order_status(order["id"])["amount_refunded"] == 1000


@pytest.mark.parametrize("n", [5, 20])
def test_one_order_key_sent_at_once_makes_one_order_and_one_payment_intent(lab, customer, n):
    key = str(uuid.uuid4())
    body = {"productId": "prod_enamel_mug", "quantity": 1, "customer": customer}
    answers = at_once(n, lambda: lab.post("/api/orders", json=body,
                                          headers={"Idempotency-Key": key}))

    assert [r.status_code for r in answers] == [201] * n, [r.text for r in answers]
    orders = {r.json()["order"]["id"] for r in answers}
    intents = {r.json()["order"]["payment_intent"] for r in answers}
    secrets = {r.json()["client_secret"] for r in answers}
    assert len(orders) == len(intents) == len(secrets) == 1
    (order_id,), (intent,) = orders, intents
    assert payment_intents_of(lab, order_id) == [intent]  # none left unlinked at the stand-in
