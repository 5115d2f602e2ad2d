"""See your own payment: every message of one order, drawn as the six-step sequence diagram.

GET /api/orders/<order_id>/trace
    {"object": "list", "data": [messages...], "mermaid": "sequenceDiagram ..."}

The merchant server writes down, per order, each message it takes part in:
- the client's requests about the order (POST /api/orders with its Idempotency-Key, the
  checkout page, the offline card confirm, sync, cancel; polls of the order fold into one line);
- its own requests to Stripe while handling them (create, retrieve, confirm, cancel), with
  their idempotency keys, status and duration (a wrapper around stripe-python's HTTP client);
- each webhook delivery about the order: event id and type, the signature check, and what the
  handler did (fulfilled, duplicate, amount_mismatch ...);
- each sync and reconcile (the background one and the CLI's too) and what it settled.
The customer's own payment (step 5) goes from the browser straight to Stripe, so the server
only learns of it through Stripe: that line says so ("reported by Stripe").

Never a secret: no request or response body is kept, only methods, paths, ids, statuses and
idempotency keys; a client secret shows as the PaymentIntent it belongs to, and anything
shaped like a key or webhook secret is masked before it is stored. At most
MAX_MESSAGES_PER_ORDER per order; the rows go with the order (the lab's reset deletes both).

Set TUTORIAL_TRACE=off to record nothing (the benchmarks compare both).
"""
from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, List, Mapping, Optional, Tuple

import stripe
from flask import Blueprint, Flask, current_app, g, jsonify, request

from .trace_diagram import MAX_MESSAGES_PER_ORDER, mermaid

log = logging.getLogger(__name__)
ENV_SWITCH = "TUTORIAL_TRACE"
CLIENT, SERVER, STRIPE = "client", "server", "stripe"

SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_messages (
    id          INTEGER PRIMARY KEY,          -- the order messages were recorded in
    order_id    TEXT NOT NULL,
    at          REAL NOT NULL,                -- unix time, seconds
    step        INTEGER NOT NULL CHECK (step BETWEEN 1 AND 6),
    sender      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT,
    failed      INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL,
    count       INTEGER NOT NULL DEFAULT 1,   -- folded polls
    detail      TEXT NOT NULL                 -- JSON: method, path, event, outcome, ...
);
CREATE INDEX IF NOT EXISTS trace_messages_by_order ON trace_messages (order_id, id);
"""

# Anything shaped like a secret is masked before it is stored, whatever field it is in; a
# client secret (pi_..._secret_...) becomes the PaymentIntent id it belongs to.
_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[0-9A-Za-z_]+|\bwhsec_[0-9A-Za-z_]+")
_CLIENT_SECRET = re.compile(r"\b(pi_[0-9A-Za-z]+)_secret_[0-9A-Za-z_]+")
_INTENT_PATH = re.compile(r"^/v1/payment_intents/(pi_[0-9A-Za-z_]+?)(?:/(\w+))?$")


def clean(text: str) -> str:
    text = _CLIENT_SECRET.sub(r"\1 (client secret hidden)", text)
    return _SECRET.sub(lambda m: m.group(0).split("_")[0] + "_...hidden", text)


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").lower() not in ("off", "0", "false", "no")


# --- what is being recorded now: one unit of work (a request, a reconcile) ----------------------

@dataclass
class Unit:
    step: int                      # the step this unit's Stripe requests belong to
    order_id: str | None = None
    messages: list[dict] = field(default_factory=list)
    before: list[dict] = field(default_factory=list)  # drawn before the unit's request


_unit: contextvars.ContextVar[Unit | None] = contextvars.ContextVar("trace_unit", default=None)


def _message(step: int, sender: str, receiver: str, kind: str, *, status: Any = None,
             failed: bool = False, duration_ms: float | None = None, at: float | None = None,
             **detail: Any) -> dict:
    return {"at": time.time() if at is None else at, "step": step, "from": sender,
            "to": receiver, "kind": kind, "status": None if status is None else str(status),
            "failed": failed, "duration_ms": None if duration_ms is None else round(duration_ms, 2),
            "count": 1, **{k: v for k, v in detail.items() if v is not None}}


def add(message: dict) -> None:
    unit = _unit.get()
    if unit is not None:
        unit.messages.append(message)


# --- the server's requests to Stripe ------------------------------------------------------------

def _stripe_answer(path: str, data: dict, code: int) -> dict:
    """The few facts of Stripe's answer worth a line: the object's id and status, the error's
    code. Only PaymentIntent answers and errors are read at all."""
    if code >= 400:
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return {"error": error.get("decline_code") or error.get("code") or error.get("type")}
    answer = {"object_id": data.get("id"), "intent_status": data.get("status")}
    error = data.get("last_payment_error")
    if isinstance(error, dict):
        answer["error"] = error.get("decline_code") or error.get("code") or "payment failed"
    return answer


class TracingHTTPClient(stripe.HTTPClient):
    """Wraps stripe-python's HTTP client: while a unit is being recorded, each request to Stripe
    becomes one message (method, path, idempotency key, status, duration). Otherwise it passes
    straight through. The Authorization header and the bodies are never kept."""

    name = "tracing"

    def __init__(self, inner: stripe.HTTPClient | None = None) -> None:
        super().__init__()
        self.inner = inner if inner is not None else stripe.new_default_http_client()

    def _traced(self, call, method: str, url: str, headers, post_data):
        unit = _unit.get()
        if unit is None:
            return call(method, url, headers, post_data)
        from .stripe_recorder import _header
        path = url.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        path = "/" + path
        at, started = time.time(), time.perf_counter()
        try:
            result = call(method, url, headers, post_data)
        except Exception as e:
            unit.messages.append(_message(
                unit.step, SERVER, STRIPE, "stripe", status="unreachable", failed=True,
                duration_ms=(time.perf_counter() - started) * 1000, at=at, method=method.upper(),
                path=path, error=type(e).__name__,
                idempotency_key=_header(headers, "Idempotency-Key")))
            raise
        body, code = result[0], result[1]
        # Read later, by the writer's thread (_finish): only PaymentIntents and errors.
        keep = isinstance(body, (str, bytes)) and (code >= 400 or path.startswith(
            "/v1/payment_intents"))
        unit.messages.append(_message(
            _stripe_step(unit.step, method, path), SERVER, STRIPE, "stripe", status=code,
            failed=code >= 400, duration_ms=(time.perf_counter() - started) * 1000, at=at,
            method=method.upper(), path=path, _body=body if keep else None,
            idempotency_key=_header(headers, "Idempotency-Key")))
        return result

    def request(self, method: str, url: str, headers: Optional[Mapping[str, str]],
                post_data: Any = None, *, _usage: Optional[List[str]] = None,
                ) -> Tuple[str, int, Mapping[str, str]]:
        return self._traced(self.inner.request, method, url, headers, post_data)

    def request_stream(self, method: str, url: str, headers: Optional[Mapping[str, str]],
                       post_data: Any = None, *, _usage: Optional[List[str]] = None,
                       ) -> Tuple[Any, int, Mapping[str, str]]:
        return self.inner.request_stream(method, url, headers, post_data)

    async def request_async(self, method: str, url: str, headers: Mapping[str, str],
                            post_data: Any = None) -> Tuple[bytes, int, Mapping[str, str]]:
        return await self.inner.request_async(method, url, headers, post_data)

    async def request_stream_async(self, method: str, url: str, headers: Mapping[str, str],
                                   post_data: Any = None,
                                   ) -> Tuple[AsyncIterable[bytes], int, Mapping[str, str]]:
        return await self.inner.request_stream_async(method, url, headers, post_data)

    def close(self) -> None:
        self.inner.close()


def traced(http_client: stripe.HTTPClient | None) -> stripe.HTTPClient | None:
    """The gateway's HTTP client, wrapped so the server's Stripe requests land in traces."""
    if not enabled() or isinstance(http_client, TracingHTTPClient):
        return http_client
    return TracingHTTPClient(http_client)


def _stripe_step(unit_step: int, method: str, path: str) -> int:
    # Everything POST /api/orders asks of Stripe is step 3, and so is a PaymentIntent created
    # for the checkout page; one created for a retry after a decline (checkout confirm)
    # belongs to the customer's step 5.
    if unit_step == 1 or (unit_step == 4 and method.upper() == "POST"
                          and path == "/v1/payment_intents"):
        return 3
    return unit_step


# --- the client's requests and the webhook (Flask hooks) -----------------------------------------

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


def _before_request() -> None:
    spec = TRACED_ENDPOINTS.get(request.endpoint or "")
    if spec is None:
        return
    g.trace_spec = spec
    g.trace_started = (time.time(), time.perf_counter())
    g.trace_token = _unit.set(Unit(step=spec[1], order_id=(request.view_args or {}).get("order_id")))


def _teardown_request(_exc=None) -> None:
    # A request that ended in an unhandled error skipped after_request: stop recording here,
    # or the thread would go on recording for the next request it serves.
    token = g.pop("trace_token", None)
    if token is not None:
        _unit.reset(token)


def _after_request(response):
    token = g.pop("trace_token", None)
    if token is None:
        return response
    unit = _unit.get()
    _unit.reset(token)
    try:
        _record_request(unit, response)
    except Exception:  # a trace must never break the payment it describes
        current_app.logger.exception("could not record the trace of %s", request.path)
    return response


def _record_request(unit: Unit, response) -> None:
    """Hand the request's messages to the writer. Only what is at hand is read here; the
    answer's JSON is parsed by the writer's thread (_finish), off the request's time."""
    step, _stripe_step_, kind = g.trace_spec
    at, started = g.trace_started
    duration = (time.perf_counter() - started) * 1000
    code = response.status_code
    if kind == "webhook":
        if unit.order_id is None:
            return
        first = unit.messages.pop(0) if unit.messages and unit.messages[0]["kind"] == "webhook" \
            else None
        if first is None:
            return
        first.update(status=str(code), duration_ms=round(duration, 2))
        return _store(unit.order_id, [*unit.before, first, *unit.messages])

    body = response.get_data() if kind in ("order", "poll", "sync", "cancel", "confirm") \
        or code >= 400 else None
    if kind == "order":
        if code != 201:
            return
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        request_line = _message(1, CLIENT, SERVER, "request", at=at, method="POST",
                                path=request.path, replayed=replayed or None,
                                idempotency_key=request.headers.get("Idempotency-Key"))
        messages = [*unit.before, request_line]
        if not replayed:
            messages.append(_message(2, SERVER, SERVER, "priced", at=at + 0.0001))
        messages += unit.messages
        messages.append(_message(4, SERVER, CLIENT, "answer", status=code, duration_ms=duration,
                                 replayed=replayed or None, _body=body, purpose="order"))
        return _store(None, messages)

    if unit.order_id is None:
        return
    if kind == "poll":
        return _store_poll(unit.order_id, _message(
            step, CLIENT, SERVER, "poll", at=at, status=code, failed=code >= 400,
            method=request.method, path=request.path, _body=body))
    request_line = _message(step, CLIENT, SERVER, "request", at=at, method=request.method,
                            path=request.path, purpose=kind)
    answer = _message(step, SERVER, CLIENT, "answer", status=code, failed=code >= 400,
                      duration_ms=duration, purpose=kind, _body=body)
    _store(unit.order_id, [*unit.before, request_line, *unit.messages, answer])


