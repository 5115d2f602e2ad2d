"""Offline only: the lab's stand-in for Stripe's hosted Checkout page (the other way to pay,
tutorial_server/checkout_sessions.py). Real Stripe serves that page at checkout.stripe.com; the
offline stand-in has no pages, so the lab plays it here, clearly labelled as such, with the same
test cards, declines and 3-D Secure challenge as the lab's own checkout page. A Checkout
Session's `url` offline is `/offline-checkout/<session id>` (lab/stand_in_checkout.py).

HTTP contract (all answers `Cache-Control: no-store`; errors in Stripe's shape
`{"error": {"type", "message", "param", "code"}}` with a 4xx status, never a 500):

GET  /offline-checkout/<cs_id>
     200  the page: the session's line items and total (formatted here, from the session at
          the stand-in), the card form (the mock Stripe.js, through /offline-stripe/), the
          test cards, a "← back" link to the session's cancel_url.
     404  HTML page: the id is not a session id, the session is unknown or expired, or it is
          complete (that page says it is paid and links its success_url).
     503  HTML page: the offline Stripe does not answer.
POST /offline-checkout/<cs_id>/pay  {"token": "tok_..."}   (JSON only; a foreign Origin is
          refused, as for every state change: security.py)
     200  {"session": {"id", "status"}, "payment_intent": {"id", "status", "client_secret",
          "last_payment_error": {"code", "decline_code", "message"} | null}, "next_url"}
          status succeeded/processing: next_url is the success_url ({CHECKOUT_SESSION_ID}
          filled in); requires_action: client_secret is given, for the mock's
          confirmCardPayment (the 3-D Secure challenge); requires_payment_method: the decline
          in last_payment_error (the next /pay tries the same PaymentIntent again).
          client_secret is null unless 3-D Secure needs it; next_url null until paid.
     400  bad JSON, unknown parameter, missing or malformed token, unknown token
     404  not a session id, unknown or expired session
     409  the session is complete (code checkout_session_complete; next_url in the message)
     413/415/403  too large, not JSON, cross-site (security.py)
     503  the offline Stripe does not answer
GET or POST /offline-checkout/<cs_id>/status   (POST takes `{}`: the checkout page's shared
          script asks after the challenge with a POST)
     200  the same shape as /pay, client_secret always null: how the payment stands after the
          3-D Secure challenge (complete: succeeded, with next_url)
     404  not a session id, unknown or expired session

What the page shows and the routes answer comes from the stand-in, never from the browser: the
amount, the currency, where to go next. The pay route asks the stand-in (with the lab's key,
`GET /_lab/checkout/sessions/<id>/payment`) which PaymentIntent pays the session (the same
one after a decline or an abandoned challenge, made ready for another card), makes the card of
the token its payment method and confirms it, as Stripe's own page does on Stripe's side. The outcome reaches the merchant server
as every outcome does: a signed webhook (checkout.session.completed, payment_intent.succeeded).
"""
from __future__ import annotations

import logging
import re
from typing import Any

import requests
import stripe
from flask import Blueprint, current_app, jsonify, url_for

from ..catalogue import CURRENCY_EXPONENT, format_amount
from ..checkout import cards_to_type, intent_for_browser
from ..errors import ApiError
from ..pages import page, stripe_js_url
from ..parsing import read_json_object, refuse_unknown_params

log = logging.getLogger(__name__)
bp = Blueprint("hosted_checkout", __name__, url_prefix="/offline-checkout",
               template_folder="templates")

LABEL = "The lab's stand-in for Stripe's hosted Checkout page — offline only"
SESSION_ID = re.compile(r"cs_test_[A-Za-z0-9]{1,255}")  # the stand-in's ids (test mode only)
TOKEN = re.compile(r"tok_[A-Za-z0-9]{1,64}")
SETTLED = ("succeeded", "processing")
TIMEOUT_SECONDS = 5  # the stand-in answers in milliseconds or not at all

_http = requests.Session()
_http.trust_env = False  # the stand-in is on this machine: no proxy from the environment


def _gateway():
    return current_app.extensions["gateway"]


def _missing(session_id: str) -> ApiError:
    return ApiError(404, f"No such checkout.session: '{session_id[:80]}'", param="session",
                    code="resource_missing")


def _session(session_id: str) -> dict:
    """The session as the stand-in has it; 404 for anything that is not one of its sessions."""
    if not SESSION_ID.fullmatch(session_id):
        raise _missing(session_id)
    try:
        return _gateway().retrieve_checkout_session(session_id)
    except stripe.InvalidRequestError:
        raise _missing(session_id) from None


def _open_session(session_id: str) -> dict:
    session = _session(session_id)
    if session.get("status") == "expired":
        raise _missing(session_id)
    if session.get("status") == "complete":
        raise ApiError(409, f"This Checkout Session is already paid; go on to {next_url(session)}.",
                       param="session", code="checkout_session_complete")
    return session


def next_url(session: dict) -> str | None:
    """Where Stripe sends the customer after paying: the success_url, session id filled in."""
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if isinstance(url, str) else None


def _money(amount: Any, currency: Any) -> str:
    if isinstance(amount, int) and currency in CURRENCY_EXPONENT:
        return format_amount(amount, currency)
    return f"{amount} {str(currency).upper()}"


