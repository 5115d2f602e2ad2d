"""The failure lab: what goes wrong in real payments, done to a real lab on purpose.

- fuzzing (hypothesis) of POST /api/orders and POST /webhook over HTTP: never a 5xx, every
  refusal in the JSON error shape, and a refused request changes nothing in the database;
- the merchant server killed with SIGKILL (after a payment whose webhook is lost, and in the
  middle of a burst of orders) while its offline Stripe keeps running (`serve --backend-url`);
- the CLI's offline `stripe events resend` / `stripe trigger`, honest and forged;
- abandoned checkout: POST /api/orders/{id}/cancel.

Run with `-s` to see the fuzzing figures.
"""
from __future__ import annotations

import hmac
import json
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutorial_server.catalogue import PRODUCTS, get_product
from tutorial_server.pricing import MINIMUM_CHARGE
from tutorial_server.offline_backend import OfflineBackend
from tutorial_server.security import MAX_JSON_DEPTH
from tutorial_server.webhook_delivery import (deliver, deliver_event, payment_intent_event,
                                              sign_payload)

from .conftest import ROOT, RunningLab, lab_env, new_webhook_secret, wait_for
from .test_lab import drop_webhooks, run_cli


@pytest.fixture(scope="module")
def failure_lab(tmp_path_factory) -> RunningLab:
    """A lab of this module's own: fuzzing fills it with junk no other test should see."""
    tmp = tmp_path_factory.mktemp("failure-lab")
    running = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    yield running
    running.stop()


def assert_error_shape(r: requests.Response) -> dict:
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        r.status_code, r.headers.get("Content-Type"), r.text[:200])
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert {"type", "message", "param"} <= set(error), error
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert error["param"] is None or isinstance(error["param"], str)
    return error


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


# --- (b) the merchant server killed with SIGKILL ------------------------------------------------

@pytest.fixture
def offline_stripe(tmp_path):
    """An offline Stripe the test starts itself (and stops): it outlives the merchant server."""
    backend = OfflineBackend(log_path=tmp_path / "localstripe.log")
    backend.start()
    yield backend
    backend.stop()


@dataclass
class AttachedLab(RunningLab):
    """`serve --backend-url`: a merchant server attached to an offline Stripe already running.
    Unlike RunningLab.start, a restart leaves the state file of a killed server where it is."""

    backend: str = ""

    def start(self, timeout: float = 30.0) -> "AttachedLab":
        state_file = Path(f"{self.db_path}.lab.json")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tutorial_server", "serve", "--port", "0", "--db",
             str(self.db_path), "--backend-url", self.backend],
            cwd=ROOT, env=lab_env(self.db_path, self.webhook_secret),
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                return None
            return state if state.get("pid") == self.process.pid else None

        self.state = wait_for(ready, timeout, message="the server's state file")
        return self


@pytest.fixture
def attached_lab(tmp_path, offline_stripe):
    running = AttachedLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                          backend=offline_stripe.url)
    yield running.start()
    if running.process is not None:
        running.stop(signal.SIGKILL)


def rows_by_id(rows: list) -> dict:
    return {row[0]: row for row in rows}


def test_serve_attaches_to_a_running_offline_stripe(attached_lab, offline_stripe):
    assert attached_lab.backend_url == offline_stripe.url
    assert "already running: attached" in attached_lab.log()
    order = attached_lab.order("prod_drip_bags", 1, "cus_attached")["order"]
    attached_lab.gateway().pay_with_test_card(order["payment_intent"], "success")
    attached_lab.wait_for_status(order["id"], "paid")  # the webhook was registered there
    attached_lab.stop()
    # The server stopped; the offline Stripe it attached to did not.
    assert offline_stripe.process.poll() is None
    assert attached_lab.gateway().retrieve_payment_intent(order["payment_intent"])[
        "status"] == "succeeded"


