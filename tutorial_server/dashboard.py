"""The instructor's dashboard: the offline stand-in for the Stripe Dashboard, and the screen the
class watches on the projector while everyone pays.

GET  /dashboard        the page; static/dashboard.js refreshes it from the JSON below every 1.5 s
GET  /api/dashboard    orders, payments, webhook deliveries, and how many orders sit at each step
POST /dashboard/reset  clear the lab (the page asks for a confirmation first)

Everything shown comes from the server's own records: the order store, the webhook events it
processed, and the deliveries it received since it started. A refresh never calls Stripe, so
sixty learners and a projector polling it cost the payment backend nothing.

The reset is the one thing on the page that changes data, so a request to it must prove it
comes from this page: it must be a POST, from this server's own origin (Origin or Referer
header), carrying the token the page was served with (signed with a key made at each server
start). On a lab shared with the room (`serve --host 0.0.0.0`) it must also come from the
server's own machine, or carry the instructor's reset token.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections import deque

from flask import Blueprint, current_app, jsonify, make_response, render_template, request

from . import catalogue, orders
from .db import get_db, transaction
from .errors import ApiError
from .lab import is_loopback
from .offline_backend import clear_backend_data
from .security import policy

log = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__)

POLL_MILLISECONDS = 1500
LIST_LIMIT = 50  # newest rows per list; the step counts and totals cover every order
CSRF_MAX_AGE = 12 * 3600  # a page left open on the projector all day still resets
RESET_CONFIRMATION = "reset"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "connect-src 'self'", "style-src 'self'",
    "img-src 'self' data:", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
    "frame-ancestors 'none'",
])

# The six steps (DESIGN.md), and where an order in the store stands on them. Steps 1 and 3
# happen inside the one POST /api/orders request, so no stored order ever waits at them.
STEPS = (
    (1, "Client asks", "inside POST /api/orders"),
    (2, "Server prices", "recorded, no PaymentIntent yet"),
    (3, "PaymentIntent", "inside POST /api/orders"),
    (4, "Client has secret", "waiting for the customer to pay"),
    (5, "Customer pays", "declined, or 3-D Secure pending"),
    (6, "Webhook: paid", "verified, paid, fulfilled"),
)
STORED_STEPS = (2, 4, 5, 6)


def step_of(status: str, payment_intent: str | None) -> int | None:
    """The step an order has reached, from the order store alone (None: canceled, off the path).

    created, no PaymentIntent  -> 2  (priced and recorded; Stripe was not reached yet)
    created, with PaymentIntent -> 4  (the client has its client secret; nobody has paid)
    attempted                   -> 5  (a payment was declined or waits for 3-D Secure)
    paid                        -> 6  (a verified webhook said succeeded; fulfilled once)
    (partially_)refunded, disputed -> 6 too: after the payment (refunds.py, disputes.py)
    """
    if status in orders.PAID_STATUSES:
        return 6
    if status == "attempted":
        return 5
    if status == "created":
        return 4 if payment_intent else 2
    return None


def payment_status(order) -> str:
    """The PaymentIntent's status as the server last heard it (webhooks, sync, reconcile).

    Between the customer paying and the webhook arriving, Stripe already says succeeded while
    the server still says requires_payment_method: that gap is step 6's whole point.
    """
    status = order["status"]
    if status in orders.PAID_STATUSES:
        return "succeeded"  # refunds and disputes do not change the PaymentIntent's status
    if status == "canceled":
        return "missing" if order["cancellation_reason"] == "payment_intent_missing" else "canceled"
    if status == "attempted" and order["last_payment_error"]:
        error = json.loads(order["last_payment_error"])
        if error.get("code") == "authentication_required":
            return "requires_action"
    return "requires_payment_method"


_PAYMENT_INTENT_ID = re.compile(r"^pi_[A-Za-z0-9]{1,255}$")


def stripe_dashboard_url(payment_intent_id: str | None, mode: str) -> str | None:
    """The PaymentIntent's page on the real Stripe Dashboard (test mode only)."""
    if mode != "test" or not payment_intent_id or not _PAYMENT_INTENT_ID.match(payment_intent_id):
        return None
    return f"https://dashboard.stripe.com/test/payments/{payment_intent_id}"


