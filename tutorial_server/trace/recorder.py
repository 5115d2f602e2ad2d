"""Recording, on the request's own time: as little as possible. A traced request gets a Unit
(its start time and the endpoint's steps); the Stripe requests it makes, the webhook's outcome
and any sync add raw facts to it; when the answer leaves, the Unit is handed to the writer's
thread as one tuple. Building the messages, parsing JSON answers and masking secrets all happen
there (messages.py, writer.py), never while the customer waits.
"""
from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
from flask import Flask, current_app, g, request

from .. import learners
from ..db import get_db, transaction
from ..errors import ApiError
from ..http_clients import HTTPClientWrapper
from .messages import SIGNED_BY_HEADER

ENV_SWITCH = "TUTORIAL_TRACE"

# endpoint -> (step of the client's request, step of the server's Stripe calls, kind)
TRACED_ENDPOINTS = {
    "orders_api.create_order": (1, 1, "order"),
    "orders_api.get_order": (6, 6, "poll"),
    "orders_api.sync_order": (6, 6, "sync"),
    "orders_api.cancel_order": (5, 5, "cancel"),
    "checkout.checkout_page": (4, 4, "checkout_page"),
    "checkout.complete_page": (6, 6, "success_page"),
    "checkout_offline.confirm": (5, 5, "confirm"),
    "webhooks.receive_webhook": (6, 6, "webhook"),
}
RECONCILE = (6, 6, "reconcile")  # a reconcile outside any request (CLI, background)
# Kinds whose answer's JSON the writer reads (the order, its status, the PaymentIntent).
BODY_KINDS = ("order", "poll", "sync", "cancel", "confirm")


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").lower() not in ("off", "0", "false", "no")


@dataclass
class Unit:
    """One unit of work being recorded: a request, or a reconcile outside any request."""
    spec: tuple[int, int, str]
    at: float                      # unix time it started
    started: float                 # perf_counter then
    order_id: str | None = None
    # (at, seconds, method, url, headers, status or None, body or None, error or None)
    calls: list[tuple] = field(default_factory=list)
    webhook: tuple | None = None   # ("handled", event, outcome) or ("refused", payload, reason)
    # (started, ended, order_id, payment_intent, outcome, intent or None, who)
    checks: list[tuple] = field(default_factory=list)
    checking_since: float = 0.0
    token: Any = None              # a reconcile's own unit: how to stop recording it
    signed_by: str | None = None   # a verified delivery the lab's own code forged (messages.py)


_unit: contextvars.ContextVar[Unit | None] = contextvars.ContextVar("trace_unit", default=None)


# --- the client's requests (Flask hooks) ---------------------------------------------------------

def before_request() -> None:
    spec = TRACED_ENDPOINTS.get(request.endpoint or "")
    if spec is None:
        return
    order_id = (request.view_args or {}).get("order_id")
    if order_id is not None and not _callers_order(order_id):
        return  # a class: a classmate's request about someone else's order is not its story
    unit = Unit(spec, time.time(), time.perf_counter(), order_id)
    g.trace_token = _unit.set(unit)


def _callers_order(order_id: str) -> bool:
    try:
        return learners.may_act_on(get_db(), order_id, request.args.get("access"))
    except ApiError:  # an unknown learner key: the route answers 401 itself
        return False


def teardown_request(_exc=None) -> None:
    # A request that ended in an unhandled error skipped after_request: stop recording here,
    # or the thread would go on recording for the next request it serves.
    token = g.pop("trace_token", None)
    if token is not None:
        _unit.reset(token)


def after_request(response):
    token = g.pop("trace_token", None)
    if token is None:
        return response
    unit = _unit.get()
    _unit.reset(token)
    try:
        code = response.status_code
        body = response.get_data() if unit.spec[2] in BODY_KINDS or code >= 400 else None
        current_app.extensions["trace_writer"].put((
            unit, code, body, request.method, request.path,
            request.headers.get("Idempotency-Key"),
            response.headers.get("Idempotent-Replayed") == "true", time.perf_counter()))
    except Exception:  # a trace must never break the payment it describes
        current_app.logger.exception("could not record the trace of %s", request.path)
    return response


# --- the server's requests to Stripe ------------------------------------------------------------

class TracingHTTPClient(HTTPClientWrapper):
    """While a unit is being recorded, each request to Stripe is noted in it (when, how long,
    method, URL, headers, status and answer, kept as they are for the writer). Otherwise it
    passes straight through."""

    name = "tracing"

    def request(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any = None, *, _usage: list[str] | None = None,
                ) -> tuple[str, int, Mapping[str, str]]:
        unit = _unit.get()
        if unit is None:
            return super().request(method, url, headers, post_data)
        at, started = time.time(), time.perf_counter()
        try:
            result = super().request(method, url, headers, post_data)
        except Exception as e:
            unit.calls.append((at, time.perf_counter() - started, method, url, headers, None,
                               None, type(e).__name__))
            raise
        unit.calls.append((at, time.perf_counter() - started, method, url, headers, result[1],
                           result[0], None))
        return result


def tracing_client(client: stripe.HTTPClient) -> stripe.HTTPClient:
    """The gateway's HTTP client, wrapped so the server's Stripe requests land in traces."""
    return TracingHTTPClient(client) if enabled() else client


# --- what the server's own code reports (its signals) -------------------------------------------

def webhook_handled(app: Flask, event: dict, outcome: str) -> None:
    unit = _unit.get()
    if unit is not None:
        unit.webhook = ("handled", event, outcome)
        unit.signed_by = request.headers.get(SIGNED_BY_HEADER)  # verified: see messages.py


def webhook_refused(app: Flask, payload: bytes, reason: str) -> None:
    unit = _unit.get()
    if unit is not None:
        unit.webhook = ("refused", payload, reason)


def order_checking(app: Flask, order, db) -> None:
    """A sync or reconcile of one order begins: inside a request it joins that request's unit;
    otherwise (the CLI's reconcile, the background one) it is a unit of its own."""
    unit = _unit.get()
    if unit is None:
        unit = Unit(RECONCILE, time.time(), time.perf_counter(), order["id"])
        unit.token = _unit.set(unit)
    unit.checking_since = time.time()


def order_checked(app: Flask, order, db, outcome: str | None, intent: dict | None) -> None:
    unit = _unit.get()
    if unit is None:
        return
    own = unit.spec is RECONCILE
    who = ("sync" if not own else "background reconcile"
           if threading.current_thread().name == "background-reconcile" else "reconcile")
    unit.checks.append((unit.checking_since, time.time(), order["id"], order["payment_intent"],
                        outcome, intent, who))
    if own:
        _unit.reset(unit.token)
        writer = app.extensions["trace_writer"]
        try:
            with transaction(db):  # written now: the CLI's process may end right after
                writer.write(db, (unit, None, None, None, None, None, False, time.perf_counter()))
        except Exception:
            app.logger.exception("could not record a reconcile's trace")
