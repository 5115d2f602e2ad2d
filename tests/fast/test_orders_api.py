"""The HTTP contract row by row, against the app in this process (the fast tier).

Every error answers {"error": {"type", "message", "param"}} as JSON with a 4xx status, and a
rejected request leaves the database exactly as it was (a snapshot of every table is taken
right before and right after the one request).
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests

from tutorial_server.catalogue import PRODUCTS, get_product
from tutorial_server.notebook.customer import pay_with_test_card

ORDER_FIELDS = {"id", "object", "amount", "amount_paid", "amount_due", "currency", "receipt",
                "status", "attempts", "created_at", "product", "quantity", "customer",
                "payment_intent"}
# A secret key (sk_/rk_) or a webhook signing secret (whsec_) starting a token anywhere.
SECRET_LOOKING = re.compile(r"\b(?:sk|rk|whsec)_")


def new_key() -> str:
    """An Idempotency-Key unique to this run."""
    return f"test-{uuid.uuid4()}"


@contextmanager
def database_unchanged(fast_lab):
    before = fast_lab.snapshot()
    yield
    assert fast_lab.snapshot() == before, "a rejected request changed the database"


def assert_error(r, status: int, param: str | None, type: str = "invalid_request_error"):
    """The contract's error shape: 4xx, JSON, {"error": {"type", "message", "param"}}."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    error = r.json()["error"]
    assert {"type", "message", "param"} <= error.keys()
    assert error["type"] == type
    assert isinstance(error["message"], str) and error["message"].strip()
    assert error["param"] == param
    return error


def orders_of(fast_lab, customer: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(fast_lab.db_path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM orders WHERE customer = ?", (customer,)).fetchall()
    finally:
        db.close()


# --- GET /api/config, GET /api/products ----------------------------------------------------

def test_config_gives_the_browser_what_it_needs(fast_lab):
    r = fast_lab.get("/api/config")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    config = r.json()
    assert config["mode"] == "offline"
    assert re.fullmatch(r"pk_test_\w+", config["publishable_key"])
    assert config["backend_url"] == fast_lab.backend_url
    assert config["stripe_js_url"] == "/offline-stripe/js.stripe.com/v3/"  # through the server


def test_products_are_priced_in_integer_minor_units(fast_lab):
    r = fast_lab.get("/api/products")
    assert r.status_code == 200
    products = r.json()["data"]
    assert len(products) >= 4
    for p in products:
        assert {"id", "name", "description", "unit_amount", "currency"} <= p.keys()
        assert type(p["unit_amount"]) is int and p["unit_amount"] > 0
        assert p["currency"] == p["currency"].lower()
    assert {"inr", "usd", "jpy"} <= {p["currency"] for p in products}
    assert [(p["id"], p["unit_amount"], p["currency"]) for p in products] == [
        (p.id, p.unit_amount, p.currency) for p in PRODUCTS]


def test_no_response_carries_a_secret_key_or_webhook_secret(fast_lab, customer):
    created = fast_lab.order("prod_enamel_mug", 1, customer)
    order_id = created["order"]["id"]
    responses = [
        fast_lab.get("/api/config"),
        fast_lab.get("/api/products"),
        fast_lab.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 1,
                                      "customer": customer}),
        fast_lab.get(f"/api/orders/{order_id}"),
        fast_lab.get(f"/api/customers/{customer}/inventory"),
        fast_lab.post("/api/orders", json={"productId": "nope", "quantity": 1}),
        fast_lab.post("/api/orders", data="{", headers={"Content-Type": "application/json"}),
        fast_lab.get("/no/such/url"),
        fast_lab.post("/webhook", data=b"{}"),
    ]
    assert responses[2].status_code == 201
    for r in responses:
        texts = [r.text] + [f"{k}: {v}" for k, v in r.headers.items()]
        for text in texts:
            assert not SECRET_LOOKING.search(text), (r.url, text)
            assert fast_lab.webhook_secret not in text, r.url
            assert fast_lab.webhook_secret.removeprefix("whsec_") not in text, r.url


# --- POST /api/orders: success -------------------------------------------------------------

def test_create_order_returns_the_order_and_the_client_secret(fast_lab, customer):
    started = int(time.time())
    r = fast_lab.post("/api/orders", json={"productId": "prod_coffee_beans", "quantity": 2,
                                      "customer": customer})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert "Idempotent-Replayed" not in r.headers
    body = r.json()
    assert set(body) == {"order", "client_secret"}
    order = body["order"]
    assert ORDER_FIELDS <= order.keys()
    assert order["id"].startswith("order_") and order["object"] == "order"
    assert (order["product"], order["quantity"], order["customer"]) == (
        "prod_coffee_beans", 2, customer)
    assert (order["amount"], order["currency"]) == (2 * 134000, "inr")
    assert order["amount_paid"] == 0 and order["amount_due"] == order["amount"]
    assert order["status"] == "created" and order["attempts"] == 0
    assert isinstance(order["receipt"], str) and order["receipt"]
    assert started <= order["created_at"] <= time.time() + 1
    assert order["payment_intent"].startswith("pi_")
    assert body["client_secret"].startswith(order["payment_intent"] + "_secret_")
    assert [row["id"] for row in orders_of(fast_lab, customer)] == [order["id"]]


