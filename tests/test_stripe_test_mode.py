"""Against real Stripe test mode: runs only with test keys in the environment
(STRIPE_SECRET_KEY=sk_test_..., STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET) and network
access to api.stripe.com. Never faked: without keys these tests are skipped."""
import os

import pytest

from tutorial_server.config import load_settings
from tutorial_server.lab.process import gateway_for
from tutorial_server.notebook.customer import pay_with_test_card

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
