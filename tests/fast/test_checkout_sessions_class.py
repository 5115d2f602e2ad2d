"""The other way in class mode (checkout_sessions.py with learners.py): a session order's
Checkout Session URL is a bearer link (docs/security.md), so only the order's owner gets it.
A classmate is a request from another address, as in test_learners.py.
"""
from __future__ import annotations

import secrets
import pytest

from .test_learners import ADA, MALLORY, call, class_app, join  # noqa: F401

ORDER = {"productId": "prod_enamel_mug", "quantity": 1, "payWith": "checkout_session"}


def ada_orders(client, key=None, headers=None) -> dict:
    r = call(client, "POST", "/api/orders", ADA, key, json=ORDER, headers=headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


def test_only_the_owner_gets_the_session_again(class_app):  # noqa: F811
    client = class_app.test_client()
    key = join(client, "ada").get_json()["learner_key"]
    answer = ada_orders(client, key)
    order_id, session = answer["order"]["id"], answer["checkout_session"]
    assert session["url"] == f"/offline-checkout/{session['id']}" and answer["access"]
    mallory = call(client, "POST", f"/api/orders/{order_id}/checkout-session", MALLORY)
    assert (mallory.status_code, mallory.get_json()["error"]["code"]) == (403,
                                                                        "order_not_yours")
    for who, credentials in ((ADA, {"key": key}),
                             (MALLORY, {"headers": {"X-Order-Access": answer["access"]}})):
        again = call(client, "POST", f"/api/orders/{order_id}/checkout-session", who,
                     **credentials)
        assert again.status_code == 200 and again.get_json()["checkout_session"] == session


def test_a_classmate_replaying_the_key_gets_no_session(class_app):  # noqa: F811
    client = class_app.test_client()
    key = {"Idempotency-Key": "ik_" + secrets.token_hex(8)}
    first = ada_orders(client, headers=key)  # no learner key: the access code is the owner
    replay = call(client, "POST", "/api/orders", MALLORY, json=ORDER, headers=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    answer = replay.get_json()
    assert answer["order"]["id"] == first["order"]["id"]
    assert answer["checkout_session"] is None and answer["client_secret"] is None
    assert "access" not in answer and "checkout_url" not in answer


def test_a_classmate_sees_only_the_start_of_a_session_id(class_app):  # noqa: F811
    """The session id is the address of its page (whose back link, the cancel_url, carries the
    order's access code in class mode): a classmate reading the order, the dashboard or the
    trace sees only its start, and that start opens nothing."""
    client = class_app.test_client()
    key = join(client, "ada").get_json()["learner_key"]
    answer = ada_orders(client, key)
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    bodies = [call(client, "GET", path, MALLORY).get_data(as_text=True) for path in (
        f"/api/orders/{order_id}", "/api/dashboard", f"/api/orders/{order_id}/trace")]
    assert all(body and session_id not in body for body in bodies)
    seen = call(client, "GET", f"/api/orders/{order_id}", MALLORY).get_json()["order"]
    assert seen["checkout_session"] and session_id.startswith(seen["checkout_session"][:-1])
    start = seen["checkout_session"].rstrip("\u2026")
    with pytest.raises(Exception):
        class_app.extensions["gateway"].retrieve_checkout_session(start)
    mine = call(client, "GET", f"/api/orders/{order_id}", ADA, key).get_json()["order"]
    assert mine["checkout_session"] == session_id