def test_json_with_a_charset_is_still_json(fast_lab, customer):
    body = json.dumps({"productId": "prod_enamel_mug", "quantity": 1, "customer": customer})
    r = fast_lab.post("/api/orders", data=body.encode(),
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("product_id, quantity", [
    ("prod_enamel_mug", 9),        # just below the discount: full price
    ("prod_enamel_mug", 10),       # 10% off from 10 items on
    ("80980928378932", 10),        # the article's request: 10 x ₹100
    ("prod_pour_over_kit", 37),
    ("prod_drip_bags", 11),        # zero-decimal yen
    ("prod_coffee_beans", 100),    # the largest order allowed
])
def test_server_prices_the_order_with_the_volume_discount(fast_lab, customer, product_id,
                                                          quantity):
    order = fast_lab.order(product_id, quantity, customer)["order"]
    product = get_product(product_id)
    subtotal = product.unit_amount * quantity
    expected = subtotal - subtotal // 10 if quantity >= 10 else subtotal
    for name in ("amount", "amount_paid", "amount_due", "quantity", "attempts", "created_at"):
        assert type(order[name]) is int, name
    assert order["amount"] == expected and order["currency"] == product.currency
    assert order["amount_due"] == expected
    # The PaymentIntent collects exactly what the server priced.
    intent = fast_lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert (intent["amount"], intent["currency"]) == (expected, product.currency)


# --- Idempotency-Key -------------------------------------------------------------------------

def test_same_idempotency_key_and_body_replays_the_same_order(fast_lab, customer):
    key = new_key()
    body = {"productId": "prod_pour_over_kit", "quantity": 3, "customer": customer}
    first = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    with database_unchanged(fast_lab):
        again = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    assert again.json()["client_secret"] == first.json()["client_secret"]
    assert len(orders_of(fast_lab, customer)) == 1


def test_concurrent_retries_with_one_idempotency_key_create_one_order(fast_lab, customer):
    key = new_key()
    body = {"productId": "prod_drip_bags", "quantity": 2, "customer": customer}
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(
            lambda _: fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key}),
            range(5)))
    assert [r.status_code for r in answers] == [201] * 5, [r.text for r in answers]
    assert len({r.json()["order"]["id"] for r in answers}) == 1
    assert len({r.json()["client_secret"] for r in answers}) == 1
    assert len(orders_of(fast_lab, customer)) == 1


def test_idempotency_key_reused_with_another_body_is_a_conflict(fast_lab, customer):
    key = new_key()
    body = {"productId": "prod_pour_over_kit", "quantity": 3, "customer": customer}
    first = fast_lab.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    with database_unchanged(fast_lab):
        r = fast_lab.post("/api/orders", json={**body, "quantity": 4},
                     headers={"Idempotency-Key": key})
    assert_error(r, 409, "Idempotency-Key", type="idempotency_error")
    assert len(orders_of(fast_lab, customer)) == 1


def test_idempotency_key_of_255_characters_is_accepted(fast_lab, customer):
    key = (new_key() + "x" * 255)[:255]
    r = fast_lab.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 1,
                                      "customer": customer}, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("key", [
    pytest.param("k" * 256, id="256-chars"),
    pytest.param("", id="empty"),
])
def test_bad_idempotency_key_is_rejected(fast_lab, customer, key):
    if key:
        key = (new_key() + key)[:256]
    with database_unchanged(fast_lab):
        r = fast_lab.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 1,
                                          "customer": customer},
                     headers={"Idempotency-Key": key})
    assert_error(r, 400, "Idempotency-Key")


# --- POST /api/orders: every error row -------------------------------------------------------

VALID = {"productId": "prod_enamel_mug", "quantity": 1}


def json_body(value) -> dict:
    return {"data": json.dumps(value), "headers": {"Content-Type": "application/json"}}


