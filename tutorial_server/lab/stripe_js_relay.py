"""Offline only: the mock Stripe.js, and the few calls it makes, through this server's own address.

GET  /offline-stripe/js.stripe.com/v3/                            the stand-in's mock Stripe.js
POST /offline-stripe/v1/tokens                                    createToken(card)
POST /offline-stripe/v1/payment_intents/<id>/_authenticate        the 3-D Secure challenge
and, for a notebook playing the customer on a lab elsewhere (a class server), what Stripe.js
lets a browser do with the publishable key and a PaymentIntent's client secret:
POST /offline-stripe/v1/payment_methods                           createPaymentMethod(card)
GET  /offline-stripe/v1/payment_intents/<id>?client_secret=...    retrievePaymentIntent
POST /offline-stripe/v1/payment_intents/<id>/confirm              confirm, with client_secret

Why: the offline Stripe (localstripe) listens on 127.0.0.1. A classmate who opens the checkout
from a class server would load the mock from `http://127.0.0.1:...`, which on their laptop is
their own machine, and Chromium refuses such requests from a page on another address
(Private Network Access). The mock takes its API address from the URL it was loaded from, so
serving it here makes every request of the page go to the page's own origin; behind
JupyterHub's proxy too, since the path follows the page's prefix.

Only what the checkout page uses is passed on, with the fields the mock sends, a small body
and a short timeout; never the stand-in's `/_config` routes. The mock authenticates with the
publishable key, as a browser talking to Stripe does; the stand-in also wants the lab's own
key on every request (stand_in.py), which this relay adds, so a customer's browser does only
what these three routes let it do, and never learns the key.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import threading

import requests
from flask import Blueprint, Response, current_app, request

from ..errors import ApiError
from ..gateway import API_VERSION
from .reset import same_origin

log = logging.getLogger(__name__)
bp = Blueprint("stripe_js_relay", __name__, url_prefix="/offline-stripe")

STRIPE_JS_PATH = "/offline-stripe/js.stripe.com/v3/"  # pages.stripe_js_url() offline
TIMEOUT_SECONDS = 5  # the stand-in answers in milliseconds or not at all
MAX_BODY_BYTES = 2048  # a card token request is about 150 bytes
MAX_SCRIPT_BYTES = 256 * 1024  # the mock is about 15 KB
# Exactly the fields the mock's createToken sends (localstripe-v3.js).
TOKEN_FIELDS = {"card[number]", "card[exp_month]", "card[exp_year]", "card[cvc]", "key",
                "payment_user_agent"}
_PAYMENT_INTENT = re.compile(r"^pi_[A-Za-z0-9]{1,64}$")
# createPaymentMethod(card): the card and nothing else.
PAYMENT_METHOD_FIELDS = {"type", "card[number]", "card[exp_month]", "card[exp_year]",
                         "card[cvc]", "key"}

# The mock says which Stripe.js it stands in for. @stripe/stripe-js's loadStripe (the React
# shop's, client/node_modules/@stripe/stripe-js/dist/index.mjs, initStripe) reads
# `Stripe.version` and, for a pk_test_ key, logs "Stripe.js@<version> was loaded on the page,
# but @stripe/stripe-js@... expected Stripe.js@<its RELEASE_TRAIN>" when they differ; the mock
# has no `version` at all ("Stripe.js@undefined"). The release it expects is the one paired with
# the pinned API version (pages.REAL_STRIPE_JS loads the same one in test mode: 'endive' for
# API_VERSION ...endive and @stripe/stripe-js 10.2.1). The mock's API is unchanged by this line.
STRIPE_JS_RELEASE = API_VERSION.split(".")[1]
VERSION_LINE = (f'\n// Added by the lab (stripe_js_relay.py): the Stripe.js release this mock stands'
                f' in for.\nif (typeof Stripe === "function") {{ Stripe.version = '
                f'"{STRIPE_JS_RELEASE}"; }}\n').encode()

_session = requests.Session()
_session.trust_env = False  # the stand-in is on this machine: no proxy from the environment
_script: dict[str, bytes] = {}  # per stand-in: the mock never changes, so it is fetched once
_script_lock = threading.Lock()


@bp.record_once
def _serve_stripe_js_from_here(state) -> None:
    state.app.config["OFFLINE_STRIPE_JS_PATH"] = STRIPE_JS_PATH  # pages.stripe_js_url()


def _backend(path: str, method: str = "GET", **kw) -> requests.Response:
    key = current_app.config["SETTINGS"].secret_key  # offline: the lab's key for its stand-in
    try:
        return _session.request(method, current_app.config["BACKEND_URL"] + path,
                                headers={"Authorization": f"Bearer {key}"},
                                timeout=TIMEOUT_SECONDS, allow_redirects=False, **kw)
    except requests.RequestException as e:
        log.warning("offline Stripe unreachable for %s: %s", path, type(e).__name__)
        raise ApiError(503, "The offline Stripe is not answering. Is the lab still running?",
                       type="api_connection_error") from None


def _small_body() -> bytes:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ApiError(413, "Request body too large.", code="request_too_large")
    body = request.get_data(cache=True)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "Request body too large.", code="request_too_large")
    return body


def _from_this_page() -> None:
    """The mock's calls come from the checkout page, and a browser names that page's origin on
    every POST. A form on another site gets no token or challenge answer out of this proxy."""
    if not same_origin():
        raise ApiError(403, "This address is for the checkout page's Stripe.js only.",
                       code="cross_origin_request")


def _answer(upstream: requests.Response) -> Response:
    """The stand-in's JSON answer as it is, without its CORS headers (same origin here)."""
    try:
        json.loads(upstream.content)
    except (ValueError, RecursionError):
        raise ApiError(502, "The offline Stripe gave an answer that is not JSON.",
                       type="api_error") from None
    return Response(upstream.content, upstream.status_code, mimetype="application/json",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@bp.get("/js.stripe.com/v3/")
def stripe_js():
    backend = current_app.config["BACKEND_URL"]
    with _script_lock:
        script = _script.get(backend)
        if script is None:
            upstream = _backend("/js.stripe.com/v3/")
            if upstream.status_code != 200 or len(upstream.content) > MAX_SCRIPT_BYTES:
                raise ApiError(502, "The offline Stripe did not serve its Stripe.js.",
                               type="api_error")
            script = _script[backend] = upstream.content + VERSION_LINE
    response = Response(script, mimetype="text/javascript",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
    response.add_etag()  # each page view then costs a 304, not the 14 KB again
    return response.make_conditional(request)


@bp.post("/v1/tokens")
def create_token():
    """createToken(card): the card goes to the (offline) Stripe, the page gets a tok_... back.
    Sent the way Stripe.js sends it: a form, authenticated with the publishable key."""
    _from_this_page()
    _small_body()
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiError(415, "Send the card as application/x-www-form-urlencoded, as Stripe.js "
                       "does.")
    unknown = sorted(set(request.form) - TOKEN_FIELDS)
    if unknown:
        raise ApiError(400, f"Received unknown parameter: {unknown[0][:64]}",
                       param=unknown[0][:64])
    if not request.form.get("key", "").startswith("pk_"):
        raise ApiError(400, "Stripe.js sends the publishable key (pk_...) as `key`.",
                       param="key")
    fields = {name: request.form[name] for name in TOKEN_FIELDS if name in request.form}
    return _answer(_backend("/v1/tokens", method="POST", data=fields))


@bp.post("/v1/payment_intents/<payment_intent_id>/_authenticate")
def authenticate(payment_intent_id: str):
    """The customer's answer to the offline 3-D Secure challenge (confirmCardPayment).
    The mock sends {key, client_secret} as text; the stand-in checks the client secret."""
    _from_this_page()
    raw = _small_body()
    if not _PAYMENT_INTENT.match(payment_intent_id):
        raise ApiError(404, "No such PaymentIntent.", param="id", code="resource_missing")
    success = request.args.get("success")
    if success not in ("true", "false"):
        raise ApiError(400, "success must be true or false.", param="success")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[..." nests too deep
        raise ApiError(400, "Request body is not valid JSON.") from None
    if not isinstance(body, dict) or set(body) != {"key", "client_secret"} \
            or not all(isinstance(v, str) for v in body.values()):
        raise ApiError(400, "Send exactly the publishable key and the client secret.")
    if not body["key"].startswith("pk_"):
        raise ApiError(400, "Stripe.js sends the publishable key (pk_...) as `key`.",
                       param="key")
    if not body["client_secret"].startswith(payment_intent_id + "_secret_"):
        raise ApiError(400, "This is not that PaymentIntent's client secret.",
                       param="client_secret")
    return _answer(_backend(f"/v1/payment_intents/{payment_intent_id}/_authenticate",
                            method="POST", params={"success": success},
                            json={"key": body["key"], "client_secret": body["client_secret"]}))


# --- the customer's side for a notebook on a lab elsewhere: the client secret is the key ------

def _form(allowed: set[str]) -> dict:
    _from_this_page()
    _small_body()
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiError(415, "Send a form (application/x-www-form-urlencoded), as Stripe.js does.")
    unknown = sorted(set(request.form) - allowed)
    if unknown:
        raise ApiError(400, f"Received unknown parameter: {unknown[0][:64]}",
                       param=unknown[0][:64])
    return {name: request.form[name] for name in allowed if name in request.form}


def _own_payment_intent(payment_intent_id: str, client_secret: str | None) -> None:
    """Only who holds the PaymentIntent's client secret (the customer paying it) gets on."""
    if not _PAYMENT_INTENT.match(payment_intent_id) or not client_secret:
        raise ApiError(404, "No such PaymentIntent.", param="id", code="resource_missing")
    upstream = _backend(f"/v1/payment_intents/{payment_intent_id}")
    try:
        held = upstream.json().get("client_secret") if upstream.status_code == 200 else None
    except ValueError:
        held = None
    if not isinstance(held, str) or not hmac.compare_digest(held, client_secret):
        raise ApiError(404, "No such PaymentIntent.", param="id", code="resource_missing")


@bp.post("/v1/payment_methods")
def create_payment_method():
    fields = _form(PAYMENT_METHOD_FIELDS)
    if fields.get("type") != "card":
        raise ApiError(400, "Only card payment methods are taken here.", param="type")
    fields.pop("key", None)
    return _answer(_backend("/v1/payment_methods", method="POST", data=fields))


@bp.get("/v1/payment_intents/<payment_intent_id>")
def retrieve_payment_intent(payment_intent_id: str):
    _own_payment_intent(payment_intent_id, request.args.get("client_secret"))
    return _answer(_backend(f"/v1/payment_intents/{payment_intent_id}"))


@bp.post("/v1/payment_intents/<payment_intent_id>/confirm")
def confirm_payment_intent(payment_intent_id: str):
    """Confirm with a payment method, as the customer (the stand-in takes the payment method
    in an update first: gateway.OfflineGateway._confirm)."""
    fields = _form({"client_secret", "payment_method", "return_url", "key"})
    _own_payment_intent(payment_intent_id, fields.get("client_secret"))
    if fields.get("payment_method"):
        updated = _backend(f"/v1/payment_intents/{payment_intent_id}", method="POST",
                           data={"payment_method": fields["payment_method"]})
        if updated.status_code != 200:
            return _answer(updated)
    return _answer(_backend(f"/v1/payment_intents/{payment_intent_id}/confirm", method="POST"))
