"""The merchant server by itself (tutorial_server.create_app, no lab around it): the server a
reader could copy into a shop of their own. It has the product's routes only, and still takes
an order, pays it through the offline Stripe and fulfils it from a signed webhook.
"""
from __future__ import annotations

import json
from dataclasses import replace

from tutorial_server import create_app
from tutorial_server.config import load_settings
from tutorial_server.lab.app import create_lab_app
from tutorial_server.lab.process import gateway_for
from tutorial_server.notebook.customer import pay_with_test_card

from ..signing import sign

LAB_ONLY = ("/dashboard", "/api/dashboard", "/dashboard/reset", "/shop/",
            "/offline-stripe/js.stripe.com/v3/", "/api/orders/<order_id>/trace")


def routes(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_the_server_alone_has_the_products_routes_and_none_of_the_labs(settings, stand_in):
    server = routes(create_app(settings, backend_url=stand_in))
    lab = routes(create_lab_app(settings, backend_url=stand_in))
    assert {"/api/orders", "/api/orders/<order_id>", "/webhook", "/checkout/<order_id>",
            "/api/orders/<order_id>/refund", "/checkout/<order_id>/confirm"} <= server
    assert not server & set(LAB_ONLY)
    assert set(LAB_ONLY) <= lab and server <= lab


def test_the_server_alone_takes_pays_and_fulfils_an_order(settings, stand_in, customer):
    app = create_app(settings, backend_url=stand_in)
    client = app.test_client()
    answer = client.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 2,
                                              "customer": customer})
    assert answer.status_code == 201, answer.text
    order = answer.get_json()["order"]
    intent = pay_with_test_card(gateway_for({"mode": "offline", "backend_url": stand_in,
                                             "backend_key": settings.secret_key}),
                                order["payment_intent"], "success")
    assert intent["status"] == "succeeded"
    event = {"id": "evt_alone_" + order["id"], "object": "event",
             "type": "payment_intent.succeeded", "data": {"object": intent}}
    payload = json.dumps(event).encode()
    delivered = client.post("/webhook", data=payload, headers={
        "Stripe-Signature": sign(payload, settings.webhook_secret),
        "Content-Type": "application/json"})
    assert delivered.get_json()["outcome"] == "fulfilled"
    paid = client.get(f"/api/orders/{order['id']}").get_json()["order"]
    assert paid["status"] == "paid" and paid["amount_paid"] == 2400
    inventory = client.get(f"/api/customers/{customer}/inventory").get_json()["data"]
    assert [(i["product"], i["quantity"]) for i in inventory] == [("prod_enamel_mug", 2)]


def test_offline_the_server_alone_loads_stripe_js_from_the_stand_in(settings, stand_in):
    """Without the lab's relay the checkout page takes the mock Stripe.js from the stand-in
    itself, and its Content-Security-Policy allows that origin (and only it)."""
    client = create_app(settings, backend_url=stand_in).test_client()
    order = client.post("/api/orders", json={"productId": "prod_enamel_mug",
                                             "quantity": 1}).get_json()["order"]
    page = client.get(f"/checkout/{order['id']}")
    assert page.status_code == 200
    assert f'{stand_in}/js.stripe.com/v3/' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {stand_in}" in policy
    relayed = create_lab_app(replace(settings), backend_url=stand_in).test_client()
    order = relayed.post("/api/orders", json={"productId": "prod_enamel_mug",
                                              "quantity": 1}).get_json()["order"]
    lab_page = relayed.get(f"/checkout/{order['id']}")
    assert "/offline-stripe/js.stripe.com/v3/" in lab_page.text and stand_in not in lab_page.text
    assert "script-src 'self';" in lab_page.headers["Content-Security-Policy"]


def test_in_test_mode_the_server_alone_loads_real_stripe_js(tmp_path):
    settings = load_settings({"STRIPE_SECRET_KEY": "sk_test_" + "x" * 24,
                              "STRIPE_PUBLISHABLE_KEY": "pk_test_" + "y" * 24,
                              "STRIPE_WEBHOOK_SECRET": "whsec_" + "z" * 24,
                              "TUTORIAL_DB": str(tmp_path / "alone.sqlite3")})
    config = create_app(settings).test_client().get("/api/config").get_json()
    assert config["stripe_js_url"] == "https://js.stripe.com/endive/stripe.js"
    assert "backend_url" not in config
