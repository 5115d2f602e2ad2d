"""Turning what a request recorded (recorder.Unit) into the trace's messages, in the writer's
thread: who sent what to whom at which step, what Stripe and the server answered (read from
their JSON), with anything shaped like a secret masked.

A message is a dict: at, step (1-6), from, to (client, server, stripe), kind, status, failed,
duration_ms, count, and details by kind (method, path, idempotency_key, event_id, outcome ...).
"""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from .. import alerts, orders
from ..fulfilment import SettleOutcome
from ..reconcile import PAYMENT_INTENT_MISSING, STRIPE_UNREACHABLE

CLIENT, SERVER, STRIPE = "client", "server", "stripe"
NOTEBOOK = "notebook"  # the learner's own code, signing events with the lab's secret

# A delivery the lab's own code forged (a notebook, the lab's `trigger` and `events resend`)
# carries this header, which neither Stripe nor the offline stand-in ever sends; the trace draws
# it from "Your notebook", not from Stripe. Why a header and not a field of the signed body:
# - the header is read only on deliveries whose signature verified, i.e. sent by Stripe or by
#   someone holding the lab's secret. Anyone else is refused and drawn on no order at all, so a
#   stranger cannot use it to add or relabel anything;
# - whoever holds the secret can sign anything: to the server they ARE Stripe, and no mark
#   could tell their events from Stripe's. The mark is the lab's own courtesy to its learner;
# - a body field would be covered by the signature, but a redelivery of Stripe's own event
#   (06's "Stripe delivers an event twice", 07's replay) must stay byte for byte Stripe's body;
# - only the trace's words depend on it. The server's handling never reads it (webhooks.py
#   verifies, re-reads the PaymentIntent and fulfils exactly as for Stripe's events), so
#   someone able to add or strip headers between Stripe and the server (who could as well drop
#   the delivery) changes a label, never an order.
SIGNED_BY_HEADER = "Tutorial-Signed-By"

# Anything shaped like a secret is masked before it is stored, whatever field it is in; a
# client secret (pi_..._secret_...) becomes the PaymentIntent id it belongs to.
_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[0-9A-Za-z_]+|\bwhsec_[0-9A-Za-z_]+")
_CLIENT_SECRET = re.compile(r"\b(pi_[0-9A-Za-z]+)_secret_[0-9A-Za-z_]+")
# A Checkout Session's id is its hosted page's address (whoever has it can open the page), and
# the trace is for the whole class to read: it keeps a few characters to tell sessions apart.
_CHECKOUT_SESSION = re.compile(r"\b(cs_(?:test|live)_[0-9A-Za-z]{6})[0-9A-Za-z]+")
SESSION_EVENT_PREFIX = "checkout.session."

# What a handler did that went wrong (drawn with a cross); every other outcome is normal work.
FAILED_OUTCOMES = (SettleOutcome.AMOUNT_MISMATCH, SettleOutcome.UNKNOWN_ORDER,
                   STRIPE_UNREACHABLE, PAYMENT_INTENT_MISSING, alerts.REFUND_FAILED,
                   alerts.DISPUTE_LOST)
# Outcomes that mean the customer's payment (step 5) happened: drawn before the report of it.
PAYMENT_OUTCOMES = (SettleOutcome.FULFILLED, SettleOutcome.ATTEMPT_RECORDED,
                    SettleOutcome.FULFILLED_AFTER_CANCEL)


def clean(text: str) -> str:
    text = _CLIENT_SECRET.sub(r"\1 (client secret hidden)", text)
    text = _CHECKOUT_SESSION.sub("\\1…", text)
    return _SECRET.sub(lambda m: m.group(0).split("_")[0] + "_...hidden", text)


def message(step: int, sender: str, receiver: str, kind: str, *, status: Any = None,
            failed: bool = False, duration_ms: float | None = None, at: float,
            **detail: Any) -> dict:
    return {"at": at, "step": step, "from": sender, "to": receiver, "kind": kind,
            "status": None if status is None else str(status), "failed": failed,
            "duration_ms": None if duration_ms is None else round(duration_ms, 2),
            "count": 1, **{k: v for k, v in detail.items() if v is not None}}


