"""Claim, then call Stripe: one request at a time does a thing that costs money or leaves an
object at Stripe (create an order's PaymentIntent, make a refund), however many arrive at once.

The claim is a row inserted in a write transaction (BEGIN IMMEDIATE) under a unique key,
BEFORE Stripe is called. Of concurrent requests, one inserts it; the others wait for it,
polling the database, and then answer what the first one did (a replay). Stripe itself
answers a concurrent request with the same Idempotency-Key at once with 409
`idempotency_key_in_use`; this server first waits a little (a refund or a PaymentIntent takes
tens of milliseconds, and a double click should not show an error), and answers that same 409
only when the first request is still at Stripe after WAIT_SECONDS.

A claim never blocks for ever:
- when Stripe refuses or cannot be reached, the claim is released: a retry with the same key
  tries again, and sends Stripe the same Stripe idempotency key, so real Stripe answers it with
  its stored result of the first try (errors included) and never acts twice;
- a claim whose holder vanished (the server was killed mid-call) is taken over by the next
  request with that key: at once when its process is gone (a restarted server retries at
  once), else after STALE_SECONDS.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .db import transaction
from .errors import ApiError

# When this server process started: a refund request row older than that was left by a server
# that is gone (one server process per lab database), so its key may be retried at once.
PROCESS_STARTED = int(time.time())
WAIT_SECONDS = 5.0      # how long a concurrent request waits for the first one
POLL_SECONDS = 0.02     # how often it looks
STALE_SECONDS = 120     # a claim older than this lost its holder (Stripe's own timeout is 80 s)

T = TypeVar("T")


def in_use() -> ApiError:
    """Stripe's answer to a concurrent request with the same Idempotency-Key."""
    return ApiError(409, "Another request with this Idempotency-Key is still being processed; "
                    "retry shortly with the same key (it will be answered with the first "
                    "request's result).", type="idempotency_error", param="Idempotency-Key",
                    code="idempotency_key_in_use")


def wait(attempt: Callable[[], T | None], wait_seconds: float | None = None) -> T:
    """Call `attempt` until it returns something other than None (it claimed, or it found what
    the first request did), sleeping POLL_SECONDS in between; 409 in_use() after the bound."""
    deadline = time.monotonic() + (WAIT_SECONDS if wait_seconds is None else wait_seconds)
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise in_use()
        time.sleep(POLL_SECONDS)


def holder_alive(pid: int) -> bool:
    """Is the process that made a claim still running (on this machine, as the database is)?"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's
        return True
    return True


def _stale(row: sqlite3.Row | tuple, now: float) -> bool:
    return row[0] < now - STALE_SECONDS or not holder_alive(row[1])


def claim(db: sqlite3.Connection, what: str, key: str) -> bool:
    """Claim `what` (e.g. "payment_intent") for `key` (e.g. an order id): True for exactly one
    of concurrent callers, and again once the claim is released or stale."""
    now = time.time()
    held = db.execute("SELECT claimed_at, holder FROM claims WHERE what = ? AND key = ?",
                      (what, key)).fetchone()
    if held is not None and not _stale(held, now):
        return False  # a read, so that waiting requests do not queue for the write lock
    with transaction(db):
        held = db.execute("SELECT claimed_at, holder FROM claims WHERE what = ? AND key = ?",
                          (what, key)).fetchone()
        if held is not None and not _stale(held, now):
            return False
        db.execute("INSERT OR REPLACE INTO claims (what, key, claimed_at, holder)"
                   " VALUES (?, ?, ?, ?)", (what, key, now, os.getpid()))
        return True


def release(db: sqlite3.Connection, what: str, key: str) -> None:
    """Give the claim up (done, or failed: a retry may claim again). Inside a transaction or not."""
    if db.in_transaction:
        db.execute("DELETE FROM claims WHERE what = ? AND key = ?", (what, key))
        return
    with transaction(db):
        db.execute("DELETE FROM claims WHERE what = ? AND key = ?", (what, key))
