"""Checkout Sessions on the offline stand-in (tutorial_server/lab/stand_in_checkout.py), against
a real stand-in process through stripe-python's typed client, with its events received by a
real HTTP endpoint and their signatures checked as the merchant server checks them.
"""
from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from tutorial_server.config import load_settings
from tutorial_server.gateway import make_gateway
from tutorial_server.lab.offline_stripe import OfflineBackend, register_webhook
from tutorial_server.notebook.customer import complete_3ds, pay_with_test_card

SECRET = "whsec_" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    backend = OfflineBackend(log_path=tmp_path_factory.mktemp("stand-in") / "stand-in.log")
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def events(stand_in):
    """Every event the stand-in delivers, verified with the endpoint's secret: a queue."""
    received: queue.Queue = queue.Queue()

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event = stripe.Webhook.construct_event(body, self.headers["Stripe-Signature"],
                                                   SECRET)
            received.put(event.to_dict())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    register_webhook(stand_in.url, f"http://127.0.0.1:{server.server_port}/webhook", SECRET,
                     stand_in.key)
    yield received
    server.shutdown()


@pytest.fixture(scope="module")
def gateway(stand_in):
    return make_gateway(replace(load_settings({}), secret_key=stand_in.key),
                        backend_url=stand_in.url)


def new_session(gateway, **overrides) -> dict:
    order = "ord_" + secrets.token_hex(6)
    params = {"mode": "payment", "client_reference_id": order, "metadata": {"order_id": order},
              "payment_intent_data": {"metadata": {"order_id": order}},
              "success_url": "http://127.0.0.1:4242/checkout/done?session_id={CHECKOUT_SESSION_ID}",
              "cancel_url": "http://127.0.0.1:4242/shop/",
              "line_items": [{"quantity": 3, "price_data": {
                  "currency": "inr", "unit_amount": 49900,
                  "product_data": {"name": "Hoodie"}}}]}
    params.update(overrides)
    return gateway.client.v1.checkout.sessions.create(params=params).to_dict()


def payment(stand_in, session_id: str) -> requests.Response:
    return requests.get(f"{stand_in.url}/_lab/checkout/sessions/{session_id}/payment",
                        headers={"Authorization": f"Bearer {stand_in.key}"}, timeout=10)


def events_about(received: queue.Queue, ids: set[str], count: int, timeout: float = 15):
    """The next `count` events whose object is one of `ids` (others are dropped)."""
    found, deadline = [], time.monotonic() + timeout
    while len(found) < count:
        event = received.get(timeout=max(0.1, deadline - time.monotonic()))
        if event["data"]["object"]["id"] in ids:
            found.append(event)
    return found


def test_a_session_is_priced_from_its_line_items_and_opens_unpaid(gateway, stand_in):
    session = new_session(gateway)
    assert session["id"].startswith("cs_test_")
    assert (session["amount_total"], session["currency"]) == (3 * 49900, "inr")
    assert (session["status"], session["payment_status"], session["payment_intent"]) == \
        ("open", "unpaid", None)
    assert session["url"] == f"/offline-checkout/{session['id']}"
    again = gateway.client.v1.checkout.sessions.retrieve(session["id"]).to_dict()
    assert again == session
    items = gateway.client.v1.checkout.sessions.line_items.list(session["id"]).to_dict()
    assert [(i["description"], i["quantity"], i["amount_total"]) for i in items["data"]] == \
        [("Hoodie", 3, 149700)]


def test_paying_its_payment_intent_completes_the_session_and_both_events_arrive(
        gateway, stand_in, events):
    session = new_session(gateway)
    pay = payment(stand_in, session["id"]).json()
    assert pay["client_secret"].startswith(pay["payment_intent"] + "_secret_")
    intent = pay_with_test_card(gateway, pay["payment_intent"])
    assert intent["status"] == "succeeded"
    assert intent["metadata"] == {"order_id": session["client_reference_id"]}
    got = events_about(events, {session["id"], pay["payment_intent"]}, 2)
    assert sorted(e["type"] for e in got) == ["checkout.session.completed",
                                              "payment_intent.succeeded"]
    completed = next(e for e in got if e["type"] == "checkout.session.completed")
    assert completed["data"]["object"]["payment_intent"] == pay["payment_intent"]
    assert (completed["data"]["object"]["status"],
            completed["data"]["object"]["payment_status"]) == ("complete", "paid")
    now = gateway.client.v1.checkout.sessions.retrieve(session["id"]).to_dict()
    assert (now["status"], now["url"]) == ("complete", None)


