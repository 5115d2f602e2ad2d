"""Offline only: a learner's notebook talks to the offline Stripe through the merchant server,
limited to that learner's own payments.

    /offline-stripe/api/v1/...    the few Stripe API calls the notebooks make (below)

Why: the offline Stripe (lab/stand_in.py) listens on 127.0.0.1 of the machine that runs the lab
and wants the lab's own key, which never leaves that machine. A notebook on a class server
(TUTORIAL_SERVER_URL=http://teacher:4242), or attached to a lab whose state file it cannot read,
has neither, so its `lab.gateway` points the Stripe SDK here instead (notebook/customer.py),
with its learner key (class mode) as the API key. Each call is checked, then passed on with the
lab's key:

- a PaymentIntent is the caller's when its order is (learners.may_act_on: on a laptop every
  order is; in class mode the order's learner or access code, or the instructor), or when the
  caller created it here (metadata `lab_learner`, for notebook 03's demo PaymentIntents);
- PaymentMethods from test cards: anyone (a customer's thing);
- events and refunds lists: only those about the caller's PaymentIntents.

Nothing else of the stand-in is reachable: no `/_config`, no listing of all PaymentIntents.
"""
from __future__ import annotations

import logging
import re

import requests
from flask import Blueprint, Response, current_app, jsonify, request

from .. import learners, orders
from ..db import get_db
from ..errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("stripe_api_relay", __name__, url_prefix="/offline-stripe/api/v1")

TIMEOUT_SECONDS = 10
MAX_EVENT_PAGES = 20
OWNER_KEY = "lab_learner"  # metadata on a PaymentIntent a learner created through here
_ID = re.compile(r"^[A-Za-z0-9_]{1,80}$")
_session = requests.Session()
_session.trust_env = False  # the stand-in is on this machine


def _stand_in(method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
    key = current_app.config["SETTINGS"].secret_key  # the lab's key for its stand-in
    try:
        return _session.request(method, current_app.config["BACKEND_URL"] + path,
                                headers={**(headers or {}), "Authorization": f"Bearer {key}"},
                                timeout=TIMEOUT_SECONDS, allow_redirects=False, **kw)
    except requests.RequestException as e:
        log.warning("offline Stripe unreachable for %s: %s", path, type(e).__name__)
        raise ApiError(503, "The offline Stripe is not answering. Is the lab still running?",
                       type="api_connection_error") from None


def _passed_on(upstream: requests.Response) -> Response:
    return Response(upstream.content, upstream.status_code, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def _checked_id(value: str) -> str:
    if not _ID.match(value or ""):
        raise ApiError(404, "No such object.", code="resource_missing")
    return value


def _caller() -> str | None:
    return learners.caller_learner(get_db()) if learners.class_mode() else None


def owns_payment_intent(payment_intent_id: str, intent: dict | None = None) -> bool:
    db = get_db()
    order = orders.order_paid_by(db, payment_intent_id)
    if order is not None:
        return learners.may_act_on(db, order["id"])
    if not learners.class_mode() or learners.is_instructor():
        return True
    if intent is None:
        upstream = _stand_in("GET", f"/v1/payment_intents/{payment_intent_id}")
        intent = upstream.json() if upstream.ok else {}
    caller = _caller()
    return caller is not None and (intent.get("metadata") or {}).get(OWNER_KEY) == caller


def _require_own(payment_intent_id: str) -> None:
    if not owns_payment_intent(_checked_id(payment_intent_id)):
        raise ApiError(403, f"PaymentIntent {payment_intent_id} is not one of your payments.",
                       code="payment_intent_not_yours")


def _form(allowed: set[str]) -> dict:
    fields = request.form.to_dict()
    unknown = sorted(name for name in fields if not any(
        name == a or name.startswith(a + "[") for a in allowed))
    if unknown:
        raise ApiError(400, f"Received unknown parameter: {unknown[0][:64]}", param=unknown[0][:64])
    return fields


@bp.post("/payment_methods")
def create_payment_method():
    return _passed_on(_stand_in("POST", "/v1/payment_methods", data=_form({"type", "card"})))


@bp.post("/payment_intents")
def create_payment_intent():
    """A PaymentIntent of the caller's own (notebook 03's demo), marked as theirs."""
    fields = _form({"amount", "currency", "metadata"})
    caller = _caller()
    if learners.class_mode() and caller is None and not learners.is_instructor():
        raise ApiError(401, "Join the class first (your notebook does it for you).",
                       type="authentication_error", code="learner_key_required")
    if caller is not None:
        fields[f"metadata[{OWNER_KEY}]"] = caller
    key = request.headers.get("Idempotency-Key")
    return _passed_on(_stand_in("POST", "/v1/payment_intents", data=fields,
                                headers={"Idempotency-Key": key} if key else None))


@bp.get("/payment_intents/<payment_intent_id>")
def retrieve_payment_intent(payment_intent_id: str):
    _require_own(payment_intent_id)
    return _passed_on(_stand_in("GET", f"/v1/payment_intents/{payment_intent_id}",
                                params=request.args))


@bp.post("/payment_intents/<payment_intent_id>/<action>")
def act_on_payment_intent(payment_intent_id: str, action: str):
    allowed = {"confirm": {"payment_method", "return_url"}, "cancel": {"cancellation_reason"},
               "_authenticate": {"client_secret", "success"}}
    if action not in allowed:
        raise ApiError(404, f"Unrecognized request URL: {action[:32]}.", code="resource_missing")
    _require_own(payment_intent_id)
    return _passed_on(_stand_in("POST", f"/v1/payment_intents/{payment_intent_id}/{action}",
                                data=_form(allowed[action])))


@bp.post("/refunds")
def create_refund():
    """A refund made 'at Stripe' (notebook 08's refund from the Dashboard) of your own payment."""
    fields = _form({"payment_intent", "amount"})
    _require_own(fields.get("payment_intent", ""))
    return _passed_on(_stand_in("POST", "/v1/refunds", data=fields))


@bp.get("/refunds")
def list_refunds():
    _require_own(request.args.get("payment_intent", ""))
    return _passed_on(_stand_in("GET", "/v1/refunds", params=request.args))


@bp.get("/events")
def list_events():
    """The stand-in's events, keeping only those about the caller's own PaymentIntents."""
    params = request.args.to_dict()
    for _ in range(MAX_EVENT_PAGES):  # an empty page would end the SDK's paging: look further
        upstream = _stand_in("GET", "/v1/events", params=params)
        if not upstream.ok:
            return _passed_on(upstream)
        page = upstream.json()
        everything = page.get("data") or []
        page["data"] = [event for event in everything if _about_own(event)]
        if page["data"] or not page.get("has_more") or not everything:
            break
        params["starting_after"] = everything[-1]["id"]
    return jsonify(page)


def _about_own(event: dict) -> bool:
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") != "payment_intent" or not isinstance(obj.get("id"), str):
        return False
    return owns_payment_intent(obj["id"], obj)
