"""Steps 1, 2 and 4 over HTTP: the client asks, the server prices, the server answers.

POST /api/orders takes only {"productId", "quantity", "customer"?}: the client says what it
wants, never what it costs. The answer carries the order and the PaymentIntent's client
secret, the one Stripe value the browser needs; secret keys never leave the server.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify

from . import catalogue, checkout_sessions, learners, orders, payments
from .db import get_db, transaction
from .errors import ApiError
from .pages import stripe_js_url
from .parsing import check_customer_id, idempotency_conflict, idempotency_key, read_json_object
from .pricing import MAX_QUANTITY, MIN_QUANTITY, AmountOutOfRange, price_order

log = logging.getLogger(__name__)
bp = Blueprint("orders_api", __name__, url_prefix="/api")

DEFAULT_CUSTOMER = "guest"
_ALLOWED_FIELDS = {"productId", "quantity", "customer", "payWith"}
PAY_WITH = ("payment_intent", checkout_sessions.PAY_WITH)
_PRICE_FIELDS = {"amount", "price", "unit_amount", "total", "currency", "discount"}


@bp.get("/config")
def config():
    settings = current_app.config["SETTINGS"]
    body = {"mode": settings.mode, "publishable_key": settings.publishable_key,
            "stripe_js_url": stripe_js_url(),  # offline: a path on this server
            "api_version": current_app.config["STRIPE_API_VERSION"]}
    if settings.offline:
        body["backend_url"] = current_app.config["BACKEND_URL"]
    if learners.class_mode():  # a shared server: learners join for a key (learners.py)
        body["class_mode"] = True
    return jsonify(body)


@bp.get("/products")
def products():
    return jsonify({"object": "list", "data": [p.to_dict() for p in catalogue.PRODUCTS]})


def parse_pay_with(body: dict) -> str:
    """How the customer will pay: the lab's checkout page (a PaymentIntent, the default) or
    Stripe's hosted Checkout page (checkout_sessions.py)."""
    pay_with = body.get("payWith", PAY_WITH[0])
    if pay_with not in PAY_WITH:
        raise ApiError(400, "payWith must be payment_intent (the default) or checkout_session.",
                       param="payWith")
    return pay_with


def parse_order_request() -> tuple[catalogue.Product, int, str | None, str]:
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

    customer = body.get("customer")
    return (product, quantity, None if customer is None else check_customer_id(customer),
            parse_pay_with(body))


@bp.post("/orders")
def create_order():
    key = idempotency_key()
    product, quantity, customer, pay_with = parse_order_request()
    db = get_db()
    learner, access = learners.owner_for_new_order(db, customer)
    customer = customer or learner or DEFAULT_CUSTOMER  # a learner's order is theirs by default
    # The learner is part of the request: a classmate who guesses the key gets a conflict.
    fingerprint = hashlib.sha256(json.dumps([product.id, quantity, customer, learner] + (
        [pay_with] if pay_with != PAY_WITH[0] else [])).encode()).hexdigest()

    with transaction(db):
        replayed = False
        known = orders.find_idempotency_key(db, key) if key else None
        if known is not None:
            if known["fingerprint"] != fingerprint:
                raise idempotency_conflict()
            order_id, replayed = known["order_id"], True
        else:
            try:
                priced = price_order(product, quantity)
            except AmountOutOfRange as e:  # refused here, before any Stripe call
                raise ApiError(400, str(e), param="quantity", code=e.code) from None
            order_id = orders.insert_order(db, priced, customer, pay_with)
            learners.record_owner(db, order_id, learner, access)
            if key:
                orders.remember_idempotency_key(db, key, fingerprint, order_id)

    order = orders.get_order(db, order_id)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if order["pay_with"] == checkout_sessions.PAY_WITH:
        return _session_order_answer(db, order, access, replayed), 201, headers
    intent = payments.ensure_payment_intent(db, order)
    answer = payments.answer_for_client(orders.get_order(db, order_id), intent)
    if replayed and not learners.may_act_on(db, order_id):
        # Class mode: the dashboard's trace shows Idempotency-Keys, so a classmate could replay
        # an order made without a learner key; they get the order, not its client secret.
        answer["client_secret"] = None
    # Class mode: how the creator proves the order is theirs. (A replay, which only the holder
    # of the Idempotency-Key can make, answers as before but cannot show the code again: the
    # server keeps its digest only.)
    if access is not None and not replayed:
        answer["access"] = access
        answer["checkout_url"] = f"/checkout/{order_id}?access={access}"
    return jsonify(answer), 201, headers


def _session_order_answer(db, order, access: str | None, replayed: bool) -> dict:
    """The other way (checkout_sessions.py): the order and where to send the customer, Stripe's
    page. No client secret: the browser never sees a PaymentIntent."""
    session = checkout_sessions.ensure_session(db, order, access)
    answer: dict[str, Any] = {"order": orders.order_to_api(orders.get_order(db, order["id"])),
              "client_secret": None,
              "checkout_session": checkout_sessions.session_for_client(session)}
    if replayed and not learners.may_act_on(db, order["id"]):
        answer["checkout_session"] = None  # as for a client secret: the owner's only
    if access is not None and not replayed:
        answer["access"] = access
        answer["checkout_url"] = f"/checkout/{order['id']}?access={access}"
    return answer


def order_or_404(db, order_id: str):
    """The order, or a 404 in the API's error shape."""
    order = orders.get_order(db, order_id)
    if order is None:
        raise ApiError(404, f"No such order: '{order_id[:64]}'.", param="id",
                       code="resource_missing")
    return order


@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    db = get_db()
    answer = orders.order_to_api(order_or_404(db, order_id))
    if answer["checkout_session"] and not _may_see_session(db, order_id):
        # Class mode: a Checkout Session's id is the address of its hosted page, so, like a
        # client secret, the owner's only; classmates see enough to tell sessions apart.
        answer["checkout_session"] = answer["checkout_session"][:14] + "\u2026"
    return jsonify({"order": answer})


def _may_see_session(db, order_id: str) -> bool:
    try:
        return learners.may_act_on(db, order_id)
    except ApiError:  # an unknown learner key: a reader like any other
        return False


@bp.post("/orders/<order_id>/sync")
def sync_order(order_id: str):
    """Ask Stripe how this order's payment stands and settle the order accordingly: the same
    check `reconcile` makes for every order, for one order (e.g. after 3-D Secure, for which
    the offline stand-in sends no webhook). Safe to call any number of times."""
    db = get_db()
    order = order_or_404(db, order_id)
    learners.require_owner(db, order_id)
    intent = payments.sync_payment(db, order)
    summary = {k: intent.get(k) for k in ("id", "status", "last_payment_error")} if intent else None
    return jsonify({"order": orders.order_to_api(orders.get_order(db, order_id)),
                    "payment_intent": summary})


@bp.post("/orders/<order_id>/cancel")
def cancel_order(order_id: str):
    """Abandoned checkout: the customer left without paying (payments.cancel_payment)."""
    db = get_db()
    order = order_or_404(db, order_id)
    learners.require_owner(db, order_id)
    payments.cancel_payment(db, order)
    return jsonify({"order": orders.order_to_api(orders.get_order(db, order_id))})


@bp.get("/customers/<customer_id>/inventory")
def inventory(customer_id: str):
    check_customer_id(customer_id)
    return jsonify({"object": "list", "customer": customer_id,
                    "data": orders.inventory_for(get_db(), customer_id)})
