"""The SQLite database: one file (TUTORIAL_DB) holding orders, payments seen and inventories;
its tables are all defined in schema.sql, beside this module.

WAL mode lets the webhook handler write while pages read, and with synchronous=NORMAL a
committed transaction survives the server process being killed (only a power cut can lose
the last few). Every write goes through `transaction()`, which takes the write lock up front
(BEGIN IMMEDIATE): the writes of two concurrent deliveries of one event happen one after the
other, and the event id's primary key lets only the first claim it.
"""
from __future__ import annotations

import logging
import queue
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flask import current_app, g

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SCHEMA = SCHEMA_FILE.read_text(encoding="utf-8")
# Every table, parents first (as schema.sql defines them).
TABLES = tuple(re.findall(r"^CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA, re.M))
KEPT_BY_RESET = ("learners",)


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
        migrate_orders_table(db)  # before the schema: its index needs the new table
        add_checkout_session_columns(db)
        db.executescript(SCHEMA)
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


# --- a database made before refunds existed: the migration ---------------------------------------------------

def migrate_orders_table(db: sqlite3.Connection) -> None:
    """Give an older lab database's orders table the refund statuses and amount_refunded.

    SQLite cannot change a CHECK constraint in place, so the table is rebuilt the way
    SQLite's documentation describes (new table, copy, drop, rename), in one transaction.
    """
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'orders'"
                     ).fetchone()
    if row is None or "'refunded'" in row[0]:
        return
    definition = re.search(r"CREATE TABLE IF NOT EXISTS orders \((.*?)\n\);", SCHEMA, re.S)
    assert definition is not None, "schema.sql must define the orders table"
    columns = ", ".join(r[1] for r in db.execute("PRAGMA table_info(orders)"))
    db.execute("PRAGMA foreign_keys = OFF")  # inventory and friends point at orders
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"CREATE TABLE orders_with_refunds ({definition.group(1)}\n)")
        db.execute(f"INSERT INTO orders_with_refunds ({columns}) SELECT {columns} FROM orders")
        db.execute("DROP TABLE orders")
        db.execute("ALTER TABLE orders_with_refunds RENAME TO orders")
        db.execute("CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status)")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")
    log.info("lab database: orders table upgraded for refunds")


# Each column added to orders since, with its definition (SQLite adds a column in place).
ADDED_ORDER_COLUMNS = {
    "pay_with": "TEXT NOT NULL DEFAULT 'payment_intent'"
                " CHECK (pay_with IN ('payment_intent', 'checkout_session'))",
    "checkout_session": "TEXT",
}


def add_checkout_session_columns(db: sqlite3.Connection) -> None:
    """Give an older lab database's orders table the columns of Checkout Sessions."""
    have = {r[1] for r in db.execute("PRAGMA table_info(orders)")}
    if not have:
        return  # a new database: schema.sql makes the table with them
    for name, definition in ADDED_ORDER_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE orders ADD COLUMN {name} {definition}")


def clear_all(db: sqlite3.Connection) -> None:
    """Delete every row of every table, children before parents (call in a transaction);
    except the class's learners: a reset starts the payments again, not the class (their
    keys stay valid)."""
    for table in reversed(TABLES):
        if table not in KEPT_BY_RESET:
            db.execute(f"DELETE FROM {table}")
