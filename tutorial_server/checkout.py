"""Step 5 in the browser (the checkout page) and step 6's client half (the success page).

GET  /checkout/<order_id>            the order summary and a card form driven by Stripe.js
POST /checkout/<order_id>/confirm    {"token": "tok_..."}: pay the order with that card
                                     (offline only: `offline_bp`, not registered in test mode)
GET  /checkout/<order_id>/complete   waits until the server (not the browser) says "paid"

The page receives the PaymentIntent's client secret and the publishable key, never a secret
key, and every amount on it is formatted here, on the server. In test mode the browser
confirms with Stripe itself (Payment Element + confirmPayment). Offline, the mock Stripe.js
cannot, so the browser turns the card into a token and this server confirms; the gateway
hides the differences (offline_differences.OFFLINE_DIFFERENCES).
"""
from __future__ import annotations

import logging
import re

import stripe
from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, \
    request, url_for

from . import catalogue, orders, payments
from .db import get_db
from .errors import ApiError, as_api_error, read_json_object, refuse_unknown_params
from .customer import TEST_CARDS
from .gateway import API_VERSION
from .orders_api import order_or_404
from .stripe_js_proxy import STRIPE_JS_PATH

log = logging.getLogger(__name__)
# Templates and static files live in the app's own templates/ and static/ folders.
bp = Blueprint("checkout", __name__, url_prefix="/checkout")
# Exists only because the offline stand-in's mock Stripe.js cannot confirm a PaymentIntent; in
# test mode anyone holding an order id could otherwise pay it from a script with tok_visa.
offline_bp = Blueprint("checkout_offline", __name__, url_prefix="/checkout")

_TOKEN = re.compile(r"^tok_[A-Za-z0-9]{1,64}$")
DEFAULT_WAIT_SECONDS = 30  # how long the success page waits for the webhook
MAX_WAIT_SECONDS = 300


# --- pages --------------------------------------------------------------------------------

def favicon():
    """The lab's icon (the JupyterLab launcher's too), for browsers that ask /favicon.ico
    whatever the page says: without it every page view logs a 404."""
    return current_app.send_static_file("lab-icon.svg")


@bp.record_once
def _register_favicon(state) -> None:
    state.app.add_url_rule("/favicon.ico", "favicon", favicon)


def content_security_policy(stripe_js: bool) -> str:
    """Only this app, plus the Stripe.js origin in use on the page that loads Stripe.js."""
    sources = stripe_js_sources(current_app.config["SETTINGS"].offline) if stripe_js else {}
    frames = sources.get("frame-src") or ["'none'"]
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src", "'self'", *sources.get("script-src", [])]),
        " ".join(["connect-src", "'self'", *sources.get("connect-src", [])]),
        " ".join(["frame-src", *frames]),
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _page(template: str, status: int = 200, *, stripe_js: bool = False, **context):
    settings = current_app.config["SETTINGS"]
    html = render_template(template, mode=settings.mode, offline=settings.offline, **context)
    response = make_response(html, status)
    response.headers["Content-Security-Policy"] = content_security_policy(stripe_js)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"  # it carries the order's client secret
    return response


def html_page(template: str, status: int = 200, **context):
    """A page without Stripe.js (the HTML 404), in the checkout pages' look and CSP."""
    return _page(template, status, **context)


# Stripe.js is versioned by the same release names as the API since 2025 (acacia, basil,
# clover, ...): https://docs.stripe.com/sdks/stripejs-versioning . The release paired with the
# pinned API version is loaded from js.stripe.com/<release>/stripe.js, the URL
# @stripe/stripe-js 10.2.1 (the React shop's) builds for its RELEASE_TRAIN 'endive';
# js.stripe.com/v3 is the older, unversioned one.
REAL_STRIPE_JS = f"https://js.stripe.com/{API_VERSION.split('.')[1]}/stripe.js"


def stripe_js_sources(offline: bool) -> dict[str, list[str]]:
    """What the checkout page's Content-Security-Policy must allow for Stripe.js."""
    if offline:
        # The mock Stripe.js and its API calls come from this server ('self').
        return {"script-src": [], "connect-src": [], "frame-src": []}
    # Real Stripe.js: its script, its API, the Payment Element's and 3-D Secure's iframes.
    return {"script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
            "connect-src": ["https://api.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com",
                          "https://hooks.stripe.com"]}


def stripe_js_url() -> str:
    """Where the checkout page loads Stripe.js from.

    Offline: a path on this server (stripe_js_proxy), which passes the stand-in's mock
    Stripe.js on. The mock calls the API it was loaded from, so the page then talks to its
    own origin only: from a classmate's laptop (127.0.0.1 would be their own machine, and
    Chromium blocks it) and behind JupyterHub's proxy (the path follows the page's prefix,
    like every other link the pages build).
    """
    if not current_app.config["SETTINGS"].offline:
        return REAL_STRIPE_JS
    return request.script_root + STRIPE_JS_PATH


def _not_found(order_id: str):
    return _page("checkout_not_found.html", 404, order_id=order_id[:64])


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
    summary = order_summary(order)
    if order["status"] == "canceled":
        return _page("checkout.html", order=order, summary=summary, problem="This order was "
                     f"canceled ({order['cancellation_reason'] or 'no reason given'}), so it "
                     "can no longer be paid. Create a new order.")
    try:
        intent = payments.ensure_payment_intent(db, order)
    except (ApiError, stripe.StripeError) as e:  # Stripe unreachable, or refused the order
        return _page("checkout.html", 503, order=order, summary=summary,
                     problem=as_api_error(e).message)
    if intent is None:
        return _page("checkout.html", order=order, summary=summary, problem="This order's "
                     "PaymentIntent no longer exists at Stripe (the offline Stripe starts "
                     "empty at every lab start). Create a new order.")
    if intent["status"] in payments.SETTLED_INTENT:
        return redirect(url_for(".complete_page", order_id=order_id))
    settings = current_app.config["SETTINGS"]
    return _page(
        "checkout.html", stripe_js=True, problem=None, test_cards=TEST_CARDS,
        stripe_js_url=stripe_js_url(),
        publishable_key=settings.publishable_key, client_secret=intent["client_secret"],
        order=order_or_404(db, order_id), summary=summary)


@bp.get("/<order_id>/complete")
def complete_page(order_id: str):
    order = orders.get_order(get_db(), order_id)
    if order is None:
        return _not_found(order_id)
    wait = request.args.get("wait", DEFAULT_WAIT_SECONDS, type=int)
    return _page("checkout_complete.html", order=order, summary=order_summary(order),
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
    token = _parse_confirm_request()
    intent = payments.pay_with_token(db, order, token, url_for(
        "checkout.complete_page", order_id=order_id, _external=True))
    return jsonify({"order": orders.order_to_api(order_or_404(db, order_id)),
                    "payment_intent": intent_for_browser(intent)})
