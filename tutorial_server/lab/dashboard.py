"""The instructor's dashboard: the offline stand-in for the Stripe Dashboard, and the screen the
class watches on the projector while everyone pays.

GET  /dashboard        the page; lab/static/dashboard.js refreshes it from the JSON below every 1.5 s
GET  /api/dashboard    orders, payments, webhook deliveries, and how many orders sit at each step
POST /dashboard/reset  clear the lab (reset.py; the page asks for a confirmation first)
GET  /dashboard/vendor/mermaid.min.js   the library the page draws order traces with

Everything shown comes from the server's own records: the order store, the webhook events it
processed, and the deliveries it received since it started. A refresh never calls Stripe, so
sixty learners and a projector polling it cost the payment backend nothing.

The reset button's rules and route are in reset.py.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import deque

from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    send_from_directory,
)

from .. import alerts, catalogue, orders
from ..db import get_db, snapshot
from .dashboard_steps import learner_progress, payment_status, short_session, step_of
from .reset import RESET_CONFIRMATION, csrf_token, reset_rules
from .shop import dist_folder

log = logging.getLogger(__name__)
# The page, its script and stylesheet live beside this module (lab/templates, lab/static):
# the merchant server's own folders hold only the checkout pages.
bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard/static")

POLL_MILLISECONDS, LIST_LIMIT = 1500, 50  # newest rows per list; counts cover every order
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "connect-src 'self'", "style-src 'self'",
    "img-src 'self' data:", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
    "frame-ancestors 'none'",
])

# The six steps (the README's table), and where an order in the store stands on them. Steps 1 and 3
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
    for row in orders.count_by_status(db):
        total += row["n"]
        step = step_of(row["status"], "pi" if row["has_pi"] else None)
        if step is None:
            canceled += row["n"]
        else:
            counts[step] += row["n"]
    collected = [catalogue.format_amount(row["paid"], row["currency"])
                 for row in orders.collected_by_currency(db)]

    recent = orders.recent_orders(db, LIST_LIMIT)
    order_list, payment_list = [], []
    notes = alerts.for_orders(db, [o["id"] for o in recent])  # what a person must look at
    for o in recent:
        amount = catalogue.format_amount(o["amount"], o["currency"])
        order_list.append({
            "id": o["id"], "created": _clock(o["created_at"]), "customer": o["customer"],
            "product": _product_name(o["product_id"]), "quantity": o["quantity"],
            "amount": amount, "status": o["status"],
            "step": step_of(o["status"], o["payment_intent"], o["checkout_session"]),
            # How it pays: its own PaymentIntent, or Stripe's page (the session, shortened).
            "pay_with": o["pay_with"], "checkout_session": short_session(o["checkout_session"]),
            "attempts": o["attempts"], "payment_error": _error_message(o),
            "refunded": (catalogue.format_amount(o["amount_refunded"], o["currency"])
                         if o["amount_refunded"] else None), "alerts": notes.get(o["id"], []),
        })
        if o["payment_intent"]:
            payment_list.append({
                "id": o["payment_intent"], "status": payment_status(o), "amount": amount,
                "order": o["id"], "dashboard_url": stripe_dashboard_url(o["payment_intent"], mode),
                "pay_with": o["pay_with"],
            })

    delivery_list = [{
        "received": _clock(d["received_at"]), "event": d["event"], "type": d["type"],
        "verified": not d["outcome"].startswith("rejected"), "outcome": d["outcome"],
    } for d in reversed(deliveries.copy())][:LIST_LIMIT]  # copy(): atomic under the GIL
    events = [{"received": _clock(e["received_at"]), "id": e["id"], "type": e["type"],
               "payment_intent": e["payment_intent"], "order": e["order_id"],
               "outcome": e["outcome"]}
              for e in orders.recent_events(db, LIST_LIMIT)]
    events_total = orders.count_events(db)

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


# --- the page and its JSON -----------------------------------------------------------------

def _data() -> dict:
    with snapshot(get_db()) as db:  # the counts and the lists agree with each other
        refused = current_app.extensions["refused_deliveries"]
        data = dashboard_data(db, current_app.config["SETTINGS"].mode,
                              refused.with_verified(current_app.extensions["webhook_deliveries"]))
        data["learners"] = learner_progress(db, current_app.config.get("ROSTER") or ())
    data["totals"]["refused_not_listed"] = refused.not_listed  # beyond the per-second cap
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
        checks["last_foreign"] = _clock(checks.get("last_foreign_at"))
        if checks.get("foreign"):
            summary += (f"; webhook endpoint not the lab's removed {checks['foreign']}\u00d7"
                        f" (last {checks['last_foreign']})")
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


MERMAID_FILE = "mermaid.min.js"
MERMAID_MAX_AGE = 24 * 3600


@bp.get("/dashboard/vendor/mermaid.min.js")
def mermaid_library():
    """The Mermaid library the dashboard draws traces with: npm's `mermaid` (pinned in
    client/package.json), copied beside the shop's build by `make client`. Served from here,
    never a CDN, so diagrams draw offline and on a class network. Without a build: 404, and the
    dashboard shows the diagram's text instead."""
    response = send_from_directory(dist_folder() / "vendor", MERMAID_FILE, max_age=MERMAID_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
