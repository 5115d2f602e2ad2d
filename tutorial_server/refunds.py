"""After the payment: money goes back to the customer (a Refund), once, and the order says so.

    POST /api/orders/<id>/refund  {"amount"?: minor units}  + Idempotency-Key header

1. the server checks the request against its own record (paid? how much is left, counting the
   refunds still at Stripe?) and claims the key, in one write transaction, before it asks
   Stripe (the offline stand-in accepts any refund, over-refunds included, and ignores keys);
   concurrent requests with the same key wait for the first and answer its refund (claims.py);
2. it asks Stripe for a Refund of the order's PaymentIntent, with an idempotency key derived
   from the order and the client's key, so a retried request never refunds twice at Stripe;
3. it settles the order from the Refund Stripe answered with: `amount_refunded`, the status
   `partially_refunded` or `refunded`, and (full refund only) the product leaves the
   customer's inventory, exactly once.

Stripe also reports refunds by webhook (`charge.refunded`, `refund.updated`, `refund.failed`),
e.g. one made in the Dashboard: verified and deduplicated by webhooks.py, settled here the same
way after re-reading the PaymentIntent's refunds from Stripe. Each Refund is recorded by its id,
the order's total is the sum of those counted: each report counts one once; a failed one, never.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import time
from contextlib import nullcontext

import stripe
from flask import Blueprint, current_app, jsonify

from . import alerts, claims, learners, orders
from .db import get_db, transaction
from .errors import ApiError
from .orders_api import order_or_404
from .parsing import idempotency_conflict, idempotency_key, read_refund_amount

log = logging.getLogger(__name__)
bp = Blueprint("refunds", __name__, url_prefix="/api")

EVENT_TYPES = ("charge.refunded", "refund.updated", "refund.failed")
# Stripe's Refund statuses that mean the money is (or is on its way) back to the customer;
# `failed` and `canceled` refunds give nothing back and do not count.
COUNTED = ("pending", "requires_action", "succeeded")

# Outcomes, as recorded against each webhook event and shown on the dashboard.
REFUNDED = "refunded"
PARTIALLY_REFUNDED = "partially_refunded"
REFUND_ALREADY_RECORDED = "refund_already_recorded"
REFUND_FAILED = alerts.REFUND_FAILED
UNKNOWN_ORDER = "unknown_order"

_REFUND_ID = re.compile(r"re_[A-Za-z0-9_]{1,255}")
_CHARGE_ID = re.compile(r"(ch|py)_[A-Za-z0-9_]{1,255}")
_INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,255}")


def refund_idempotency_key(order_id: str, request_key: str) -> str:
    """Stripe's idempotency key for one refund request: the order plus a digest of the client's
    key (which may hold any printable text), well under Stripe's 255 characters."""
    digest = hashlib.sha256(request_key.encode()).hexdigest()[:32]
    return f"{order_id}-refund-{digest}"


# --- POST /api/orders/<id>/refund ------------------------------------------------------------

@bp.post("/orders/<order_id>/refund")
def refund_order(order_id: str):
    key = idempotency_key(required_because="money goes back only once, however often the "
                          "request is retried.")
    db = get_db()
    order = order_or_404(db, order_id)
    learners.require_owner(db, order_id)
    requested = read_refund_amount()
    fingerprint = hashlib.sha256(json.dumps([order_id, requested]).encode()).hexdigest()

    claimed = claims.wait(lambda: _claim(db, key, order_id, fingerprint, requested))
    if claimed["refund_id"]:  # the first request with this key made it: its answer again
        return _answer(db, order_id, _recorded_refund(db, claimed["refund_id"]), replayed=True)
    amount = claimed["amount"]

    # Stripe next, outside any transaction (a network call must not hold the write lock).
    try:
        refund = current_app.extensions["gateway"].create_refund(
            order, amount, refund_idempotency_key(order_id, key))
    except stripe.StripeError as e:
        with transaction(db):  # release the claim: a retry with this key tries again
            db.execute("DELETE FROM refund_requests WHERE key = ? AND refund_id IS NULL", (key,))
        raise _stripe_refused(e) from None

    with transaction(db):
        db.execute("UPDATE refund_requests SET refund_id = ? WHERE key = ?", (refund["id"], key))
        settle_refunds(db, orders.get_order(db, order_id), [refund])
    log.info("order %s: refund %s of %s %s (%s)", order_id, refund["id"], refund.get("amount"),
             refund.get("currency"), refund.get("status"))
    return _answer(db, order_id, refund, replayed=False)