def test_serve_refuses_a_backend_url_where_nothing_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "tutorial_server", "serve", "--port", "0", "--db",
         str(tmp_path / "db.sqlite3"), "--backend-url", f"http://127.0.0.1:{dead}"],
        cwd=ROOT, env=lab_env(tmp_path / "db.sqlite3", None), capture_output=True, text=True,
        timeout=60)
    assert result.returncode != 0
    assert f"No offline Stripe answers at http://127.0.0.1:{dead}" in result.stderr


def test_server_killed_after_a_payment_whose_webhook_was_lost(attached_lab, offline_stripe):
    """The merchant server dies (SIGKILL: no clean-up at all) after Stripe took a payment and
    before the payment's webhook was handled; Stripe stays up. After a restart the order is
    paid exactly once and nothing else is lost.

    Why nothing committed is lost: the database runs in WAL mode. A COMMIT appends the
    transaction's pages and a commit record to the -wal file with write(), so when COMMIT
    returns, the data is in the operating system's page cache. SIGKILL ends the process, not
    the kernel: the page cache is written out as usual, and the next connection replays the WAL
    up to its last complete commit, ignoring any torn, uncommitted tail. synchronous=NORMAL only
    skips the fsync at each commit; that matters for a power cut or an OS crash (where the last
    transactions could roll back, still consistently), never for a killed process.
    """
    lab = attached_lab
    # Orders that must come through the crash untouched: paid, waiting, abandoned.
    paid = lab.order("prod_coffee_beans", 1, "cus_crash_paid")["order"]
    lab.gateway().pay_with_test_card(paid["payment_intent"], "success")
    lab.wait_for_status(paid["id"], "paid")
    waiting = lab.order("prod_enamel_mug", 2, "cus_crash_waiting")["order"]
    abandoned = lab.order("prod_enamel_mug", 1, "cus_crash_abandoned")["order"]
    assert lab.post(f"/api/orders/{abandoned['id']}/cancel").status_code == 200

    order = lab.order("prod_pour_over_kit", 2, "cus_crash")["order"]
    lost = drop_webhooks(lab)  # the success webhook will be lost, as if it hit the dead server
    assert lab.gateway().pay_with_test_card(order["payment_intent"])["status"] == "succeeded"
    # Kill only once the delivery has really been lost: a restart faster than the stand-in's
    # one-second delay would otherwise receive it.
    wait_for(lambda: lost(order["payment_intent"]), timeout=10, message="the lost delivery")
    before = lab.snapshot()
    lab.stop(signal.SIGKILL)
    assert Path(f"{lab.db_path}.lab.json").exists()  # the killed server could not clean up

    lab.start()  # the same database, the same (still running) offline Stripe
    assert lab.log().count("Start-up check") == 2
    assert "Start-up check   1 paid now (their webhook never arrived)" in lab.log()
    settled = lab.order_status(order["id"])
    assert (settled["status"], settled["amount_paid"], settled["amount_due"],
            settled["attempts"]) == ("paid", 2 * 1340, 0, 1)

    result = run_cli(lab, "reconcile")
    assert result.returncode == 0, result.stderr
    assert "paid now" not in result.stdout  # nothing left to settle

    after = lab.snapshot()
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1
    others = {k: v for k, v in rows_by_id(after["orders"]).items() if k != order["id"]}
    assert others == {k: v for k, v in rows_by_id(before["orders"]).items() if k != order["id"]}
    assert {o["id"] for o in (paid, waiting, abandoned)} <= set(others)
    assert after["webhook_events"] == before["webhook_events"]
    assert after["idempotency_keys"] == before["idempotency_keys"]
    assert set(after["inventory"]) - set(before["inventory"]) == {
        r for r in after["inventory"] if r[0] == order["id"]}
    assert set(before["inventory"]) <= set(after["inventory"])

    # The restarted server registered its webhook with the offline Stripe again.
    again = lab.order("prod_drip_bags", 1, "cus_crash")["order"]
    lab.gateway().pay_with_test_card(again["payment_intent"], "success")
    lab.wait_for_status(again["id"], "paid")


