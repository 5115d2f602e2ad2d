"""Steps 1, 2 and 4 over HTTP: the client asks, the server prices, the server answers.

POST /api/orders takes only {"productId", "quantity", "customer"?}: the client says what it
wants, never what it costs. The answer carries the order and the PaymentIntent's client
secret, the one Stripe value the browser needs; secret keys never leave the server.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

import stripe
from flask import Blueprint, current_app, jsonify, request

from . import catalogue, fulfilment, orders
from .db import get_db, transaction
from .errors import ApiError, read_json_object
from .reconcile import reconcile_order
from .pricing import MAX_QUANTITY, MIN_QUANTITY, AmountOutOfRange, price_order

log = logging.getLogger(__name__)
bp = Blueprint("orders_api", __name__, url_prefix="/api")

DEFAULT_CUSTOMER = "guest"
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALLOWED_FIELDS = {"productId", "quantity", "customer"}
_PRICE_FIELDS = {"amount", "price", "unit_amount", "total", "currency", "discount"}
MAX_IDEMPOTENCY_KEY = 255


@bp.get("/config")
def config():
    from .checkout import stripe_js_url  # here: checkout imports this module
    settings = current_app.config["SETTINGS"]
    body = {"mode": settings.mode, "publishable_key": settings.publishable_key,
            "stripe_js_url": stripe_js_url(),  # offline: a path on this server
            "api_version": current_app.config["STRIPE_API_VERSION"]}
    if settings.offline:
        body["backend_url"] = current_app.config["BACKEND_URL"]
    return jsonify(body)


@bp.get("/products")
def products():
    return jsonify({"object": "list", "data": [p.to_dict() for p in catalogue.PRODUCTS]})


def parse_order_request() -> tuple[catalogue.Product, int, str]:
    """Validate the step-1 request; every problem is a 4xx naming the parameter."""
    body = read_json_object("the order")
    for name in body:
        if name in _PRICE_FIELDS:
            raise ApiError(400, f"Received unknown parameter: {name}. The server prices every "
                           "order from its catalogue; send only productId and quantity.",
                           param=name)
        if name not in _ALLOWED_FIELDS:
            raise ApiError(400, f"Received unknown parameter: {str(name)[:64]}.",
                           param=str(name)[:64])

    product_id = body.get("productId")
    if product_id is None:
        raise ApiError(400, "Missing required param: productId.", param="productId")
    if not isinstance(product_id, str):
        raise ApiError(400, "productId must be a string.", param="productId")
    product = catalogue.get_product(product_id)
    if product is None:
        raise ApiError(404, f"No such product: '{product_id[:64]}'.", param="productId",
                       code="resource_missing")

    quantity = body.get("quantity")
    if quantity is None:
        raise ApiError(400, "Missing required param: quantity.", param="quantity")
    # bool is an int in Python, and 2.0 or "2" are not integers in JSON terms.
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApiError(400, "quantity must be a whole number.", param="quantity")
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise ApiError(400, f"quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}.",
                       param="quantity")

    customer = body.get("customer", DEFAULT_CUSTOMER)
    if not isinstance(customer, str) or not _CUSTOMER_ID.match(customer):
        raise ApiError(400, "customer must be 1 to 64 letters, digits, '_' or '-'.",
                       param="customer")
    return product, quantity, customer


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise ApiError(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable "
                       "ASCII characters.", param="Idempotency-Key")
    return key


@bp.post("/orders")
def create_order():
    key = _idempotency_key()
    product, quantity, customer = parse_order_request()
    fingerprint = hashlib.sha256(json.dumps([product.id, quantity, customer]).encode()).hexdigest()
    db = get_db()

    with transaction(db):
        replayed = False
        known = orders.find_idempotency_key(db, key) if key else None
        if known is not None:
            if known["fingerprint"] != fingerprint:
                raise ApiError(409, "Keys for idempotent requests can only be used with the "
                               "same parameters they were first used with.",
                               type="idempotency_error", param="Idempotency-Key")
            order_id, replayed = known["order_id"], True
        else:
            try:
                priced = price_order(product, quantity)
            except AmountOutOfRange as e:  # refused here, before any Stripe call
                raise ApiError(400, str(e), param="quantity", code=e.code) from None
            order_id = orders.create_order(db, priced, customer)
            if key:
                orders.remember_idempotency_key(db, key, fingerprint, order_id)

    intent = ensure_payment_intent(db, order_id)
    order = orders.get_order(db, order_id)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    client_secret = intent["client_secret"] if intent else None
    return (jsonify({"order": orders.order_to_api(order), "client_secret": client_secret}),
            201, headers)


def ensure_payment_intent(db, order_id: str) -> dict | None:
    """Step 3: the order's PaymentIntent, created once (a retry reuses it).

    None when there is nothing left to pay: the order is canceled, or its PaymentIntent is
    gone (the offline stand-in starts empty after a restart).
    """
    gateway = current_app.extensions["gateway"]
    order = orders.get_order(db, order_id)
    if order["status"] == "canceled":
        return None
    try:
        if order["payment_intent"]:
            return gateway.retrieve_payment_intent(order["payment_intent"])
        intent = gateway.create_payment_intent(order)
    except stripe.InvalidRequestError:
        if order["payment_intent"]:
            return None
        log.warning("Stripe refused to create a PaymentIntent for order %s", order_id)
        raise ApiError(502, "Stripe refused to create the payment for this order; the server "
                       "log has details.", type="api_error") from None
    except (stripe.AuthenticationError, stripe.PermissionError):
        raise ApiError(503, "Stripe refused the server's API key: check STRIPE_SECRET_KEY.",
                       type="api_error") from None
    except stripe.StripeError as e:
        log.warning("Stripe call for order %s failed: %s", order_id, type(e).__name__)
        raise ApiError(503, "Could not reach Stripe to set up the payment. The order is saved "
                       "(status created); retry with the same Idempotency-Key.",
                       type="api_connection_error") from None
    with transaction(db):
        if orders.attach_payment_intent(db, order_id, intent["id"]):
            return intent
    # A concurrent retry linked its PaymentIntent first; use that one.
    return gateway.retrieve_payment_intent(orders.get_order(db, order_id)["payment_intent"])


def order_or_404(db, order_id: str):
    """The order, or a 404 in the API's error shape."""
    order = orders.get_order(db, order_id)
    if order is None:
        raise ApiError(404, f"No such order: '{order_id[:64]}'.", param="id",
                       code="resource_missing")
    return order


