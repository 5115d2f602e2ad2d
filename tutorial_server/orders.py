"""The order store: the merchant's own record of each order (steps 2, 4 and 6).

The order keeps the field names of the article's step-3 sample (amount, amount_paid,
amount_due, receipt, status, attempts, created_at) so learners recognise them, and links to
the Stripe PaymentIntent that collects the money. Status moves forward only:
created -> attempted -> paid, or to canceled; nothing ever un-pays an order. (A canceled order
whose PaymentIntent succeeded after all becomes paid: the money was taken; see fulfilment.)
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time

from .compat import StrEnum
from .pricing import PricedOrder

_ALPHABET = string.ascii_letters + string.digits


class OrderStatus(StrEnum):
    """An order's status, as the API's JSON and the orders table spell it."""
    CREATED = "created"
    ATTEMPTED = "attempted"  # at least one payment failed; the customer may try again
    PAID = "paid"
    CANCELED = "canceled"
    # After the payment (refunds.py, disputes.py): a paid order moves on, never back to unpaid.
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


CREATED, ATTEMPTED, PAID, CANCELED = (OrderStatus.CREATED, OrderStatus.ATTEMPTED,
                                      OrderStatus.PAID, OrderStatus.CANCELED)
UNSETTLED = (OrderStatus.CREATED, OrderStatus.ATTEMPTED)
# An order whose payment succeeded, whatever happened after.
PAID_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED,
                 OrderStatus.DISPUTED)


def new_order_id() -> str:
    return "order_" + "".join(secrets.choice(_ALPHABET) for _ in range(14))


def order_to_api(row: sqlite3.Row) -> dict:
    """The order object the API returns (Stripe-style snake_case)."""
    error = json.loads(row["last_payment_error"]) if row["last_payment_error"] else None
    return {
        "id": row["id"],
        "object": "order",
        "amount": row["amount"],
        "amount_paid": row["amount_paid"],
        "amount_due": row["amount"] - row["amount_paid"],
        "amount_refunded": row["amount_refunded"],
        "currency": row["currency"],
        "receipt": row["receipt"],
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": row["created_at"],
        "paid_at": row["paid_at"],
        "product": row["product_id"],
        "quantity": row["quantity"],
        "subtotal": row["subtotal"],
        "discount": row["discount"],
        "customer": row["customer"],
        "payment_intent": row["payment_intent"],
        "pay_with": row["pay_with"],
        "checkout_session": row["checkout_session"],
        "last_payment_error": error,
        "cancellation_reason": row["cancellation_reason"],
    }


def insert_order(db: sqlite3.Connection, priced: PricedOrder, customer: str,
                 pay_with: str = "payment_intent") -> str:
    """Record a priced order (call inside a transaction). Returns its id."""
    order_id = new_order_id()
    db.execute(
        "INSERT INTO orders (id, product_id, quantity, customer, subtotal, discount, amount,"
        " currency, receipt, status, created_at, pay_with)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?)",
        (order_id, priced.product.id, priced.quantity, customer, priced.subtotal,
         priced.discount, priced.amount, priced.currency, secrets.token_hex(12),
         int(time.time()), pay_with),
    )
    return order_id


def get_order(db: sqlite3.Connection, order_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()


def order_paid_by(db: sqlite3.Connection, payment_intent_id: str) -> sqlite3.Row | None:
    """The order linked to this PaymentIntent (a charge, refund or dispute names only that)."""
    return db.execute("SELECT * FROM orders WHERE payment_intent = ?",
                      (payment_intent_id,)).fetchone()


def list_orders(db: sqlite3.Connection, statuses: tuple[str, ...] | None = None) -> list:
    if statuses:
        marks = ",".join("?" * len(statuses))
        return db.execute(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY created_at",
                          statuses).fetchall()
    return db.execute("SELECT * FROM orders ORDER BY created_at").fetchall()


def attach_payment_intent(db: sqlite3.Connection, order_id: str, payment_intent_id: str) -> bool:
    """Link the order to its PaymentIntent, unless another request linked one first."""
    cur = db.execute("UPDATE orders SET payment_intent = ? WHERE id = ? AND payment_intent IS NULL",
                     (payment_intent_id, order_id))
    return cur.rowcount == 1


def replace_payment_intent(db: sqlite3.Connection, order_id: str, old_id: str, new_id: str) -> bool:
    """Link an unpaid order to a fresh PaymentIntent in place of old_id (a retry after a decline
    the backend cannot retry); False if another request replaced it first or the order settled."""
    cur = db.execute("UPDATE orders SET payment_intent = ? WHERE id = ? AND payment_intent = ?"
                     " AND status IN ('created', 'attempted')", (new_id, order_id, old_id))
    return cur.rowcount == 1


def payment_failure_heard(db: sqlite3.Connection, payment_intent_id: str) -> bool:
    """Has a payment_intent.payment_failed webhook for this PaymentIntent been processed?"""
    return db.execute("SELECT 1 FROM webhook_events WHERE payment_intent = ?"
                      " AND type = 'payment_intent.payment_failed'",
                      (payment_intent_id,)).fetchone() is not None


# --- idempotency keys on POST /api/orders -------------------------------------------------

def find_idempotency_key(db: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM idempotency_keys WHERE key = ?", (key,)).fetchone()


def remember_idempotency_key(db: sqlite3.Connection, key: str, fingerprint: str,
                             order_id: str) -> None:
    db.execute("INSERT INTO idempotency_keys (key, fingerprint, order_id, created_at)"
               " VALUES (?, ?, ?, ?)", (key, fingerprint, order_id, int(time.time())))


# --- payment outcomes (step 6) --------------------------------------------------------------

def record_failed_attempt(db: sqlite3.Connection, order_id: str, error: dict | None,
                          count: bool = True) -> None:
    """A payment attempt failed (count it) or waits for the customer (count=False: it is
    counted when it ends); never touch a paid order's status."""
    db.execute(
        "UPDATE orders SET attempts = attempts + ?, last_payment_error = ?,"
        " status = CASE WHEN status IN ('created', 'attempted') THEN 'attempted' ELSE status END"
        " WHERE id = ?",
        (1 if count else 0, json.dumps(error) if error else None, order_id),
    )


