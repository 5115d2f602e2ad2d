"""Settle orders whose webhook never arrived, by asking Stripe how each payment stands.

Safe to run any number of times: it uses the same exactly-once settlement as the webhook.
"""
from __future__ import annotations

from collections import Counter

import stripe
from flask import Flask

from . import fulfilment, orders
from .db import get_db, transaction

PAYMENT_INTENT_MISSING = "payment_intent_missing"


def reconcile(app: Flask) -> Counter:
    """Check every unsettled order against Stripe. Returns how many ended in each outcome."""
    counts: Counter = Counter()
    with app.app_context():
        db = get_db()
        gateway = app.extensions["gateway"]
        for order in orders.list_orders(db, orders.UNSETTLED):
            outcome, _intent = reconcile_order(db, gateway, order)
            counts[outcome] += 1
    return counts


def reconcile_order(db, gateway, order) -> tuple[str, dict | None]:
    """Ask Stripe how one order's payment stands and settle the order to match.
    Returns (outcome, the PaymentIntent as Stripe has it, or None)."""
    if not order["payment_intent"]:
        return "no_payment_intent", None
    try:
        intent = gateway.retrieve_payment_intent(order["payment_intent"])
    except stripe.InvalidRequestError:
        # The backend does not know the payment: after an offline restart the stand-in
        # starts empty. The order cannot be paid any more; say so.
        with transaction(db):
            orders.cancel_order(db, order["id"], PAYMENT_INTENT_MISSING)
        return PAYMENT_INTENT_MISSING, None
    except stripe.StripeError:
        return "stripe_unreachable", None
    with transaction(db):
        outcome, _ = fulfilment.settle_order(db, intent)
    return outcome, intent


def describe(counts: Counter) -> str:
    if not counts:
        return "no unsettled orders"
    labels = {
        fulfilment.FULFILLED: "paid now (their webhook never arrived)",
        fulfilment.ALREADY_PAID: "already paid",
        fulfilment.ATTEMPT_RECORDED: "marked attempted (a payment failed or needs action)",
        fulfilment.ATTEMPT_ALREADY_RECORDED: "attempted, their failed payment already counted",
        fulfilment.AMOUNT_MISMATCH: "NOT fulfilled: amount or currency differs from the order",
        fulfilment.NO_CHANGE: "still waiting for the customer",
        fulfilment.CANCELED: "canceled: their PaymentIntent was canceled at Stripe",
        PAYMENT_INTENT_MISSING: "canceled: their PaymentIntent no longer exists on the backend",
        "no_payment_intent": "have no PaymentIntent (Stripe was unreachable when ordered)",
        "stripe_unreachable": "skipped: Stripe unreachable",
        fulfilment.UNKNOWN_ORDER: "skipped: PaymentIntent does not point back at the order",
    }
    return "; ".join(f"{n} {labels.get(k, k)}" for k, n in sorted(counts.items()))