def _finish(messages: list[dict]) -> str | None:
    """In the writer's thread: read what the answers said (their JSON bodies), fill it into the
    messages, and return the order id a POST /api/orders answer names."""
    order_id = None
    for m in messages:
        body = m.pop("_body", None)
        if body is None:
            continue
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if m["kind"] == "stripe":
            answer = _stripe_answer(m.get("path", ""), data, int(m["status"]))
            m.update(answer)
            m["failed"] = m["failed"] or bool(answer.get("error"))
            continue
        order = data.get("order") if isinstance(data.get("order"), dict) else {}
        if m.get("purpose") == "order":
            order_id = order.get("id")
            m.update(payment_intent=order.get("payment_intent"),
                     client_secret=bool(data.get("client_secret")) or None)
            for other in messages:
                if other["kind"] == "request" and other["step"] == 1:
                    other.update(product=order.get("product"), quantity=order.get("quantity"))
                elif other["kind"] == "priced":
                    other.update(amount=order.get("amount"), currency=order.get("currency"))
            continue
        if m["kind"] == "poll":
            m["order_status"] = order.get("status")
            continue
        error = data.get("error")
        if isinstance(error, dict):
            m["error"] = error.get("code") or error.get("type")
            continue
        m["order_status"] = order.get("status")
        intent = data.get("payment_intent") if isinstance(data.get("payment_intent"), dict) else {}
        m.update(payment_intent=intent.get("id"), intent_status=intent.get("status"))
        intent_error = intent.get("last_payment_error")
        if isinstance(intent_error, dict):
            m["error"] = intent_error.get("decline_code") or intent_error.get("code")
            m["failed"] = True
    return order_id


