"""Step 3: the server's only door to Stripe (the payments gateway).

Teaching code calls these functions the same way in both modes. Everything that differs
between real Stripe (test mode) and the offline stand-in (localstripe) is handled here and
listed in OFFLINE_DIFFERENCES, which notebook 00 shows as a table.
"""
from __future__ import annotations

from typing import Any

import stripe

from .config import Settings

# Pinned so that what the lab teaches matches one documented API version, whatever
# version the account's dashboard defaults to. It is the version stripe-python 16.1.0 targets.
API_VERSION = "2026-10-28.endive"

OFFLINE_DIFFERENCES: list[dict[str, str]] = [
    {"topic": "Idempotency-Key",
     "real": "Same key + same parameters returns the first result for 24 h.",
     "offline": "Ignored: the same key twice creates two PaymentIntents.",
     "lab": "The order store links one PaymentIntent per order and never creates a second."},
    {"topic": "amount_received",
     "real": "Present on every PaymentIntent.",
     "offline": "Missing.",
     "lab": "Gateway fills it in: the amount once succeeded, else 0."},
    {"topic": "latest_charge",
     "real": "A Charge id (ch_...), expandable.",
     "offline": "The whole Charge object embedded.",
     "lab": "Gateway reduces it to the id."},
    {"topic": "Webhook events",
     "real": "Many types (payment_intent.created, charge.succeeded, ...), retried for 3 days.",
     "offline": "Only payment_intent.succeeded and payment_intent.payment_failed, "
                "one attempt, about 1 s after the call.",
     "lab": "`python -m tutorial_server reconcile` settles orders whose webhook was lost."},
    {"topic": "Event api_version",
     "real": "Your account's or endpoint's API version.",
     "offline": "Always 2017-08-15.",
     "lab": "The server reads only fields both versions share, and re-reads the PaymentIntent."},
    {"topic": "Webhook endpoints",
     "real": "Created in the Dashboard or by `stripe listen`, each with its own whsec_ secret.",
     "offline": "Registered through a private /_config route; kept in memory only.",
     "lab": "The lab registers its /webhook with the lab's secret at every start."},
    {"topic": "Test cards (server side)",
     "real": "pm_card_visa, pm_card_visa_chargeDeclined, pm_card_authenticationRequired, ...",
     "offline": "pm_card_visa works; declines and 3-D Secure need raw test card numbers.",
     "lab": "Gateway maps each test scenario to what the backend accepts."},
    {"topic": "Retry after a decline",
     "real": "The same PaymentIntent takes another payment method and confirm.",
     "offline": "A PaymentIntent whose charge was declined cannot be confirmed again "
                "(a failed 3-D Secure one can).",
     "lab": "Lessons retry on a fresh order after a decline in offline mode."},
    {"topic": "3-D Secure events",
     "real": "payment_intent.requires_action, and payment_failed when authentication fails.",
     "offline": "No event for either.",
     "lab": "`reconcile` (or the checkout page's status check) marks the order attempted."},
    {"topic": "Payment method types",
     "real": "Automatic payment methods on by default; server-side confirm needs return_url "
             "or allow_redirects=never.",
     "offline": "Cards only; rejects automatic_payment_methods and return_url.",
     "lab": "Create sends only amount, currency and metadata, which both accept."},
    {"topic": "Validation and errors",
     "real": "Strict: unknown currency or parameter is an error with a precise message and param.",
     "offline": "Loose (currency 'xxx' accepted); messages are generic, no param.",
     "lab": "The server validates its own input before calling Stripe."},
    {"topic": "Persistence",
     "real": "Test-mode data stays until you delete it in the Dashboard.",
     "offline": "Started empty by each lab; payments from an earlier run are gone.",
     "lab": "At start the lab cancels unpaid orders whose PaymentIntent vanished, and says so."},
]


def payment_intent_idempotency_key(order_id: str) -> str:
    """Derived from the order, so a retried create can never charge the order twice."""
    return f"{order_id}-create-payment-intent"


