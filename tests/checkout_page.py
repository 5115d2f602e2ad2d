"""The checkout page (step 5) as a customer uses it in a browser: open it, and see it end paid
(the checkout and accessibility suites). Filling in the card is tests/card_form.py."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

WAIT_FOR_WEBHOOK_MS = 10_000


def open_checkout(lab, page: Page, order_id: str) -> None:
    page.goto(f"{lab.url}/checkout/{order_id}")
    expect(page.get_by_label("Card number")).to_be_visible()  # Stripe.js loaded and mounted


def expect_paid(lab, page: Page, order_id: str) -> None:
    expect(page).to_have_url(re.compile(rf"/checkout/{order_id}/complete$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Payment confirmed: your order is paid", timeout=WAIT_FOR_WEBHOOK_MS)
    expect(page.locator("#order-status")).to_have_text("paid")
    assert lab.order_status(order_id)["status"] == "paid"