def _line_items(session_id: str) -> list[dict]:
    items = _gateway().client.v1.checkout.sessions.line_items.list(session_id).to_dict()
    return [{"description": item.get("description"), "quantity": item.get("quantity"),
             "unit_amount": _money((item.get("price") or {}).get("unit_amount"),
                                   item.get("currency")),
             "amount_total": _money(item.get("amount_total"), item.get("currency"))}
            for item in items.get("data", [])]


# --- the page ---------------------------------------------------------------------------------

@bp.get("/<session_id>")
def hosted_page(session_id: str):
    try:
        session = _session(session_id)
        items = _line_items(session["id"]) if session.get("status") == "open" else []
    except ApiError:
        return page("hosted_checkout_gone.html", 404, label=LABEL, session=None)
    except stripe.StripeError as e:
        log.warning("the offline Stripe did not answer for the hosted page: %s", type(e).__name__)
        return page("hosted_checkout_gone.html", 503, label=LABEL, session=None,
                    unreachable=True)
    if session.get("status") != "open":
        return page("hosted_checkout_gone.html", 404, label=LABEL, session=session,
                    next_url=next_url(session))
    settings = current_app.config["SETTINGS"]
    return page("hosted_checkout.html", stripe_js=True, label=LABEL, session=session,
                items=items, total=_money(session.get("amount_total"), session.get("currency")),
                test_cards=cards_to_type(offline=True), stripe_js_url=stripe_js_url(),
                publishable_key=settings.publishable_key, next_url=next_url(session),
                cancel_url=session.get("cancel_url"))


# --- its JSON half ----------------------------------------------------------------------------

def _payment(session_id: str) -> dict:
    """The stand-in's answer for its hosted page: which PaymentIntent pays the session now.
    Not Stripe's API (the lab's own route on its stand-in), so not sent through the SDK."""
    key = current_app.config["SETTINGS"].secret_key  # offline: the lab's key for its stand-in
    try:
        answer = _http.get(f"{current_app.config['BACKEND_URL']}/_lab/checkout/sessions/"
                           f"{session_id}/payment", headers={"Authorization": f"Bearer {key}"},
                           timeout=TIMEOUT_SECONDS, allow_redirects=False)
        body = answer.json()
    except (requests.RequestException, ValueError):
        log.warning("the offline Stripe did not answer for the hosted page's payment")
        raise ApiError(503, "The offline Stripe is not answering. Is the lab still running?",
                       type="api_connection_error") from None
    if answer.status_code == 404:
        raise _missing(session_id)
    if answer.status_code != 200 or not isinstance(body, dict):
        raise ApiError(502, "The offline Stripe refused the hosted page's request.",
                       type="api_error")
    return body


def _answer(session: dict, intent: dict, with_secret: bool) -> dict:
    shown = intent_for_browser(intent)
    if not (with_secret and intent.get("status") == "requires_action"):
        shown["client_secret"] = None  # only the 3-D Secure challenge needs it
    paid = intent.get("status") in SETTLED or session.get("status") == "complete"
    return {"session": {"id": session["id"], "status": session.get("status")},
            "payment_intent": shown, "next_url": next_url(session) if paid else None}


def _parse_token() -> str:
    body = read_json_object("the card token")
    refuse_unknown_params(body, {"token"}, "Send only the card token; the session says what "
                          "it costs.")
    token = body.get("token")
    if token is None:
        raise ApiError(400, "Missing required param: token.", param="token",
                       code="parameter_missing")
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise ApiError(400, "token must be the id of a card token from Stripe.js createToken "
                       "(tok_...).", param="token")
    return token


@bp.post("/<session_id>/pay")
def pay(session_id: str):
    """Pay the session with the card behind a Stripe.js token, as Stripe's page would."""
    _open_session(session_id)  # 404/409 before the body is read
    token = _parse_token()
    gateway = _gateway()
    payment = _payment(session_id)
    session = payment["session"]
    intent_id = payment["payment_intent"]
    if payment["intent_status"] in SETTLED:  # a second click must not pay twice
        return jsonify(_answer(session, gateway.retrieve_payment_intent(intent_id), False))
    try:
        method = gateway.payment_method_from_token(token)
    except stripe.InvalidRequestError:
        raise ApiError(400, f"No such token: '{token}'.", param="token",
                       code="resource_missing") from None
    intent = gateway.confirm_payment_intent(intent_id, method, url_for(
        ".hosted_page", session_id=session_id, _external=True))
    return jsonify(_answer(session, intent, True))


@bp.route("/<session_id>/status", methods=["GET", "POST"])
def status(session_id: str):
    """How the session's payment stands, after the 3-D Secure challenge."""
    session = _session(session_id)
    if session.get("status") == "expired":
        raise _missing(session_id)
    intent_id = session.get("payment_intent")
    if not isinstance(intent_id, str):  # nobody tried to pay yet
        return jsonify({"session": {"id": session["id"], "status": session.get("status")},
                        "payment_intent": None, "next_url": None})
    return jsonify(_answer(session, _gateway().retrieve_payment_intent(intent_id), False))


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
