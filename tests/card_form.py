"""The card form as a person fills it in, the same on the checkout page and in the React shop
(offline, both mount the mock Stripe.js's card element with these labels)."""
from __future__ import annotations

import re

from playwright.sync_api import Page

# Test cards: success, a decline, 3-D Secure required (pm_card_authenticationRequired).
SUCCESS, DECLINED, THREE_DS = "4242424242424242", "4000000000000341", "4000002760003184"


def fill_card(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("34")
    page.get_by_label("CVC").fill("123")


def pay(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
