"""The SQLite database: one file (TUTORIAL_DB) holding orders, payments seen and inventories.

WAL mode lets the webhook handler write while pages read, and with synchronous=NORMAL a
committed transaction survives the server process being killed (only a power cut can lose
the last few). Every write goes through `transaction()`, which takes the write lock up front
(BEGIN IMMEDIATE): the writes of two concurrent deliveries of one event happen one after the
other, and the event id's primary key lets only the first claim it.
"""
from __future__ import annotations

import queue
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id                  TEXT PRIMARY KEY,
    product_id          TEXT NOT NULL,
    quantity            INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    customer            TEXT NOT NULL,
    subtotal            INTEGER NOT NULL,
    discount            INTEGER NOT NULL,
    amount              INTEGER NOT NULL CHECK (amount > 0),
    amount_paid         INTEGER NOT NULL DEFAULT 0,
    amount_refunded     INTEGER NOT NULL DEFAULT 0,
    currency            TEXT NOT NULL,
    receipt             TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('created', 'attempted', 'paid', 'canceled',
                                          'partially_refunded', 'refunded', 'disputed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    payment_intent      TEXT UNIQUE,
    last_payment_error  TEXT,
    cancellation_reason TEXT,
    created_at          INTEGER NOT NULL,
    paid_at             INTEGER
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    payment_intent TEXT,
    order_id       TEXT,
    outcome        TEXT NOT NULL,
    received_at    INTEGER NOT NULL
);

-- Each failed payment the order has counted, so that the webhook and a sync (or reconcile)
-- reporting the same failure count it once, whichever comes first (see fulfilment).
CREATE TABLE IF NOT EXISTS counted_failures (
    order_id TEXT NOT NULL REFERENCES orders (id),
    failure  TEXT NOT NULL,
    PRIMARY KEY (order_id, failure)
);

CREATE TABLE IF NOT EXISTS inventory (
    order_id    TEXT PRIMARY KEY REFERENCES orders (id),
    customer    TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_by_customer ON inventory (customer);
"""
from .trace import SCHEMA as TRACE_SCHEMA  # noqa: E402  (each order's messages: trace.py)
SCHEMA += TRACE_SCHEMA


def connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def init_db(path: str | Path) -> None:
    db = connect(path)
    try:
        db.executescript(SCHEMA)
        # The refunds' own tables live with their code; an older database gains them here.
        from . import disputes, refunds
        refunds.migrate_orders_table(db, SCHEMA)
        db.executescript(refunds.SCHEMA + disputes.SCHEMA)
    finally:
        db.close()


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Several reads that see one state of the database (they agree with each other)."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


POOL_SIZE = 16


def get_db() -> sqlite3.Connection:
    """The request's connection: an idle one from the app's pool, or a new one."""
    if "db" not in g:
        pool: queue.LifoQueue = current_app.extensions["db_pool"]
        try:
            g.db = pool.get_nowait()
        except queue.Empty:
            g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Give the request's connection back to the pool. Connections are kept open because
    closing the last one makes SQLite checkpoint and delete the WAL file, every request."""
    db = g.pop("db", None)
    if db is None:
        return
    if db.in_transaction:
        db.rollback()  # never hand a half-done transaction to the next request
    try:
        current_app.extensions["db_pool"].put_nowait(db)
    except queue.Full:
        db.close()