def check_no_half_written_order(lab: RunningLab) -> Counter:
    """Every order row is whole and consistent; every paid order has exactly one inventory
    entry and every inventory entry a paid order. Returns the orders per status."""
    assert lab.query("PRAGMA integrity_check")[0][0] == "ok"
    statuses: Counter = Counter()
    for o in lab.query("SELECT * FROM orders"):
        product = get_product(o["product_id"])
        assert product is not None and 1 <= o["quantity"] <= 100
        assert o["subtotal"] == product.unit_amount * o["quantity"], dict(o)
        assert o["amount"] == o["subtotal"] - o["discount"] > 0, dict(o)
        assert o["currency"] == product.currency and len(o["receipt"]) == 24
        paid = o["status"] == "paid"
        assert o["amount_paid"] == (o["amount"] if paid else 0), dict(o)
        assert (o["paid_at"] is not None) == paid, dict(o)
        entries = lab.query("SELECT * FROM inventory WHERE order_id = ?", o["id"])
        assert len(entries) == (1 if paid else 0), dict(o)
        if paid:
            assert (entries[0]["customer"], entries[0]["product_id"], entries[0]["quantity"]) == (
                o["customer"], o["product_id"], o["quantity"])
        statuses[o["status"]] += 1
    assert lab.query("SELECT COUNT(*) FROM inventory WHERE order_id NOT IN "
                      "(SELECT id FROM orders WHERE status = 'paid')")[0][0] == 0
    assert lab.query("SELECT COUNT(*) FROM idempotency_keys WHERE order_id NOT IN "
                      "(SELECT id FROM orders)")[0][0] == 0
    return statuses


