"""The other way in a real browser: an order paid on the lab's stand-in for Stripe's hosted
Checkout page (lab/hosted_checkout.py), offline.

Debian's Chromium, driven by Playwright, against a real lab with its own offline Stripe, as
the checkout page's tests (test_checkout_browser.py). The order is created with
payWith=checkout_session; the browser opens the session's url, pays there, and lands on the
session's success_url, where the merchant's success page waits for the webhook. After each
scenario the test reads the order from the server. Every wait is on the page or the order.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .axe import AXE_JS, record, run_axe
from .browsers import browser_page, screenshot
from .card_form import DECLINED, SUCCESS, THREE_DS, fill_card, pay, tab_to_card_number
from .checkout_page import WAIT_FOR_WEBHOOK_MS

LABEL = "The lab's stand-in for Stripe's hosted Checkout page — offline only"


@pytest.fixture
def page(browser, lab):
    """A fresh page that records every console error and uncaught script error, and any request
    that leaves the lab's own origin."""
    with browser_page(browser, 900, 1100) as page:
        page.elsewhere = []
        page.on("request", lambda r: page.elsewhere.append(r.url)
                if not r.url.startswith((lab.url + "/", "data:")) else None)
        yield page


def session_order(lab, customer: str, product: str = "prod_coffee_beans",
                  quantity: int = 1) -> dict:
    r = lab.post("/api/orders", json={"productId": product, "quantity": quantity,
                                      "customer": customer, "payWith": "checkout_session"})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["client_secret"] is None and answer["checkout_session"]["status"] == "open"
    return answer


def open_hosted_page(lab, page: Page, answer: dict) -> None:
    page.goto(lab.url + answer["checkout_session"]["url"])
    expect(page.locator("#stand-in-label")).to_contain_text(LABEL)
    expect(page.get_by_label("Card number")).to_be_visible()  # the mock Stripe.js mounted


