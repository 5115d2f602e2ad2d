"""What the webhook suites share: made-up event ids, raw posts, the rejection's shape, the
database-unchanged check, and the signature forgeries (tests/test_webhook_security.py against a
lab process, tests/fast/test_webhooks.py in process)."""
from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import contextmanager

from tutorial_server.lab.webhook_sender import payment_intent_event

from .running_lab import new_webhook_secret, wait_for
from .signing import sign

# Events the tests make up carry this prefix; the offline Stripe's own events do not.
TEST_EVENT = "evt_test_"


def test_event_id() -> str:
    return TEST_EVENT + secrets.token_hex(10)


test_event_id.__test__ = False  # a helper, not a test


@contextmanager
def database_unchanged(lab):
    before = lab.snapshot()
    yield
    assert lab.snapshot() == before, "the webhook changed the database"


def inventory_rows(lab, order_id: str) -> list[sqlite3.Row]:
    return lab.query("SELECT * FROM inventory WHERE order_id = ?", order_id)


def events_for(lab, payment_intent: str) -> list[sqlite3.Row]:
    return lab.query("SELECT * FROM webhook_events WHERE payment_intent = ? ORDER BY id",
                 payment_intent)


def wait_for_real_delivery(lab, payment_intent: str) -> sqlite3.Row:
    """The offline Stripe's own event about this PaymentIntent, once the server recorded it."""
    def delivered():
        rows = [e for e in events_for(lab, payment_intent)
                if not e["id"].startswith(TEST_EVENT)]
        return rows[0] if rows and rows[0]["outcome"] != "processing" else None
    return wait_for(delivered, timeout=5, message=f"the offline Stripe's event for {payment_intent}")


def post_raw(lab, payload: bytes, header: str | None):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return lab.post("/webhook", data=payload, headers=headers)


def assert_rejected(r, param: str | None):
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"].strip()
    assert error["param"] == param


def succeeded_event_for_unknown_intent() -> dict:
    intent = {"id": "pi_" + secrets.token_hex(8), "object": "payment_intent", "amount": 1200,
              "currency": "usd", "status": "succeeded", "metadata": {}}
    return payment_intent_event(intent, event_id=test_event_id())


# --- Rejections: signature ---------------------------------------------------------------------

def _signed(lab, payload, **kw):
    return sign(payload, lab.webhook_secret, **kw)


SIGNATURE_CASES = {
    "no-header": lambda lab, p: None,
    "empty-header": lambda lab, p: "",
    "garbage-header": lambda lab, p: "garbage",
    "non-numeric-timestamp": lambda lab, p: "t=yesterday,v1=" + "0" * 64,
    "no-timestamp": lambda lab, p: _signed(lab, p).split(",", 1)[1],
    "no-v1-signature": lambda lab, p: _signed(lab, p).split(",", 1)[0],
    "v0-scheme-only": lambda lab, p: _signed(lab, p).replace("v1=", "v0="),
    "wrong-signature": lambda lab, p: f"t={int(time.time())},v1={'0' * 64}",
    "another-secret": lambda lab, p: sign(p, new_webhook_secret()),
    "secret-without-prefix": lambda lab, p: sign(p, lab.webhook_secret.removeprefix("whsec_")),
    "301s-old": lambda lab, p: _signed(lab, p, timestamp=int(time.time()) - 301),
    "1h-old": lambda lab, p: _signed(lab, p, timestamp=int(time.time()) - 3600),
    "10min-future": lambda lab, p: _signed(lab, p, timestamp=int(time.time()) + 600),
    "signed-other-body": lambda lab, p: _signed(lab, p.replace(b'"amount": 1200',
                                                               b'"amount": 1')),
    "body-plus-whitespace": lambda lab, p: _signed(lab, p + b" "),
}