class StripeGateway:
    def __init__(self, settings: Settings, backend_url: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        self.offline = settings.offline
        base_addresses: dict[str, str] = {}
        if self.offline:
            if not backend_url:
                raise ValueError("offline mode needs the offline backend's URL")
            base_addresses["api"] = backend_url
        self.backend_url = backend_url
        self.client = stripe.StripeClient(
            settings.secret_key,
            stripe_version=API_VERSION,
            base_addresses=base_addresses,  # type: ignore[arg-type]
            # The stand-in answers at once or not at all; retries only slow failures down.
            max_network_retries=0 if self.offline else 2,
            http_client=http_client,
        )

    def create_payment_intent(self, order: Any) -> dict:
        """Create the PaymentIntent that will collect this order's amount."""
        intent = self.client.v1.payment_intents.create(
            params={
                "amount": order["amount"],
                "currency": order["currency"],
                "metadata": {"order_id": order["id"], "product": order["product_id"],
                             "quantity": str(order["quantity"]),
                             "customer": order["customer"]},
            },
            options={"idempotency_key": payment_intent_idempotency_key(order["id"])},
        )
        return self.normalize(intent.to_dict())

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict:
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        return self.normalize(intent.to_dict())

    @staticmethod
    def normalize(intent: dict) -> dict:
        """Give the offline stand-in's PaymentIntent the fields real Stripe returns."""
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            intent["latest_charge"] = charge.get("id")
        if "amount_received" not in intent:
            intent["amount_received"] = intent["amount"] if intent.get("status") == "succeeded" else 0
        intent.pop("charges", None)  # an old API version's field; real Stripe dropped it
        return intent

    # --- step 5, played from the server side (notebooks and tests play the customer) ----------

    def pay_with_test_card(self, payment_intent_id: str, scenario: str = "success") -> dict:
        """Confirm the PaymentIntent with a test card, as the customer's browser would.

        scenario: "success", "declined" or "3ds" (3-D Secure required). A declined card does
        not raise: the PaymentIntent comes back with status requires_payment_method and
        last_payment_error set, exactly what the customer's page would show.
        """
        payment_method = self.test_payment_method(scenario)
        try:
            if self.offline:
                # The stand-in cannot take payment_method in confirm itself: set it first.
                self.client.v1.payment_intents.update(
                    payment_intent_id, params={"payment_method": payment_method})
                self.client.v1.payment_intents.confirm(payment_intent_id)
            else:
                self.client.v1.payment_intents.confirm(
                    payment_intent_id,
                    params={"payment_method": payment_method,
                            "return_url": "http://localhost:4242/checkout/complete"})
        except stripe.CardError:
            pass  # the decline is recorded on the PaymentIntent, read below
        return self.retrieve_payment_intent(payment_intent_id)

    def test_payment_method(self, scenario: str) -> str:
        if scenario not in TEST_CARDS:
            raise ValueError(f"scenario must be one of {sorted(TEST_CARDS)}")
        card = TEST_CARDS[scenario]
        if not self.offline:
            return card["real"]
        if card["offline_number"] is None:
            return card["real"]
        method = self.client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": card["offline_number"], "exp_month": 12, "exp_year": 2034,
                     "cvc": "123"},
        })
        return method.id

    def complete_3ds_offline(self, payment_intent_id: str, approve: bool) -> dict:
        """Offline only: the customer approves or fails the 3-D Secure challenge."""
        if not self.offline:
            raise RuntimeError("In test mode the customer completes 3-D Secure in the browser.")
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        self.client.raw_request(
            "post", f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            client_secret=intent.client_secret, success="true" if approve else "false")
        return self.retrieve_payment_intent(payment_intent_id)


# Test cards per scenario: the PaymentMethod real test mode accepts, and the raw test card
# number the offline stand-in needs instead (None: the pm_card_ id works offline too).
TEST_CARDS: dict[str, dict[str, Any]] = {
    "success": {"card": "4242 4242 4242 4242", "real": "pm_card_visa", "offline_number": None},
    "declined": {"card": "4000 0000 0000 0341", "real": "pm_card_chargeCustomerFail",
                 "offline_number": "4000000000000341"},
    "3ds": {"card": "4000 0025 0000 3155", "real": "pm_card_authenticationRequired",
            "offline_number": "4000002500003155"},
}