# What a handler did that went wrong (drawn with a cross); every other outcome is normal work.
FAILED_OUTCOMES = ("amount_mismatch", "unknown_order", "stripe_unreachable",
                   "payment_intent_missing")


def webhook_received(event: dict, outcome: str) -> None:
    """Hook in the webhook handler, once its outcome is known: which order the event is about
    (the PaymentIntent's metadata.order_id), and what the handler did."""
    unit = _unit.get()
    if unit is None:
        return
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    intent = data.get("object") if isinstance(data.get("object"), dict) else {}
    metadata = intent.get("metadata") if isinstance(intent.get("metadata"), dict) else {}
    order_id = metadata.get("order_id")
    if not isinstance(order_id, str) and isinstance(intent.get("payment_intent"), str):
        # A charge, refund or dispute: the order is the one its PaymentIntent pays.
        from .db import get_db
        row = get_db().execute("SELECT id FROM orders WHERE payment_intent = ?",
                               (intent["payment_intent"],)).fetchone()
        order_id = row["id"] if row else None
    if not isinstance(order_id, str):
        return
    unit.order_id = order_id[:64]
    at = g.trace_started[0] if "trace_started" in g else time.time()
    failed = outcome in FAILED_OUTCOMES
    line = _message(6, STRIPE, SERVER, "webhook", at=at, event_id=str(event.get("id"))[:80],
                    event_type=str(event.get("type"))[:80], signature="verified",
                    outcome=outcome, failed=failed, payment_intent=intent.get("id"))
    if outcome in ("fulfilled", "attempt_recorded", "fulfilled_after_cancel"):
        # The customer's payment itself went from the browser to Stripe: the server knows of
        # it only now, from Stripe. Drawn as step 5, just before the webhook that told it.
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        declined = event.get("type") == "payment_intent.payment_failed"
        created = event.get("created")
        payment = _message(5, CLIENT, STRIPE, "payment", reported_by="stripe",
                           at=at, paid_at=created if isinstance(created, (int, float)) else None,
                           payment_intent=intent.get("id"),
                           intent_status="requires_payment_method" if declined else intent.get("status"),
                           error=(error.get("decline_code") or error.get("code") or "declined")
                           if declined else None, failed=declined)
        line["payment_line"] = payment
    unit.messages.insert(0, line)


