"""The lab's Stripe HTTP client: the gateway's own, recorded for the tests, and (for the
package's own tests only) sent to a local stand-in of api.stripe.com.

Recording: when the environment variable TUTORIAL_RECORD_STRIPE_REQUESTS names a file, every
request the package sends to Stripe (or to the offline stand-in) is appended to it, so the test
suite can check each one against the SDK's typed request definitions
(`tests/test_stripe_fidelity.py`). One line per request (retries included):
    {"method": "POST", "path": "/v1/payment_intents", "params": {"amount": ["1340"], ...},
     "stripe_version": "2026-10-28.endive", "idempotency_key": "...", "pid": 1234}
`params` is the form body (POST) or the query string (GET, DELETE), decoded with
urllib.parse.parse_qs, so nested parameters keep Stripe's keys: `card[number]`, `expand[0]`.
The Authorization header (the secret key) is never recorded.

The test API base: TUTORIAL_STRIPE_API_BASE sends test-mode requests to a local HTTP stand-in
of api.stripe.com (tests/stripe_api_mock.py), which the test-mode notebooks run against since
CI cannot reach Stripe. Honoured only with a test-mode key and a loopback address, so a key is
never sent anywhere but api.stripe.com or this machine. Learners never set it.
"""
from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import stripe

from ..config import Settings
from ..gateway import default_http_client
from ..http_clients import HTTPClientWrapper
from ..security import is_loopback

ENV_VAR = "TUTORIAL_RECORD_STRIPE_REQUESTS"
TEST_API_BASE_VARIABLE = "TUTORIAL_STRIPE_API_BASE"
REAL_API_BASE = "https://api.stripe.com"


def lab_http_client(settings: Settings,
                    wrap: Callable[[stripe.HTTPClient], stripe.HTTPClient] | None = None,
                    inner: stripe.HTTPClient | None = None) -> stripe.HTTPClient:
    """`inner` (default: the gateway's own client for these settings), sent to the test API
    base when one is set, wrapped by `wrap` (the trace), and recorded when the tests ask."""
    client = inner or default_http_client(settings)
    base = test_api_base(settings)
    if base:
        client = ToTestApiBase(base, client)
    if wrap is not None:
        client = wrap(client)
    path = os.environ.get(ENV_VAR)
    return RecordingHTTPClient(path, client) if path else client


def test_api_base(settings: Settings) -> str | None:
    url = (os.environ.get(TEST_API_BASE_VARIABLE) or "").strip().rstrip("/")
    if not url or settings.offline or not settings.secret_key.startswith(("sk_test_", "rk_test_")):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
        raise ValueError(f"{TEST_API_BASE_VARIABLE} must be an http://127.0.0.1:PORT address "
                         "(a stand-in for api.stripe.com on this machine, for tests).")
    return url


class ToTestApiBase(HTTPClientWrapper):
    """Requests meant for api.stripe.com go to the test API base instead."""

    name = "test-api-base"

    def __init__(self, base: str, inner: stripe.HTTPClient) -> None:
        super().__init__(inner)
        self.base = base

    def prepare(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any) -> str:
        if url.startswith(REAL_API_BASE + "/"):
            return self.base + url[len(REAL_API_BASE):]
        return url


def _as_text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def describe_request(method: str, url: str, headers: Mapping[str, str] | None,
                     post_data: Any = None) -> dict:
    """What gets recorded about one request (never the Authorization header)."""
    parts = urllib.parse.urlsplit(url)
    encoded = parts.query if method.lower() in ("get", "delete") else _as_text(post_data)
    return {
        "method": method.upper(),
        "path": parts.path,
        "params": urllib.parse.parse_qs(encoded, keep_blank_values=True),
        "stripe_version": header(headers, "Stripe-Version"),
        "idempotency_key": header(headers, "Idempotency-Key"),
        "pid": os.getpid(),
    }


class RecordingHTTPClient(HTTPClientWrapper):
    """Records each request in a JSON-lines file before passing it on."""

    name = "recording"
    _lock = threading.Lock()

    def __init__(self, path: str | os.PathLike[str], inner: stripe.HTTPClient | None = None) -> None:
        super().__init__(inner)
        self.path = Path(path)

    def prepare(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any) -> str:
        line = json.dumps(describe_request(method, url, headers, post_data)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # One write() on an O_APPEND file: lines from the lab process and the test process
            # never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return url


def read_recorded(path: str | os.PathLike[str]) -> list[dict]:
    """Every request recorded in `path` (an empty list if nothing was recorded yet)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
