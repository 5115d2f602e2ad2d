"""Checkout Sessions for the offline stand-in, which has none (localstripe knows PaymentIntents,
not Checkout). Part of the stand-in's launcher: stand_in.py serves these routes with it:

    POST /v1/checkout/sessions                  create (payment mode, price_data line items)
    GET  /v1/checkout/sessions/{id}             retrieve
    POST /v1/checkout/sessions/{id}/expire      expire an open session
    GET  /v1/checkout/sessions/{id}/line_items  its line items
    GET  /_lab/checkout/sessions/{id}/payment   for the lab's offline hosted page only: what to
                                                pay and the client secret to pay it with

Each session is backed by a PaymentIntent on the stand-in, created with it. Paying the session
is paying that PaymentIntent (the lab's page does it with the mock Stripe.js, as the checkout
page does); when the stand-in reports it succeeded, the session turns `complete` and
`checkout.session.completed` is signed and delivered like every other event. An expired session
cancels its PaymentIntent and sends `checkout.session.expired`. What differs from real
Checkout: rows of the offline-differences table (course/differences.py).
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web
# Part of the launcher, the only place that imports localstripe (GPL): see stand_in.py.
from localstripe import resources as ls_resources  # type: ignore[import-untyped]

MIN_LIFETIME, MAX_LIFETIME, DEFAULT_LIFETIME = 30 * 60, 24 * 3600, 24 * 3600
MAX_LINE_ITEMS = 100
PAGE_BASE = "/offline-checkout"  # the lab's hosted page, on the merchant server (relative)
_ALLOWED = {"mode", "line_items", "success_url", "cancel_url", "client_reference_id",
            "metadata", "payment_intent_data", "expires_at", "customer_email",
            "allowed_payment_method_types"}


class CheckoutError(Exception):
    """A request the stand-in refuses, answered in Stripe's error shape."""

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def response(self) -> web.Response:
        error = {"type": "invalid_request_error", "code": self.code, "message": str(self),
                 "param": self.param}
        return web.json_response({"error": error}, status=self.status)


class Session:
    """One Checkout Session. `_export()` is what localstripe's Event carries and the API shows."""
    object = "checkout.session"

    def __init__(self, params: dict, items: list[dict], intent: Any) -> None:
        self.id = "cs_test_" + secrets.token_urlsafe(43).replace("-", "a").replace("_", "b")
        self.created = int(time.time())
        self.params, self.items = params, items
        self.amount_total = sum(item["amount_total"] for item in items)
        self.currency = items[0]["currency"]
        self.status, self.payment_status = "open", "unpaid"
        self.intent = intent          # the backing PaymentIntent (localstripe's object)
        self.payment_intent: str | None = None  # named once the customer tries to pay
        lifetime = params.get("expires_at")
        self.expires_at = int(lifetime) if lifetime else self.created + DEFAULT_LIFETIME

    def _export(self, expand=None) -> dict:
        p = self.params
        return {
            "id": self.id, "object": self.object, "created": self.created, "livemode": False,
            "mode": "payment", "status": self.status, "payment_status": self.payment_status,
            "amount_subtotal": self.amount_total, "amount_total": self.amount_total,
            "currency": self.currency, "payment_intent": self.payment_intent,
            "client_reference_id": p.get("client_reference_id"),
            "metadata": dict(p.get("metadata") or {}), "customer_email": p.get("customer_email"),
            "success_url": p.get("success_url"), "cancel_url": p.get("cancel_url"),
            "expires_at": self.expires_at, "payment_method_types": ["card"],
            "url": f"{PAGE_BASE}/{self.id}" if self.status == "open" else None,
        }


_sessions: dict[str, Session] = {}
_by_intent: dict[str, Session] = {}


