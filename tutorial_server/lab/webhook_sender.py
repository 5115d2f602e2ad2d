"""Play Stripe's side of step 6: sign an event and deliver it to the merchant server's /webhook.

The sender, for learners and tests; the server's receiver is webhooks.py.

The offline equivalents of the Stripe CLI's `stripe trigger` and `stripe events resend` (see
`python -m tutorial_server.lab trigger` / `events resend`) and the failure notebook use these, so
learners can replay and forge deliveries on purpose and watch what the server does.

    from tutorial_server.lab.webhook_sender import deliver_event, payment_intent_event
    event = payment_intent_event(intent)                      # shaped like Stripe's
    deliver_event(server_url, event, secret)                  # signed now, with the right secret
    deliver_event(server_url, event, secret, timestamp_offset=-600)   # a stale replay: 400

Signing follows Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" keyed with the endpoint's whsec_ secret>`. The secret is never printed.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests

from ..gateway import API_VERSION, StripeGateway
from ..trace.messages import SIGNED_BY_HEADER

# Every delivery sent from here is forged on purpose (signed with the lab's secret by the lab's
# own code, not by Stripe): it says so in a header Stripe never sends, and the order's trace
# draws it from "Your notebook" (why a header, and why that is safe: trace/messages.py).
NOTEBOOK = "your notebook"


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass
class Delivery:
    """One delivery to /webhook and the server's answer."""

    status: int
    answer: Any  # the JSON answer, or the raw text if it was not JSON
    event_id: str | None = None
    event_type: str | None = None
    payload: bytes | None = None  # what was sent, byte for byte (notebook 07's exercise checks it)
    signature: str | None = None  # the Stripe-Signature header sent (None: none)

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def outcome(self) -> str:
        """What the server did: its `outcome` (e.g. fulfilled, duplicate), or why it refused."""
        if isinstance(self.answer, dict):
            if "outcome" in self.answer:
                return str(self.answer["outcome"])
            if isinstance(self.answer.get("error"), dict):
                return "rejected: " + str(self.answer["error"].get("message"))
        return str(self.answer)

    def __str__(self) -> str:
        return f"{self.status} {self.outcome}"


def deliver(server_url: str, payload: bytes, signature: str | None,
            timeout: float = 15, *, sender: str = NOTEBOOK) -> Delivery:
    """POST raw bytes to the server's /webhook with this Stripe-Signature (None: no header),
    marked as sent by `sender` (the trace's label for it)."""
    headers = {"Content-Type": "application/json; charset=utf-8", SIGNED_BY_HEADER: sender}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    response = requests.post(server_url.rstrip("/") + "/webhook", data=payload,
                             headers=headers, timeout=timeout)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    event_id = event_type = None
    try:
        event = json.loads(payload)
        if isinstance(event, dict):
            event_id, event_type = event.get("id"), event.get("type")
    except ValueError:
        pass
    return Delivery(response.status_code, answer, event_id, event_type, payload, signature)


def deliver_event(server_url: str, event: dict, secret: str, *, timestamp_offset: int = 0,
                  timeout: float = 15, sender: str = NOTEBOOK) -> Delivery:
    """Serialize `event`, sign it with `secret` as of now + `timestamp_offset` seconds (negative:
    in the past, as a replay would be), and deliver it."""
    payload = json.dumps(event, indent=2).encode()
    signature = sign_payload(payload, secret, int(time.time()) + timestamp_offset)
    return deliver(server_url, payload, signature, timeout, sender=sender)


def payment_intent_event(intent: dict, event_type: str = "payment_intent.succeeded",
                         event_id: str | None = None) -> dict:
    """A new event about this PaymentIntent, shaped like the ones Stripe sends."""
    return {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event",
            "type": event_type, "created": int(time.time()), "livemode": False,
            "api_version": API_VERSION, "pending_webhooks": 1,
            "data": {"object": intent}}


def charge_refunded_event(gateway: StripeGateway, intent: dict,
                          event_id: str | None = None) -> dict:
    """A charge.refunded event about the PaymentIntent's charge, as Stripe sends after a refund
    (the offline stand-in sends none). Its Charge is the one Stripe holds now."""
    charge = gateway.retrieve_charge(intent["latest_charge"])
    snapshot = {"id": charge["id"], "object": "charge", "amount": charge.get("amount"),
                "amount_refunded": charge.get("amount_refunded"),
                "currency": charge.get("currency"), "payment_intent": intent["id"],
                "refunded": charge.get("amount_refunded") == charge.get("amount")}
    return payment_intent_event(snapshot, "charge.refunded", event_id)


def lab_dispute(intent: dict, status: str = "needs_response") -> dict:
    """A Dispute of the PaymentIntent's charge, shaped like real Stripe's (the offline stand-in
    has none). Its id comes from the charge, so the dispute's opening and closing name one."""
    digest = hashlib.sha256(str(intent["latest_charge"]).encode()).hexdigest()[:24]
    return {"id": "dp_" + digest, "object": "dispute", "amount": intent["amount"],
            "currency": intent["currency"], "charge": intent["latest_charge"],
            "payment_intent": intent["id"], "reason": "fraudulent", "status": status,
            "is_charge_refundable": False,
            "evidence_details": {"has_evidence": False, "past_due": False, "submission_count": 0}}


def with_amount(event: dict, amount: int) -> dict:
    """A copy of the event whose data.object.amount says `amount` (a doctored event)."""
    intent = {**event["data"]["object"], "amount": amount}
    return {**event, "data": {**event["data"], "object": intent}}


def events_about(gateway: StripeGateway, payment_intent_id: str,
                 event_type: str | None = None) -> list[dict]:
    """Every event Stripe holds about one PaymentIntent (all pages, not only the first)."""
    return gateway.events_about(payment_intent_id, event_type)
