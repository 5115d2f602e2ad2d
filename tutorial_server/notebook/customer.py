"""Playing the customer (step 5 as the customer's browser would): Stripe's test cards and the
3-D Secure challenge, through the Stripe backend the lab uses. The merchant server never calls
these; the notebooks (through notebook/client.py's LabClient) and the tests do.

Offline, the stand-in plays the 3-D Secure challenge through a private route; in test mode the
customer completes it in the browser, and this waits.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

import stripe
from dotenv import load_dotenv

from ..checkout import TEST_CARDS
from ..config import PROJECT_ROOT, load_settings
from ..gateway import StripeGateway
from ..lab.offline_stripe import fail_refund, register_webhook
from ..lab.process import gateway_for
from .customer_gateway import CustomerGateway
from .stripes_page import pay_on_stripes_page

# How long complete_3ds waits, in test mode, for the customer to complete the challenge in
# the browser (seconds; TUTORIAL_3DS_WAIT changes it, 0 moves on at once).
THREE_DS_WAIT = 60.0


class PaymentRefused(stripe.InvalidRequestError):
    """Stripe refused to take a payment on a PaymentIntent in its current state, with a
    message that says what happened and what to do (the offline stand-in says "Bad request")."""


def refusal_message(intent: dict, offline: bool) -> str:
    """One line for a learner: why a PaymentIntent in this state cannot take a payment now,
    and what to do instead."""
    status = intent.get("status")
    if status == "succeeded":
        return ("this PaymentIntent has already succeeded: the order is paid, so there is "
                "nothing left to pay; create a new order to pay again.")
    if status == "canceled":
        return ("this PaymentIntent was canceled (so was its order): it can't take a payment "
                "any more; create a new order.")
    if status == "processing":
        return "this PaymentIntent is already processing a payment: wait for its outcome."
    if status == "requires_action":
        return ("this PaymentIntent is waiting for its 3-D Secure challenge: complete or fail "
                "the challenge first" + (" (lab.complete_3ds)" if offline else " in the browser")
                + ", or create a new order.")
    if offline and intent.get("latest_charge"):
        return ("a declined PaymentIntent can't take another card offline (real Stripe lets "
                "it): run the cell again for a new order, or pay on the checkout page, which "
                "gives the order a fresh PaymentIntent.")
    return f"Stripe refused to confirm this PaymentIntent in status {status}."


def test_payment_method(gateway: StripeGateway, scenario: str) -> str:
    """The PaymentMethod for a scenario's test card: real test mode's pm_card_ id, or one the
    offline stand-in makes from the raw card number (it does not know every pm_card_ id)."""
    if scenario not in TEST_CARDS:
        raise ValueError(f"scenario must be one of {sorted(TEST_CARDS)}")
    card = TEST_CARDS[scenario]
    if not gateway.offline or card["offline_number"] is None:
        return card["real"]
    if isinstance(gateway, CustomerGateway):  # a lab elsewhere: as the customer's browser would
        return gateway.create_card_payment_method(card["offline_number"])
    method = gateway.client.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": card["offline_number"], "exp_month": 12, "exp_year": 2034,
                 "cvc": "123"},
    })
    return method.id


def pay_with_test_card(gateway: StripeGateway, payment_intent_id: str,
                       scenario: str = "success") -> dict:
    """Confirm the PaymentIntent with a test card, as the customer's browser would.

    scenario: "success", "declined" or "3ds" (3-D Secure required). A declined card does
    not raise: the PaymentIntent comes back with status requires_payment_method and
    last_payment_error set, exactly what the customer's page would show.
    """
    return gateway.confirm_payment_intent(payment_intent_id, test_payment_method(gateway, scenario),
                                          return_url="http://localhost:4242/checkout/complete")


def complete_3ds(gateway: StripeGateway, payment_intent_id: str, approve: bool,
                 wait: float | None = None, checkout_url: Callable[[str], str] | None = None,
                 ) -> dict:
    """The customer approves or fails the 3-D Secure challenge.

    Offline, the stand-in's private route plays the customer (course/differences.py lists it
    in OFFLINE_ONLY_PARAMS). Real Stripe has no such call: in test mode this prints where the
    customer completes the challenge in the browser (`checkout_url(order_id)`: the lab's
    checkout page), waits up to `wait` seconds for it, and returns the PaymentIntent as it then
    is (still requires_action if nobody completed it: the notebook moves on).
    """
    if isinstance(gateway, CustomerGateway):
        return gateway.authenticate(payment_intent_id, approve)
    if gateway.offline:
        intent = gateway.client.v1.payment_intents.retrieve(payment_intent_id)
        gateway.client.raw_request(
            "post", f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            client_secret=intent.client_secret, success="true" if approve else "false")
        return gateway.retrieve_payment_intent(payment_intent_id)
    if wait is None:
        wait = float(os.environ.get("TUTORIAL_3DS_WAIT") or THREE_DS_WAIT)
    return _wait_for_3ds_in_browser(gateway, payment_intent_id, approve, wait, checkout_url)


def _wait_for_3ds_in_browser(gateway: StripeGateway, payment_intent_id: str, approve: bool,
                             wait: float, checkout_url: Callable[[str], str] | None) -> dict:
    intent = gateway.retrieve_payment_intent(payment_intent_id)
    if intent.get("status") != "requires_action":
        print(f"3-D Secure: nothing to complete, {payment_intent_id} is {intent.get('status')}.")
        return intent
    # With a return_url (pay_with_test_card sends one), Stripe's next_action is a page of
    # its own where the test-mode challenge has Complete and Fail buttons.
    redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
    order_id = (intent.get("metadata") or {}).get("order_id")
    if redirect.get("url"):
        where = f"open {redirect['url']} and click {'Complete' if approve else 'Fail'}"
    elif checkout_url and order_id:
        where = (f"pay a new order on the checkout page ({checkout_url(order_id)}) "
                 f"with the card {TEST_CARDS['3ds']['card']}")
    else:
        where = f"complete next_action {intent.get('next_action')} with Stripe.js"
    print(f"3-D Secure in test mode happens in the customer's browser: {where} "
          f"(waiting up to {wait:.0f} s, then this moves on).", flush=True)
    deadline = time.monotonic() + wait
    while intent.get("status") == "requires_action" and time.monotonic() < deadline:
        time.sleep(2.0 if wait > 10 else 0.25)
        intent = gateway.retrieve_payment_intent(payment_intent_id)
    if intent.get("status") == "requires_action":
        print("Not completed yet: the PaymentIntent still requires_action. Moving on; "
              "run this cell again once the challenge is done.")
    return intent


class CustomerSide:
    """The customer's side and Stripe's side of a lab (needs `mode`, `backend_url` and
    `public_url` from the class it is mixed into)."""

    mode: str
    url: str
    backend_url: str | None
    _backend_key: str | None
    _client_secrets: dict[str, str]

    def public_url(self, path: str = "/") -> str:
        raise NotImplementedError

    def checkout_url(self, order: str | dict) -> str:
        raise NotImplementedError

    @property
    def gateway(self) -> StripeGateway:
        """The Stripe backend this lab uses, for playing the customer in step 5. Offline on a
        lab elsewhere (no key for its stand-in here), the customer's side only, through the
        merchant server (customer_gateway.py)."""
        if self.mode == "offline" and not self._backend_key:
            return CustomerGateway(self.url, self._client_secrets)
        if self.mode == "offline":
            return gateway_for({"mode": "offline", "backend_url": self.backend_url,
                                "backend_key": self._backend_key})
        load_dotenv(PROJECT_ROOT / ".env")  # test-mode keys, as the lab itself reads them
        return gateway_for({"mode": "test"}, load_settings())

    def pay(self, order: dict, scenario: str = "success") -> dict:
        """Step 5 as the customer: pay the order's PaymentIntent with a test card.

        When Stripe refuses (a paid, canceled or, offline, a declined PaymentIntent), raises
        PaymentRefused, whose message says why and what to do.
        """
        gateway = self.gateway
        try:
            return pay_with_test_card(gateway, order["payment_intent"], scenario)
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
            try:
                return complete_3ds(gateway, intent["id"], approve=approve)
            except stripe.InvalidRequestError as error:
                now = gateway.retrieve_payment_intent(intent["id"])["status"]
                raise PaymentRefused(f"this PaymentIntent is not waiting for a 3-D Secure "
                                     f"challenge (it is {now}): pay it with the '3ds' test "
                                     "card first.", None, http_status=error.http_status) from None
        order_id = (intent.get("metadata") or {}).get("order_id")
        action = (intent.get("next_action") or {}).get("type", "none")
        where = (f"open {self.checkout_url(order_id)} and pay there"
                 if order_id else "let Stripe.js handle the PaymentIntent's next_action")
        print(f"Test mode: the customer completes 3-D Secure in the browser (next_action: "
              f"{action}): {where}, and press {'Complete' if approve else 'Fail'} on Stripe's "
              "test page. The notebook goes on without it.")
        return gateway.retrieve_payment_intent(intent["id"])

    def pay_on_stripes_page(self, session: str | dict, scenario: str = "success",
                            approve: bool = True) -> dict | None:
        """The other way's step 5 as the customer: pay a Checkout Session on the lab's stand-in
        for Stripe's hosted page, over the page's own HTTP routes (stripes_page.py)."""
        return pay_on_stripes_page(self, session, scenario, approve)

    def register_webhook(self, url: str, secret: str) -> None:
        """Offline: point the stand-in's webhook deliveries at `url`, signed with `secret`
        (only on a lab of your own: it needs the lab's key for its stand-in)."""
        register_webhook(self.backend_url or "", url, secret, self._backend_key or "")

    def fail_refund(self, refund_id: str) -> bool:
        """Offline: make a Refund fail at the stand-in, as real Stripe makes one fail later
        for a payment with the card 4000 0000 0000 5126 (pm_card_refundFail); True if done.
        In test mode (or without the lab's key) it prints how, and changes nothing."""
        if self.mode != "offline":
            print("Only Stripe makes a refund fail: pay with the card 4000 0000 0000 5126 "
                  "(pm_card_refundFail), refund it, and Stripe sends refund.failed.")
            return False
        if not self._backend_key:  # a class server's stand-in takes its own lab's key only
            print("The lab's offline Stripe is not yours to change: on the lab's machine, "
                  "`python -m tutorial_server.lab trigger refund.failed --order ORDER_ID`.")
            return False
        fail_refund(self.backend_url or "", self._backend_key, refund_id)
        return True

    @property
    def stripe(self) -> stripe.StripeClient:
        """The Stripe SDK client the lab's gateway uses (offline: pointed at the stand-in)."""
        return self.gateway.client
