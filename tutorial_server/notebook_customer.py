"""Playing the customer (and reaching Stripe) from a notebook: step 5's card payment and the
3-D Secure challenge, through the Stripe backend the lab uses. Mixed into notebook_client.LabClient.
"""
from __future__ import annotations

import stripe
from dotenv import load_dotenv

from .config import PROJECT_ROOT, load_settings
from .gateway import StripeGateway


class CustomerSide:
    """The customer's side and Stripe's side of a lab (needs `mode`, `backend_url` and
    `public_url` from the class it is mixed into)."""

    mode: str
    backend_url: str | None

    def public_url(self, path: str = "/") -> str:
        raise NotImplementedError

    @property
    def gateway(self) -> StripeGateway:
        """The Stripe backend this lab uses, for playing the customer in step 5."""
        if self.mode == "offline":
            gateway = StripeGateway(load_settings({}), self.backend_url)
        else:
            load_dotenv(PROJECT_ROOT / ".env")  # test-mode keys, as the lab itself reads them
            gateway = StripeGateway(load_settings())
        gateway.checkout_url = lambda order_id: self.public_url(f"/checkout/{order_id}")
        return gateway

    def pay(self, order: dict, scenario: str = "success") -> dict:
        """Step 5 as the customer: pay the order's PaymentIntent with a test card.

        When Stripe refuses (a paid, canceled or, offline, a declined PaymentIntent), raises
        gateway.PaymentRefused, whose message says why and what to do.
        """
        import stripe

        from .gateway import PaymentRefused, refusal_message
        gateway = self.gateway
        try:
            return gateway.pay_with_test_card(order["payment_intent"], scenario)
        except stripe.InvalidRequestError as error:
            try:
                intent = gateway.retrieve_payment_intent(order["payment_intent"])
            except stripe.StripeError:
                raise error from None
            raise PaymentRefused(refusal_message(intent, gateway.offline), None,
                                 http_status=error.http_status) from None

    def complete_3ds(self, intent: dict, approve: bool) -> dict:
        """The customer completes (approve=True) or fails the 3-D Secure challenge of a
        PaymentIntent in requires_action; returns the PaymentIntent as Stripe has it then.

        Offline, the stand-in's private route plays the customer's click. Real Stripe has no
        API for it: in test mode this prints where the customer completes it (in the
        browser) and returns the PaymentIntent unchanged, so the notebook can go on.
        """
        gateway = self.gateway
        if self.mode == "offline":
            import stripe

            from .gateway import PaymentRefused
            try:
                return gateway.complete_3ds_offline(intent["id"], approve=approve)
            except stripe.InvalidRequestError as error:
                now = gateway.retrieve_payment_intent(intent["id"])["status"]
                raise PaymentRefused(f"this PaymentIntent is not waiting for a 3-D Secure "
                                     f"challenge (it is {now}): pay it with the '3ds' test "
                                     "card first.", None, http_status=error.http_status) from None
        order_id = (intent.get("metadata") or {}).get("order_id")
        action = (intent.get("next_action") or {}).get("type", "none")
        where = (f"open {self.public_url(f'/checkout/{order_id}')} and pay there"
                 if order_id else "let Stripe.js handle the PaymentIntent's next_action")
        print(f"Test mode: the customer completes 3-D Secure in the browser (next_action: "
              f"{action}): {where}, and press {'Complete' if approve else 'Fail'} on Stripe's "
              "test page. The notebook goes on without it.")
        return gateway.retrieve_payment_intent(intent["id"])

    @property
    def stripe(self) -> stripe.StripeClient:
        """The Stripe SDK client the lab's gateway uses (offline: pointed at the stand-in)."""
        return self.gateway.client
