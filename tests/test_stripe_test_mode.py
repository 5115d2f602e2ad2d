"""Against real Stripe test mode: runs only with test keys in the environment
(STRIPE_SECRET_KEY=sk_test_..., STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET) and network
access to api.stripe.com. Never faked: without keys these tests are skipped."""
import os
import secrets

import pytest
import stripe

from tutorial_server import catalogue
from tutorial_server.config import load_settings
from tutorial_server.lab.process import gateway_for
from tutorial_server.notebook.customer import pay_with_test_card
from tutorial_server.pricing import price_order

pytestmark = [
    pytest.mark.stripe_test_mode,
    pytest.mark.skipif(not os.environ.get("STRIPE_SECRET_KEY", "").startswith(("sk_test_", "rk_test_")),
                       reason="needs real Stripe test-mode keys (STRIPE_SECRET_KEY=sk_test_...)"),
]


def test_payment_intent_lifecycle_on_real_stripe():
    gateway = gateway_for({"mode": "test"}, load_settings())
    order = {"id": "order_testmode_check", "amount": 1340, "currency": "usd",
             "product_id": "prod_pour_over_kit", "quantity": 1, "customer": "guest"}
    intent = gateway.create_payment_intent(order)
    assert intent["status"] == "requires_payment_method"
    assert intent["metadata"]["order_id"] == order["id"]
    paid = pay_with_test_card(gateway, intent["id"], "success")
    assert paid["status"] == "succeeded" and paid["amount_received"] == 1340
    declined = pay_with_test_card(gateway, gateway.create_payment_intent(
        {**order, "id": "order_testmode_declined"})["id"], "declined")
    assert declined["last_payment_error"]["code"] == "card_declined"


def _session_order(quantity: int) -> dict:
    """An order as the database row the gateway reads, priced by the server's own pricing."""
    product = catalogue.get_product("prod_pour_over_kit")
    priced = price_order(product, quantity)
    return {"id": "order_testmode_cs_" + secrets.token_hex(6), "amount": priced.amount,
            "currency": priced.currency, "product_id": product.id, "quantity": quantity,
            "discount": priced.discount, "customer": "guest"}


@pytest.mark.parametrize("quantity", [2, 10], ids=["no discount", "volume discount"])
def test_checkout_session_lifecycle_on_real_stripe(quantity):
    """The other way (checkout_sessions.py): the gateway's own calls against real Stripe. The
    session is priced by the server, linked to the order, made once per order, its line
    items add up to the order, and an expired session takes no payment any more."""
    gateway = gateway_for({"mode": "test"}, load_settings())
    order = _session_order(quantity)
    product = catalogue.get_product(order["product_id"])
    urls = {"success_url": "https://example.com/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://example.com/shop"}
    session = gateway.create_checkout_session(order, product, **urls)
    assert session["id"].startswith("cs_test_")
    assert session["url"].startswith("https://checkout.stripe.com/")
    assert (session["mode"], session["status"], session["payment_status"]) == (
        "payment", "open", "unpaid")
    assert (session["amount_total"], session["currency"]) == (order["amount"], "usd")
    assert session["metadata"]["order_id"] == session["client_reference_id"] == order["id"]
    assert session["success_url"].endswith("?session_id={CHECKOUT_SESSION_ID}")
    # The idempotency key derived from the order: a retry gets the same session, not two.
    assert gateway.create_checkout_session(order, product, **urls)["id"] == session["id"]
    assert gateway.retrieve_checkout_session(session["id"])["id"] == session["id"]

    items = gateway.client.v1.checkout.sessions.line_items.list(session["id"]).to_dict()["data"]
    assert sum(item["amount_total"] for item in items) == order["amount"]
    [item] = items
    if order["discount"]:  # one line at the order's total: Checkout shows no discount of ours
        assert (item["quantity"], item["price"]["unit_amount"]) == (1, order["amount"])
        assert "volume discount" in item["description"]
    else:
        assert (item["quantity"], item["price"]["unit_amount"]) == (quantity, product.unit_amount)
        assert item["description"] == product.name

    expired = gateway.expire_checkout_session(session["id"])
    assert (expired["status"], expired["payment_status"], expired["url"]) == (
        "expired", "unpaid", None)
    with pytest.raises(stripe.InvalidRequestError):
        gateway.expire_checkout_session(session["id"])  # only an open session can expire
    assert gateway.retrieve_checkout_session(session["id"])["status"] == "expired"