def _text(value: Any, param: str, limit: int = 5000, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise CheckoutError(f"Missing required param: {param}.", param,
                                code="parameter_missing")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise CheckoutError(f"Invalid string: {param} (at most {limit} characters).", param)
    return value


def _positive_int(value: Any, param: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckoutError(f"Invalid integer: {param} must be a whole number of at least 1.",
                            param)
    return value


def _url(value: Any, param: str) -> str:
    url = _text(value, param, 5000, required=True) or ""
    if not url.startswith(("http://", "https://")):
        raise CheckoutError(f"Not a valid URL: {param}.", param, code="url_invalid")
    return url


def _metadata(value: Any, param: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or len(value) > 50 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 40 and len(v) <= 500
            for k, v in value.items()):
        raise CheckoutError(f"Invalid {param}: at most 50 keys of 40 characters, values of "
                            "500.", param)
    return dict(value)


def _line_item(item: Any, i: int) -> dict:
    param = f"line_items[{i}]"
    if not isinstance(item, dict):
        raise CheckoutError(f"Invalid {param}.", param)
    if "price" in item:
        raise CheckoutError("The offline stand-in knows no Price objects: use price_data.",
                            f"{param}[price]")
    unknown = set(item) - {"price_data", "quantity"}
    if unknown:
        raise CheckoutError(f"Received unknown parameter: {param}[{sorted(unknown)[0]}].",
                            f"{param}[{sorted(unknown)[0]}]")
    data = item.get("price_data")
    if not isinstance(data, dict):
        raise CheckoutError(f"Missing required param: {param}[price_data].",
                            f"{param}[price_data]", code="parameter_missing")
    currency = _text(data.get("currency"), f"{param}[price_data][currency]", 3, True) or ""
    if len(currency) != 3 or not currency.isalpha() or not currency.islower():
        raise CheckoutError("Invalid currency: a three-letter ISO code in lower case.",
                            f"{param}[price_data][currency]")
    unit = _positive_int(data.get("unit_amount"), f"{param}[price_data][unit_amount]")
    product = data.get("product_data")
    name = _text(product.get("name") if isinstance(product, dict) else None,
                 f"{param}[price_data][product_data][name]", 250, required=True)
    quantity = _positive_int(item.get("quantity"), f"{param}[quantity]")
    return {"id": "li_" + secrets.token_hex(12), "object": "item", "currency": currency,
            "description": name, "quantity": quantity, "amount_subtotal": unit * quantity,
            "amount_total": unit * quantity, "amount_discount": 0, "amount_tax": 0,
            # As real Stripe: price_data becomes a Price of a Product made for it (their ids).
            "price": {"id": "price_" + secrets.token_hex(12), "object": "price",
                      "currency": currency, "unit_amount": unit, "type": "one_time",
                      "product": "prod_" + secrets.token_hex(7)}}


def parse_create(data: Any, now: float | None = None) -> tuple[dict, list[dict]]:
    """The create request's parameters, checked; raises CheckoutError naming the parameter."""
    if not isinstance(data, dict):
        raise CheckoutError("The request has no parameters.")
    unknown = sorted(set(data) - _ALLOWED)
    if unknown:
        raise CheckoutError(f"Received unknown parameter: {unknown[0]}. (The offline stand-in "
                            "knows the parameters of payment-mode sessions the lab uses.)",
                            unknown[0])
    if data.get("mode") != "payment":
        raise CheckoutError("Offline, only mode=payment is supported.", "mode")
    if data.get("allowed_payment_method_types") not in (None, ["card"]):
        raise CheckoutError("Offline, only card payments.", "allowed_payment_method_types")
    raw_items = data.get("line_items")
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_LINE_ITEMS:
        raise CheckoutError(f"line_items: 1 to {MAX_LINE_ITEMS} items are required in payment "
                            "mode.", "line_items", code="parameter_missing")
    items = [_line_item(item, i) for i, item in enumerate(raw_items)]
    if len({item["currency"] for item in items}) > 1:
        raise CheckoutError("All line items must have the same currency.", "line_items")
    intent_data = data.get("payment_intent_data") or {}
    if not isinstance(intent_data, dict) or set(intent_data) - {"metadata"}:
        raise CheckoutError("Offline, payment_intent_data takes metadata only.",
                            "payment_intent_data")
    params: dict[str, Any] = {
        "success_url": _url(data.get("success_url"), "success_url"),
        "cancel_url": _url(data["cancel_url"], "cancel_url") if data.get("cancel_url") else None,
        "client_reference_id": _text(data.get("client_reference_id"), "client_reference_id",
                                     200),
        "customer_email": _text(data.get("customer_email"), "customer_email", 800),
        "metadata": _metadata(data.get("metadata"), "metadata"),
        "intent_metadata": _metadata(intent_data.get("metadata"),
                                     "payment_intent_data[metadata]"),
    }
    if data.get("expires_at") not in (None, ""):
        expires_at = _positive_int(data["expires_at"], "expires_at")
        now = time.time() if now is None else now
        if not now + MIN_LIFETIME - 60 <= expires_at <= now + MAX_LIFETIME + 60:
            raise CheckoutError("expires_at must be 30 minutes to 24 hours from now.",
                                "expires_at")
        params["expires_at"] = expires_at
    return params, items


def session_or_404(session_id: str) -> Session:
    """The session (expired first if its time has come), or a 404 in Stripe's shape."""
    session = _sessions.get(session_id)
    if session is None:
        raise CheckoutError(f"No such checkout.session: '{session_id[:80]}'", "session",
                            status=404, code="resource_missing")
    _expire_if_due(session)
    return session


def expire(session: Session) -> None:
    session.status = "expired"
    if session.intent.status != "canceled":
        try:
            ls_resources.PaymentIntent._api_cancel(session.intent.id)
        except ls_resources.UserError:
            pass  # already past canceling: the session's status says what happened
    ls_resources.schedule_webhook(ls_resources.Event("checkout.session.expired", session))


def _expire_if_due(session: Session, now: float | None = None) -> None:
    if session.status == "open" and (time.time() if now is None else now) >= session.expires_at:
        expire(session)


def on_event(event: Any) -> None:
    """Told of every event the stand-in schedules: a backing PaymentIntent that succeeded
    completes its session (and the session's own event follows)."""
    if event.type != "payment_intent.succeeded":
        return
    session = _by_intent.get(event.data["object"]["id"])
    if session is None or session.status != "open":
        return
    session.status, session.payment_status = "complete", "paid"
    session.payment_intent = session.intent.id
    ls_resources.schedule_webhook(ls_resources.Event("checkout.session.completed", session))


def watch_events() -> None:
    """Wrap the stand-in's scheduler once, so that on_event hears every event."""
    original = ls_resources.schedule_webhook
    if getattr(original, "watched_by_checkout", False):
        return

    def schedule(event):
        original(event)
        on_event(event)
    schedule.watched_by_checkout = True  # type: ignore[attr-defined]
    ls_resources.schedule_webhook = schedule


def create_session(data: Any) -> Session:
    """A new session from the create request's parameters, backed by a new PaymentIntent."""
    params, items = parse_create(data)
    intent = ls_resources.PaymentIntent._api_create(
        amount=sum(item["amount_total"] for item in items), currency=items[0]["currency"],
        metadata=params["intent_metadata"])
    session = Session(params, items, intent)
    _sessions[session.id] = session
    _by_intent[intent.id] = session
    return session


def _ready_for_another_card(intent: Any) -> None:
    """Real Stripe's PaymentIntent takes another card after a decline or an abandoned challenge;
    the stand-in's keeps its failed charge (or its challenge) for good. Clear them, so it is
    where Stripe's would be: waiting for a payment method. (Its payment_failed event already
    carries the decline.)"""
    intent.latest_charge = None
    intent.payment_method = None
    intent.next_action = None
    intent._authentication_failed = False


def payment_for(session: Session) -> dict:
    """For the lab's offline hosted page: what the customer pays, and the client secret of the
    PaymentIntent to pay it with. The session keeps one PaymentIntent, as on real Stripe: after
    a declined card, or a 3-D Secure challenge left open, it is made ready for another card."""
    stuck = session.intent.status == "requires_action" or (
        session.intent.status == "requires_payment_method"
        and session.intent.latest_charge is not None)
    if session.status == "open" and stuck:
        _ready_for_another_card(session.intent)
    if session.status == "open":
        session.payment_intent = session.intent.id
    return {"session": session._export(), "line_items": session.items,
            "payment_intent": session.intent.id, "client_secret": session.intent.client_secret,
            "intent_status": session.intent.status}
