"""Writing traces, from a thread of its own: a request only hands its Unit over (recorder.py),
and this thread builds its messages (messages.py) and stores them, many requests to one
transaction. Reading a trace waits until what was handed over is written. Bounded: if the
writer falls far behind, new units are dropped, not queued; a trace is a teaching aid and never
holds a payment up. At most MAX_MESSAGES_PER_ORDER rows per order; they go with the order (the
lab's reset deletes both).
"""
from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time

from ..db import connect, transaction
from .diagram import MAX_MESSAGES_PER_ORDER
from .messages import clean, request_messages

log = logging.getLogger(__name__)

# The last ?: how many messages the order may hold before this one. What Stripe reported (verified
# webhooks) and what a sync or reconcile settled may use RESERVED more: requests anyone can send
# (polls, syncs, checkout pages) never take the room the real payment needs.
RESERVED = 50
_INSERT = ("INSERT INTO trace_messages (order_id, at, step, sender, receiver, kind, status,"
           " failed, duration_ms, detail) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
           " WHERE EXISTS (SELECT 1 FROM orders WHERE id = ?)"
           " AND (SELECT COUNT(*) FROM trace_messages WHERE order_id = ?) < ?")
# Plain ? only, each given its value (the order id three times): Python 3.12 deprecates numbered
# ones (?1) with a sequence of values, and 3.14 refuses them.
_COLUMNS = ("at", "step", "from", "to", "kind", "status", "failed", "duration_ms", "count")


class Writer:
    MAX_PENDING = 10_000

    def __init__(self, database: str) -> None:
        self.database = database
        self.pending: queue.Queue = queue.Queue(maxsize=self.MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: tuple) -> None:
        """Hand a recorded unit over (recorder.after_request): a few microseconds."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="trace-writer",
                                                    daemon=True)
                    self._thread.start()
        try:
            self.pending.put_nowait(item)
        except queue.Full:
            pass  # a trace is a teaching aid: never hold a payment up for it

    def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.002)

    def write(self, db: sqlite3.Connection, item: tuple) -> None:
        """Build one unit's messages and store them (inside a transaction on `db`)."""
        order_id, messages, poll = request_messages(db, item)
        if not order_id or not messages:
            return
        room = MAX_MESSAGES_PER_ORDER + (RESERVED if item[0].spec[2] in ("webhook", "reconcile")
                                         else 0)
        if poll:
            _write_poll(db, order_id, messages[0], room)
        else:
            _write(db, order_id, messages, room)

    def _run(self) -> None:
        db = connect(self.database)
        while True:
            items = [self.pending.get()]
            while len(items) < 200:  # what piled up meanwhile: one transaction for all
                try:
                    items.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            try:
                with transaction(db):
                    for item in items:
                        try:
                            self.write(db, item)
                        except (sqlite3.Error, ValueError, KeyError, TypeError, AttributeError):
                            log.exception("could not record a trace message")
            except sqlite3.Error:
                log.exception("could not record trace messages")
            finally:
                for _ in items:
                    self.pending.task_done()


# --- storage ---------------------------------------------------------------------------------

def _row(order_id: str, m: dict, room: int = MAX_MESSAGES_PER_ORDER) -> tuple:
    """_INSERT's values: the ten columns, then the order id twice more and the room."""
    detail = {k: v for k, v in m.items() if k not in _COLUMNS}
    return (order_id, m["at"], m["step"], m["from"], m["to"], m["kind"], m["status"],
            1 if m["failed"] else 0, m["duration_ms"], clean(json.dumps(detail)),
            order_id, order_id, room)


def _confirmed_by_server(db, order_id: str, payment_intent: str | None) -> bool:
    """Did this server confirm the payment itself (the offline checkout page's route)? Then
    the trace already holds step 5, and Stripe's report of it adds nothing."""
    return db.execute("SELECT 1 FROM trace_messages WHERE order_id = ? AND kind = 'stripe'"
                      " AND detail LIKE ?", (order_id, f'%"/v1/payment_intents/'
                                             f'{payment_intent}/confirm"%')).fetchone() is not None


def _place_payment(db, order_id: str, m: dict) -> None:
    """When did the customer pay? Stripe's event says so to the second only: draw it after the
    order's last message of steps 1-4 (the customer had the client secret then), and before the
    message that reported it."""
    last = db.execute("SELECT MAX(at) FROM trace_messages WHERE order_id = ? AND step <= 4",
                      (order_id,)).fetchone()[0]
    reported = m["at"]
    m["at"] = min(max(m.pop("paid_at", None) or 0, (last or 0) + 0.001), reported - 0.001)
    m["time_approximate"] = True


def _write(db, order_id: str, messages: list[dict], room: int = MAX_MESSAGES_PER_ORDER) -> None:
    messages = [m for m in messages if not (
        m["kind"] == "payment" and _confirmed_by_server(db, order_id, m.get("payment_intent")))]
    for m in messages:
        if m["kind"] == "payment":
            _place_payment(db, order_id, m)
    db.executemany(_INSERT, [_row(order_id, m, room) for m in messages])


def _write_poll(db, order_id: str, message: dict, room: int = MAX_MESSAGES_PER_ORDER) -> None:
    """Polls of one order (the success page asks twice a second) fold into one line: the last
    line grows its count while nothing else happened in between."""
    row = _row(order_id, message, room)
    cur = db.execute(
        "UPDATE trace_messages SET count = count + 1, status = ?, failed = ?, detail = ?,"
        " duration_ms = ? - at"
        " WHERE id = (SELECT MAX(id) FROM trace_messages WHERE order_id = ?) AND kind = 'poll'",
        (row[6], row[7], row[9], message["at"], order_id))
    if cur.rowcount == 0:
        db.execute(_INSERT, row)


def read_trace(db, order_id: str) -> list[dict]:
    rows = db.execute("SELECT * FROM trace_messages WHERE order_id = ? ORDER BY at, id",
                      (order_id,)).fetchall()
    start = rows[0]["at"] if rows else 0.0
    messages = []
    for r in rows:
        m = {"object": "trace_message", "at": round(r["at"], 3),
             "t_ms": round((r["at"] - start) * 1000, 1), "step": r["step"], "from": r["sender"],
             "to": r["receiver"], "kind": r["kind"], "status": r["status"],
             "failed": bool(r["failed"]), "duration_ms": r["duration_ms"], "count": r["count"]}
        m.update(json.loads(r["detail"]))
        if m["kind"] == "poll":
            m["duration_ms"] = None
            m["span_ms"] = round(r["duration_ms"] * 1000, 1) if r["duration_ms"] else 0
        messages.append(m)
    return messages
