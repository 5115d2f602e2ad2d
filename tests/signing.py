"""The tests' own Stripe-Signature: an oracle, independent of the package.

Written from Stripe's documented scheme (as stripe-python's own tests sign their events), not
from tutorial_server.lab.webhook_sender, so a mistake in the package's signing or verifying code
cannot hide behind the same mistake here.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed with the secret>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signed(event: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The event's body and a signature header for it."""
    payload = json.dumps(event).encode()
    return payload, sign(payload, secret, timestamp)
