"""The other way: the same order paid on Stripe's hosted Checkout page.

Steps 1 and 2 do not change: the client names a product and a quantity, the server prices the
order. Then, instead of creating a PaymentIntent and showing a card form of its own (steps
3-5), the server creates a Checkout Session for the order and sends the customer to Stripe's
page; Stripe creates the PaymentIntent when the customer pays. Step 6 does not change either:
a signed event, checked, settles the order exactly once through fulfilment.settle_order,
whichever of checkout.session.completed and payment_intent.succeeded arrives first.

POST /api/orders {"productId", "quantity", "payWith": "checkout_session"}  (orders_api.py)
POST /api/orders/<id>/checkout-session   the order's session (made once): its id and URL

What the merchant no longer writes: the card form, 3-D Secure, the retry after a decline.
What it can no longer see or change: the page itself, and the payment until the customer has
tried (the session names its PaymentIntent only then).
"""
from __future__ import annotations

import logging
import re

import stripe
from flask import Blueprint, current_app, jsonify, request, url_for

from . import alerts, catalogue, claims, fulfilment, learners, orders
from .db import get_db, transaction
from .errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("checkout_sessions", __name__, url_prefix="/api")

PAY_WITH = "checkout_session"
EVENT_TYPES = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
               "checkout.session.async_payment_failed", "checkout.session.expired")
SESSION_CLAIM = "checkout_session"  # claims.py: the order whose session is being created
EXPIRED = "checkout_session_expired"  # the order's cancellation reason
_SESSION_ID = re.compile(r"cs_(test|live)_[A-Za-z0-9]{1,255}")


def _gateway():
    return current_app.extensions["gateway"]


def session_for_client(session: dict | None) -> dict | None:
    """What the client needs of the session: where to send the customer, and until when."""
    if session is None:
        return None
    answer = {key: session.get(key) for key in ("id", "url", "status", "expires_at")}
    if isinstance(answer["url"], str) and answer["url"].startswith("/"):
        # Offline, Stripe's page is played by the lab, on this server (behind a proxy's prefix).
        answer["url"] = request.script_root + answer["url"]
    return answer


def ensure_session(db, order, access: str | None = None) -> dict | None:
    """The order's Checkout Session, created once (a retry reuses it; concurrent requests wait
    for the first, as for a PaymentIntent). None when the order is canceled or the session is
    gone (the offline stand-in starts empty). `access`: the class-mode code, for the link back."""
    order_id = order["id"]

    def linked_or_claimed():
        current = orders.get_order(db, order_id)
        if current["status"] == orders.CANCELED or current["checkout_session"]:
            return current
        return current if claims.claim(db, SESSION_CLAIM, order_id) else None

    order = claims.wait(linked_or_claimed)
    if order["status"] == orders.CANCELED:
        return None
    if order["checkout_session"]:
        try:
            return _gateway().retrieve_checkout_session(order["checkout_session"])
        except stripe.InvalidRequestError:
            return None
    back = url_for("checkout.checkout_page", order_id=order_id, _external=True)
    product = catalogue.get_product(order["product_id"])
    try:
        session = _gateway().create_checkout_session(
            order, product,
            success_url=url_for("checkout.complete_page", order_id=order_id, _external=True)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=back + (f"?access={access}" if access else ""))
    except stripe.InvalidRequestError:
        claims.release(db, SESSION_CLAIM, order_id)
        log.warning("Stripe refused to create a Checkout Session for order %s", order_id)
        raise ApiError(502, "Stripe refused to create the Checkout Session for this order; the "
                       "server log has details.", type="api_error") from None
    except BaseException:
        claims.release(db, SESSION_CLAIM, order_id)
        raise
    with transaction(db):
        claims.release(db, SESSION_CLAIM, order_id)
        db.execute("UPDATE orders SET checkout_session = ? WHERE id = ? AND checkout_session IS "
                   "NULL", (session["id"], order_id))
    return session


@bp.post("/orders/<order_id>/checkout-session")
def checkout_session(order_id: str):
    """The order's session, made if it has none yet (say, Stripe was unreachable at first)."""
    db = get_db()
    order = orders.get_order(db, order_id)
    if order is None:
        raise ApiError(404, f"No such order: '{order_id[:64]}'.", param="id",
                       code="resource_missing")
    learners.require_owner(db, order_id)
    if order["pay_with"] != PAY_WITH:
        raise ApiError(409, f"Order {order_id} is paid on the lab's checkout page with its own "
                       "PaymentIntent; create the order with payWith=checkout_session to pay "
                       "on Stripe's page.", code="order_pays_with_payment_intent")
    if order["status"] not in orders.UNSETTLED:
        raise ApiError(409, f"This order is {order['status']}; there is nothing to pay.",
                       code=f"order_{order['status']}")
    session = ensure_session(db, order, request.headers.get("X-Order-Access"))
    return jsonify({"order": orders.order_to_api(orders.get_order(db, order_id)),
                    "checkout_session": session_for_client(session)})


# --- step 6: what Stripe says about the session ---------------------------------------------

def order_of(db, session: dict):
    """The order this session pays: named in its metadata AND linked back to it."""
    order_id = (session.get("metadata") or {}).get("order_id")
    order = orders.get_order(db, order_id) if isinstance(order_id, str) else None
    if order is None or order["checkout_session"] != session.get("id"):
        return None
    return order


