"""A recording HTTP client for stripe-python: every request the package sends to Stripe (or to
the offline stand-in) is appended to a JSON-lines file, so the test suite can check each one
against the SDK's typed request definitions (`tests/test_stripe_fidelity.py`).

Off unless the environment variable TUTORIAL_RECORD_STRIPE_REQUESTS names a file. The tests
set it for every lab they start (and for the test process itself); nobody else needs it.

One line per request (retries included):
    {"method": "POST", "path": "/v1/payment_intents", "params": {"amount": ["1340"], ...},
     "stripe_version": "2026-10-28.endive", "idempotency_key": "...", "pid": 1234}
`params` is the form body (POST) or the query string (GET, DELETE), decoded with
urllib.parse.parse_qs, so nested parameters keep Stripe's keys: `card[number]`, `expand[0]`.
The Authorization header (the secret key) is never recorded.
"""
from __future__ import annotations

import json
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any, AsyncIterable, List, Mapping, Optional, Tuple

import stripe

ENV_VAR = "TUTORIAL_RECORD_STRIPE_REQUESTS"


def _as_text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


def _header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def describe_request(method: str, url: str, headers: Optional[Mapping[str, str]],
                     post_data: Any = None) -> dict:
    """What gets recorded about one request (never the Authorization header)."""
    parts = urllib.parse.urlsplit(url)
    encoded = parts.query if method.lower() in ("get", "delete") else _as_text(post_data)
    return {
        "method": method.upper(),
        "path": parts.path,
        "params": urllib.parse.parse_qs(encoded, keep_blank_values=True),
        "stripe_version": _header(headers, "Stripe-Version"),
        "idempotency_key": _header(headers, "Idempotency-Key"),
        "pid": os.getpid(),
    }


class RecordingHTTPClient(stripe.HTTPClient):
    """Wraps another stripe.HTTPClient (by default the SDK's own) and records each request."""

    name = "recording"
    _lock = threading.Lock()

    def __init__(self, path: str | os.PathLike[str], inner: stripe.HTTPClient | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.inner = inner if inner is not None else stripe.new_default_http_client()

    def _record(self, method: str, url: str, headers: Optional[Mapping[str, str]],
                post_data: Any) -> None:
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

    def request(self, method: str, url: str, headers: Optional[Mapping[str, str]],
                post_data: Any = None, *, _usage: Optional[List[str]] = None,
                ) -> Tuple[str, int, Mapping[str, str]]:
        self._record(method, url, headers, post_data)
        return self.inner.request(method, url, headers, post_data)

    def request_stream(self, method: str, url: str, headers: Optional[Mapping[str, str]],
                       post_data: Any = None, *, _usage: Optional[List[str]] = None,
                       ) -> Tuple[Any, int, Mapping[str, str]]:
        self._record(method, url, headers, post_data)
        return self.inner.request_stream(method, url, headers, post_data)

    async def request_async(self, method: str, url: str, headers: Mapping[str, str],
                            post_data: Any = None) -> Tuple[bytes, int, Mapping[str, str]]:
        self._record(method, url, headers, post_data)
        return await self.inner.request_async(method, url, headers, post_data)

    async def request_stream_async(self, method: str, url: str, headers: Mapping[str, str],
                                   post_data: Any = None,
                                   ) -> Tuple[AsyncIterable[bytes], int, Mapping[str, str]]:
        self._record(method, url, headers, post_data)
        return await self.inner.request_stream_async(method, url, headers, post_data)

    def close(self) -> None:
        self.inner.close()


def from_environment(http_client: stripe.HTTPClient | None = None) -> stripe.HTTPClient | None:
    """`http_client`, wrapped in a recorder when TUTORIAL_RECORD_STRIPE_REQUESTS is set."""
    path = os.environ.get(ENV_VAR)
    if not path or isinstance(http_client, RecordingHTTPClient):
        return http_client
    return RecordingHTTPClient(path, http_client)


def read_recorded(path: str | os.PathLike[str]) -> list[dict]:
    """Every request recorded in `path` (an empty list if nothing was recorded yet)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