def _json(body) -> dict | None:
    if body is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _header(headers, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


# --- the server's requests to Stripe ------------------------------------------------------------

def _stripe_step(unit_step: int, method: str, path: str) -> int:
    # Everything POST /api/orders asks of Stripe is step 3, and so is a PaymentIntent created
    # for the checkout page; one created for a retry after a decline (checkout confirm)
    # belongs to the customer's step 5. The same for a Checkout Session (the other way).
    if unit_step == 1 or (unit_step == 4 and method.upper() == "POST"
                          and path in ("/v1/payment_intents", "/v1/checkout/sessions")):
        return 3
    return unit_step


def stripe_call(unit_step: int, call: tuple) -> dict:
    """One request to Stripe: only PaymentIntent and Checkout Session answers and errors are
    read at all."""
    at, seconds, method, url, headers, code, body, error = call
    path = urlsplit(url).path
    line = message(_stripe_step(unit_step, method, path), SERVER, STRIPE, "stripe",
                   status="unreachable" if code is None else code,
                   failed=code is None or code >= 400, duration_ms=seconds * 1000, at=at,
                   method=method.upper(), path=path, error=error,
                   idempotency_key=_header(headers, "Idempotency-Key"))
    data = _json(body) if code is not None and (code >= 400 or path.startswith(
        ("/v1/payment_intents", "/v1/checkout/sessions"))) else None
    if data is None:
        return line
    if code >= 400:
        err = data.get("error") if isinstance(data.get("error"), dict) else {}
        line["error"] = err.get("decline_code") or err.get("code") or err.get("type")
    elif data.get("object") == "checkout.session":
        line.update({k: v for k, v in (("object_id", data.get("id")),
                                       ("session_status", data.get("status"))) if v is not None})
    else:
        line.update({k: v for k, v in (("object_id", data.get("id")),
                                       ("intent_status", data.get("status"))) if v is not None})
        pay_error = data.get("last_payment_error")
        if isinstance(pay_error, dict):
            line["error"] = pay_error.get("decline_code") or pay_error.get("code") or "payment failed"
    line["failed"] = line["failed"] or bool(line.get("error"))
    return line


# --- a request about an order --------------------------------------------------------------------

def request_messages(db, item: tuple) -> tuple[str | None, list[dict], bool]:
    """(order id, its messages, True if they are one poll to fold into the last line)."""
    unit, code, body, method, path, key, replayed, ended = item
    step, calls_step, kind = unit.spec
    duration = (ended - unit.started) * 1000
    stripe_lines = [stripe_call(calls_step, c) for c in unit.calls]
    checks = [line for c in unit.checks for line in check_messages(c)]
    before = [m for m in checks if m["kind"] == "payment"]
    after = [m for m in checks if m["kind"] != "payment"]
    if kind == "reconcile":
        return unit.order_id, [*before, *stripe_lines, *after], False
    if kind == "webhook":
        order_id, lines = webhook_messages(db, unit, code, duration)
        return order_id, [*lines[:-1], *before, lines[-1], *stripe_lines, *after] if lines \
            else [], False
    data = _json(body) or {}
    order = data.get("order") if isinstance(data.get("order"), dict) else {}
    if kind == "order":
        if code != 201:
            return None, [], False
        order_id = order.get("id")
        request_line = message(1, CLIENT, SERVER, "request", at=unit.at, method="POST",
                               path=path, replayed=replayed or None, idempotency_key=key,
                               product=order.get("product"), quantity=order.get("quantity"))
        lines = [request_line]
        if not replayed:
            lines.append(message(2, SERVER, SERVER, "priced", at=unit.at + 0.0001,
                                 amount=order.get("amount"), currency=order.get("currency")))
        lines += stripe_lines
        lines.append(message(4, SERVER, CLIENT, "answer", status=code, duration_ms=duration,
                             at=unit.at + duration / 1000, replayed=replayed or None,
                             purpose="order", payment_intent=order.get("payment_intent"),
                             client_secret=bool(data.get("client_secret")) or None,
                             checkout_session=_session_id(data.get("checkout_session"))))
        return order_id if isinstance(order_id, str) else None, lines, False
    if unit.order_id is None:
        return None, [], False
    if kind == "poll":
        return unit.order_id, [message(step, CLIENT, SERVER, "poll", at=unit.at, status=code,
                                       failed=code >= 400, method=method, path=path,
                                       order_status=order.get("status"))], True
    answer = message(step, SERVER, CLIENT, "answer", status=code, failed=code >= 400,
                     duration_ms=duration, at=unit.at + duration / 1000, purpose=kind)
    error = data.get("error")
    if isinstance(error, dict):
        answer["error"] = error.get("code") or error.get("type")
    elif data:
        answer["order_status"] = order.get("status")
        intent = data.get("payment_intent") if isinstance(data.get("payment_intent"), dict) else {}
        answer.update({k: v for k, v in (("payment_intent", intent.get("id")),
                                         ("intent_status", intent.get("status"))) if v})
        intent_error = intent.get("last_payment_error")
        if isinstance(intent_error, dict):
            answer["error"] = intent_error.get("decline_code") or intent_error.get("code")
            answer["failed"] = True
    request_line = message(step, CLIENT, SERVER, "request", at=unit.at, method=method,
                           path=path, purpose=kind)
    return unit.order_id, [*before, request_line, *stripe_lines, *after, answer], False


def _session_id(session) -> str | None:
    """The Checkout Session's id in an answer to the client (the other way), else None."""
    session_id = session.get("id") if isinstance(session, dict) else None
    return session_id if isinstance(session_id, str) else None


# --- step 6: webhooks, syncs and reconciles ------------------------------------------------------

def _payment_line(intent: dict, at: float, declined: bool, paid_at=None,
                  where: str | None = None) -> dict:
    """The customer's payment itself went from the browser to Stripe: the server knows of it
    only from Stripe (a webhook, a sync). Drawn as step 5, before the message that told it.
    `where`: "stripes_page" for an order paid on Stripe's hosted page (the other way)."""
    error = intent.get("last_payment_error")
    error = error if isinstance(error, dict) else {}
    return message(5, CLIENT, STRIPE, "payment", at=at, reported_by="stripe", where=where,
                   paid_at=paid_at, payment_intent=intent.get("id"),
                   intent_status="requires_payment_method" if declined else intent.get("status"),
                   error=(error.get("decline_code") or error.get("code") or "declined")
                   if declined else None, failed=declined)


def webhook_messages(db, unit, code: int, duration: float) -> tuple[str | None, list[dict]]:
    """A verified delivery, drawn on the order it is about (the PaymentIntent's
    metadata.order_id, or for a charge, refund or dispute the order its PaymentIntent pays)."""
    if unit.webhook is None:
        return None, []
    what, first, second = unit.webhook
    if what == "refused":
        # Its signature failed: nothing says Stripe sent it, so it is drawn on no order (and
        # uses none of an order's room); the dashboard's list of deliveries shows it instead.
        return None, []
    event, outcome = first, second
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    intent = data.get("object") if isinstance(data.get("object"), dict) else {}
    session = None
    if str(event.get("type")).startswith(SESSION_EVENT_PREFIX):
        # A Checkout Session's event: the payment it reports is its PaymentIntent's.
        session = intent
        paid = session.get("payment_status") == "paid"
        intent = {"id": session.get("payment_intent"), "metadata": session.get("metadata"),
                  "status": "succeeded" if paid else session.get("status")}
    metadata = intent.get("metadata") if isinstance(intent.get("metadata"), dict) else {}
    order_id = metadata.get("order_id")
    if not isinstance(order_id, str) and isinstance(intent.get("payment_intent"), str):
        row = orders.order_paid_by(db, intent["payment_intent"])
        order_id = row["id"] if row else None
    if not isinstance(order_id, str):
        return None, []
    signed_by = str(unit.signed_by)[:40] if unit.signed_by else None
    line = message(6, NOTEBOOK if signed_by else STRIPE, SERVER, "webhook", at=unit.at,
                   status=code, duration_ms=duration, event_id=str(event.get("id"))[:80],
                   event_type=str(event.get("type"))[:80], signature="verified",
                   outcome=outcome, failed=outcome in FAILED_OUTCOMES,
                   payment_intent=intent.get("id"), signed_by=signed_by,
                   checkout_session=_session_id(session))
    lines = [line]
    if outcome in PAYMENT_OUTCOMES:
        created = event.get("created")
        order = orders.get_order(db, order_id)
        lines.insert(0, _payment_line(
            intent, unit.at, event.get("type") in ("payment_intent.payment_failed",
                                                   "checkout.session.async_payment_failed"),
            paid_at=created if isinstance(created, (int, float)) else None,
            where="stripes_page" if order and order["pay_with"] == "checkout_session" else None))
    return order_id[:64], lines


def check_messages(check: tuple) -> list[dict]:
    """A sync's or reconcile's note of what it settled, after the payment it found (if any)."""
    started, at, _order_id, payment_intent, outcome, intent, who = check
    lines = []
    if outcome in PAYMENT_OUTCOMES and intent:
        # The customer paid (or was declined) at Stripe before this check found out.
        error = intent.get("last_payment_error") or {}
        lines.append(message(5, CLIENT, STRIPE, "payment", at=started, reported_by="stripe",
                             payment_intent=intent.get("id"), intent_status=intent.get("status"),
                             error=error.get("decline_code") or error.get("code"),
                             failed=bool(error)))
    lines.append(message(6, SERVER, SERVER, "reconcile", at=at, by=who, outcome=outcome,
                         payment_intent=payment_intent,
                         intent_status=(intent or {}).get("status"),
                         failed=outcome in FAILED_OUTCOMES))
    return lines
