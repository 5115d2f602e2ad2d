"""Step 6: settle an order from what Stripe says about its PaymentIntent, exactly once.

Used by the webhook handler and by `reconcile` alike, so a lost webhook and a late one end
in the same state. The PaymentIntent passed in is one re-read from Stripe, not the event's
snapshot: events can arrive late, twice, or out of order; the API says how things stand now.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from . import alerts, orders
from .compat import StrEnum

log = logging.getLogger(__name__)

class SettleOutcome(StrEnum):
    """What settling did, as recorded against each event and shown on the dashboard."""
    FULFILLED = "fulfilled"
    ALREADY_PAID = "already_paid"
    ATTEMPT_RECORDED = "attempt_recorded"
    ATTEMPT_ALREADY_RECORDED = "attempt_already_recorded"
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN_ORDER = "unknown_order"
    NO_CHANGE = "no_change"
    CANCELED = "canceled"
    FULFILLED_AFTER_CANCEL = "fulfilled_after_cancel"


(FULFILLED, ALREADY_PAID, ATTEMPT_RECORDED, ATTEMPT_ALREADY_RECORDED, AMOUNT_MISMATCH,
 UNKNOWN_ORDER, NO_CHANGE, CANCELED, FULFILLED_AFTER_CANCEL) = SettleOutcome


def amount_matches(order: Mapping[str, Any] | sqlite3.Row, intent: Mapping[str, Any]) -> bool:
    return intent.get("amount") == order["amount"] and intent.get("currency") == order["currency"]


def find_order_for(db: sqlite3.Connection, intent: dict) -> sqlite3.Row | None:
    """The order this PaymentIntent pays: named in its metadata AND linked back to it."""
    order_id = (intent.get("metadata") or {}).get("order_id")
    order = orders.get_order(db, order_id) if isinstance(order_id, str) else None
    if order is None or order["payment_intent"] != intent.get("id"):
        return None
    return order


def fulfil_order(db: sqlite3.Connection, order: sqlite3.Row, intent: dict) -> SettleOutcome:
    """Mark the order paid and add the product to the customer's inventory, once.

    Call inside a transaction. `intent` must be a succeeded PaymentIntent.
    """
    if not amount_matches(order, intent):
        # Said once per order (every reconcile round meets it again), and on the dashboard.
        alerts.raise_once(db, order["id"], alerts.AMOUNT_MISMATCH,
                          f"order {order['id']}: PaymentIntent {intent.get('id')} charged "
                          f"{intent.get('amount')} {intent.get('currency')} but the order is "
                          f"{order['amount']} {order['currency']}; not fulfilled", log)
        return AMOUNT_MISMATCH
    if not orders.mark_paid(db, order["id"], intent["amount"]):
        return ALREADY_PAID
    orders.add_to_inventory(db, order)
    log.info("order %s paid; %s x %s added to %s's inventory", order["id"], order["quantity"],
             order["product_id"], order["customer"])
    return FULFILLED


def settle_order(db: sqlite3.Connection, intent: dict, *, payment_failed: bool = False,
                 snapshot: dict | None = None) -> tuple[SettleOutcome, str | None]:
    """Bring the order in line with its PaymentIntent. Returns (outcome, order id).

    `snapshot` is the event's copy of the PaymentIntent, when there is one: its amount must
    match the order too, so a signed but doctored event cannot fulfil an order.
    A canceled order stays canceled, whatever the event says, unless Stripe says its payment
    succeeded (see _fulfil_canceled_order).
    """
    order = find_order_for(db, intent)
    if order is None:
        named = (intent.get("metadata") or {}).get("order_id")
        if intent.get("status") == "succeeded" and isinstance(named, str) \
                and orders.get_order(db, named) is not None:
            # Money taken on a PaymentIntent the order is not linked to: never fulfil it
            # blindly (it could be a copy made elsewhere), but a person must look.
            log.error("PaymentIntent %s succeeded and names order %s, which is linked to "
                      "another PaymentIntent: not fulfilled; refund it or investigate",
                      intent.get("id"), named)
        return UNKNOWN_ORDER, None
    status = intent.get("status")
    if status == "succeeded":
        if snapshot is not None and not amount_matches(order, snapshot):
            return AMOUNT_MISMATCH, order["id"]
        if order["status"] == orders.CANCELED:
            return _fulfil_canceled_order(db, order, intent), order["id"]
        return fulfil_order(db, order, intent), order["id"]
    if order["status"] == orders.CANCELED:
        return NO_CHANGE, order["id"]  # only a payment that succeeded (above) moves it on
    if status == "canceled" and order["status"] in orders.UNSETTLED:
        # Canceled at Stripe but not here: a cancel that stopped half-way, or the Dashboard.
        orders.cancel_order(db, order["id"],
                            intent.get("cancellation_reason") or "payment_intent_canceled")
        return CANCELED, order["id"]
    # One failed payment is one attempt, however many times it is reported: by its
    # payment_failed webhook, by a sync or reconcile, or by both, in either order.
    failure = failure_key(intent, snapshot if payment_failed else None, payment_failed)
    if failure is not None:
        if not orders.claim_failure(db, order["id"], failure):
            return ATTEMPT_ALREADY_RECORDED, order["id"]
        orders.record_failed_attempt(db, order["id"], _error_of(intent) or _error_of(snapshot or {}))
        return ATTEMPT_RECORDED, order["id"]
    if status == "requires_action" and order["status"] == orders.CREATED:
        # The customer is in the middle of an attempt (3-D Secure): the order shows it, and
        # the attempt is counted when it ends, failed (above) or paid (fulfil_order).
        orders.record_failed_attempt(db, order["id"], _error_of(intent), count=False)
        return ATTEMPT_RECORDED, order["id"]
    return NO_CHANGE, order["id"]


def failure_key(intent: dict, snapshot: dict | None = None,
                payment_failed: bool = False) -> str | None:
    """What identifies one failed payment of this PaymentIntent, or None if it has none.

    A declined card leaves its charge (ch_...) in last_payment_error: one charge, one attempt.
    A failed 3-D Secure challenge has no charge; real Stripe names the payment method that
    failed, the offline stand-in names nothing, so there two failed challenges on one
    PaymentIntent count as one. A payment_failed event's own snapshot is used when it has the
    error (by the time the event arrives, the customer may already be trying again).
    """
    error = (snapshot or {}).get("last_payment_error") or intent.get("last_payment_error")
    if not isinstance(error, dict):
        return f"{intent.get('id')}:payment_failed" if payment_failed else None
    method = error.get("payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    return f"{intent.get('id')}:{error.get('charge') or method or error.get('code') or 'failed'}"


def _fulfil_canceled_order(db: sqlite3.Connection, order: sqlite3.Row,
                           intent: dict) -> SettleOutcome:
    """Stripe says the PaymentIntent of a canceled order succeeded: the customer paid at the
    moment the order was canceled (or the cancel never reached Stripe).

    The money was taken and the customer was told "payment succeeded", so the order IS paid:
    mark it paid and fulfil it, like any other paid order, and log an error so that a person
    looks at it. Refunding automatically would break the promise the customer just saw, and
    whether to refund (say, the goods were released to someone else) is a business decision
    for a person, not for a webhook handler.
    """
    outcome = fulfil_order(db, order, intent)
    if outcome != FULFILLED:
        return outcome
    log.error("order %s was canceled (%s) but Stripe says PaymentIntent %s succeeded: the "
              "customer paid %s %s. Marked paid and fulfilled; check it and refund if you "
              "cannot deliver.", order["id"], order["cancellation_reason"], intent.get("id"),
              intent.get("amount"), intent.get("currency"))
    return FULFILLED_AFTER_CANCEL


def _error_of(intent: dict) -> dict | None:
    error = intent.get("last_payment_error")
    if error:
        return {"code": error.get("code"), "decline_code": error.get("decline_code"),
                "message": error.get("message")}
    if intent.get("status") == "requires_action":
        return {"code": "authentication_required", "decline_code": None,
                "message": "The customer must complete 3-D Secure authentication."}
    return None