def webhook_rejected(payload: bytes, reason: str) -> None:
    """Hook in the webhook handler for a delivery refused before it was believed (bad or
    missing signature ...): drawn on the order it claims to be about, marked refused, if that
    order exists and is linked to the PaymentIntent it names."""
    unit = _unit.get()
    if unit is None:
        return
    try:
        event = json.loads(payload[:65536])
        intent = event["data"]["object"]
        order_id, intent_id = intent["metadata"]["order_id"], intent["id"]
    except (ValueError, KeyError, TypeError):
        return
    if not isinstance(order_id, str) or not isinstance(intent_id, str):
        return
    from .db import get_db
    row = get_db().execute("SELECT payment_intent FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None or row["payment_intent"] != intent_id:
        return
    unit.order_id = order_id
    unit.messages.insert(0, _message(
        6, STRIPE, SERVER, "webhook", at=g.trace_started[0], failed=True,
        event_id=str(event.get("id"))[:80], event_type=str(event.get("type"))[:80],
        signature="rejected", outcome="rejected: " + reason[:120], payment_intent=intent_id))


# --- sync and reconcile --------------------------------------------------------------------------

def reconcile_unit(function):
    """Decorator for reconcile.reconcile_order(db, gateway, order): inside a sync request it
    adds what was settled; called by the CLI's reconcile or the background one, it records
    the whole exchange with Stripe as a unit of its own."""
    @functools.wraps(function)
    def wrapper(db, gateway, order, *args, **kwargs):
        if not enabled():
            return function(db, gateway, order, *args, **kwargs)
        outer = _unit.get()
        unit = outer if outer is not None else Unit(step=6, order_id=order["id"])
        token = _unit.set(unit) if outer is None else None
        at = time.time()
        try:
            outcome, intent = function(db, gateway, order, *args, **kwargs)
        finally:
            if token is not None:
                _unit.reset(token)
        who = ("sync" if outer is not None else "background reconcile"
               if threading.current_thread().name == "background-reconcile" else "reconcile")
        note = _message(6, SERVER, SERVER, "reconcile", by=who, outcome=outcome,
                        payment_intent=order["payment_intent"],
                        intent_status=(intent or {}).get("status"),
                        failed=outcome in ("amount_mismatch", "stripe_unreachable",
                                           "payment_intent_missing", "unknown_order"))
        unit.messages.append(note)
        if outcome in ("fulfilled", "attempt_recorded", "fulfilled_after_cancel") and intent:
            # The customer paid (or was declined) at Stripe before this check found out.
            error = intent.get("last_payment_error") or {}
            unit.before.append(_message(
                5, CLIENT, STRIPE, "payment", at=at, reported_by="stripe",
                payment_intent=intent.get("id"), intent_status=intent.get("status"),
                error=error.get("decline_code") or error.get("code"), failed=bool(error)))
        if outer is None:
            try:
                _store(order["id"], [*unit.before, *unit.messages], db=db)
            except Exception:
                log.exception("could not record a reconcile's trace")
        return outcome, intent
    return wrapper


# --- storage ---------------------------------------------------------------------------------

def _row(order_id: str, m: dict) -> tuple:
    detail = {k: v for k, v in m.items() if k not in (
        "at", "step", "from", "to", "kind", "status", "failed", "duration_ms", "count")}
    return (order_id, m["at"], m["step"], m["from"], m["to"], m["kind"], m["status"],
            1 if m["failed"] else 0, m["duration_ms"], clean(json.dumps(detail)))


def _expand(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        payment = m.pop("payment_line", None)
        if payment is not None:
            out.append(payment)
        out.append(m)
    return out


_INSERT = ("INSERT INTO trace_messages (order_id, at, step, sender, receiver, kind, status,"
           " failed, duration_ms, detail) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
           " WHERE EXISTS (SELECT 1 FROM orders WHERE id = ?1)"
           " AND (SELECT COUNT(*) FROM trace_messages WHERE order_id = ?1) < ")


def _confirmed_by_server(db, order_id: str, payment_intent: str | None) -> bool:
    """Did this server confirm the payment itself (the offline checkout page's route)? Then
    the trace already holds step 5, and Stripe's report of it adds nothing."""
    return db.execute("SELECT 1 FROM trace_messages WHERE order_id = ? AND kind = 'stripe'"
                      " AND detail LIKE ?", (order_id, f'%"/v1/payment_intents/'
                                             f'{payment_intent}/confirm"%')).fetchone() is not None


def _place_payment(db, order_id: str, m: dict) -> None:
    """When did the customer pay? Stripe's event says so to the second only: draw it after the
    order's last message of steps 1-4 (the customer had the client secret then), and before the
    message that reported it."""
    last = db.execute("SELECT MAX(at) FROM trace_messages WHERE order_id = ? AND step <= 4",
                      (order_id,)).fetchone()[0]
    reported = m["at"]
    m["at"] = min(max(m.pop("paid_at", None) or 0, (last or 0) + 0.001), reported - 0.001)
    m["time_approximate"] = True


def _write(db, order_id: str | None, messages: list[dict]) -> None:
    named = _finish(messages)
    order_id = order_id or named
    if not order_id:
        return
    messages = [m for m in _expand(messages) if not (
        m["kind"] == "payment" and _confirmed_by_server(db, order_id, m.get("payment_intent")))]
    for m in messages:
        if m["kind"] == "payment":
            _place_payment(db, order_id, m)
    db.executemany(_INSERT + str(MAX_MESSAGES_PER_ORDER), [_row(order_id, m) for m in messages])


def _write_poll(db, order_id: str, message: dict) -> None:
    """Polls of one order (the success page asks twice a second) fold into one line: the last
    line grows its count while nothing else happened in between."""
    _finish([message])
    row = _row(order_id, message)
    cur = db.execute(
        "UPDATE trace_messages SET count = count + 1, status = ?, failed = ?, detail = ?,"
        " duration_ms = ? - at"
        " WHERE id = (SELECT MAX(id) FROM trace_messages WHERE order_id = ?) AND kind = 'poll'",
        (row[6], row[7], row[9], message["at"], order_id))
    if cur.rowcount == 0:
        db.execute(_INSERT + str(MAX_MESSAGES_PER_ORDER), row)


class Writer:
    """Writes traces from a thread of its own, so a request only hands its messages over (a
    few microseconds) instead of waiting for a SQLite transaction: recording must not slow the
    payment down (bench/trace_cost.py). Reading a trace waits until what was handed over is
    written. Bounded: if the writer falls far behind, new messages are dropped, not queued."""

    MAX_PENDING = 10_000

    def __init__(self, database: str) -> None:
        self.database = database
        self.pending: queue.Queue = queue.Queue(maxsize=self.MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, write, order_id: str, payload) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="trace-writer",
                                                    daemon=True)
                    self._thread.start()
        try:
            self.pending.put_nowait((write, order_id, payload))
        except queue.Full:
            pass  # a trace is a teaching aid: never hold a payment up for it

    def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.002)

    def _run(self) -> None:
        from .db import connect, transaction
        db = connect(self.database)
        while True:
            items = [self.pending.get()]
            while len(items) < 200:  # what piled up meanwhile: one transaction for all
                try:
                    items.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            try:
                with transaction(db):
                    for write, order_id, payload in items:
                        try:
                            write(db, order_id, payload)
                        except sqlite3.Error:
                            log.exception("could not record a trace message")
            except sqlite3.Error:
                log.exception("could not record trace messages")
            finally:
                for _ in items:
                    self.pending.task_done()


