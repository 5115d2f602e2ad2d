"""The HTTP flow against real Stripe test mode, webhooks forwarded by the Stripe CLI.

Runs only with test-mode keys in the environment (STRIPE_SECRET_KEY=sk_test_...,
STRIPE_PUBLISHABLE_KEY=pk_test_..., STRIPE_WEBHOOK_SECRET=the whsec_ `stripe listen` printed)
and with `stripe listen --forward-to localhost:4242/webhook` running. Never faked: without keys
these tests are skipped; without the forwarding they fail and say so. The README's "Tests"
section has the one command that runs them together with the notebooks.
"""
from __future__ import annotations

import os
import socket
import sys

import pytest
import requests

from tutorial_server.config import load_settings
from tutorial_server.lab.process import LabDidNotStart, LabProcess, gateway_for
from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import wait_for

PORT = 4242  # where `stripe listen --forward-to localhost:4242/webhook` sends the events

pytestmark = [
    pytest.mark.stripe_test_mode,
    pytest.mark.skipif(
        not os.environ.get("STRIPE_SECRET_KEY", "").startswith(("sk_test_", "rk_test_")),
        reason="needs real Stripe test-mode keys (STRIPE_SECRET_KEY=sk_test_..., "
               "STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET from `stripe listen`)"),
]

NO_WEBHOOK = ("no webhook reached the lab on port {port} within {seconds} s. Is `stripe listen "
              "--forward-to localhost:{port}/webhook` running, and is STRIPE_WEBHOOK_SECRET the "
              "whsec_... it printed?")


@pytest.fixture(scope="module")
def test_mode_lab(tmp_path_factory, stripe_request_log):
    """`python -m tutorial_server.lab serve --port 4242` in test mode, with this environment's keys.
    Its Stripe requests are recorded like every other lab's, so they are checked too."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is in use: stop the lab running there (the Stripe CLI "
                        f"forwards webhooks to {PORT}, so the test-mode lab must listen on it)")
    tmp = tmp_path_factory.mktemp("test-mode-lab")
    db = tmp / "lab.sqlite3"
    # This environment's own keys (not lab_env's empty ones), on the port the CLI forwards to.
    env = dict(os.environ, TUTORIAL_DB=str(db), PYTHONUNBUFFERED="1",
               **{RECORD_STRIPE_REQUESTS: str(stripe_request_log)})
    lab = LabProcess(db, argv=[sys.executable, "-m", "tutorial_server.lab", "serve", "--port",
                               str(PORT), "--db", str(db)], env=env, log=tmp / "lab.log")
    try:
        lab.start(timeout=30)
    except LabDidNotStart as e:
        pytest.fail(f"the test-mode lab did not start ({e}):\n{(tmp / 'lab.log').read_text()}")
    try:
        yield lab.url
    finally:
        lab.stop()


def _order(url: str, customer: str) -> dict:
    r = requests.post(f"{url}/api/orders", timeout=30,
                      json={"productId": "prod_pour_over_kit", "quantity": 1,
                            "customer": customer})
    assert r.status_code == 201, r.text
    return r.json()


def _wait_for_status(url: str, order_id: str, status: str, seconds: int = 30) -> dict:
    def reached():
        order = requests.get(f"{url}/api/orders/{order_id}", timeout=10).json()["order"]
        return order if order["status"] == status else None
    return wait_for(reached, seconds, interval=0.5,
                    message=NO_WEBHOOK.format(port=PORT, seconds=seconds))


def test_config_says_test_mode(test_mode_lab):
    config = requests.get(f"{test_mode_lab}/api/config", timeout=10).json()
    assert config["mode"] == "test"
    assert config["publishable_key"].startswith("pk_test_")
    assert config["stripe_js_url"] == "https://js.stripe.com/endive/stripe.js"


def test_paid_through_a_forwarded_webhook(test_mode_lab):
    created = _order(test_mode_lab, "cus_testmode_paid")
    order = created["order"]
    assert created["client_secret"].startswith(order["payment_intent"] + "_secret_")
    intent = pay_with_test_card(gateway_for({"mode": "test"}, load_settings()),
                                order["payment_intent"], "success")
    assert intent["status"] == "succeeded" and intent["amount_received"] == order["amount"]
    paid = _wait_for_status(test_mode_lab, order["id"], "paid")
    assert paid["amount_paid"] == order["amount"]


def test_declined_through_a_forwarded_webhook(test_mode_lab):
    order = _order(test_mode_lab, "cus_testmode_declined")["order"]
    intent = pay_with_test_card(gateway_for({"mode": "test"}, load_settings()),
                                order["payment_intent"], "declined")
    assert intent["last_payment_error"]["code"] == "card_declined"
    attempted = _wait_for_status(test_mode_lab, order["id"], "attempted")
    assert attempted["attempts"] == 1 and attempted["amount_paid"] == 0


def _session_order(url: str, customer: str) -> dict:
    r = requests.post(f"{url}/api/orders", timeout=30,
                      json={"productId": "prod_pour_over_kit", "quantity": 1,
                            "customer": customer, "payWith": "checkout_session"})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["client_secret"] is None and answer["order"]["payment_intent"] is None
    assert answer["checkout_session"]["url"].startswith("https://checkout.stripe.com/")
    assert answer["order"]["checkout_session"] == answer["checkout_session"]["id"]
    return answer


def test_a_session_order_canceled_expires_its_session_at_stripe(test_mode_lab):
    """Cancel (the customer left Stripe's page): the server expires the session at Stripe
    first, so nobody can pay on it any more, then cancels the order."""
    answer = _session_order(test_mode_lab, "cus_testmode_session_canceled")
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    again = requests.post(f"{test_mode_lab}/api/orders/{order_id}/checkout-session", timeout=30)
    assert again.status_code == 200 and again.json()["checkout_session"]["id"] == session_id
    r = requests.post(f"{test_mode_lab}/api/orders/{order_id}/cancel", timeout=30)
    assert r.status_code == 200, r.text
    assert (r.json()["order"]["status"], r.json()["order"]["cancellation_reason"]) == (
        "canceled", "abandoned")
    session = gateway_for({"mode": "test"}, load_settings()).retrieve_checkout_session(session_id)
    assert (session["status"], session["url"]) == ("expired", None)


def test_a_session_order_canceled_by_checkout_session_expired(test_mode_lab):
    """Stripe expires the session (here at once, as after its 24 hours) and sends
    checkout.session.expired through the CLI: the server cancels the unpaid order."""
    answer = _session_order(test_mode_lab, "cus_testmode_session_expired")
    gateway = gateway_for({"mode": "test"}, load_settings())
    assert gateway.expire_checkout_session(answer["checkout_session"]["id"])["status"] == \
        "expired"
    canceled = _wait_for_status(test_mode_lab, answer["order"]["id"], "canceled")
    assert canceled["cancellation_reason"] == "checkout_session_expired"
    assert canceled["amount_paid"] == 0
