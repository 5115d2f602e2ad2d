"""Step 3 and its follow-ups: an order's PaymentIntent, from creation to cancel.

Every function takes the order row and talks to Stripe through the app's gateway. Stripe's
errors are not caught here unless they mean something for the order (say, "Stripe does not
know this PaymentIntent"): the rest go up to the one handler in errors.py, which turns them
into HTTP answers. The views (orders_api.py, checkout.py) only parse, call and answer.
"""
from __future__ import annotations

import logging

import stripe
from flask import current_app

from . import checkout_sessions, claims, fulfilment, orders
from .db import transaction
from .errors import ApiError
from .reconcile import STRIPE_UNREACHABLE, reconcile_order

log = logging.getLogger(__name__)

ABANDONED = "abandoned"
SETTLED_INTENT = ("succeeded", "processing")  # the money is on its way: never start again
INTENT_CLAIM = "payment_intent"  # claims.py: the order whose PaymentIntent is being created


def _gateway():
    return current_app.extensions["gateway"]


def ensure_payment_intent(db, order) -> dict | None:
    """Step 3: the order's PaymentIntent, created once (a retry reuses it).

    One request at a time creates it: the order's claim (claims.py) is taken before Stripe is
    called, and concurrent requests for the same order (say, one Idempotency-Key sent twice at
    once) wait until the first has linked its PaymentIntent, then use that one. So the offline
    stand-in, which ignores Stripe's idempotency keys, is never left with unlinked ones.

    None when there is nothing left to pay: the order is canceled, or its PaymentIntent is
    gone (the offline stand-in starts empty after a restart).
    """
    order_id = order["id"]

    def linked_or_claimed():
        current = orders.get_order(db, order_id)
        if current["status"] == orders.CANCELED or current["payment_intent"]:
            return current
        return current if claims.claim(db, INTENT_CLAIM, order_id) else None

    order = claims.wait(linked_or_claimed)
    if order["status"] == orders.CANCELED:
        return None
    if order["payment_intent"]:
        try:
            return _gateway().retrieve_payment_intent(order["payment_intent"])
        except stripe.InvalidRequestError:
            return None
    return _create_claimed_payment_intent(db, order)


def _create_claimed_payment_intent(db, order) -> dict:
    """Create and link the PaymentIntent of an order whose claim this request holds."""
    try:
        intent = _gateway().create_payment_intent(order)
    except stripe.InvalidRequestError as e:
        claims.release(db, INTENT_CLAIM, order["id"])
        log.warning("Stripe refused to create a PaymentIntent for order %s", order["id"])
        if e.code == "amount_too_small":  # e.g. below the settlement currency's minimum
            raise ApiError(400, f"Stripe refused the amount: {e.user_message or e.code}. It must "
                           "also convert to at least the minimum charge of the account's "
                           "settlement currency: order more.", param="quantity",
                           code="amount_too_small") from None
        raise ApiError(502, "Stripe refused to create the payment for this order; the server "
                       "log has details.", type="api_error") from None
    except BaseException:  # unreachable, or anything else: a retry may try again
        claims.release(db, INTENT_CLAIM, order["id"])
        raise
    with transaction(db):
        claims.release(db, INTENT_CLAIM, order["id"])
        if orders.attach_payment_intent(db, order["id"], intent["id"]):
            return intent
    # Linked meanwhile by a request that did not claim (it cannot happen through the API).
    _cancel_quietly(intent["id"], "duplicate")
    return _gateway().retrieve_payment_intent(orders.get_order(db, order["id"])["payment_intent"])


def answer_for_client(order, intent: dict | None) -> dict:
    """Step 4: what the server answers the client: the order and the PaymentIntent's client
    secret, the one Stripe value the browser needs (secret keys never leave the server)."""
    return {"order": orders.order_to_api(order),
            "client_secret": intent["client_secret"] if intent else None}