def _store(order_id: str | None, messages: list[dict], db=None) -> None:
    """Record messages: at once on `db` (reconcile, the CLI), else through the app's writer."""
    if not messages:
        return
    if db is not None:
        from .db import transaction
        with transaction(db):
            _write(db, order_id, messages)
        return
    current_app.extensions["trace_writer"].put(_write, order_id, messages)


def _store_poll(order_id: str, message: dict) -> None:
    current_app.extensions["trace_writer"].put(_write_poll, order_id, message)


def read_trace(db, order_id: str) -> list[dict]:
    rows = db.execute("SELECT * FROM trace_messages WHERE order_id = ? ORDER BY at, id",
                      (order_id,)).fetchall()
    start = rows[0]["at"] if rows else 0.0
    messages = []
    for r in rows:
        m = {"object": "trace_message", "at": round(r["at"], 3),
             "t_ms": round((r["at"] - start) * 1000, 1), "step": r["step"], "from": r["sender"],
             "to": r["receiver"], "kind": r["kind"], "status": r["status"],
             "failed": bool(r["failed"]), "duration_ms": r["duration_ms"], "count": r["count"]}
        m.update(json.loads(r["detail"]))
        if m["kind"] == "poll":
            m["duration_ms"] = None
            m["span_ms"] = round(r["duration_ms"] * 1000, 1) if r["duration_ms"] else 0
        messages.append(m)
    return messages


# --- the endpoint ----------------------------------------------------------------------------------

bp = Blueprint("trace", __name__)


@bp.get("/api/orders/<order_id>/trace")
def order_trace(order_id: str):
    from .db import get_db
    from .orders_api import order_or_404
    db = get_db()
    order_or_404(db, order_id)
    current_app.extensions["trace_writer"].flush()  # what earlier requests handed over
    messages = read_trace(db, order_id)
    return jsonify({"object": "list", "order": order_id, "data": messages,
                    "mermaid": mermaid(messages)})


MERMAID_FILE = "mermaid.min.js"
MERMAID_MAX_AGE = 24 * 3600


@bp.get("/dashboard/vendor/mermaid.min.js")
def mermaid_library():
    """The Mermaid library the dashboard draws traces with: npm's `mermaid` (pinned in
    client/package.json), copied beside the shop's build by `make client`. Served from here,
    never a CDN, so diagrams draw offline and on a class network. Without a build: 404, and the
    dashboard shows the diagram's text instead."""
    from flask import send_from_directory

    from .shop import dist_folder
    response = send_from_directory(dist_folder() / "vendor", MERMAID_FILE, max_age=MERMAID_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install(app: Flask) -> None:
    """Register the endpoint and, unless TUTORIAL_TRACE=off, the recording hooks."""
    app.register_blueprint(bp)
    app.extensions["trace_writer"] = Writer(app.config["DATABASE"])
    if enabled():
        app.before_request(_before_request)
        app.after_request(_after_request)
        app.teardown_request(_teardown_request)
