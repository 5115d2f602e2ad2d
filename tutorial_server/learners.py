"""Who may touch an order when one server serves a class (`serve --host 0.0.0.0`).

On a laptop (the server listens on loopback only) nothing here applies: one person, no keys.
In class mode every classmate reaches the server, so an order is changed only by whoever it
belongs to:

- **a learner's key**: `POST /api/class/join {"customer": "learner07", "code"?}` answers 201
  with a `learner_key` (shown once; the server keeps only its SHA-256). Requests carrying
  `Authorization: Bearer <learner_key>` act as that learner; orders they create are theirs.
  An id joins once; only the instructor can issue it a new key (which revokes the old one).
  With a roster (`serve --roster FILE`) only its ids may join, with their join code if the
  roster gives one.
- **the order's access code**: every order made in class mode gets one, answered to whoever
  created it (`access`, and a `checkout_url` that carries it). The checkout page takes it as
  `?access=`, the page's own requests send it as `X-Order-Access`. That is how the browser of
  the learner whose notebook printed the link (or the shop that made the order) pays it.
- **the instructor**: a request from the server's own machine (loopback), or one carrying
  `Authorization: Bearer <reset token>` (`serve --reset-token`).

Anyone may still create an order (without a key it belongs to its access code only), pay
their own, and read orders and the dashboard; only an owner may cancel, refund, sync an
order or see its client secret. A customer id that has joined is used only with its key.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import Blueprint, current_app, jsonify, request

from .db import get_db, transaction
from .errors import ApiError
from .parsing import check_customer_id, read_json_object, refuse_unknown_params
from .security import is_class_mode, is_loopback

bp = Blueprint("learners", __name__, url_prefix="/api/class")

ACCESS_HEADER = "X-Order-Access"
KEY_PREFIX = "lk_"


def class_mode() -> bool:
    return is_class_mode(current_app.config.get("LISTEN_HOST"))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() or None if header[:7].lower() == "bearer " else None


def is_instructor() -> bool:
    """The server's own machine, or the instructor's reset token as a Bearer key."""
    if is_loopback(request.remote_addr or ""):
        return True
    expected, given = current_app.config.get("RESET_TOKEN") or "", _bearer()
    return bool(expected and given) and hmac.compare_digest(given.encode(), expected.encode())


def caller_learner(db) -> str | None:
    """The customer id whose learner key this request carries; 401 for a key nobody has."""
    given = _bearer()
    if given is None or not given.startswith(KEY_PREFIX):
        return None
    row = db.execute("SELECT customer FROM learners WHERE key_hash = ?",
                     (_digest(given),)).fetchone()
    if row is None:
        raise ApiError(401, "Unknown learner key: join the class again, or ask the instructor "
                       "for a new key.", type="authentication_error", code="learner_key_invalid")
    return row["customer"]


def owner_for_new_order(db, customer: str | None) -> tuple[str | None, str | None]:
    """(learner, access code) for an order about to be created for `customer` (None: not
    given, so the learner's own); (None, None) outside class mode. A customer id that has
    joined the class is ordered for only with its own key (or by the instructor); any other
    id (a notebook's `new_customer()`) is free, and the order still belongs to the caller."""
    if not class_mode():
        return None, None
    learner = caller_learner(db)
    if customer is not None and customer != learner and not is_instructor() and db.execute(
            "SELECT 1 FROM learners WHERE customer = ?", (customer,)).fetchone():
        raise ApiError(403, f"'{customer}' has joined the class: only their learner key "
                       "orders as them.", param="customer", code="customer_not_yours")
    return learner, secrets.token_urlsafe(18)


def record_owner(db, order_id: str, learner: str | None, access: str | None) -> None:
    if access is not None:
        db.execute("INSERT INTO order_owners (order_id, learner, access_hash) VALUES (?, ?, ?)",
                   (order_id, learner, _digest(access)))


def may_act_on(db, order_id: str, access: str | None = None) -> bool:
    """May this request change the order or see its client secret? Always outside class mode;
    in class mode its learner, its access code's holder, or the instructor."""
    if not class_mode() or is_instructor():
        return True
    owner = db.execute("SELECT learner, access_hash FROM order_owners WHERE order_id = ?",
                       (order_id,)).fetchone()
    if owner is None:
        return False  # made before class mode, or by the instructor
    access = access if access is not None else request.headers.get(ACCESS_HEADER)
    if access and hmac.compare_digest(_digest(access), owner["access_hash"]):
        return True
    learner = caller_learner(db)
    return learner is not None and learner == owner["learner"]


def require_owner(db, order_id: str) -> None:
    if not may_act_on(db, order_id):
        raise ApiError(403, f"Order {order_id} belongs to another learner: only its owner (their "
                       "learner key or the order's checkout link) or the instructor can change "
                       "it or see its client secret.", code="order_not_yours")


@bp.post("/join")
def join():
    if not class_mode():
        raise ApiError(400, "This lab is not shared with a class (it listens on this machine "
                       "only): no key needed.", code="class_mode_off")
    body = read_json_object("the join request")
    refuse_unknown_params(body, {"customer", "code"})
    customer = check_customer_id(body.get("customer"))
    codes = current_app.config.get("JOIN_CODES") or {}
    roster = current_app.config.get("ROSTER") or ()
    instructor = is_instructor()
    if roster and customer not in roster and not instructor:
        raise ApiError(403, f"'{customer}' is not on the class roster: check the id the "
                       "instructor gave you.", param="customer", code="not_on_roster")
    if customer in codes and not instructor:
        given = body.get("code")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(),
                                                                 codes[customer].encode()):
            raise ApiError(401, "Wrong or missing join code for this id.", param="code",
                           type="authentication_error", code="join_code_invalid")
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    db = get_db()
    with transaction(db):
        taken = db.execute("SELECT 1 FROM learners WHERE customer = ?", (customer,)).fetchone()
        if taken and not instructor:
            raise ApiError(409, f"'{customer}' has already joined. Lost your key? The "
                           "instructor can issue a new one.", param="customer",
                           code="learner_already_joined")
        db.execute("INSERT INTO learners (customer, key_hash, joined_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (customer) DO UPDATE SET key_hash = excluded.key_hash, "
                   "joined_at = excluded.joined_at", (customer, _digest(key), int(time.time())))
    return jsonify({"object": "learner", "customer": customer, "learner_key": key}), 201