def expect_paid(lab, page: Page, answer: dict) -> None:
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    expect(page).to_have_url(re.compile(
        rf"/checkout/{order_id}/complete\?session_id={session_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Payment confirmed: your order is paid", timeout=WAIT_FOR_WEBHOOK_MS)
    order = lab.order_status(order_id)
    assert order["status"] == "paid" and order["amount_paid"] == order["amount"]
    assert order["pay_with"] == "checkout_session" and order["payment_intent"]


def test_paid_on_the_hosted_page_the_webhook_settles_it(lab, customer, page):
    answer = session_order(lab, customer, "prod_coffee_beans", 2)
    open_hosted_page(lab, page, answer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay ₹2,680.00")  # the server's
    expect(page.locator("#session-total")).to_have_text("₹2,680.00")
    expect(page.get_by_role("cell", name="Coffee beans, 1 kg")).to_be_visible()
    expect(page.locator("#mode")).to_contain_text("Offline mode")
    unlabelled = page.evaluate("[...document.querySelectorAll('input, button')]"
                               ".filter(el => !el.labels.length && !el.textContent.trim())"
                               ".map(el => el.outerHTML)")
    assert unlabelled == []
    screenshot(page, "hosted-fresh")
    fill_card(page, SUCCESS)
    pay(page)
    expect_paid(lab, page, answer)
    screenshot(page, "hosted-paid")
    inventory = lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [(i["product"], i["quantity"]) for i in inventory] == [("prod_coffee_beans", 2)]
    assert page.problems == [] and page.elsewhere == []
    # Paid: the session's page now says so, and links the confirmation.
    gone = page.goto(lab.url + answer["checkout_session"]["url"])
    assert gone is not None and gone.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This order is already paid")
    expect(page.get_by_role("link", name="See the order's confirmation")).to_be_visible()


def test_declined_then_another_card_pays(lab, customer, page):
    answer = session_order(lab, customer, "prod_pour_over_kit")
    open_hosted_page(lab, page, answer)
    fill_card(page, DECLINED)
    pay(page)
    error = page.get_by_role("alert")
    expect(error).to_contain_text("Payment declined: Your card was declined.")
    expect(page.get_by_label("Card number")).to_be_focused()  # ready for another card
    screenshot(page, "hosted-declined")
    fill_card(page, SUCCESS)
    pay(page)
    expect_paid(lab, page, answer)
    assert page.problems == [] and page.elsewhere == []


def test_three_d_secure_completed(lab, customer, page):
    answer = session_order(lab, customer, "prod_drip_bags")
    open_hosted_page(lab, page, answer)
    expect(page.locator("#session-total")).to_have_text("¥500")
    fill_card(page, THREE_DS)
    pay(page)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("button", name="Complete authentication")).to_be_focused()
    screenshot(page, "hosted-3ds-challenge")
    page.get_by_role("button", name="Complete authentication").click()
    expect_paid(lab, page, answer)
    assert page.problems == [] and page.elsewhere == []


def test_three_d_secure_failed_then_a_good_card(lab, customer, page):
    answer = session_order(lab, customer, "prod_enamel_mug")
    open_hosted_page(lab, page, answer)
    fill_card(page, THREE_DS)
    pay(page)
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("3-D Secure authentication failed")
    assert page.url == lab.url + answer["checkout_session"]["url"]  # still on Stripe's page
    assert lab.order_status(answer["order"]["id"])["status"] != "paid"
    screenshot(page, "hosted-3ds-failed")
    fill_card(page, SUCCESS)
    pay(page)
    expect_paid(lab, page, answer)
    assert page.problems == [] and page.elsewhere == []


def test_back_goes_to_the_cancel_url_and_the_order_stays_unpaid(lab, customer, page):
    answer = session_order(lab, customer)
    open_hosted_page(lab, page, answer)
    page.get_by_role("link", name="← back").click()
    expect(page).to_have_url(f"{lab.url}/checkout/{answer['order']['id']}")
    # The merchant's page for the order: pay again on Stripe's page, or not.
    link = page.get_by_role("link", name=re.compile(r"^Pay .* on Stripe's page$"))
    expect(link).to_be_visible()
    assert lab.order_status(answer["order"]["id"])["status"] == "created"
    link.click()  # and back on Stripe's page, the same session
    expect(page).to_have_url(lab.url + answer["checkout_session"]["url"])
    assert page.problems == [] and page.elsewhere == []


def test_keyboard_only_payment(lab, customer, page):
    answer = session_order(lab, customer, "prod_enamel_mug", 2)
    open_hosted_page(lab, page, answer)
    tab_to_card_number(page)
    for label, text in [("Card number", SUCCESS), ("Expiry month (MM)", "12"),
                        ("Expiry year (YY)", "34"), ("CVC", "123")]:
        expect(page.get_by_label(label)).to_be_focused()
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # submits the form
    expect_paid(lab, page, answer)
    assert page.problems == []


def test_axe_fresh_declined_and_three_d_secure(browser, lab, customer):
    if not AXE_JS.exists():
        pytest.fail("axe-core is missing: run `make node_modules/.installed` (npm ci).")
    # bypass_csp: only so the test can inject axe; the page still sends its CSP.
    context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        answer = session_order(lab, customer)
        open_hosted_page(lab, page, answer)
        checks = [("fresh", None), ("declined", DECLINED), ("3-D Secure", THREE_DS)]
        for name, card in checks:
            if card:
                fill_card(page, card)
                pay(page)
                if card == DECLINED:
                    expect(page.locator("#payment-error")).to_contain_text("declined")
                else:
                    expect(page.get_by_role("dialog")).to_be_visible()
            violations = run_axe(page)
            record(f"hosted checkout: {name}", violations)
            # None at all: as the checkout page (test_accessibility_browser.py allows no
            # moderate finding without a reason, and names none).
            assert violations == [], (name, violations)
        page.goto(f"{lab.url}/offline-checkout/cs_test_unknown")
        violations = run_axe(page)
        record("hosted checkout: unknown session", violations)
        assert violations == [], violations
    finally:
        context.close()