def claim_failure(db: sqlite3.Connection, order_id: str, failure: str) -> bool:
    """True the first time this failed payment is reported for the order, False after."""
    cur = db.execute("INSERT OR IGNORE INTO counted_failures (order_id, failure) VALUES (?, ?)",
                     (order_id, failure))
    return cur.rowcount == 1


def mark_paid(db: sqlite3.Connection, order_id: str, amount: int) -> bool:
    """Mark the order paid; True only for the call that changed it (exactly-once fulfilment)."""
    cur = db.execute(
        "UPDATE orders SET status = 'paid', amount_paid = ?, attempts = attempts + 1,"
        " paid_at = ?, last_payment_error = NULL, cancellation_reason = NULL"
        " WHERE id = ? AND status IN ('created', 'attempted', 'canceled')",
        (amount, int(time.time()), order_id),
    )
    return cur.rowcount == 1


def cancel_order(db: sqlite3.Connection, order_id: str, reason: str) -> bool:
    cur = db.execute("UPDATE orders SET status = 'canceled', cancellation_reason = ?"
                     " WHERE id = ? AND status IN ('created', 'attempted')", (reason, order_id))
    return cur.rowcount == 1


def add_to_inventory(db: sqlite3.Connection, order: sqlite3.Row) -> None:
    db.execute("INSERT INTO inventory (order_id, customer, product_id, quantity, acquired_at)"
               " VALUES (?, ?, ?, ?, ?)",
               (order["id"], order["customer"], order["product_id"], order["quantity"],
                int(time.time())))


def inventory_for(db: sqlite3.Connection, customer: str) -> list[dict]:
    rows = db.execute("SELECT * FROM inventory WHERE customer = ? ORDER BY acquired_at, order_id",
                      (customer,)).fetchall()
    return [{"object": "inventory_item", "product": r["product_id"], "quantity": r["quantity"],
             "order": r["order_id"], "acquired_at": r["acquired_at"]} for r in rows]


# --- webhook events seen ----------------------------------------------------------------------

def event_seen(db: sqlite3.Connection, event_id: str) -> bool:
    return db.execute("SELECT 1 FROM webhook_events WHERE id = ?", (event_id,)).fetchone() is not None


def record_event(db: sqlite3.Connection, event_id: str, event_type: str,
                 payment_intent: str | None, order_id: str | None, outcome: str) -> bool:
    """Remember a processed event; False if it was already recorded (a redelivery)."""
    cur = db.execute(
        "INSERT OR IGNORE INTO webhook_events (id, type, payment_intent, order_id, outcome,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, event_type, payment_intent, order_id, outcome, int(time.time())),
    )
    return cur.rowcount == 1


def set_event_outcome(db: sqlite3.Connection, event_id: str, order_id: str | None,
                      outcome: str) -> None:
    db.execute("UPDATE webhook_events SET order_id = ?, outcome = ? WHERE id = ?",
               (order_id, outcome, event_id))


# --- reads for the dashboard ---------------------------------------------------------------

def count_by_status(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(status, has_pi, n): how many orders per status, with or without a PaymentIntent (or,
    paid the other way, a Checkout Session)."""
    return db.execute("SELECT status, (payment_intent IS NOT NULL OR checkout_session IS NOT"
                      " NULL) AS has_pi, COUNT(*) AS n FROM orders GROUP BY status, has_pi"
                      ).fetchall()


def collected_by_currency(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(currency, paid): the money paid orders collected and kept (refunds taken off), per
    currency."""
    marks = ",".join("?" * len(PAID_STATUSES))
    return db.execute(f"SELECT currency, SUM(amount_paid - amount_refunded) AS paid FROM orders"
                      f" WHERE status IN ({marks}) GROUP BY currency ORDER BY currency",
                      PAID_STATUSES).fetchall()


def recent_orders(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ?",
                      (limit,)).fetchall()


def orders_with_last_event(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every order, oldest first, with when the last webhook about it arrived (last_event_at)."""
    return db.execute(
        "SELECT o.*, (SELECT MAX(received_at) FROM webhook_events e WHERE e.order_id = o.id)"
        " AS last_event_at FROM orders o ORDER BY o.created_at, o.rowid").fetchall()


def recent_events(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The webhook events processed, newest first."""
    return db.execute("SELECT * FROM webhook_events ORDER BY received_at DESC, rowid DESC"
                      " LIMIT ?", (limit,)).fetchall()


def count_events(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]
