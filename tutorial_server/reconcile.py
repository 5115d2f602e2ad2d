"""Settle orders whose webhook never arrived, by asking Stripe how each payment stands.

Safe to run any number of times: it uses the same exactly-once settlement as the webhook.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import stripe
from blinker import Namespace
from flask import Flask, current_app

from . import checkout_sessions, fulfilment, orders
from .db import get_db, transaction

log = logging.getLogger(__name__)
# Outcomes of a reconcile besides settle_order's own (fulfilment.SettleOutcome).
PAYMENT_INTENT_MISSING = "payment_intent_missing"
STRIPE_UNREACHABLE = "stripe_unreachable"
NO_PAYMENT_INTENT = "no_payment_intent"

# For whoever wants to follow each check (the lab's trace draws it); sent with the app.
_signals = Namespace()
order_checking = _signals.signal("reconcile-order-checking")  # order=Row, db=Connection
order_checked = _signals.signal("reconcile-order-checked")    # + outcome, intent (or None)


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
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    order_checking.send(app, order=order, db=db)
    outcome: str | None = None
    intent: dict | None = None
    try:
        outcome, intent = _check_order(db, gateway, order)
        return outcome, intent
    finally:
        order_checked.send(app, order=order, db=db, outcome=outcome, intent=intent)


def _check_order(db, gateway, order) -> tuple[str, dict | None]:
    if order["checkout_session"]:  # paid on Stripe's page: its session says how things stand
        try:
            return checkout_sessions.reconcile_order(db, gateway, order)
        except stripe.StripeError:
            return STRIPE_UNREACHABLE, None
    if not order["payment_intent"]:
        return NO_PAYMENT_INTENT, None
    try:
        intent = gateway.retrieve_payment_intent(order["payment_intent"])
    except stripe.InvalidRequestError:
        # The backend does not know the payment: after an offline restart the stand-in
        # starts empty. The order cannot be paid any more; say so.
        with transaction(db):
            orders.cancel_order(db, order["id"], PAYMENT_INTENT_MISSING)
        return PAYMENT_INTENT_MISSING, None
    except stripe.StripeError:
        return STRIPE_UNREACHABLE, None
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
        NO_PAYMENT_INTENT: "have no PaymentIntent (Stripe was unreachable when ordered)",
        "checkout_session_missing": "canceled: their Checkout Session no longer exists",
        STRIPE_UNREACHABLE: "skipped: Stripe unreachable",
        fulfilment.UNKNOWN_ORDER: "skipped: PaymentIntent does not point back at the order",
    }
    return "; ".join(f"{n} {labels.get(k, k)}" for k, n in sorted(counts.items()))


# --- in the background: the production pattern for missed webhooks ----------------------------

DEFAULT_INTERVAL_SECONDS = 30.0
# Each round asks Stripe about each unsettled order, so it looks only at recent ones, newest
# first: a class leaves many orders nobody pays, and real Stripe limits test-mode requests.
# Older ones are for `reconcile` (and the check at every start).
RECENT_SECONDS = 24 * 3600
MAX_PER_ROUND = 100
SETTLED_NOW = (fulfilment.FULFILLED, fulfilment.ATTEMPT_RECORDED, fulfilment.CANCELED,
               PAYMENT_INTENT_MISSING)


def _final_without_webhook(order, intent: dict | None) -> bool:
    """Has this payment reached a state its webhook should already have told us about?"""
    if intent is None:
        return True  # gone from Stripe (the offline one restarted): nothing can be paid
    status = intent.get("status")
    if status in ("succeeded", "canceled"):
        return True
    # A declined payment (back to requires_payment_method, with the error) the order has not
    # counted yet. 3-D Secure waiting for the customer (requires_action) is not final.
    return (status == "requires_payment_method" and bool(intent.get("last_payment_error"))
            and order["status"] == "created")


class BackgroundReconcile:
    """Every `interval` seconds, settle the orders whose PaymentIntent reached a final state
    but whose webhook never came, as `reconcile` does by hand; then run `also` (the offline
    stand-in's webhook watchdog).

    A payment is only settled here once it has been seen final for at least `grace` seconds
    (default: one interval): its webhook normally arrives within a second or two, and the
    order should be settled by the webhook, as step 6 teaches, not by this safety net.
    """

    def __init__(self, app: Flask, interval: float = DEFAULT_INTERVAL_SECONDS,
                 grace: float | None = None, also=None) -> None:
        self.app, self.interval = app, interval
        self.grace = interval if grace is None else grace
        self.also = also
        self._seen_final: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: dict[str, Any] = {"enabled": True, "interval_seconds": interval, "runs": 0,
                       "last_run_at": None, "last_settled": 0, "settled_total": 0,
                       "last_outcomes": {}, "last_error": None}

    def start(self) -> "BackgroundReconcile":
        self._thread = threading.Thread(target=self._loop, name="background-reconcile",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def run_once(self, now: float | None = None) -> Counter:
        now = time.time() if now is None else now
        counts: Counter = Counter()
        try:
            counts = self._settle_missed(now)
            self.status["last_error"] = None
        except Exception as e:  # never let the loop die; say why on the dashboard and in the log
            log.exception("background reconcile failed")
            self.status["last_error"] = type(e).__name__
        settled = sum(n for outcome, n in counts.items() if outcome in SETTLED_NOW)
        self.status.update(runs=self.status["runs"] + 1, last_run_at=int(now),
                           last_settled=settled,
                           settled_total=self.status["settled_total"] + settled,
                           last_outcomes=dict(counts))
        if settled:
            log.warning("background reconcile: %s", describe(counts))
        if self.also is not None:
            try:
                self.also()
            except Exception:
                log.exception("background check failed")
        return counts

    def _settle_missed(self, now: float) -> Counter:
        counts: Counter = Counter()
        seen: dict[tuple, float] = {}
        with self.app.app_context():
            db = get_db()
            gateway = self.app.extensions["gateway"]
            recent = [o for o in orders.list_orders(db, orders.UNSETTLED)
                      if o["payment_intent"] and o["created_at"] >= now - RECENT_SECONDS]
            for order in recent[::-1][:MAX_PER_ROUND]:
                try:
                    intent = gateway.retrieve_payment_intent(order["payment_intent"])
                except stripe.InvalidRequestError:
                    intent = None
                except stripe.StripeError:
                    counts[STRIPE_UNREACHABLE] += 1
                    continue
                if not _final_without_webhook(order, intent):
                    continue
                key = (order["id"], order["payment_intent"], intent and intent.get("status"))
                seen[key] = first = self._seen_final.get(key, now)
                if now - first < self.grace:
                    continue  # give its webhook the time it normally takes
                outcome, _ = reconcile_order(db, gateway, order)
                counts[outcome] += 1
        self._seen_final = seen
        return counts