BAD_REQUESTS = [
    # (id, request kwargs, status, param)
    ("bad-json", {"data": '{"productId": "prod_enamel_mug",',
                  "headers": {"Content-Type": "application/json"}}, 400, None),
    ("empty-body", {"data": b"", "headers": {"Content-Type": "application/json"}}, 400, None),
    ("not-utf8", {"data": b'{"productId": "\xff\xfe"}',
                  "headers": {"Content-Type": "application/json"}}, 400, None),
    ("json-list", json_body([VALID]), 400, None),
    ("json-number", json_body(1), 400, None),
    ("json-string", json_body("prod_enamel_mug"), 400, None),
    ("json-null", json_body(None), 400, None),
    ("missing-productId", json_body({"quantity": 1}), 400, "productId"),
    ("null-productId", json_body({"productId": None, "quantity": 1}), 400, "productId"),
    ("missing-quantity", json_body({"productId": "prod_enamel_mug"}), 400, "quantity"),
    ("productId-number", json_body({"productId": 80980928378932, "quantity": 1}), 400,
     "productId"),
    ("productId-list", json_body({"productId": ["prod_enamel_mug"], "quantity": 1}), 400,
     "productId"),
    *[(f"quantity-{name}", json_body({**VALID, "quantity": q}), 400, "quantity")
      for name, q in [("0", 0), ("101", 101), ("-1", -1), ("1.5", 1.5), ("string-2", "2"),
                      ("true", True), ("2.0", 2.0), ("null", None), ("huge", 10**30)]],
    ("unknown-product", json_body({"productId": "prod_nope", "quantity": 1}), 404,
     "productId"),
    ("empty-productId", json_body({"productId": "", "quantity": 1}), 404, "productId"),
    ("bad-customer", json_body({**VALID, "customer": "not a customer id!"}), 400, "customer"),
    ("customer-number", json_body({**VALID, "customer": 7}), 400, "customer"),
    ("text-plain", {"data": json.dumps(VALID), "headers": {"Content-Type": "text/plain"}}, 415,
     None),
    ("form-encoded", {"data": VALID}, 415, None),
    ("no-content-type", {"data": json.dumps(VALID).encode()}, 415, None),
    ("one-megabyte", {"data": json.dumps({**VALID, "pad": "x" * 1024 * 1024}),
                      "headers": {"Content-Type": "application/json"}}, 413, None),
    *[(f"client-sent-{name}", json_body({**VALID, name: 1}), 400, name)
      for name in ("amount", "price", "unit_amount", "currency", "discount")],
    ("unknown-field", json_body({**VALID, "colour": "blue"}), 400, "colour"),
]


@pytest.mark.parametrize("kwargs, status, param",
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS])
def test_bad_order_request_is_a_json_4xx_and_changes_nothing(fast_lab, kwargs, status, param):
    with database_unchanged(fast_lab):
        r = fast_lab.post("/api/orders", **kwargs)
    assert_error(r, status, param)


def test_price_field_error_says_the_server_does_the_pricing(fast_lab, customer):
    with database_unchanged(fast_lab):
        r = fast_lab.post("/api/orders", json={**VALID, "customer": customer, "amount": 1})
    error = assert_error(r, 400, "amount")
    assert "amount" in error["message"] and "price" in error["message"].lower()


# --- GET /api/orders/{id}, GET /api/customers/{id}/inventory ----------------------------------

def test_get_order_returns_the_order(fast_lab, customer):
    created = fast_lab.order("prod_pour_over_kit", 2, customer)["order"]
    r = fast_lab.get(f"/api/orders/{created['id']}")
    assert r.status_code == 200
    assert r.json() == {"order": created}


@pytest.mark.parametrize("order_id", ["order_doesnotexist00", "x" * 300, "%27%3B--"])
def test_unknown_order_is_a_json_404(fast_lab, order_id):
    with database_unchanged(fast_lab):
        r = fast_lab.get(f"/api/orders/{order_id}")
    assert_error(r, 404, "id")


def test_inventory_starts_empty_and_lists_what_was_paid_for(fast_lab, customer):
    r = fast_lab.get(f"/api/customers/{customer}/inventory")
    assert r.status_code == 200
    assert r.json()["data"] == []

    order = fast_lab.order("prod_enamel_mug", 2, customer)["order"]
    fast_lab.order("prod_pour_over_kit", 1, customer)  # never paid: never in the inventory
    pay_with_test_card(fast_lab.gateway(), order["payment_intent"], "success")
    # No webhook reaches the in-process app: the sync asks Stripe, as reconcile would.
    assert fast_lab.post(f"/api/orders/{order['id']}/sync").json()["order"]["status"] == "paid"
    items = fast_lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [(i["product"], i["quantity"], i["order"]) for i in items] == [
        ("prod_enamel_mug", 2, order["id"])]


def test_inventory_of_a_malformed_customer_id_is_rejected(fast_lab):
    with database_unchanged(fast_lab):
        r = fast_lab.get("/api/customers/not%20valid!/inventory")
    assert_error(r, 400, "customer")


# --- Unknown URLs and wrong methods ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/nope", "/api/orders/", "/nope", "/api/products/extra"])
def test_unknown_url_is_a_json_404(fast_lab, path):
    with database_unchanged(fast_lab):
        r = fast_lab.get(path)
    assert_error(r, 404, None)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/orders"), ("DELETE", "/api/orders"), ("PUT", "/api/products"),
    ("POST", "/api/config"), ("GET", "/webhook"), ("DELETE", "/api/orders/order_x"),
])
def test_wrong_method_is_a_json_405(fast_lab, method, path):
    with database_unchanged(fast_lab):
        r = fast_lab.request(method, path)
    assert_error(r, 405, None)
    assert "Allow" in r.headers
