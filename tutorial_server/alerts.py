"""What a person must look at about an order, said once: in the log and on the dashboard.

A payment that does not match its order stays unfulfilled, and every reconcile round finds it
again; a refund that failed, or a dispute that was lost, is reported by its event. Each such
alert is kept once per order and kind (table order_alerts), so the log says it once, however
many rounds or deliveries meet it again, and the dashboard shows it beside the order.
"""
from __future__ import annotations

import logging
import sqlite3
import time

log = logging.getLogger(__name__)

AMOUNT_MISMATCH = "amount_mismatch"
REFUND_FAILED = "refund_failed"
DISPUTE_LOST = "dispute_lost"


def raise_once(db: sqlite3.Connection, order_id: str, kind: str, message: str,
               logger: logging.Logger = log) -> bool:
    """Record the alert and log `message` as a warning, the first time only. True if new."""
    new = db.execute("INSERT OR IGNORE INTO order_alerts (order_id, kind, message, created_at)"
                     " VALUES (?, ?, ?, ?)", (order_id, kind, message, int(time.time()))).rowcount
    if new:
        logger.warning("%s", message)
    return bool(new)


def for_orders(db: sqlite3.Connection, order_ids: list[str]) -> dict[str, list[str]]:
    """The alerts of these orders, oldest first: {order id: [message, ...]}."""
    found: dict[str, list[str]] = {}
    if not order_ids:
        return found
    marks = ",".join("?" * len(order_ids))
    for row in db.execute(f"SELECT order_id, message FROM order_alerts WHERE order_id IN"
                          f" ({marks}) ORDER BY created_at, rowid", order_ids):
        found.setdefault(row["order_id"], []).append(row["message"])
    return found