def test_server_killed_in_the_middle_of_a_burst_of_orders(attached_lab):
    """SIGKILL while orders are being created and paid orders' webhooks handled: no order is
    half-written (see the WAL note in the test above); retrying every request with its
    Idempotency-Key after the restart creates each order exactly once; every payment Stripe
    took ends in exactly one paid order with one inventory entry."""
    lab = attached_lab
    # Paid just before the burst: their webhooks arrive about 1 s later, in the middle of it.
    prepaid = [lab.order("prod_drip_bags", 1 + i, f"cus_burst_pre{i}")["order"] for i in range(4)]
    for o in prepaid:
        lab.gateway().pay_with_test_card(o["payment_intent"], "success")

    sold_alone = [p for p in PRODUCTS if p.unit_amount >= MINIMUM_CHARGE[p.currency]]
    bodies = {f"burst-{i}": {"productId": sold_alone[i % len(sold_alone)].id, "quantity": 1 + i % 7,
                             "customer": f"cus_burst_{i % 4}"} for i in range(48)}
    answered: list[str] = []
    cut: list[str] = []
    lock = threading.Lock()

    def send(keys: list[str]) -> None:
        for key in keys:
            try:
                r = requests.post(lab.url + "/api/orders", json=bodies[key],
                                  headers={"Idempotency-Key": key}, timeout=10)
                with lock:
                    (answered if r.status_code == 201 else cut).append(key)
            except requests.RequestException:
                with lock:
                    cut.append(key)

    keys = list(bodies)
    threads = [threading.Thread(target=send, args=(keys[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answered) >= 12, timeout=20, message="a dozen orders")
    lab.process.send_signal(signal.SIGKILL)
    lab.process.wait(timeout=10)
    lab.process = None
    for t in threads:
        t.join(timeout=30)
    assert answered and cut, (len(answered), len(cut))  # the kill did land mid-burst

    statuses = check_no_half_written_order(lab)  # straight after the kill
    print(f"\nburst: {len(answered)} answered, {len(cut)} cut off by the kill; "
          f"orders on disk after the kill: {dict(statuses)}")

    lab.start()
    for key, body in bodies.items():  # the clients retry, with the same keys
        r = requests.post(lab.url + "/api/orders", json=body, headers={"Idempotency-Key": key},
                          timeout=15)
        assert r.status_code == 201, r.text
        assert r.json()["client_secret"]
    assert len(lab.query("SELECT * FROM idempotency_keys")) == len(bodies)
    assert len(lab.query("SELECT * FROM orders")) == len(bodies) + len(prepaid)
    assert lab.query("SELECT COUNT(*) FROM orders WHERE payment_intent IS NULL")[0][0] == 0

    assert run_cli(lab, "reconcile").returncode == 0
    for o in prepaid:  # each payment Stripe took: paid once, whether its webhook got through or not
        assert lab.order_status(o["id"])["status"] == "paid"
    statuses = check_no_half_written_order(lab)
    assert statuses == {"paid": len(prepaid), "created": len(bodies)}


# --- (c) the CLI's `events resend` and `trigger` -------------------------------------------------

def cli(lab: RunningLab, *args: str) -> subprocess.CompletedProcess:
    result = run_cli(lab, *args)
    for text in (result.stdout, result.stderr):
        assert lab.webhook_secret not in text
    return result


def test_events_resend_of_a_delivered_event_is_a_duplicate(failure_lab):
    order = failure_lab.order("prod_enamel_mug", 1, "cus_cli_resend")["order"]
    failure_lab.gateway().pay_with_test_card(order["payment_intent"], "success")
    failure_lab.wait_for_status(order["id"], "paid")
    [event] = failure_lab.query("SELECT * FROM webhook_events WHERE payment_intent = ?",
                    order["payment_intent"])
    assert event["outcome"] == "fulfilled"

    before = failure_lab.snapshot()
    result = cli(failure_lab, "events", "resend", event["id"])
    assert result.returncode == 0, result.stderr
    assert f"Delivering payment_intent.succeeded {event['id']}" in result.stdout
    assert '-> 200 {"received": true, "outcome": "duplicate"}' in result.stdout
    assert "whsec_" not in result.stdout
    assert failure_lab.snapshot() == before


def test_trigger_on_a_paid_order_changes_nothing(failure_lab):
    order = failure_lab.order("prod_pour_over_kit", 1, "cus_cli_trigger")["order"]
    failure_lab.gateway().pay_with_test_card(order["payment_intent"], "success")
    paid = failure_lab.wait_for_status(order["id"], "paid")
    before = failure_lab.snapshot()
    for event_type, outcome in (("payment_intent.succeeded", "already_paid"),
                                ("payment_intent.payment_failed", "already_paid")):
        result = cli(failure_lab, "trigger", event_type, "--order", order["id"])
        assert result.returncode == 0, result.stderr
        assert f'"outcome": "{outcome}"' in result.stdout
    after = failure_lab.snapshot()
    assert failure_lab.order_status(order["id"]) == paid
    assert (after["orders"], after["inventory"]) == (before["orders"], before["inventory"])
    assert len(after["webhook_events"]) == len(before["webhook_events"]) + 2  # recorded, no effect


def test_cli_without_a_running_lab_or_with_an_unknown_event(failure_lab, tmp_path):
    result = subprocess.run([sys.executable, "-m", "tutorial_server", "events", "resend",
                             "evt_123", "--db", str(tmp_path / "none.sqlite3")], cwd=ROOT,
                            env=lab_env(tmp_path / "none.sqlite3", None), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "No lab is running" in result.stderr
    unknown = cli(failure_lab, "events", "resend", "evt_doesnotexist")
    assert unknown.returncode != 0 and "Stripe has no event 'evt_doesnotexist'" in unknown.stderr
    no_order = cli(failure_lab, "trigger", "payment_intent.succeeded", "--order", "order_nope")
    assert no_order.returncode != 0 and "The lab has no order 'order_nope'" in no_order.stderr


def test_forged_deliveries_are_refused_and_the_honest_one_then_pays(fresh_lab):
    """An order paid at Stripe whose webhook was lost: the forged deliveries the CLI can make
    (another secret, a stale or future timestamp, a changed amount) must not pay it; the same
    event, honestly signed, does. So each was refused for its forgery, not by accident."""
    order = fresh_lab.order("prod_enamel_mug", 3, "cus_cli_forged")["order"]
    drop_webhooks(fresh_lab)
    fresh_lab.gateway().pay_with_test_card(order["payment_intent"], "success")

    for forgery in (["--secret", new_webhook_secret()], ["--secret", "whsec_"],
                    ["--timestamp-offset", "-301"], ["--timestamp-offset", "-86400"],
                    ["--timestamp-offset", "330"], ["--timestamp-offset", "600"]):
        before = fresh_lab.snapshot()
        result = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"],
                     *forgery)
        assert result.returncode == 1, (forgery, result.stdout, result.stderr)
        assert "-> 400 " in result.stdout and '"param": "Stripe-Signature"' in result.stdout
        if forgery[0] == "--secret":
            assert forgery[1] not in result.stdout  # the forger's secret is not echoed either
        assert fresh_lab.snapshot() == before, forgery

    before = fresh_lab.snapshot()
    tampered = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"],
                   "--amount", "1")
    assert tampered.returncode == 0 and '"outcome": "amount_mismatch"' in tampered.stdout
    after = fresh_lab.snapshot()
    assert (after["orders"], after["inventory"]) == (before["orders"], before["inventory"])

    honest = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"])
    assert honest.returncode == 0 and '"outcome": "fulfilled"' in honest.stdout
    assert fresh_lab.order_status(order["id"])["status"] == "paid"
    assert len(fresh_lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1


# --- (d) abandoned checkout: POST /api/orders/{id}/cancel ---------------------------------------

def cancel(lab: RunningLab, order_id: str) -> requests.Response:
    return lab.post(f"/api/orders/{order_id}/cancel")


@pytest.mark.parametrize("before_cancel", ["nothing", "declined", "3ds-pending"])
def test_abandoned_checkout_cancels_the_order_and_its_payment_intent(failure_lab, before_cancel):
    lab = failure_lab
    order = lab.order("prod_enamel_mug", 2, f"cus_cancel_{before_cancel}")["order"]
    pi = order["payment_intent"]
    if before_cancel == "declined":
        lab.gateway().pay_with_test_card(pi, "declined")
        lab.wait_for_status(order["id"], "attempted")
    elif before_cancel == "3ds-pending":
        assert lab.gateway().pay_with_test_card(pi, "3ds")["status"] == "requires_action"

    r = cancel(lab, order["id"])
    assert r.status_code == 200, r.text
    canceled = r.json()["order"]
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "abandoned")
    assert canceled["amount_paid"] == 0
    assert lab.gateway().retrieve_payment_intent(pi)["status"] == "canceled"

    # Idempotent: again, the same answer and nothing changes.
    before = lab.snapshot()
    again = cancel(lab, order["id"])
    assert again.status_code == 200 and again.json()["order"] == canceled
    assert lab.snapshot() == before

    # The customer comes back and tries to pay: Stripe refuses; the order stays canceled.
    with pytest.raises(stripe.InvalidRequestError):
        lab.gateway().pay_with_test_card(pi, "success")
    # Late or replayed events about its PaymentIntent do not resurrect it.
    intent = lab.gateway().retrieve_payment_intent(pi)
    for event_type in ("payment_intent.payment_failed", "payment_intent.succeeded"):
        r = lab.post_event(payment_intent_event(intent, event_type))
        assert r.status_code == 200 and r.json()["outcome"] == "no_change", r.text
    assert lab.order_status(order["id"]) == canceled
    assert lab.get(f"/api/orders/{order['id']}").json()["order"] == canceled


def test_canceling_a_paid_order_is_refused_and_changes_nothing(failure_lab):
    lab = failure_lab
    order = lab.order("prod_drip_bags", 2, "cus_cancel_paid")["order"]
    lab.gateway().pay_with_test_card(order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    before = lab.snapshot()
    r = cancel(lab, order["id"])
    assert r.status_code == 409
    error = assert_error_shape(r)
    assert error["code"] == "order_already_paid" and "refund" in error["message"]
    assert lab.snapshot() == before
    assert lab.gateway().retrieve_payment_intent(order["payment_intent"])["status"] == "succeeded"


def test_canceling_an_unknown_order_is_a_404(failure_lab):
    r = cancel(failure_lab, "order_doesnotexist00")
    assert r.status_code == 404
    assert assert_error_shape(r)["param"] == "id"
    assert failure_lab.get("/api/orders/x/cancel").status_code == 405


def test_cancel_races_with_payment(fresh_lab):
    """Races between a cancel and the customer's payment, with the success webhook lost so the
    server only knows what it asks Stripe:
    - the customer paid just before the cancel: the cancel is refused (409) and the order is
      settled as paid, once;
    - a cancel that reached Stripe but not the database (a crash between the two): the cancel
      endpoint and reconcile both finish it;
    - an order canceled in the database only, whose PaymentIntent then succeeded: the money was
      taken, so the order is marked paid and fulfilled, with an error in the log for a person."""
    lab = fresh_lab
    drop_webhooks(lab)
    gateway = lab.gateway()

    paid_first = lab.order("prod_pour_over_kit", 1, "cus_race")["order"]
    gateway.pay_with_test_card(paid_first["payment_intent"], "success")
    r = cancel(lab, paid_first["id"])
    assert r.status_code == 409 and assert_error_shape(r)["code"] == "order_already_paid"
    settled = lab.order_status(paid_first["id"])
    assert (settled["status"], settled["amount_paid"], settled["attempts"]) == ("paid", 1340, 1)
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", paid_first["id"])) == 1

    half_done = lab.order("prod_enamel_mug", 1, "cus_race")["order"]
    gateway.cancel_payment_intent(half_done["payment_intent"])  # Stripe canceled, DB not
    r = cancel(lab, half_done["id"])
    assert r.status_code == 200 and r.json()["order"]["status"] == "canceled"
    reconciled = lab.order("prod_enamel_mug", 1, "cus_race")["order"]
    gateway.cancel_payment_intent(reconciled["payment_intent"])
    result = run_cli(lab, "reconcile")
    assert "1 canceled: their PaymentIntent was canceled at Stripe" in result.stdout
    assert lab.order_status(reconciled["id"])["cancellation_reason"] == "payment_intent_canceled"

    late = lab.order("prod_drip_bags", 3, "cus_race")["order"]
    db = sqlite3.connect(lab.db_path)
    with db:  # canceled here only (say, by a clean-up job), while the customer pays at Stripe
        db.execute("UPDATE orders SET status = 'canceled', cancellation_reason = 'abandoned' "
                   "WHERE id = ?", (late["id"],))
    db.close()
    intent = gateway.pay_with_test_card(late["payment_intent"], "success")
    r = lab.post_event(payment_intent_event(intent))
    assert r.status_code == 200 and r.json()["outcome"] == "fulfilled_after_cancel"
    status = lab.order_status(late["id"])
    assert (status["status"], status["amount_paid"]) == ("paid", 1500)
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", late["id"])) == 1
    again = lab.post_event(payment_intent_event(intent))
    assert again.json()["outcome"] == "already_paid"
    wait_for(lambda: "was canceled (abandoned) but Stripe says" in lab.log(), timeout=5)


def test_deliver_helpers_sign_like_stripe(failure_lab):
    """webhook_delivery (used by the CLI and notebook 07) signs exactly as Stripe does."""
    payload = b'{"id": "evt_x"}'
    header = sign_payload(payload, "whsec_test", 1_700_000_000)
    assert header == ("t=1700000000,v1="
                      + hmac.new(b"whsec_test", b"1700000000." + payload, "sha256").hexdigest())
    event = {"id": "evt_helper_" + secrets.token_hex(6), "object": "event",
             "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    delivery = deliver_event(failure_lab.url, event, failure_lab.webhook_secret)
    assert (delivery.status, delivery.outcome) == (200, "ignored_type")
    refused = deliver(failure_lab.url, payload, None)
    assert (refused.status, refused.accepted) == (400, False)
    assert refused.outcome.startswith("rejected: Missing Stripe-Signature")