def _claim(db: sqlite3.Connection, key: str, order_id: str, fingerprint: str,
           requested: int | None) -> dict | None:
    """Claim the key (insert its row, refund_id NULL) and return {"amount", "refund_id": None};
    or the first request's {"refund_id"} once it is done; None while it is still at Stripe."""
    now = int(time.time())
    for locked in (False, True):  # a read first, so that waiting requests take no write lock
        with transaction(db) if locked else nullcontext(db):
            known = db.execute("SELECT * FROM refund_requests WHERE key = ?", (key,)).fetchone()
            if known is not None:
                if known["fingerprint"] != fingerprint:
                    raise idempotency_conflict()
                if known["refund_id"]:
                    return {"refund_id": known["refund_id"]}
                if known["created_at"] >= max(now - claims.STALE_SECONDS,
                                              claims.PROCESS_STARTED):
                    return None  # at Stripe now: wait (unless left by a server now gone)
            if not locked:
                continue
            if known is not None:
                # Its holder vanished (the server was killed while at Stripe): take it over;
                # the same Stripe idempotency key makes real Stripe answer its refund, if any.
                db.execute("UPDATE refund_requests SET created_at = ? WHERE key = ?", (now, key))
                return {"amount": known["amount"], "refund_id": None}
            # Read inside the write transaction: a refund settled since has already left
            # `amount_refunded` and the requests in flight (a race otherwise).
            amount = _check_refundable(orders.get_order(db, order_id), requested,
                                       _in_flight(db, order_id))
            db.execute("INSERT INTO refund_requests (key, order_id, fingerprint, amount,"
                       " created_at) VALUES (?, ?, ?, ?, ?)",
                       (key, order_id, fingerprint, amount, now))
            return {"amount": amount, "refund_id": None}
    raise AssertionError("unreachable: the locked pass returns")


def _in_flight(db: sqlite3.Connection, order_id: str) -> int:
    """What refund requests already asked Stripe for, not yet answered: two requests with
    different keys at the same moment must not both refund what is left."""
    return db.execute("SELECT COALESCE(SUM(amount), 0) FROM refund_requests WHERE order_id = ?"
                      " AND refund_id IS NULL", (order_id,)).fetchone()[0]


def _check_refundable(order: sqlite3.Row, requested: int | None, in_flight: int = 0) -> int:
    """The amount to refund now, or an ApiError if this order cannot give it back."""
    status = order["status"]
    if status == "disputed":
        raise ApiError(409, f"Order {order['id']} is disputed: the cardholder's bank decides where "
                       "the money goes now; answer the dispute instead of refunding.",
                       code="charge_disputed")
    if status not in orders.PAID_STATUSES:
        raise ApiError(409, f"Order {order['id']} is {status}, not paid: there is no payment to "
                       "refund (cancel an unpaid order instead).", code="order_not_paid")
    left = order["amount_paid"] - order["amount_refunded"] - in_flight
    if left <= 0 and in_flight:
        raise ApiError(409, f"Another refund of order {order['id']} is under way; retry shortly.",
                       code="refund_in_progress")
    if left <= 0:
        raise ApiError(409, f"Order {order['id']} is already refunded in full.",
                       code="charge_already_refunded")
    if requested is None:
        return left
    if requested > left:
        raise ApiError(400, f"amount {requested} is more than is left to refund ({left} of "
                       f"{order['amount_paid']} {order['currency']}).", param="amount",
                       code="amount_too_large")
    return requested


def _stripe_refused(e: stripe.StripeError) -> ApiError:
    if isinstance(e, stripe.InvalidRequestError):
        # Real Stripe checks too (e.g. a refund already made in the Dashboard): say what it said.
        return ApiError(409, f"Stripe refused the refund: {e.user_message or 'no reason given'}",
                        code=e.code or "refund_refused")
    if isinstance(e, (stripe.AuthenticationError, stripe.PermissionError)):
        return ApiError(503, "Stripe refused the server's API key: check STRIPE_SECRET_KEY.",
                        type="api_error")
    log.warning("refund call failed: %s", type(e).__name__)
    return ApiError(503, "Could not reach Stripe to refund; nothing was changed. Retry with the "
                    "same Idempotency-Key.", type="api_connection_error")


def _recorded_refund(db: sqlite3.Connection, refund_id: str) -> dict:
    row = db.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
    return refund_to_api(row) if row else {"id": refund_id, "object": "refund"}


def _answer(db: sqlite3.Connection, order_id: str, refund: dict, replayed: bool):
    body = {"order": orders.order_to_api(orders.get_order(db, order_id)),
            "refund": {k: refund.get(k) for k in ("id", "object", "amount", "currency",
                                                   "status", "payment_intent")}}
    return jsonify(body), 201, ({"Idempotent-Replayed": "true"} if replayed else {})


def refund_to_api(row: sqlite3.Row) -> dict:
    return {"id": row["id"], "object": "refund", "amount": row["amount"],
            "currency": row["currency"], "status": row["status"], "order": row["order_id"],
            "created": row["created_at"]}


@bp.get("/orders/<order_id>/refunds")
def list_refunds(order_id: str):
    db = get_db()
    order_or_404(db, order_id)
    return jsonify({"object": "list", "data": [refund_to_api(r) for r in db.execute(
        "SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at, id", (order_id,))]})


# --- settling: from the API answer and from webhooks alike ------------------------------------

