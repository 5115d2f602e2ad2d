"""Playing the customer (step 5 from the server side): test cards and 3-D Secure.

The notebooks and the tests pay orders as a customer's browser would; the merchant server
itself never calls these. Offline, the stand-in plays the 3-D Secure challenge through a
private route; in test mode the customer completes it in the browser, and this waits.
"""
from __future__ import annotations

import os
import time
from typing import Any

import stripe

# How long complete_3ds_offline waits, in test mode, for the customer to complete the
# challenge in the browser (seconds; TUTORIAL_3DS_WAIT changes it, 0 moves on at once).
THREE_DS_WAIT = 60.0

# Test cards per scenario: the PaymentMethod real test mode accepts, and the raw test card
# number the offline stand-in needs instead (None: the pm_card_ id works offline too).
TEST_CARDS: dict[str, dict[str, Any]] = {
    "success": {"card": "4242 4242 4242 4242", "real": "pm_card_visa", "offline_number": None},
    "declined": {"card": "4000 0000 0000 0341", "real": "pm_card_chargeCustomerFail",
                 "offline_number": None},
    # pm_card_authenticationRequired is this card (4000 0025 0000 3155 is the one that asks
    # only when a card is saved for later, pm_card_authenticationRequiredOnSetup).
    "3ds": {"card": "4000 0027 6000 3184", "real": "pm_card_authenticationRequired",
            "offline_number": "4000002760003184"},
}


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


def test_payment_method(gateway: Any, scenario: str) -> str:
    if scenario not in TEST_CARDS:
        raise ValueError(f"scenario must be one of {sorted(TEST_CARDS)}")
    return gateway.payment_method_for_card(TEST_CARDS[scenario])


def pay_with_test_card(gateway: Any, payment_intent_id: str, scenario: str = "success") -> dict:
    """Confirm the PaymentIntent with a test card, as the customer's browser would.

    scenario: "success", "declined" or "3ds" (3-D Secure required). A declined card does
    not raise: the PaymentIntent comes back with status requires_payment_method and
    last_payment_error set, exactly what the customer's page would show.
    """
    return gateway.confirm_payment_intent(payment_intent_id, test_payment_method(gateway, scenario),
                                          return_url="http://localhost:4242/checkout/complete")


def complete_3ds(gateway: Any, payment_intent_id: str, approve: bool,
                 wait: float | None = None) -> dict:
    """The customer approves or fails the 3-D Secure challenge.

    Offline, the stand-in's private route plays the customer. Real Stripe has no such call:
    in test mode this prints where the customer completes the challenge in the browser,
    waits up to `wait` seconds for it, and returns the PaymentIntent as it then is (still
    requires_action if nobody completed it: the notebook moves on).
    """
    if hasattr(gateway, "authenticate_3ds"):
        return gateway.authenticate_3ds(payment_intent_id, approve)
    if wait is None:
        wait = float(os.environ.get("TUTORIAL_3DS_WAIT") or THREE_DS_WAIT)
    return _wait_for_3ds_in_browser(gateway, payment_intent_id, approve, wait)


def _wait_for_3ds_in_browser(gateway: Any, payment_intent_id: str, approve: bool,
                             wait: float) -> dict:
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
    elif gateway.checkout_url and order_id:
        where = (f"pay a new order on the checkout page ({gateway.checkout_url(order_id)}) "
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
