"""stripe-python HTTP clients that wrap another one: how the lab records and traces the
gateway's requests (lab/stripe_http.py, trace/recorder.py) without changing them."""
from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any

import stripe


class HTTPClientWrapper(stripe.HTTPClient):
    """A stripe-python HTTP client around another one (`inner`), for code that watches the
    gateway's requests without changing them: the lab records and traces them with these
    (create_app's `http_client`). Subclasses override `prepare` (and `request` to time it)."""

    name = "wrapper"

    def __init__(self, inner: stripe.HTTPClient | None = None) -> None:
        super().__init__()
        self.inner = inner if inner is not None else stripe.new_default_http_client()

    def prepare(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any) -> str:
        """Called before each request is sent; returns the URL to send it to."""
        return url

    def request(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any = None, *, _usage: list[str] | None = None,
                ) -> tuple[str, int, Mapping[str, str]]:
        return self.inner.request(method, self.prepare(method, url, headers, post_data),
                                  headers, post_data)

    def request_stream(self, method: str, url: str, headers: Mapping[str, str] | None,
                       post_data: Any = None, *, _usage: list[str] | None = None,
                       ) -> tuple[Any, int, Mapping[str, str]]:
        return self.inner.request_stream(method, self.prepare(method, url, headers, post_data),
                                         headers, post_data)

    async def request_async(self, method: str, url: str, headers: Mapping[str, str],
                            post_data: Any = None) -> tuple[bytes, int, Mapping[str, str]]:
        return await self.inner.request_async(
            method, self.prepare(method, url, headers, post_data), headers, post_data)

    async def request_stream_async(self, method: str, url: str, headers: Mapping[str, str],
                                   post_data: Any = None,
                                   ) -> tuple[AsyncIterable[bytes], int, Mapping[str, str]]:
        return await self.inner.request_stream_async(
            method, self.prepare(method, url, headers, post_data), headers, post_data)

    def close(self) -> None:
        self.inner.close()