def settle_refunds(db: sqlite3.Connection, order: sqlite3.Row, refunds: list[dict]) -> str:
    """Record these Refunds of the order (as Stripe describes them now; failed and canceled are
    final) and bring amount_refunded and status in line. Call inside a transaction. Idempotent."""
    for refund in refunds:
        if refund.get("payment_intent") not in (None, order["payment_intent"]) \
                or refund.get("currency") != order["currency"]:
            continue  # not this order's money
        amount = refund.get("amount")
        if not isinstance(amount, int) or amount <= 0 or not isinstance(refund.get("id"), str):
            continue
        db.execute("INSERT INTO refunds (id, order_id, amount, currency, status, created_at)"
                   " VALUES (?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (id) DO UPDATE SET status = CASE WHEN refunds.status IN"
                   " ('failed', 'canceled') THEN refunds.status ELSE excluded.status END",
                   (refund["id"], order["id"], amount, refund["currency"],
                    str(refund.get("status")), int(refund.get("created") or time.time())))
    marks = ",".join("?" * len(COUNTED))
    total = db.execute(f"SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE order_id = ?"
                       f" AND status IN ({marks})", (order["id"], *COUNTED)).fetchone()[0]
    if total == order["amount_refunded"]:
        return REFUND_ALREADY_RECORDED
    status = order["status"]
    if status != "disputed":  # a dispute outranks refunds on the order's face
        status = (REFUNDED if total >= order["amount_paid"]
                  else PARTIALLY_REFUNDED if total > 0 else "paid")
    db.execute("UPDATE orders SET amount_refunded = ?, status = ? WHERE id = ?",
               (total, status, order["id"]))
    if total < order["amount_refunded"]:
        return _refund_failed(db, order, total)
    if total >= order["amount_paid"]:
        # All the money went back, so the goods do too: once (the row exists once).
        if db.execute("DELETE FROM inventory WHERE order_id = ?", (order["id"],)).rowcount:
            log.info("order %s refunded in full: %s x %s taken out of %s's inventory",
                     order["id"], order["quantity"], order["product_id"], order["customer"])
        return REFUNDED
    return PARTIALLY_REFUNDED


def _refund_failed(db: sqlite3.Connection, order: sqlite3.Row, total: int) -> str:
    """A counted refund failed or was canceled: the money and (after a full refund) the goods
    are back where they were before it; a person must refund the customer another way."""
    if order["amount_refunded"] >= order["amount_paid"]:
        orders.add_to_inventory(db, order)
    alerts.raise_once(db, order["id"], alerts.REFUND_FAILED,
                      f"order {order['id']}: a refund of {order['amount_refunded'] - total} "
                      f"{order['currency']} failed at Stripe; refund the customer another way", log)
    return REFUND_FAILED


def handle_event(db: sqlite3.Connection, event_id: str, event_type: str,
                 snapshot: dict | None) -> str:
    """charge.refunded (data.object: the Charge), refund.updated or .failed (the Refund): find the
    PaymentIntent, re-read all its Refunds from Stripe, settle the order. The event's own
    amounts are never believed; only what Stripe says when asked."""
    gateway = current_app.extensions["gateway"]
    snapshot = snapshot or {}
    object_id = snapshot.get("id")
    unreachable = ApiError(503, "Could not reach Stripe to confirm the refund; retry later.",
                           type="api_connection_error")
    if event_type == "charge.refunded":
        if snapshot.get("object") != "charge" or not isinstance(object_id, str) \
                or not _CHARGE_ID.fullmatch(object_id):
            raise ApiError(400, "Event data.object is not a Charge.")
        intent_id = snapshot.get("payment_intent")
    else:
        if snapshot.get("object") != "refund" or not isinstance(object_id, str) \
                or not _REFUND_ID.fullmatch(object_id):
            raise ApiError(400, "Event data.object is not a Refund.")
        try:
            intent_id = gateway.retrieve_refund(object_id).get("payment_intent")
        except stripe.InvalidRequestError:
            intent_id = None  # Stripe does not know it: not ours
        except stripe.StripeError:
            raise unreachable from None
    if not (isinstance(intent_id, str) and _INTENT_ID.fullmatch(intent_id)):
        intent_id = None
    try:
        refunds = gateway.refunds_of(intent_id) if intent_id else []
    except stripe.InvalidRequestError:
        intent_id, refunds = None, []
    except stripe.StripeError:
        raise unreachable from None

    with transaction(db):
        if not orders.record_event(db, event_id, event_type, intent_id, None, "processing"):
            return "duplicate"
        order = orders.order_paid_by(db, intent_id) if intent_id else None
        if order is None or order["status"] not in orders.PAID_STATUSES:
            outcome, order_id = UNKNOWN_ORDER, None
        else:
            outcome, order_id = settle_refunds(db, order, refunds), order["id"]
        orders.set_event_outcome(db, event_id, order_id, outcome)
    return outcome
