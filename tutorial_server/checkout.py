"""Step 5 in the browser (the checkout page) and step 6's client half (the success page).

GET  /checkout/<order_id>            the order summary and a card form driven by Stripe.js
POST /checkout/<order_id>/confirm    {"token": "tok_..."}: pay the order with that card
                                     (offline only: `offline_bp`, not registered in test mode)
GET  /checkout/<order_id>/complete   waits until the server (not the browser) says "paid"

The page receives the PaymentIntent's client secret and the publishable key, never a secret
key, and every amount on it is formatted here, on the server. In test mode the browser
confirms with Stripe itself (Payment Element + confirmPayment). Offline, the mock Stripe.js
cannot, so the browser turns the card into a token and this server confirms; the gateway
hides the differences (each is a row of the course's offline-differences table).
"""
from __future__ import annotations

import logging
import re
from typing import Any

import stripe
from flask import Blueprint, current_app, jsonify, redirect, request, url_for

from . import catalogue, checkout_sessions, learners, orders, payments
from .db import get_db
from .errors import ApiError, as_api_error
from .orders_api import order_or_404
from .pages import favicon, page, stripe_js_url
from .parsing import read_json_object, refuse_unknown_params

log = logging.getLogger(__name__)
# Templates and static files live in the app's own templates/ and static/ folders.
bp = Blueprint("checkout", __name__, url_prefix="/checkout")
# Exists only because the offline stand-in's mock Stripe.js cannot confirm a PaymentIntent; in
# test mode anyone holding an order id could otherwise pay it from a script with tok_visa.
offline_bp = Blueprint("checkout_offline", __name__, url_prefix="/checkout")

_TOKEN = re.compile(r"^tok_[A-Za-z0-9]{1,64}$")
DEFAULT_WAIT_SECONDS = 30  # how long the success page waits for the webhook
MAX_WAIT_SECONDS = 300


# Stripe's test cards, per scenario, as the page lists them: the PaymentMethod real test mode
# accepts, and the raw number the offline stand-in needs instead (None: the pm_card_ id works
# offline too). The notebooks play the customer with the same cards (notebook/customer.py).
TEST_CARDS: dict[str, dict[str, Any]] = {
    "success": {"card": "4242 4242 4242 4242", "real": "pm_card_visa", "offline_number": None},
    # Stripe's generic decline. Offline it would wrongly succeed (the stand-in declines 0002
    # only when it is attached to a customer), so the stand-in gets 0341 instead, which it
    # declines when charged, as Stripe declines 0002; the page lists the number that works.
    "declined": {"card": "4000 0000 0000 0002", "real": "pm_card_visa_chargeDeclined",
                 "offline_number": "4000000000000341", "offline_card": "4000 0000 0000 0341"},
    # pm_card_authenticationRequired is this card: it asks for authentication on every payment.
    # (4000 0025 0000 3155, pm_card_authenticationRequiredOnSetup, also asks on every on-session
    # payment; only off-session payments with a card set up for them go through without.)
    "3ds": {"card": "4000 0027 6000 3184", "real": "pm_card_authenticationRequired",
            "offline_number": "4000002760003184"},
}


def cards_to_type(offline: bool) -> dict[str, dict[str, Any]]:
    """TEST_CARDS as the page lists them: offline, the numbers the stand-in answers as Stripe
    answers the real ones."""
    if not offline:
        return TEST_CARDS
    return {name: {**card, "card": card.get("offline_card") or card["card"]}
            for name, card in TEST_CARDS.items()}


@bp.record_once
def _register_favicon(state) -> None:
    state.app.add_url_rule("/favicon.ico", "favicon", favicon)


def _not_found(order_id: str):
    return page("checkout_not_found.html", 404, order_id=order_id[:64])


def order_summary(order) -> dict:
    """The order as the customer reads it; amounts formatted for the currency, here."""
    product = catalogue.get_product(order["product_id"])

    def money(amount: int) -> str:
        return catalogue.format_amount(amount, order["currency"])

    return {"product": product.name if product else order["product_id"],
            "unit_price": money(product.unit_amount) if product else None,
            "subtotal": money(order["subtotal"]),
            "discount": money(order["discount"]) if order["discount"] else None,
            "total": money(order["amount"])}


