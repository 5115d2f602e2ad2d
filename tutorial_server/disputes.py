"""After the payment: the customer's bank takes the money back (a dispute, or chargeback).

Stripe sends `charge.dispute.created`; the server flags the order `disputed`, once, so that a
person answers the dispute (with evidence, in the Dashboard or the API) before its deadline.
The event is verified and deduplicated by webhooks.py like every other. The dispute itself
is taken from the verified event (the offline stand-in has no disputes to re-read); which
order it concerns is asked of Stripe, by re-reading the disputed Charge.

When the bank decides, Stripe sends `charge.dispute.closed` with the dispute's final status:
`won` (the money comes back to the merchant) or `warning_closed` (an inquiry that never became a
chargeback): the order is paid again, with the status its refunds give it; `lost`: the order
stays `disputed`, the dispute row says `lost` with its amount, and the dashboard says so. Each
dispute closes once, whatever the order its events arrive in (a closed dispute is never
reopened by a late `charge.dispute.created`).

In test mode, paying with the card 4000 0000 0000 0259 makes a charge that Stripe disputes
(as fraudulent) shortly after it succeeds; the event then arrives through `stripe listen`.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import time

import stripe
from flask import current_app

from . import alerts, orders
from .db import transaction
from .errors import ApiError

log = logging.getLogger(__name__)

EVENT_TYPES = ("charge.dispute.created", "charge.dispute.closed")
DISPUTED = "disputed"
ALREADY_DISPUTED = "already_disputed"
DISPUTE_WON = "dispute_won"
DISPUTE_LOST = alerts.DISPUTE_LOST
DISPUTE_ALREADY_CLOSED = "dispute_already_closed"
# A closed dispute's final status: the merchant keeps the money, or the cardholder does.
KEPT, LOST = ("won", "warning_closed"), "lost"
UNKNOWN_ORDER = "unknown_order"

_DISPUTE_ID = re.compile(r"(dp|du)_[A-Za-z0-9_]{1,255}")
_CHARGE_ID = re.compile(r"(ch|py)_[A-Za-z0-9_]{1,255}")


def handle_event(db: sqlite3.Connection, event_id: str, event_type: str,
                 dispute: dict | None) -> str:
    dispute = dispute or {}
    dispute_id, charge_id = dispute.get("id"), dispute.get("charge")
    if dispute.get("object") != "dispute" or not isinstance(dispute_id, str) \
            or not _DISPUTE_ID.fullmatch(dispute_id) or not isinstance(charge_id, str) \
            or not _CHARGE_ID.fullmatch(charge_id):
        raise ApiError(400, "Event data.object is not a Dispute of a Charge.")
    try:
        charge = current_app.extensions["gateway"].retrieve_charge(charge_id)
    except stripe.InvalidRequestError:
        charge = None  # Stripe does not know the charge: not one of ours
    except stripe.StripeError:
        raise ApiError(503, "Could not reach Stripe to look the dispute up; retry later.",
                       type="api_connection_error") from None
    intent_id = charge.get("payment_intent") if charge else None
    if dispute.get("payment_intent") not in (None, intent_id):
        intent_id = None  # the event and Stripe disagree about the payment: believe neither

    with transaction(db):
        if not orders.record_event(db, event_id, event_type, intent_id, None, "processing"):
            return "duplicate"
        order = orders.order_paid_by(db, intent_id) if isinstance(intent_id, str) else None
        if order is None or order["status"] not in orders.PAID_STATUSES:
            outcome, order_id = UNKNOWN_ORDER, None
        elif event_type == "charge.dispute.closed":
            outcome, order_id = close_dispute(db, order, dispute), order["id"]
        else:
            outcome, order_id = flag_order(db, order, dispute), order["id"]
        orders.set_event_outcome(db, event_id, order_id, outcome)
    return outcome


def flag_order(db: sqlite3.Connection, order: sqlite3.Row, dispute: dict) -> str:
    """Mark the order disputed and remember the dispute; once per dispute."""
    amount = dispute.get("amount")
    db.execute("INSERT OR IGNORE INTO disputes (id, order_id, amount, currency, reason, status,"
               " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (dispute["id"], order["id"], amount if isinstance(amount, int) else 0,
                str(dispute.get("currency") or order["currency"]), dispute.get("reason"),
                dispute.get("status"), int(time.time())))
    known = db.execute("SELECT status FROM disputes WHERE id = ?", (dispute["id"],)).fetchone()
    if known["status"] in (*KEPT, LOST):
        return DISPUTE_ALREADY_CLOSED  # its closing came first and settled the order
    changed = db.execute("UPDATE orders SET status = 'disputed' WHERE id = ?"
                         " AND status != 'disputed'", (order["id"],)).rowcount
    if not changed:
        return ALREADY_DISPUTED
    log.warning("order %s disputed (%s, %s %s): respond with evidence before the deadline",
                order["id"], dispute.get("reason"), amount, dispute.get("currency"))
    return DISPUTED



def close_dispute(db: sqlite3.Connection, order: sqlite3.Row, dispute: dict) -> str:
    """The bank decided: record the dispute's final status, once, and settle the order."""
    status, amount = dispute.get("status"), dispute.get("amount")
    if status not in (*KEPT, LOST):
        raise ApiError(400, "A closed dispute's status is won, lost or warning_closed.")
    closed = db.execute(
        "INSERT INTO disputes (id, order_id, amount, currency, reason, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status"
        " WHERE disputes.status IS NULL OR disputes.status NOT IN ('won', 'warning_closed',"
        " 'lost')", (dispute["id"], order["id"], amount if isinstance(amount, int) else 0,
                     str(dispute.get("currency") or order["currency"]), dispute.get("reason"),
                     status, int(time.time()))).rowcount
    if not closed:
        return DISPUTE_ALREADY_CLOSED
    if status == LOST:  # the cardholder keeps the money: the order stays disputed, for good
        db.execute("UPDATE orders SET status = 'disputed' WHERE id = ?", (order["id"],))
        alerts.raise_once(db, order["id"], alerts.DISPUTE_LOST,
                          f"order {order['id']}: dispute {dispute['id']} lost; {amount} "
                          f"{dispute.get('currency')} stays with the cardholder", log)
        return DISPUTE_LOST
    still_open = db.execute("SELECT 1 FROM disputes WHERE order_id = ? AND (status IS NULL OR"
                            " status NOT IN ('won', 'warning_closed'))", (order["id"],)).fetchone()
    if order["status"] == DISPUTED and still_open is None:
        paid, back = order["amount_paid"], order["amount_refunded"]
        db.execute("UPDATE orders SET status = ? WHERE id = ?", (
            "refunded" if back >= paid else "partially_refunded" if back else "paid", order["id"]))
    log.info("order %s: dispute %s %s; the payment stands", order["id"], dispute["id"], status)
    return DISPUTE_WON