def test_a_declined_card_then_a_good_one_completes_it_on_the_same_payment_intent(
        gateway, stand_in, events):
    session = new_session(gateway)
    first = payment(stand_in, session["id"]).json()["payment_intent"]
    declined = pay_with_test_card(gateway, first, "declined")
    assert declined["status"] == "requires_payment_method"
    assert declined["last_payment_error"]["code"] == "card_declined"
    failed = events_about(events, {first}, 1)[0]
    assert failed["type"] == "payment_intent.payment_failed"
    assert failed["data"]["object"]["last_payment_error"]["charge"]
    again = payment(stand_in, session["id"]).json()
    assert (again["payment_intent"], again["intent_status"]) == \
        (first, "requires_payment_method")
    assert pay_with_test_card(gateway, first)["status"] == "succeeded"
    completed = events_about(events, {session["id"]}, 1)[0]
    assert completed["data"]["object"]["payment_intent"] == first


def test_3d_secure_failed_keeps_it_open_and_completed_closes_it(gateway, stand_in):
    session = new_session(gateway)
    intent_id = payment(stand_in, session["id"]).json()["payment_intent"]
    assert pay_with_test_card(gateway, intent_id, "3ds")["status"] == "requires_action"
    complete_3ds(gateway, intent_id, approve=False)
    assert gateway.client.v1.checkout.sessions.retrieve(session["id"]).status == "open"
    intent_id = payment(stand_in, session["id"]).json()["payment_intent"]
    assert pay_with_test_card(gateway, intent_id, "3ds")["status"] == "requires_action"
    complete_3ds(gateway, intent_id, approve=True)
    assert gateway.client.v1.checkout.sessions.retrieve(session["id"]).status == "complete"


def test_an_expired_session_cancels_its_payment_intent_and_says_so(gateway, stand_in, events):
    session = new_session(gateway)
    intent_id = payment(stand_in, session["id"]).json()["payment_intent"]
    expired = gateway.client.v1.checkout.sessions.expire(session["id"]).to_dict()
    assert (expired["status"], expired["url"]) == ("expired", None)
    assert gateway.retrieve_payment_intent(intent_id)["status"] == "canceled"
    assert events_about(events, {session["id"]}, 1)[0]["type"] == "checkout.session.expired"
    with pytest.raises(stripe.InvalidRequestError, match=r"status in \[open\]"):
        gateway.client.v1.checkout.sessions.expire(session["id"])


@pytest.mark.parametrize("overrides, param", [
    ({"mode": "subscription"}, "mode"),
    ({"amount": 1}, "amount"),
    ({"line_items": []}, "line_items"),
    ({"line_items": [{"price": "price_123", "quantity": 1}]}, "line_items[0][price]"),
    ({"line_items": [{"quantity": 0, "price_data": {
        "currency": "inr", "unit_amount": 100, "product_data": {"name": "x"}}}]},
     "line_items[0][quantity]"),
    ({"line_items": [{"quantity": 1, "price_data": {
        "currency": "INR", "unit_amount": 100, "product_data": {"name": "x"}}}]},
     "line_items[0][price_data][currency]"),
    ({"line_items": [
        {"quantity": 1, "price_data": {"currency": "inr", "unit_amount": 100,
                                       "product_data": {"name": "x"}}},
        {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 100,
                                       "product_data": {"name": "y"}}}]}, "line_items"),
    ({"success_url": "javascript:alert(1)"}, "success_url"),
    ({"expires_at": int(time.time()) + 60}, "expires_at"),
])
def test_a_bad_request_is_refused_naming_the_parameter_and_creates_nothing(
        gateway, stand_in, overrides, param):
    before = requests.get(f"{stand_in.url}/v1/payment_intents",
                          headers={"Authorization": f"Bearer {stand_in.key}"}, timeout=10)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        new_session(gateway, **overrides)
    assert refused.value.http_status == 400
    assert refused.value.param == param
    after = requests.get(f"{stand_in.url}/v1/payment_intents",
                         headers={"Authorization": f"Bearer {stand_in.key}"}, timeout=10)
    assert len(after.json()["data"]) == len(before.json()["data"])


def test_an_unknown_session_is_a_404_in_stripes_shape(gateway):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        gateway.client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_the_session_routes_need_the_labs_key(stand_in):
    answer = requests.post(f"{stand_in.url}/v1/checkout/sessions", data={"mode": "payment"},
                           headers={"Authorization": "Bearer sk_test_" + "x" * 24}, timeout=10)
    assert answer.status_code == 401
    assert json.loads(answer.text)["error"]["code"] == "invalid_api_key"