def sync_payment(db, order) -> dict | None:
    """Ask Stripe how the order's payment stands and settle the order to match (the check
    `reconcile` makes for every order). The PaymentIntent as Stripe has it, or None."""
    if order["status"] == orders.CANCELED:
        return None
    outcome, intent = reconcile_order(db, _gateway(), order)
    if outcome == STRIPE_UNREACHABLE:
        raise ApiError(503, "Could not reach Stripe to check the payment; retry later.",
                       type="api_connection_error")
    return intent


def cancel_payment(db, order) -> None:
    """Abandoned checkout: cancel the order and its PaymentIntent, so nothing can be charged
    for it any more. Safe to call any number of times.

    Stripe first, the database second: once Stripe has canceled the PaymentIntent no payment
    can succeed on it, so an order canceled here was never paid. (The other way round, the
    customer could still pay for an order we had already given up.) If the server stops
    between the two, `reconcile` finds the canceled PaymentIntent and cancels the order.
    """
    if order["status"] == orders.CANCELED:
        return
    if order["status"] in orders.PAID_STATUSES:  # refunded and disputed orders were paid too
        raise cannot_cancel_paid(order["id"])
    paid = checkout_sessions.cancel_session(db, _gateway(), order)  # Stripe's page: close it
    if paid is not None and paid.get("status") == "succeeded":
        raise cannot_cancel_paid(order["id"])
    order = orders.get_order(db, order["id"])
    if order["payment_intent"]:
        intent = _cancel_at_stripe(order["payment_intent"])
        if intent is not None and intent.get("status") == "succeeded":
            # The customer paid just before the cancel reached Stripe: the order is paid
            # (its webhook may not have arrived yet), not abandoned.
            with transaction(db):
                fulfilment.settle_order(db, intent)
            raise cannot_cancel_paid(order["id"])
    with transaction(db):
        orders.cancel_order(db, order["id"], ABANDONED)


def cannot_cancel_paid(order_id: str) -> ApiError:
    return ApiError(409, f"Order {order_id} is paid: a paid order cannot be canceled "
                    "(refund the payment instead).", code="order_already_paid")


def _cancel_at_stripe(payment_intent_id: str) -> dict | None:
    """Cancel at Stripe; if Stripe refuses, the PaymentIntent as it now stands (None: Stripe
    does not know it, so nothing can ever be paid on it)."""
    gateway = _gateway()
    try:
        return gateway.cancel_payment_intent(payment_intent_id, ABANDONED)
    except stripe.InvalidRequestError:
        pass  # already succeeded, already canceled, processing, or unknown: look
    try:
        intent = gateway.retrieve_payment_intent(payment_intent_id)
    except stripe.InvalidRequestError:
        return None
    if intent.get("status") not in ("succeeded", "canceled"):
        raise ApiError(409, f"Stripe cannot cancel this payment while it is "
                       f"{intent.get('status')}; retry shortly.",
                       code="payment_intent_unexpected_state")
    return intent


def payment_underway(order) -> bool:
    """Has Stripe accepted a payment for this order that the server has not heard of yet?

    Only then may the success page say "do not pay again": a customer who never paid (or whose
    card was declined) must be sent back to pay instead. Asked of Stripe, because the order
    only changes when the webhook arrives. When Stripe cannot be asked, the careful answer.
    """
    if order["status"] == orders.PAID:
        return True
    if order["checkout_session"]:
        # Paid on Stripe's page: the session knows first (it completes when its PaymentIntent
        # succeeds, before any webhook has reached this server).
        try:
            session = _gateway().retrieve_checkout_session(order["checkout_session"])
        except stripe.InvalidRequestError:
            return False
        except stripe.StripeError:
            return True
        return session.get("status") == "complete"
    if not order["payment_intent"]:
        return False
    try:
        intent = _gateway().retrieve_payment_intent(order["payment_intent"])
    except stripe.InvalidRequestError:
        return False  # gone from the (offline) Stripe: nothing can be underway
    except stripe.StripeError:
        return True
    return intent["status"] in ("succeeded", "processing", "requires_capture")