@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    order = order_or_404(get_db(), order_id)
    return jsonify({"order": orders.order_to_api(order)})


@bp.post("/orders/<order_id>/sync")
def sync_order(order_id: str):
    """Ask Stripe how this order's payment stands and settle the order accordingly: the same
    check `reconcile` makes for every order, for one order (e.g. after 3-D Secure, for which
    the offline stand-in sends no webhook). Safe to call any number of times."""
    db = get_db()
    order = order_or_404(db, order_id)
    intent = None
    if order["status"] != "canceled":
        outcome, intent = reconcile_order(db, current_app.extensions["gateway"], order)
        if outcome == "stripe_unreachable":
            raise ApiError(503, "Could not reach Stripe to check the payment; retry later.",
                           type="api_connection_error")
    summary = {k: intent.get(k) for k in ("id", "status", "last_payment_error")} if intent else None
    return jsonify({"order": orders.order_to_api(orders.get_order(db, order_id)),
                    "payment_intent": summary})


ABANDONED = "abandoned"


@bp.post("/orders/<order_id>/cancel")
def cancel_order(order_id: str):
    """Abandoned checkout: the customer left without paying. Cancel the order and its
    PaymentIntent, so nothing can be charged for it any more. Safe to call any number of times.

    Stripe first, the database second: once Stripe has canceled the PaymentIntent no payment
    can succeed on it, so an order canceled here was never paid. (The other way round, the
    customer could still pay for an order we had already given up.) If the server stops
    between the two, `reconcile` finds the canceled PaymentIntent and cancels the order.
    """
    db = get_db()
    order = order_or_404(db, order_id)
    if order["status"] == "canceled":
        return jsonify({"order": orders.order_to_api(order)})
    if order["status"] in orders.PAID_STATUSES:
        raise _cannot_cancel_paid(order_id)
    if order["payment_intent"]:
        intent = _cancel_payment_intent(order["payment_intent"])
        if intent is not None and intent.get("status") == "succeeded":
            # The customer paid just before the cancel reached Stripe: the order is paid
            # (its webhook may not have arrived yet), not abandoned.
            with transaction(db):
                fulfilment.settle_order(db, intent)
            raise _cannot_cancel_paid(order_id)
    with transaction(db):
        orders.cancel_order(db, order_id, ABANDONED)
    return jsonify({"order": orders.order_to_api(orders.get_order(db, order_id))})


def _cannot_cancel_paid(order_id: str) -> ApiError:
    return ApiError(409, f"Order {order_id} is paid: a paid order cannot be canceled "
                    "(refund the payment instead).", code="order_already_paid")


def _cancel_payment_intent(payment_intent_id: str) -> dict | None:
    """Cancel at Stripe; if Stripe refuses, the PaymentIntent as it now stands (None: Stripe
    does not know it, so nothing can ever be paid on it)."""
    gateway = current_app.extensions["gateway"]
    unreachable = ApiError(503, "Could not reach Stripe to cancel the payment; nothing was "
                           "changed. Retry later.", type="api_connection_error")
    try:
        return gateway.cancel_payment_intent(payment_intent_id, ABANDONED)
    except stripe.InvalidRequestError:
        pass  # already succeeded, already canceled, processing, or unknown: look
    except stripe.StripeError:
        raise unreachable from None
    try:
        intent = gateway.retrieve_payment_intent(payment_intent_id)
    except stripe.InvalidRequestError:
        return None
    except stripe.StripeError:
        raise unreachable from None
    if intent.get("status") not in ("succeeded", "canceled"):
        raise ApiError(409, f"Stripe cannot cancel this payment while it is "
                       f"{intent.get('status')}; retry shortly.",
                       code="payment_intent_unexpected_state")
    return intent


@bp.get("/customers/<customer_id>/inventory")
def inventory(customer_id: str):
    if not _CUSTOMER_ID.match(customer_id):
        raise ApiError(400, "customer must be 1 to 64 letters, digits, '_' or '-'.",
                       param="customer")
    return jsonify({"object": "list", "customer": customer_id,
                    "data": orders.inventory_for(get_db(), customer_id)})
