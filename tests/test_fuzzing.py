"""Fuzzing (hypothesis) of POST /api/orders and POST /webhook over HTTP against a real lab: never
a 5xx, every refusal in the JSON error shape, and a refused request changes nothing in the
database. Run with `-s` to see the figures.
"""
import json
import re
import secrets
import time
from collections import Counter

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutorial_server.catalogue import PRODUCTS
from tutorial_server.parsing import MAX_JSON_DEPTH
from tutorial_server.lab.webhook_sender import sign_payload

from .failure_lab import assert_error_shape, failure_lab  # noqa: F401 (a fixture)
from .running_lab import new_webhook_secret


# --- (a) fuzzing ------------------------------------------------------------------------------

FUZZ_EXAMPLES = 600
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None,
                         database=None, print_blob=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

# Any JSON value (NaN and Infinity too: Python writes them, and a server must not choke).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
PRODUCT_IDS = [p.id for p in PRODUCTS]
# Header values requests can send: no CR, LF or NUL, no leading whitespace.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                      max_size=40)
HEADER_BYTES = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"\x00" not in b and re.match(rb"\S[^\r\n]*\Z", b) is not None)

ORDER_FIELDS = st.fixed_dictionaries({}, optional={
    "productId": st.sampled_from(PRODUCT_IDS) | JSON_VALUES,
    "quantity": (st.integers(-3, 103) | st.sampled_from([2**31, 2**63, -2**63, 10**40])
                 | JSON_VALUES),
    "customer": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z") | JSON_VALUES,
    "amount": JSON_VALUES, "price": JSON_VALUES, "currency": JSON_VALUES,
    "unit_amount": JSON_VALUES, "discount": JSON_VALUES,
}) | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)

@st.composite
def nearly_valid_orders(draw) -> dict:
    """A valid order body, often with one thing wrong: the interesting edge."""
    body = {"productId": draw(st.sampled_from(PRODUCT_IDS)), "quantity": draw(st.integers(1, 100))}
    if draw(st.booleans()):
        body["customer"] = draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"))
    change = draw(st.sampled_from(["none", "none", "replace", "add", "drop"]))
    if change == "replace":
        body[draw(st.sampled_from(sorted(body)))] = draw(JSON_VALUES)
    elif change == "add":
        body[draw(st.sampled_from(["amount", "price", "currency", "discount", "extra"])
                  | st.text(max_size=8))] = draw(JSON_VALUES)
    elif change == "drop":
        del body[draw(st.sampled_from(sorted(body)))]
    return body


JSON_CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
CONTENT_TYPES = st.sampled_from(JSON_CONTENT_TYPES * 4 + [
    "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz", "application/jsonp", "*/*", None]) | HEADER_TEXT


@st.composite
def nested_json(draw) -> bytes:
    """Arrays and objects inside each other, from shallow to far past the server's limit
    (security.MAX_JSON_DEPTH) and Python's recursion limit; balanced or cut short."""
    depth = draw(st.integers(1, 40) | st.sampled_from([MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
                 | st.integers(900, 6000))
    shape = draw(st.sampled_from(["arrays", "objects", "mixed"]))
    opens = [b"[" if shape == "arrays" or (shape == "mixed" and i % 2) else b'{"k":'
             for i in range(depth)]
    closes = [b"]" if o == b"[" else b"}" for o in reversed(opens)]
    body = b"".join(opens) + draw(st.sampled_from([b"1", b'"x"', b"null", b"[]", b"{}"]))
    if draw(st.booleans()):
        body += b"".join(closes)
    return body


@st.composite
def order_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["nearly-valid"] * 4 + ["fields", "fields", "json", "bytes",
                                 "text-utf16", "truncated", "huge", "empty", "nested"]))
    if kind == "nested":
        return draw(nested_json())
    if kind == "nearly-valid":
        return json.dumps(draw(nearly_valid_orders())).encode()
    if kind == "fields":
        return json.dumps(draw(ORDER_FIELDS)).encode()
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text-utf16":
        return json.dumps(draw(ORDER_FIELDS)).encode("utf-16")
    if kind == "truncated":
        whole = json.dumps(draw(ORDER_FIELDS)).encode()
        return whole[:draw(st.integers(0, max(0, len(whole) - 1)))]
    if kind == "huge":  # over the server's 64 KB limit
        return b'{"productId": "' + b"x" * draw(st.integers(64 * 1024, 80 * 1024)) + b'"}'
    return b""


IDEMPOTENCY_KEYS = (st.none() | st.sampled_from(["fuzz-key-1", "fuzz-key-2", "fuzz-key-3"])
                    | HEADER_TEXT | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                                            min_size=250, max_size=300)
                    | HEADER_BYTES)


@st.composite
def order_requests(draw) -> dict:
    headers = {}
    content_type = draw(st.sampled_from(JSON_CONTENT_TYPES) | CONTENT_TYPES)
    if content_type is not None:
        headers["Content-Type"] = content_type
    key = draw(IDEMPOTENCY_KEYS)
    if key is not None:
        headers["Idempotency-Key"] = key
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["X-Fuzz", "Accept", "Stripe-Signature", "Authorization",
                                      "X-HTTP-Method-Override"]))] = draw(HEADER_BYTES)
    method = draw(st.sampled_from(["POST"] * 9 + ["GET", "PUT", "PATCH", "DELETE"]))
    return {"method": method, "body": draw(order_bodies()), "headers": headers}