def _clock(timestamp: int | None) -> str | None:
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) if timestamp else None


def _product_name(product_id: str) -> str:
    product = catalogue.get_product(product_id)
    return product.name if product else product_id


def _error_message(order) -> str | None:
    if not order["last_payment_error"]:
        return None
    error = json.loads(order["last_payment_error"])
    return error.get("decline_code") or error.get("code") or error.get("message")


def dashboard_data(db, mode: str, deliveries: deque) -> dict:
    """What the dashboard shows, every amount already formatted for people. No secrets: no
    client secret, no key, no webhook secret is read here."""
    counts = {step: 0 for step in STORED_STEPS}
    canceled = total = 0
    for row in db.execute("SELECT status, payment_intent IS NOT NULL AS has_pi, COUNT(*) AS n"
                          " FROM orders GROUP BY status, has_pi"):
        total += row["n"]
        step = step_of(row["status"], "pi" if row["has_pi"] else None)
        if step is None:
            canceled += row["n"]
        else:
            counts[step] += row["n"]
    collected = [catalogue.format_amount(row["paid"], row["currency"]) for row in db.execute(
        "SELECT currency, SUM(amount_paid - amount_refunded) AS paid FROM orders"
        " WHERE status IN ('paid', 'partially_refunded', 'refunded', 'disputed')"
        " GROUP BY currency ORDER BY currency")]

    recent = db.execute("SELECT * FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ?",
                        (LIST_LIMIT,)).fetchall()
    order_list, payment_list = [], []
    for o in recent:
        amount = catalogue.format_amount(o["amount"], o["currency"])
        order_list.append({
            "id": o["id"], "created": _clock(o["created_at"]), "customer": o["customer"],
            "product": _product_name(o["product_id"]), "quantity": o["quantity"],
            "amount": amount, "status": o["status"], "step": step_of(o["status"], o["payment_intent"]),
            "attempts": o["attempts"], "payment_error": _error_message(o),
            "refunded": (catalogue.format_amount(o["amount_refunded"], o["currency"])
                         if o["amount_refunded"] else None),
        })
        if o["payment_intent"]:
            payment_list.append({
                "id": o["payment_intent"], "status": payment_status(o), "amount": amount,
                "order": o["id"], "dashboard_url": stripe_dashboard_url(o["payment_intent"], mode),
            })

    delivery_list = [{
        "received": _clock(d["received_at"]), "event": d["event"], "type": d["type"],
        "verified": not d["outcome"].startswith("rejected"), "outcome": d["outcome"],
    } for d in reversed(deliveries.copy())][:LIST_LIMIT]  # copy(): atomic under the GIL
    events = [{"received": _clock(e["received_at"]), "id": e["id"], "type": e["type"],
               "payment_intent": e["payment_intent"], "order": e["order_id"],
               "outcome": e["outcome"]}
              for e in db.execute("SELECT * FROM webhook_events ORDER BY received_at DESC,"
                                  " rowid DESC LIMIT ?", (LIST_LIMIT,))]
    events_total = db.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]

    return {
        "object": "dashboard",
        "mode": mode,
        "steps": [{"step": n, "title": title, "meaning": meaning,
                   "count": counts.get(n)} for n, title, meaning in STEPS],
        "totals": {"orders": total, "paid": counts[6], "canceled": canceled,
                   "collected": collected, "webhook_events": events_total,
                   "deliveries": len(deliveries)},
        "orders": order_list,
        "payments": payment_list,
        "deliveries": delivery_list,
        "events": events,
    }


