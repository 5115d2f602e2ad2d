"""Where an order stands, for the dashboard (dashboard.py): its step on the six steps, its
PaymentIntent's status as the server last heard it, and each learner's progress. From the
order store alone: a refresh never calls Stripe.
"""
from __future__ import annotations

import json

from .. import orders


def short_session(session_id: str | None) -> str | None:
    """A Checkout Session's id as the dashboard shows it: its hosted page's address is the id,
    and the whole class reads the projector's dashboard, so a few characters only."""
    return session_id[:14] + "\u2026" if session_id else None


def step_of(status: str, payment_intent: str | None,
            checkout_session: str | None = None) -> int | None:
    """The step an order has reached, from the order store alone (None: canceled, off the path).

    created, no PaymentIntent  -> 2  (priced and recorded; Stripe was not reached yet)
    created, with PaymentIntent -> 4  (the client has its client secret; nobody has paid)
    created, with Checkout Session -> 4 (the other way: the customer has Stripe's page)
    attempted                   -> 5  (a payment was declined or waits for 3-D Secure)
    paid                        -> 6  (a verified webhook said succeeded; fulfilled once)
    (partially_)refunded, disputed -> 6 too: after the payment (refunds.py, disputes.py)
    """
    if status in orders.PAID_STATUSES:
        return 6
    if status == "attempted":
        return 5
    if status == "created":
        return 4 if payment_intent or checkout_session else 2
    return None


def payment_status(order) -> str:
    """The PaymentIntent's status as the server last heard it (webhooks, sync, reconcile).

    Between the customer paying and the webhook arriving, Stripe already says succeeded while
    the server still says requires_payment_method: that gap is step 6's whole point.
    """
    status = order["status"]
    if status in orders.PAID_STATUSES:
        return "succeeded"  # refunds and disputes do not change the PaymentIntent's status
    if status == "canceled":
        return "missing" if order["cancellation_reason"] == "payment_intent_missing" else "canceled"
    if status == "attempted" and order["last_payment_error"]:
        error = json.loads(order["last_payment_error"])
        if error.get("code") == "authentication_required":
            return "requires_action"
    return "requires_payment_method"


# --- the per-learner view: who is where, for how long, and who has not started -------------

def reached_step_at(order, last_event_at: int | None) -> int:
    """When the order reached the step it is at (unix time): paid -> when it was paid; a
    declined or 3-D Secure attempt -> the last webhook about it; else when it was created."""
    if order["status"] in orders.PAID_STATUSES and order["paid_at"]:
        return order["paid_at"]
    if order["status"] == "attempted" and last_event_at:
        return last_event_at
    return order["created_at"]


def learner_progress(db, roster: list[str] | tuple[str, ...] = ()) -> list[dict]:
    """One row per learner: the furthest step any of their orders reached, since when, and how
    many orders they made. A learner is known by the customer id their orders carry; the class
    roster (`serve --roster FILE`) names the learners who have not ordered yet, so the
    instructor sees who has not started. Slowest first: not started, then lowest step, then
    longest at it."""
    learners: dict[str, dict] = {name: {"customer": name, "orders": 0, "step": None,
                                        "since": None, "status": "not started",
                                        "on_roster": True} for name in roster}
    for o in orders.orders_with_last_event(db):
        row = learners.setdefault(o["customer"], {
            "customer": o["customer"], "orders": 0, "step": None, "since": None,
            "status": "not started", "on_roster": False})
        row["orders"] += 1
        step = step_of(o["status"], o["payment_intent"], o["checkout_session"])
        if step is None:
            if row["step"] is None:
                row["status"] = "canceled"
            continue
        since = reached_step_at(o, o["last_event_at"])
        if row["step"] is None or step > row["step"] or (step == row["step"] and since < row["since"]):
            row.update(step=step, since=since, status=o["status"], order=o["id"])
    return sorted(learners.values(), key=lambda r: (
        r["step"] is not None, r["step"] or 0, r["since"] or 0, r["customer"]))