# --- offline only: the server confirms with the card the browser tokenized -------------------

def retry_payment_intent(db, order) -> dict | None:
    """The order's PaymentIntent, ready to take a card: the one place a retry may get a new one.

    Offline, a PaymentIntent whose charge was declined cannot be confirmed again (and one
    stuck in a 3-D Secure challenge cannot take another card), so the order gets a fresh
    PaymentIntent. Stripe first: the old one is canceled before the order is linked to the new
    one, so no payment can still succeed on a PaymentIntent the order no longer knows. Real
    Stripe always reuses the same one.
    """
    gateway = _gateway()
    order_id = order["id"]
    intent = ensure_payment_intent(db, order)
    if (intent is None or gateway.accepts_another_card(intent)
            or intent["status"] not in ("requires_payment_method", "requires_action", "canceled")):
        return intent
    if intent["status"] != "canceled":
        try:
            old = gateway.cancel_payment_intent(intent["id"], ABANDONED)
        except stripe.StripeError:
            old = gateway.retrieve_payment_intent(intent["id"])  # refused: see why
        if old["status"] != "canceled":
            # Paid after all (say, the 3-D Secure challenge was approved meanwhile): settle
            # the order with it instead of replacing it.
            with transaction(db):
                fulfilment.settle_order(db, old)
            return old
    order = orders.get_order(db, order_id)
    heard = orders.payment_failure_heard(db, intent["id"])
    attempt = order["attempts"] + (0 if heard else 1) + 1  # the attempt the new one is for
    fresh = gateway.create_retry_payment_intent(order, attempt)
    with transaction(db):
        order = orders.get_order(db, order_id)
        replaced = order["payment_intent"] == intent["id"] and order["status"] in orders.UNSETTLED
        if replaced:
            if not orders.payment_failure_heard(db, intent["id"]):
                # Its payment_failed webhook has not arrived yet; once the order points at the
                # new PaymentIntent, that webhook would find no order. Count the attempt now.
                fulfilment.settle_order(db, intent, payment_failed=True)
            orders.replace_payment_intent(db, order_id, intent["id"], fresh["id"])
    if not replaced:  # a concurrent request got there first: use its PaymentIntent
        _cancel_quietly(fresh["id"], "duplicate")
        return gateway.retrieve_payment_intent(order["payment_intent"])
    log.info("order %s: PaymentIntent %s replaced by %s for a retry", order_id, intent["id"],
             fresh["id"])
    return fresh


def _cancel_quietly(payment_intent_id: str, reason: str) -> None:
    try:
        _gateway().cancel_payment_intent(payment_intent_id, reason)
    except stripe.StripeError as e:
        log.warning("could not cancel %s: %s", payment_intent_id, type(e).__name__)


def pay_with_token(db, order, token: str, return_url: str) -> dict:
    """Pay the order with the card behind a Stripe.js token; the PaymentIntent as it stands.

    The outcome is not settled here: Stripe's webhook marks the order paid (or counts the
    failed attempt) a moment later, as it would if the browser had confirmed by itself.
    Settling here as well would count each decline twice.
    """
    if order["status"] not in orders.UNSETTLED:
        raise ApiError(409, f"This order is {order['status']}; there is nothing to pay.",
                       code=f"order_{order['status']}")
    gateway = _gateway()
    try:
        payment_method = gateway.payment_method_from_token(token)
    except stripe.InvalidRequestError:
        raise ApiError(400, f"No such token: '{token}'.", param="token",
                       code="resource_missing") from None
    intent = retry_payment_intent(db, order)
    if intent is None:
        raise ApiError(409, "This order's PaymentIntent no longer exists at Stripe; create "
                       "a new order.", code="payment_intent_missing")
    if intent["status"] in SETTLED_INTENT:  # a second click must not pay twice
        return intent
    return gateway.confirm_payment_intent(intent["id"], payment_method, return_url)