@bp.get("/<order_id>")
def checkout_page(order_id: str):
    db = get_db()
    order = orders.get_order(db, order_id)
    if order is None:
        return _not_found(order_id)
    if order["status"] == "paid":
        return redirect(url_for(".complete_page", order_id=order_id))
    access = request.args.get("access")
    if not learners.may_act_on(db, order_id, access):
        return page("checkout_not_yours.html", 403, order_id=order_id)
    summary = order_summary(order)
    if order["status"] == "canceled":
        return page("checkout.html", order=order, summary=summary, problem="This order was "
                    f"canceled ({order['cancellation_reason'] or 'no reason given'}), so it "
                    "can no longer be paid. Create a new order.")
    if order["pay_with"] == checkout_sessions.PAY_WITH:
        return _session_page(db, order, summary, access)
    try:
        intent = payments.ensure_payment_intent(db, order)
    except (ApiError, stripe.StripeError) as e:  # Stripe unreachable, or refused the order
        return page("checkout.html", 503, order=order, summary=summary,
                    problem=as_api_error(e).message)
    if intent is None:
        return page("checkout.html", order=order, summary=summary, problem="This order's "
                    "PaymentIntent no longer exists at Stripe (the offline Stripe starts "
                    "empty at every lab start). Create a new order.")
    if intent["status"] in payments.SETTLED_INTENT:
        return redirect(url_for(".complete_page", order_id=order_id))
    settings = current_app.config["SETTINGS"]
    return page(
        "checkout.html", stripe_js=True, problem=None, test_cards=cards_to_type(settings.offline),
        stripe_js_url=stripe_js_url(),
        publishable_key=settings.publishable_key, client_secret=intent["client_secret"],
        order_access=access if learners.class_mode() else None,
        order=order_or_404(db, order_id), summary=summary)


def _session_page(db, order, summary: dict, access: str | None):
    """An order paid the other way: a link to Stripe's page (where the customer also comes
    back to when they cancel there)."""
    try:
        session = checkout_sessions.ensure_session(db, order, access)
    except (ApiError, stripe.StripeError) as e:
        return page("checkout.html", 503, order=order, summary=summary,
                    problem=as_api_error(e).message)
    if session is not None and session.get("status") == "complete":
        return redirect(url_for(".complete_page", order_id=order["id"]))
    if session is None or session.get("status") != "open":
        return page("checkout.html", order=order, summary=summary, problem="This order's "
                    "Checkout Session has expired or no longer exists. Create a new order.")
    return page("checkout_session.html", order=order, summary=summary,
                session=checkout_sessions.session_for_client(session))


@bp.get("/<order_id>/complete")
def complete_page(order_id: str):
    order = orders.get_order(get_db(), order_id)
    if order is None:
        return _not_found(order_id)
    wait = request.args.get("wait", DEFAULT_WAIT_SECONDS, type=int)
    return page("checkout_complete.html", order=order, summary=order_summary(order),
                wait_seconds=max(1, min(wait, MAX_WAIT_SECONDS)),
                payment_underway=payments.payment_underway(order),
                # Stripe.js (test mode) comes back here with redirect_status=failed when a
                # redirect-based payment did not go through.
                redirect_failed=request.args.get("redirect_status") == "failed")


# --- the offline route's server half: confirm with the card the browser tokenized ---------

def _parse_confirm_request() -> str:
    body = read_json_object("the token")
    refuse_unknown_params(body, {"token"},
                          "Send only the card token; the server knows what the order costs.")
    token = body.get("token")
    if token is None:
        raise ApiError(400, "Missing required param: token.", param="token")
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ApiError(400, "token must be the id of a card token from Stripe.js createToken "
                       "(tok_...).", param="token")
    return token


def intent_for_browser(intent: dict) -> dict:
    """What the page needs to carry on: status, the client secret for 3-D Secure, the error."""
    error = intent.get("last_payment_error")
    return {"id": intent["id"], "status": intent["status"],
            "client_secret": intent["client_secret"],
            "last_payment_error": {"code": error.get("code"),
                                   "decline_code": error.get("decline_code"),
                                   "message": error.get("message")} if error else None}


@offline_bp.post("/<order_id>/confirm")
def confirm(order_id: str):
    """Pay the order with the card behind a Stripe.js token; answers the PaymentIntent's state.

    The outcome is not settled here: Stripe's webhook marks the order paid (or counts the
    failed attempt) a moment later, as it would if the browser had confirmed by itself.
    Settling here as well would count each decline twice.
    """
    db = get_db()
    order = order_or_404(db, order_id)
    learners.require_owner(db, order_id)
    token = _parse_confirm_request()
    intent = payments.pay_with_token(db, order, token, url_for(
        "checkout.complete_page", order_id=order_id, _external=True))
    return jsonify({"order": orders.order_to_api(order_or_404(db, order_id)),
                    "payment_intent": intent_for_browser(intent)})
