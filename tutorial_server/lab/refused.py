"""Refused webhook deliveries (bad, missing, stale signature; not an event), for the dashboard's
list of deliveries: the one place they are shown. Anyone can post to /webhook, so this list is
bounded and rate-limited: at most PER_SECOND are kept each second, the last KEEP in all, and
the rest are only counted ("N more refused"). They never reach an order's trace, and never push
the verified deliveries out of the server's own list (webhooks.py keeps those).

Heard through the server's signal webhooks.event_refused; only the reason is kept (the
server's own words), never anything from the body.
"""
from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask

from .. import webhooks

KEEP = 50
PER_SECOND = 5


class RefusedDeliveries:
    def __init__(self, keep: int = KEEP, per_second: int = PER_SECOND) -> None:
        self.listed: deque = deque(maxlen=keep)
        self.per_second = per_second
        self.not_listed = 0          # refused beyond the per-second cap, since the last reset
        self._second, self._this_second = 0, 0
        self._lock = threading.Lock()

    def heard(self, app: Flask, payload: bytes = b"", reason: str = "") -> None:
        now = time.time()
        with self._lock:
            if int(now) != self._second:
                self._second, self._this_second = int(now), 0
            if self._this_second >= self.per_second:
                self.not_listed += 1
                return
            self._this_second += 1
            self.listed.append({"received_at": now, "event": None, "type": None,
                                "outcome": "rejected: " + reason[:200]})

    def clear(self) -> None:
        with self._lock:
            self.listed.clear()
            self.not_listed = 0

    def with_verified(self, verified: deque) -> deque:
        """The dashboard's list: verified and refused deliveries, oldest first (as the server's
        own deque keeps them)."""
        with self._lock:
            refused = list(self.listed)
        return deque(sorted([*verified.copy(), *refused], key=lambda d: d["received_at"]))


def install(app: Flask) -> RefusedDeliveries:
    refused = app.extensions["refused_deliveries"] = RefusedDeliveries()
    webhooks.event_refused.connect(refused.heard, sender=app, weak=False)
    return refused
