"""The card form as a person fills it in, the same on the checkout page and in the React shop
(offline, both mount the mock Stripe.js's card element with these labels), and the card token
the mock Stripe.js makes of it, for tests that confirm without a browser."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page

# Test cards: success, a decline, 3-D Secure required (pm_card_authenticationRequired).
SUCCESS, DECLINED, THREE_DS = "4242424242424242", "4000000000000341", "4000002760003184"


def fill_card(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("34")
    page.get_by_label("CVC").fill("123")


def tab_to_card_number(page: Page) -> None:
    """From the top of the page, Tab (never click) until the card number has the focus."""
    number = page.get_by_label("Card number")
    for _ in range(40):
        if number.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    pytest.fail("Tab never reached the card number")


def pay(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


# The rest of the form the mock Stripe.js posts for a card token (the number aside).
TOKEN_FIELDS = {"card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
                "key": "pk_test_offline_lab", "payment_user_agent": "localstripe"}


def card_token(lab, number: str) -> str:
    """What the checkout page's mock Stripe.js does: a card token, through the lab's own
    /offline-stripe relay, from the page's origin."""
    r = requests.post(f"{lab.url}/offline-stripe/v1/tokens",
                      data={**TOKEN_FIELDS, "card[number]": number},
                      headers={"Origin": lab.url}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["id"]
