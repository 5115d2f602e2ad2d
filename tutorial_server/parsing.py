"""Reading what a client sent, in one place: the JSON body, its nesting, unknown parameters,
the Idempotency-Key header and customer ids. Every problem is an ApiError (4xx) naming the
parameter, in Stripe's wording where Stripe has one.
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection

from flask import request

from .errors import ApiError

MAX_JSON_DEPTH = 32  # an order is depth 1, a Stripe event about 6; nobody needs 32
MAX_IDEMPOTENCY_KEY = 255  # Stripe's own limit
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def read_json_object(what: str) -> dict:
    """The request's body as a JSON object, or ApiError: 415 unless it is sent as JSON,
    400 unless it parses to an object. `what` names it for the message ("the order")."""
    if request.mimetype != "application/json":
        raise ApiError(415, f"Send {what} as JSON with Content-Type: application/json.")
    data = request.get_data(cache=True)
    check_json_depth(data)  # before json.loads, whose recursion a deep body would exhaust
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def refuse_unknown_params(body: dict, allowed: Collection[str], hint: str = "") -> None:
    """400 naming the first parameter that is not in `allowed` (Stripe's wording), plus `hint`
    saying what to send instead."""
    for name in body:
        if name not in allowed:
            shown = str(name)[:64]
            raise ApiError(400, f"Received unknown parameter: {shown}." + (" " + hint if hint else ""),
                           param=shown)


def idempotency_key(required_because: str | None = None) -> str | None:
    """The request's Idempotency-Key header: 1 to 255 printable ASCII characters, as Stripe
    takes them. None when absent, unless `required_because` says why it must be there."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        if required_because:
            raise ApiError(400, f"An Idempotency-Key header is required: {required_because}",
                           param="Idempotency-Key")
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise ApiError(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable "
                       "ASCII characters.", param="Idempotency-Key")
    return key


def idempotency_conflict() -> ApiError:
    """The same key sent again with other parameters (Stripe's idempotency_error)."""
    return ApiError(409, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.", type="idempotency_error",
                    param="Idempotency-Key")


def read_refund_amount() -> int | None:
    """The amount the client asks back (None: all that is left), checked for its type only."""
    body = read_json_object("the refund")
    refuse_unknown_params(body, {"amount"}, "A refund takes only amount (minor units; leave "
                          "it out to refund what is left).")
    amount = body.get("amount")
    if amount is None:
        return None
    # bool is an int in Python; 1.5 and "150" are not integers in JSON terms.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ApiError(400, "amount must be a whole number of minor units (e.g. cents).",
                       param="amount")
    if amount <= 0:
        raise ApiError(400, "amount must be positive.", param="amount")
    return amount


def check_customer_id(customer: object) -> str:
    if not isinstance(customer, str) or not CUSTOMER_ID.match(customer):
        raise ApiError(400, "customer must be 1 to 64 letters, digits, '_' or '-'.",
                       param="customer")
    return customer


# --- JSON nesting ---------------------------------------------------------------------------

# A string (an unterminated one runs to the end: one pass, never a retry from every quote,
# which made `"\"\"\"...` take seconds), or a bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests its arrays and objects, without parsing it (and without
    recursion), in one linear pass. Brackets inside strings do not count."""
    depth = deepest = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Python's json module recurses once per `[` or `{`; thousands of them end in a
    RecursionError. Bodies nested deeper than `limit` are refused before parsing."""
    if body and json_depth(body) > limit:
        raise ApiError(400, f"JSON nested deeper than {limit} levels; refused before parsing.",
                       code="json_too_deep")