def test_fuzzed_order_requests_never_break_the_server(failure_lab):
    """At least 500 generated requests to /api/orders: every answer is a 201 with an order or a
    4xx in the JSON error shape, and a refused request changes nothing in the database."""
    counts: Counter = Counter()
    url = failure_lab.url + "/api/orders"

    @FUZZ_SETTINGS
    @given(order_requests())
    def one_request(req):
        before = failure_lab.snapshot()
        r = requests.request(req["method"], url, data=req["body"], headers=req["headers"],
                             timeout=15)
        counts["requests"] += 1
        counts[f"{r.status_code // 100}xx"] += 1
        counts[r.status_code] += 1
        assert r.status_code < 500, (r.status_code, r.text[:300], req)
        if r.status_code == 201:
            assert r.json()["order"]["object"] == "order"
        else:
            assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
            assert_error_shape(r)
            assert failure_lab.snapshot() == before, ("a refused request changed the database",
                                                      r.status_code, req)

    started = time.monotonic()
    one_request()
    print(f"\nPOST /api/orders fuzz: {counts['requests']} requests in "
          f"{time.monotonic() - started:.1f} s; 2xx {counts['2xx']}, 4xx {counts['4xx']}, "
          f"5xx {counts['5xx']}; by status "
          f"{dict(sorted((k, v) for k, v in counts.items() if isinstance(k, int)))}")
    assert counts["requests"] >= 500
    assert counts["5xx"] == 0
    assert counts["2xx"] > 0 and counts["4xx"] > counts["2xx"]  # it reached both branches


HANDLED_TYPES = ["payment_intent.succeeded", "payment_intent.payment_failed"]
EVENT_TYPES = st.sampled_from(HANDLED_TYPES * 3 + ["customer.created", "charge.succeeded",
                                                   "payment_intent.canceled", ""]) | JSON_VALUES
EVENT_IDS = (st.builds(lambda: "evt_fuzz_" + secrets.token_hex(8))
             | st.text(max_size=30) | JSON_VALUES)
# Ids Stripe has never seen; no fuzzed event names a real order's PaymentIntent.
INTENT_IDS = (st.builds(lambda: "pi_fuzz" + secrets.token_hex(8))
              | st.text(max_size=30).map(lambda s: "pi_" + s)
              # long ids: past Stripe's 255, past the 8 KB an HTTP request line usually may have
              | st.sampled_from([252, 253, 1000, 8190, 20_000]).map(lambda n: "pi_" + "a" * n)
              | JSON_VALUES)
INTENTS = st.fixed_dictionaries(
    {"id": INTENT_IDS},
    optional={"object": st.just("payment_intent") | JSON_VALUES,
              "amount": st.integers(-10, 10**9) | JSON_VALUES,
              "currency": st.sampled_from(["usd", "inr", "jpy", "xxx"]) | JSON_VALUES,
              "status": st.sampled_from(["succeeded", "requires_payment_method", "canceled"])
              | JSON_VALUES,
              "metadata": st.fixed_dictionaries({"order_id": st.text(max_size=20)}) | JSON_VALUES,
              "last_payment_error": JSON_VALUES})
EVENTS = st.fixed_dictionaries(
    {"id": EVENT_IDS, "type": EVENT_TYPES},
    optional={"object": st.just("event"), "created": st.integers(0, 2**40),
              "data": st.fixed_dictionaries({"object": INTENTS}) | JSON_VALUES})


@st.composite
def nearly_valid_events(draw) -> dict:
    """An event shaped like Stripe's, about a PaymentIntent nobody has, often with one thing
    wrong: these get past the signature and the shape checks, deep into the handler."""
    intent = {"id": draw(INTENT_IDS), "object": "payment_intent",
              "amount": draw(st.integers(1, 10**6)), "currency": "usd", "status": "succeeded",
              "metadata": {"order_id": draw(st.text(max_size=20))}}
    event = {"id": draw(EVENT_IDS), "object": "event",
             "type": draw(st.sampled_from(HANDLED_TYPES)), "data": {"object": intent}}
    change = draw(st.sampled_from(["none", "none", "event", "intent"]))
    if change == "event":
        event[draw(st.sampled_from(sorted(event)))] = draw(JSON_VALUES)
    elif change == "intent":
        intent[draw(st.sampled_from(sorted(intent)))] = draw(JSON_VALUES)
    return event


@st.composite
def webhook_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["nearly-valid"] * 3 + ["event"] * 2
                                + ["json", "bytes", "truncated", "empty", "nested"]))
    if kind == "nested":
        return draw(nested_json())
    if kind == "nearly-valid":
        return json.dumps(draw(nearly_valid_events())).encode()
    if kind == "event":
        return json.dumps(draw(EVENTS)).encode()
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "truncated":
        whole = json.dumps(draw(EVENTS)).encode()
        return whole[:draw(st.integers(0, max(0, len(whole) - 1)))]
    return b""


