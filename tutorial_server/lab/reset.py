"""Emptying the lab, in one place: `clear_lab` (used by the dashboard's reset button, the CLI's
`reset` and `serve --fresh`), and POST /dashboard/reset with every rule for who may press it.

The reset is the one thing on the dashboard that changes data, so a request to it must prove it
comes from the dashboard page: it must be a POST, from this server's own origin (Origin or
Referer header), carrying the token the page was served with (signed with a key made at each
server start). On a lab shared with the room (`serve --host 0.0.0.0`) it must also come from the
server's own machine, or carry the instructor's reset token.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
from collections import deque

import requests
from flask import Blueprint, current_app, jsonify, request
from itsdangerous import BadSignature, TimestampSigner

from ..db import clear_all, get_db, transaction
from ..errors import ApiError
from ..security import is_loopback, policy, request_via_proxy
from .offline_stripe import clear_backend_data

log = logging.getLogger(__name__)
bp = Blueprint("lab_reset", __name__)

CSRF_MAX_AGE = 12 * 3600  # a page left open on the projector all day still resets
RESET_CONFIRMATION = "reset"


def clear_lab(db: sqlite3.Connection, backend_url: str | None = None,
              deliveries: deque | None = None, *, backend_key: str | None = None) -> None:
    """Empty the lab: the offline Stripe's data first (if Stripe's side fails, raising OSError,
    nothing is lost), then every table of the database, then the deliveries the dashboard
    lists. `backend_url`: an offline Stripe to empty too (None: none, or real Stripe), with
    the lab's key for it, `backend_key`."""
    if backend_url:
        clear_backend_data(backend_url, backend_key or "")
    with transaction(db):
        clear_all(db)
    if deliveries is not None:
        deliveries.clear()


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def reset_running_lab(server_url: str) -> None:
    """Press the running lab's reset button from this machine, as the dashboard page does
    (the lab then empties its offline Stripe, its database and its deliveries itself).
    Raises RuntimeError with the lab's answer if it refuses."""
    page = requests.get(f"{server_url}/dashboard", timeout=15)
    token = _CSRF_META.search(page.text) if page.ok else None
    if token is None:
        raise RuntimeError(f"the lab's dashboard did not answer ({page.status_code})")
    answer = requests.post(f"{server_url}/dashboard/reset", json={"confirm": RESET_CONFIRMATION},
                           headers={"X-CSRF-Token": token.group(1), "Origin": server_url},
                           timeout=15)
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")


@bp.record_once
def _make_csrf_key(state) -> None:
    # New at every server start: a page from an earlier run cannot reset this one.
    state.app.extensions["dashboard_csrf_key"] = secrets.token_bytes(32)


def _signer() -> TimestampSigner:
    return TimestampSigner(current_app.extensions["dashboard_csrf_key"], salt="dashboard-reset",
                           digest_method=hashlib.sha256)


def csrf_token() -> str:
    """A token for one page: when it was issued, signed with this server process's key."""
    return _signer().sign("page").decode()


def csrf_token_valid(token: str | None) -> bool:
    """Signed by this server process and at most CSRF_MAX_AGE old (never from the future)."""
    try:
        return _signer().unsign(token or "", max_age=CSRF_MAX_AGE) == b"page"
    except BadSignature:  # forged, garbled, expired or issued in the future
        return False


def same_origin() -> bool:
    """Does the browser say the request comes from a page of this server (Origin, else Referer)?

    The origin is compared with the addresses this lab is configured to answer at (the Host
    allow-list, security.HostPolicy), never with the request's own Host header, which a
    page on another site controls after rebinding its name to this machine.
    """
    source = request.headers.get("Origin")
    if source is None:
        source = request.headers.get("Referer")
    return policy().allows_origin(source, request.host, request_via_proxy())


def reset_rules() -> dict:
    """Can the person asking reset the lab, and do they need the instructor's token for it?"""
    shared = not is_loopback(current_app.config.get("LISTEN_HOST", "127.0.0.1"))
    local = is_loopback(request.remote_addr or "")
    token_set = bool(current_app.config.get("RESET_TOKEN"))
    needs_token = shared and not local
    # resets: how many times this server was reset, so an open dashboard (the CLI's reset too)
    # knows to forget what it showed, the order it follows included.
    return {"allowed": not needs_token or token_set, "needs_token": needs_token and token_set,
            "resets": current_app.extensions.get("lab_resets", 0)}


def _forbidden(message: str, code: str) -> ApiError:
    return ApiError(403, message, code=code)


def check_reset_request(body: dict) -> None:
    """Every rule a reset request must pass, in order; ApiError (403, or 400 unconfirmed)."""
    if not same_origin():
        raise _forbidden("Cross-site request refused: reset the lab from its dashboard page.",
                         "cross_site_request")
    if not csrf_token_valid(request.headers.get("X-CSRF-Token")):
        raise _forbidden("Missing or expired dashboard token: reload the dashboard and try again.",
                         "csrf_token_invalid")
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


@bp.post("/dashboard/reset")
def reset_lab():
    body = request.get_json(silent=True)
    check_reset_request(body if isinstance(body, dict) else {})
    settings = current_app.config["SETTINGS"]
    try:
        clear_lab(get_db(), current_app.config.get("BACKEND_URL") if settings.offline else None,
                  current_app.extensions["webhook_deliveries"],
                  backend_key=settings.secret_key)  # offline: the lab's key for its stand-in
        current_app.extensions["refused_deliveries"].clear()
    except OSError as e:
        log.warning("reset: could not clear the offline Stripe: %s", e)
        raise ApiError(503, "Could not reach the offline Stripe to clear it; nothing was "
                       "deleted. Try again.", type="api_connection_error") from None
    current_app.extensions["lab_resets"] = current_app.extensions.get("lab_resets", 0) + 1
    log.warning("the lab was reset from the dashboard (%s)", request.remote_addr)
    return jsonify({"reset": True, "mode": current_app.config["SETTINGS"].mode})
