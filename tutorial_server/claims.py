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
- a claim whose holder vanished (the server was killed mid-call) goes stale after
  STALE_SECONDS and the next request with that key takes it over.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .db import transaction
from .errors import ApiError

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


def claim(db: sqlite3.Connection, what: str, key: str) -> bool:
    """Claim `what` (e.g. "payment_intent") for `key` (e.g. an order id): True for exactly one
    of concurrent callers, and again once the claim is released or stale."""
    now = time.time()
    held = db.execute("SELECT claimed_at FROM claims WHERE what = ? AND key = ?",
                      (what, key)).fetchone()
    if held is not None and held[0] >= now - STALE_SECONDS:
        return False  # a read, so that waiting requests do not queue for the write lock
    with transaction(db):
        return db.execute(
            "INSERT INTO claims (what, key, claimed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (what, key) DO UPDATE SET claimed_at = excluded.claimed_at"
            " WHERE claims.claimed_at < ?", (what, key, now, now - STALE_SECONDS)).rowcount == 1


def release(db: sqlite3.Connection, what: str, key: str) -> None:
    """Give the claim up (done, or failed: a retry may claim again). Inside a transaction or not."""
    if db.in_transaction:
        db.execute("DELETE FROM claims WHERE what = ? AND key = ?", (what, key))
        return
    with transaction(db):
        db.execute("DELETE FROM claims WHERE what = ? AND key = ?", (what, key))