# --- the per-learner view: who is where, for how long, and who has not started -------------

def reached_step_at(order, last_event_at: int | None) -> int:
    """When the order reached the step it is at (unix time): paid -> when it was paid; a
    declined or 3-D Secure attempt -> the last webhook about it; else when it was created."""
    if order["status"] in orders.PAID_STATUSES and order["paid_at"]:
        return order["paid_at"]
    if order["status"] == "attempted" and last_event_at:
        return last_event_at
    return order["created_at"]


def learner_progress(db, roster: list[str] | tuple[str, ...] = ()) -> list[dict]:
    """One row per learner: the furthest step any of their orders reached, since when, and how
    many orders they made. A learner is known by the customer id their orders carry; the class
    roster (`serve --roster FILE`) names the learners who have not ordered yet, so the
    instructor sees who has not started. Slowest first: not started, then lowest step, then
    longest at it."""
    learners: dict[str, dict] = {name: {"customer": name, "orders": 0, "step": None,
                                        "since": None, "status": "not started",
                                        "on_roster": True} for name in roster}
    for o in db.execute(
            "SELECT o.*, (SELECT MAX(received_at) FROM webhook_events e WHERE e.order_id = o.id)"
            " AS last_event_at FROM orders o ORDER BY o.created_at, o.rowid"):
        row = learners.setdefault(o["customer"], {
            "customer": o["customer"], "orders": 0, "step": None, "since": None,
            "status": "not started", "on_roster": False})
        row["orders"] += 1
        step = step_of(o["status"], o["payment_intent"])
        if step is None:
            if row["step"] is None:
                row["status"] = "canceled"
            continue
        since = reached_step_at(o, o["last_event_at"])
        if row["step"] is None or step > row["step"] or (step == row["step"] and since < row["since"]):
            row.update(step=step, since=since, status=o["status"], order=o["id"])
    return sorted(learners.values(), key=lambda r: (
        r["step"] is not None, r["step"] or 0, r["since"] or 0, r["customer"]))


# --- the reset button's protection ---------------------------------------------------------

def _csrf_key() -> bytes:
    return current_app.extensions["dashboard_csrf_key"]


def _sign(issued: int) -> str:
    return hmac.new(_csrf_key(), f"dashboard-reset.{issued}".encode(), hashlib.sha256).hexdigest()


def csrf_token(now: float | None = None) -> str:
    """A token for one page: when it was issued, signed with this server process's key."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_sign(issued)}"


def csrf_token_valid(token: str | None, now: float | None = None) -> bool:
    issued_text, _, signature = (token or "").partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    now = time.time() if now is None else now
    if not issued - 60 <= now <= issued + CSRF_MAX_AGE:
        return False
    return hmac.compare_digest(signature, _sign(issued))


def same_origin() -> bool:
    """Does the browser say the request comes from a page of this server (Origin, else Referer)?

    The origin is compared with the addresses this lab is configured to answer at (the Host
    allow-list, security.HostPolicy), never with the request's own Host header, which a
    page on another site controls after rebinding its name to this machine.
    """
    source = request.headers.get("Origin")
    if source is None:
        source = request.headers.get("Referer")
    return policy().allows_origin(source, request.host)


def reset_rules() -> dict:
    """Can the person asking reset the lab, and do they need the instructor's token for it?"""
    shared = not is_loopback(current_app.config.get("LISTEN_HOST", "127.0.0.1"))
    local = is_loopback(request.remote_addr or "")
    token_set = bool(current_app.config.get("RESET_TOKEN"))
    needs_token = shared and not local
    return {"allowed": not needs_token or token_set, "needs_token": needs_token and token_set}


def _forbidden(message: str, code: str) -> ApiError:
    return ApiError(403, message, code=code)