SIGNATURES = ["valid", "valid", "valid", "none", "garbage", "garbage-bytes", "wrong-secret",
              "stale", "future", "truncated", "body-changed", "v0-only", "two-v1-one-good",
              "recent-past"]


@st.composite
def webhook_requests(draw, secret: str) -> dict:
    body = draw(webhook_bodies())
    kind = draw(st.sampled_from(SIGNATURES))
    now = int(time.time())
    header: str | bytes | None
    if kind == "none":
        header = None
    elif kind == "garbage":
        header = draw(HEADER_TEXT)
    elif kind == "garbage-bytes":
        header = draw(HEADER_BYTES)
    elif kind == "wrong-secret":
        header = sign_payload(body, new_webhook_secret(), now)
    elif kind == "stale":
        header = sign_payload(body, secret, now - draw(st.integers(301, 10**8)))
    elif kind == "future":
        # (330, not 301: the server reads its clock a moment after this one)
        header = sign_payload(body, secret, now + draw(st.integers(330, 10**8)))
    elif kind == "truncated":
        whole = sign_payload(body, secret, now)
        header = whole[:draw(st.integers(1, len(whole) - 1))]
    elif kind == "body-changed":
        header = sign_payload(body, secret, now)
        body = body + draw(st.binary(min_size=1, max_size=5))
    elif kind == "v0-only":
        header = sign_payload(body, secret, now).replace("v1=", "v0=")
    elif kind == "two-v1-one-good":  # as during a secret rotation: one matching entry suffices
        header = sign_payload(body, secret, now) + ",v1=" + secrets.token_hex(32)
    elif kind == "recent-past":
        header = sign_payload(body, secret, now - draw(st.integers(0, 240)))
    else:
        header = sign_payload(body, secret, now)
    content_type = draw(CONTENT_TYPES)
    return {"body": body, "header": header, "signature": kind, "content_type": content_type}


def test_fuzzed_webhook_deliveries_never_break_the_server(failure_lab):
    """At least 500 generated deliveries to /webhook: garbage, wrong-secret, stale, future,
    truncated signatures, bodies changed after signing, validly signed non-events. Never a 5xx;
    every refusal is a 4xx in the JSON error shape and changes nothing; and no delivery, even
    an accepted one, pays or changes any order."""
    counts: Counter = Counter()
    url = failure_lab.url + "/webhook"
    # A real order in the lab, so that an event which managed to pay anything would show.
    failure_lab.order("prod_enamel_mug", 1, "cus_fuzz_witness")
    orders_before = {t: rows for t, rows in failure_lab.snapshot().items()
                     if t in ("orders", "inventory", "idempotency_keys")}

    @FUZZ_SETTINGS
    @given(st.data())
    def one_delivery(data):
        req = data.draw(webhook_requests(failure_lab.webhook_secret))
        headers = {}
        if req["header"] is not None:
            headers["Stripe-Signature"] = req["header"]
        if req["content_type"] is not None:
            headers["Content-Type"] = req["content_type"]
        before = failure_lab.snapshot()
        r = requests.post(url, data=req["body"], headers=headers, timeout=15)
        counts["requests"] += 1
        counts[f"{r.status_code // 100}xx"] += 1
        counts[f"{req['signature']}:{r.status_code}"] += 1
        assert r.status_code < 500, (r.status_code, r.text[:300], req)
        if r.status_code == 200:
            assert r.json()["received"] is True
            counts["accepted"] += 1
        else:
            assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
            assert_error_shape(r)
            counts["rejected"] += 1
            if req["signature"] not in ("valid", "two-v1-one-good", "recent-past"):
                counts["forged_rejected"] += 1
            assert failure_lab.snapshot() == before, ("a refused delivery changed the database",
                                                      r.status_code, req)
        if req["signature"] not in ("valid", "two-v1-one-good", "recent-past"):
            assert r.status_code == 400, ("a badly signed delivery was accepted", req)

    started = time.monotonic()
    one_delivery()
    after = failure_lab.snapshot()
    assert {t: after[t] for t in orders_before} == orders_before, "a fuzzed event changed an order"
    forged = sum(v for k, v in counts.items() if isinstance(k, str) and ":" in k
                 and k.split(":")[0] not in ("valid", "two-v1-one-good", "recent-past"))
    print(f"\nPOST /webhook fuzz: {counts['requests']} deliveries in "
          f"{time.monotonic() - started:.1f} s; accepted {counts['accepted']}, rejected "
          f"{counts['rejected']}, 5xx {counts['5xx']}; badly signed {forged}, all rejected: "
          f"{counts['forged_rejected'] == forged}; by signature:status "
          f"{dict(sorted((k, v) for k, v in counts.items() if isinstance(k, str) and ':' in k))}")
    assert counts["requests"] >= 500
    assert counts["5xx"] == 0
    assert counts["forged_rejected"] == forged > 100
    assert counts["accepted"] > 0  # validly signed events got through to the handler too