def _matches(order, session: dict | None) -> bool:
    return session is None or (session.get("amount_total") == order["amount"]
                               and session.get("currency") == order["currency"])


def link_intent(db, order, session: dict) -> None:
    """Link the order to the PaymentIntent its session names (in a transaction), once: a session
    keeps one PaymentIntent across retries, on Stripe and offline (stand_in_checkout.py)."""
    intent_id = session.get("payment_intent")
    if order is not None and isinstance(intent_id, str) and order["payment_intent"] is None:
        orders.attach_payment_intent(db, order["id"], intent_id)


def session_naming(db, gateway, intent: dict) -> dict | None:
    """For a PaymentIntent event that arrives before its session's: the session of the order
    the PaymentIntent names, if that session names this PaymentIntent (asked of Stripe)."""
    order_id = (intent.get("metadata") or {}).get("order_id")
    order = orders.get_order(db, order_id) if isinstance(order_id, str) else None
    if order is None or not order["checkout_session"] or order["payment_intent"] == intent["id"]:
        return None
    try:
        session = gateway.retrieve_checkout_session(order["checkout_session"])
    except stripe.InvalidRequestError:
        return None
    return session if session.get("payment_intent") == intent["id"] else None


def settle_session(db, session: dict, intent: dict | None, *, event_type: str | None = None,
                   snapshot: dict | None = None) -> tuple[str, str | None]:
    """Bring the order in line with its session (re-read from Stripe) and the session's
    PaymentIntent; in a transaction. Returns (outcome, order id)."""
    order = order_of(db, session)
    if order is None:
        return fulfilment.UNKNOWN_ORDER, None
    if not (_matches(order, session) and _matches(order, snapshot)):
        alerts.raise_once(db, order["id"], alerts.AMOUNT_MISMATCH,
                          f"order {order['id']}: Checkout Session {session.get('id')} is for "
                          f"{session.get('amount_total')} {session.get('currency')} but the "
                          f"order is {order['amount']} {order['currency']}; not fulfilled", log)
        return fulfilment.AMOUNT_MISMATCH, order["id"]
    if session.get("status") == "expired" and intent is None:
        if orders.cancel_order(db, order["id"], EXPIRED):
            return fulfilment.CANCELED, order["id"]
        return fulfilment.NO_CHANGE, order["id"]
    if intent is None:
        return fulfilment.NO_CHANGE, order["id"]  # open: the customer has not paid yet
    link_intent(db, order, session)
    return fulfilment.settle_order(
        db, intent, payment_failed=event_type == "checkout.session.async_payment_failed")


def _intent_of(gateway, session: dict | None) -> dict | None:
    intent_id = (session or {}).get("payment_intent")
    if not isinstance(intent_id, str):
        return None
    try:
        return gateway.retrieve_payment_intent(intent_id)
    except stripe.InvalidRequestError:
        return None


def handle_event(db, event_id: str, event_type: str, snapshot: dict | None) -> str:
    """A checkout.session.* event whose signature was verified (webhooks.py): the session is
    re-read from Stripe, never believed from the event; its amount must match the order."""
    session_id = snapshot.get("id") if snapshot else None
    if (not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id)
            or snapshot.get("object") != "checkout.session"):
        raise ApiError(400, "Event data.object is not a Checkout Session.")
    gateway = _gateway()
    try:
        session: dict | None = gateway.retrieve_checkout_session(session_id)
    except stripe.InvalidRequestError:
        session = None  # Stripe does not know it: not one of ours
    intent = _intent_of(gateway, session)
    with transaction(db):
        if not orders.record_event(db, event_id, event_type, (session or {}).get(
                "payment_intent"), None, "processing"):
            return "duplicate"
        outcome: str
        if session is None:
            outcome, order_id = fulfilment.UNKNOWN_ORDER, None
        else:
            outcome, order_id = settle_session(db, session, intent, event_type=event_type,
                                               snapshot=snapshot)
        orders.set_event_outcome(db, event_id, order_id, outcome)
    return outcome


def reconcile_order(db, gateway, order) -> tuple[str, dict | None]:
    """reconcile.py's check for an order paid on Stripe's page: its session, then its
    PaymentIntent. Raises stripe.StripeError when Stripe cannot be asked."""
    try:
        session = gateway.retrieve_checkout_session(order["checkout_session"])
    except stripe.InvalidRequestError:
        with transaction(db):
            orders.cancel_order(db, order["id"], "checkout_session_missing")
        return "checkout_session_missing", None
    intent = _intent_of(gateway, session)
    with transaction(db):
        outcome, _ = settle_session(db, session, intent)
    return outcome, intent


def cancel_session(db, gateway, order) -> dict | None:
    """Abandoned: expire the order's session at Stripe first, so nobody can pay on it any more.
    Returns the PaymentIntent if the customer paid after all (the caller settles and refuses)."""
    if not order["checkout_session"]:
        return None
    try:
        gateway.expire_checkout_session(order["checkout_session"])
        return None
    except stripe.InvalidRequestError:
        pass  # complete, expired or unknown: look
    try:
        session = gateway.retrieve_checkout_session(order["checkout_session"])
    except stripe.InvalidRequestError:
        return None
    if session.get("status") != "complete":
        return None
    intent = _intent_of(gateway, session)
    with transaction(db):
        settle_session(db, session, intent)
    return intent