@bp.post("/dashboard/reset")
def reset_lab():
    if not same_origin():
        raise _forbidden("Cross-site request refused: reset the lab from its dashboard page.",
                         "cross_site_request")
    if not csrf_token_valid(request.headers.get("X-CSRF-Token")):
        raise _forbidden("Missing or expired dashboard token: reload the dashboard and try again.",
                         "csrf_token_invalid")
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    rules = reset_rules()
    if rules["needs_token"] or not rules["allowed"]:
        expected = current_app.config.get("RESET_TOKEN") or ""
        given = body.get("reset_token")
        if not expected or not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), expected.encode()):
            raise _forbidden("This lab is shared with the room: reset it from the machine it "
                             "runs on, or with the instructor's reset token.", "reset_not_allowed")
    if body.get("confirm") != RESET_CONFIRMATION:
        raise ApiError(400, f'Confirm the reset: send {{"confirm": "{RESET_CONFIRMATION}"}}.',
                       param="confirm")

    backend_url = current_app.config.get("BACKEND_URL")
    if current_app.config["SETTINGS"].offline and backend_url:
        try:
            clear_backend_data(backend_url)  # first: if Stripe's side fails, nothing is lost
        except OSError as e:
            log.warning("reset: could not clear the offline Stripe: %s", e)
            raise ApiError(503, "Could not reach the offline Stripe to clear it; nothing was "
                           "deleted. Try again.", type="api_connection_error") from None
    db = get_db()
    with transaction(db):
        orders.clear_lab(db)
    current_app.extensions["webhook_deliveries"].clear()
    log.warning("the lab was reset from the dashboard (%s)", request.remote_addr)
    return jsonify({"reset": True, "mode": current_app.config["SETTINGS"].mode})


# --- the page and its JSON -----------------------------------------------------------------

@bp.record_once
def _make_csrf_key(state) -> None:
    # New at every server start: a page from an earlier run cannot reset this one.
    state.app.extensions["dashboard_csrf_key"] = secrets.token_bytes(32)


def _data() -> dict:
    db = get_db()
    db.execute("BEGIN")  # one snapshot: the counts and the lists agree with each other
    try:
        data = dashboard_data(db, current_app.config["SETTINGS"].mode,
                              current_app.extensions["webhook_deliveries"])
        data["learners"] = learner_progress(db, current_app.config.get("ROSTER") or ())
    finally:
        db.execute("COMMIT")
    data["reset"] = reset_rules()
    data["background"] = background_status()
    data["roster_size"] = len(current_app.config.get("ROSTER") or ())
    return data


def background_status() -> dict:
    """The safety nets working behind the scenes: the background reconcile (orders settled
    although their webhook never came) and, offline, the webhook registration's watchdog."""
    background = current_app.extensions.get("background_reconcile")
    if background is None:
        return {"reconcile": {"enabled": False}, "webhook_watchdog": None,
                "summary": "background reconcile off"}
    status = dict(background.status)
    status["last_run"] = _clock(status["last_run_at"])
    summary = (f"background reconcile every {status['interval_seconds']:g} s"
               + (f", last {status['last_run']}" if status["last_run"] else "")
               + f": {status['settled_total']} settled without their webhook")
    watchdog = current_app.extensions.get("webhook_watchdog")
    checks = None
    if watchdog is not None:
        checks = dict(watchdog.status)
        checks["last_healed"] = _clock(checks["last_healed_at"])
        if checks["healed"]:
            summary += (f"; webhook registration put back {checks['healed']}\u00d7"
                        f" (last {checks['last_healed']})")
    return {"reconcile": status, "webhook_watchdog": checks, "summary": summary}


@bp.get("/api/dashboard")
def dashboard_json():
    response = jsonify(_data())
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/dashboard")
def dashboard_page():
    html = render_template("dashboard.html", data=_data(), csrf_token=csrf_token(),
                           poll_milliseconds=POLL_MILLISECONDS,
                           confirmation=RESET_CONFIRMATION)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # it carries this page's reset token
    return response
