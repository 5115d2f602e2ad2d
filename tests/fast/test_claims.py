"""Claims of an Idempotency-Key before Stripe is called (tutorial_server/claims.py): a failed
Stripe call releases the claim, a vanished holder's claim goes stale, a request that finds the
key still at Stripe waits, then answers Stripe's 409 idempotency_key_in_use.
(The concurrent requests themselves: tests/test_refunds_concurrency.py, against a real lab.)
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

from tutorial_server import claims
from tutorial_server.config import load_settings
from tutorial_server.db import get_db, transaction
from tutorial_server.gateway import make_gateway
from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from .test_webhook_edges import closed_port_url


def paid(fast_lab, customer) -> dict:
    order = fast_lab.order("prod_enamel_mug", 1, customer)["order"]
    intent = pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "success")
    assert fast_lab.post_event(payment_intent_event(intent)).json()["outcome"] == "fulfilled"
    return fast_lab.order_status(order["id"])


def claim_left_at_stripe(fast_lab, order: dict, key: str, claimed_at: int) -> None:
    """The row a first refund request leaves while it is at Stripe (or if it vanished there)."""
    fingerprint = hashlib.sha256(json.dumps([order["id"], None]).encode()).hexdigest()
    with sqlite3.connect(fast_lab.db_path) as db:
        db.execute("INSERT INTO refund_requests (key, order_id, fingerprint, amount, created_at)"
                   " VALUES (?, ?, ?, ?, ?)", (key, order["id"], fingerprint, order["amount"],
                                               claimed_at))


def refund(fast_lab, order_id: str, key: str, body: dict | None = None):
    return fast_lab.post(f"/api/orders/{order_id}/refund", json=body or {},
                         headers={"Idempotency-Key": key})


def test_a_refund_whose_stripe_call_failed_can_be_retried_with_the_same_key(
        app, fast_lab, customer):
    order = paid(fast_lab, customer)
    key = str(uuid.uuid4())
    reachable = app.extensions["gateway"]
    app.extensions["gateway"] = make_gateway(load_settings({}), closed_port_url())
    r = refund(fast_lab, order["id"], key)
    assert r.status_code == 503, r.text
    assert fast_lab.query("SELECT * FROM refund_requests WHERE key = ?", key) == []  # released

    app.extensions["gateway"] = reachable
    r = refund(fast_lab, order["id"], key)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
    again = refund(fast_lab, order["id"], key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["refund"]["id"] == r.json()["refund"]["id"]
    assert fast_lab.order_status(order["id"])["amount_refunded"] == order["amount"]


def test_a_request_finding_its_key_at_stripe_waits_then_answers_409_in_use(
        fast_lab, customer, monkeypatch):
    order = paid(fast_lab, customer)
    key = str(uuid.uuid4())
    # A first request that is still at Stripe: its claim, with no refund yet.
    claim_left_at_stripe(fast_lab, order, key, int(time.time()))
    monkeypatch.setattr(claims, "WAIT_SECONDS", 0.3)
    started = time.monotonic()
    r = refund(fast_lab, order["id"], key)
    assert time.monotonic() - started >= 0.3  # it waited for the first one
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "idempotency_key_in_use"
    assert r.json()["error"]["type"] == "idempotency_error"
    # Another key cannot refund the amount the first request is refunding.
    other = refund(fast_lab, order["id"], str(uuid.uuid4()))
    assert other.status_code == 409 and other.json()["error"]["code"] == "refund_in_progress"


def test_a_claim_whose_holder_vanished_is_taken_over_by_a_retry(fast_lab, customer):
    order = paid(fast_lab, customer)
    key = str(uuid.uuid4())
    claim_left_at_stripe(fast_lab, order, key, int(time.time()) - claims.STALE_SECONDS - 1)
    r = refund(fast_lab, order["id"], key)
    assert r.status_code == 201, r.text
    assert fast_lab.order_status(order["id"])["amount_refunded"] == order["amount"]


def test_an_order_whose_payment_intent_failed_gets_one_on_a_retry_with_the_same_key(
        app, fast_lab, customer):
    key = str(uuid.uuid4())
    body = {"productId": "prod_enamel_mug", "quantity": 1, "customer": customer}
    reachable = app.extensions["gateway"]
    app.extensions["gateway"] = make_gateway(load_settings({}), closed_port_url())
    r = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 503, r.text
    assert fast_lab.query("SELECT * FROM claims") == []  # released, not left blocking

    app.extensions["gateway"] = reachable
    r = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.json()["order"]["payment_intent"] and r.json()["client_secret"]
    assert r.headers.get("Idempotent-Replayed") == "true"  # the order is the first request's


def test_an_order_whose_payment_intent_is_being_created_waits_then_answers_409(
        fast_lab, customer, monkeypatch):
    key = str(uuid.uuid4())
    body = {"productId": "prod_enamel_mug", "quantity": 1, "customer": customer}
    monkeypatch.setattr(claims, "claim", lambda db, what, k: False)  # always someone else's
    monkeypatch.setattr(claims, "WAIT_SECONDS", 0.2)
    r = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_use"


def test_a_claim_whose_server_process_is_gone_is_taken_over_at_once(app):
    """A server killed while creating a PaymentIntent leaves its claim; the restarted server's
    retry must not wait STALE_SECONDS for it (tests/test_server_killed.py does it for real)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with app.app_context():
        db = get_db()
        now = time.time()
        with transaction(db):
            db.execute("INSERT INTO claims (what, key, claimed_at, holder) VALUES (?, ?, ?, ?)",
                       ("payment_intent", "order_dead", now, gone.pid))
            db.execute("INSERT INTO claims (what, key, claimed_at, holder) VALUES (?, ?, ?, ?)",
                       ("payment_intent", "order_alive", now, os.getppid()))
        assert claims.claim(db, "payment_intent", "order_dead") is True
        assert claims.claim(db, "payment_intent", "order_alive") is False
        assert claims.claim(db, "payment_intent", "order_dead") is False  # ours now


def test_a_refund_left_at_stripe_by_a_server_now_gone_is_retried_at_once(
        fast_lab, customer, monkeypatch):
    order = paid(fast_lab, customer)
    key = str(uuid.uuid4())
    # Left two seconds before this server process started: by the server it replaced.
    monkeypatch.setattr(claims, "PROCESS_STARTED", int(time.time()))
    claim_left_at_stripe(fast_lab, order, key, claims.PROCESS_STARTED - 2)
    monkeypatch.setattr(claims, "WAIT_SECONDS", 0.3)
    r = refund(fast_lab, order["id"], key)
    assert r.status_code == 201, r.text
    assert fast_lab.order_status(order["id"])["amount_refunded"] == order["amount"]
