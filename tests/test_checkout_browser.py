"""Step 5 in a real browser: the checkout page, 3-D Secure, declines and the success page.

Debian's Chromium, driven by Playwright (never `playwright install`), against a real lab with
its own offline Stripe. Each end state is saved as a screenshot in test-artifacts/screenshots/
so a person can look at it. Every wait is on a state of the page or the order, never a sleep.
"""
from __future__ import annotations

import re
import sqlite3

import pytest
import requests
from playwright.sync_api import expect

from .browsers import browser_page, screenshot
from .card_form import DECLINED, SUCCESS, THREE_DS, fill_card, pay, tab_to_card_number
from .checkout_page import expect_paid, open_checkout
from .running_lab import drop_webhooks, wait_for
from tutorial_server.notebook.customer import pay_with_test_card


@pytest.fixture
def page(browser):
    """A fresh page; it records CSP violations and uncaught script errors for the test to check."""
    with browser_page(browser, 900, 1100, lambda text: "Content Security Policy" in text) as page:
        yield page


def test_success_card_ends_paid_and_the_inventory_holds_the_product(lab, customer, page):
    order = lab.order("prod_coffee_beans", 1, customer)["order"]
    open_checkout(lab, page, order["id"])
    expect(page.locator("#order-total")).to_have_text("₹1,340.00")  # formatted by the server
    expect(page.locator("#mode")).to_contain_text("Offline mode")
    unlabelled = page.evaluate("[...document.querySelectorAll('input, button')]"
                               ".filter(el => !el.labels.length && !el.textContent.trim())"
                               ".map(el => el.outerHTML)")
    assert unlabelled == []
    fill_card(page, SUCCESS)
    pay(page)
    expect_paid(lab, page, order["id"])
    expect(page.locator("#inventory")).to_contain_text("Coffee beans, 1 kg × 1 (this order)")
    screenshot(page, "success-paid")
    inventory = lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [(i["product"], i["quantity"]) for i in inventory] == [("prod_coffee_beans", 1)]
    assert page.problems == []


def test_declined_card_shows_the_error_then_another_card_pays(lab, customer, page):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    open_checkout(lab, page, order["id"])
    expect(page.locator("#order-total")).to_have_text("$13.40")
    fill_card(page, DECLINED)
    pay(page)
    error = page.get_by_role("alert")
    expect(error).to_contain_text("Payment declined: Your card was declined.")
    expect(error).to_have_attribute("aria-live", "assertive")
    attempted = lab.wait_for_status(order["id"], "attempted")
    assert attempted["attempts"] == 1 and attempted["amount_paid"] == 0
    assert attempted["last_payment_error"]["code"] == "card_declined"
    expect(page.locator("#order-status")).to_have_text("attempted")  # the page shows it too
    expect(page.get_by_label("Card number")).to_be_focused()  # ready for another card
    screenshot(page, "declined")

    fill_card(page, SUCCESS)
    pay(page)
    expect_paid(lab, page, order["id"])
    paid = lab.order_status(order["id"])
    assert paid["attempts"] == 2 and paid["amount_paid"] == 1340
    # Offline, a declined PaymentIntent cannot be confirmed again: the order got a fresh one.
    assert paid["payment_intent"] != order["payment_intent"]
    assert lab.gateway().retrieve_payment_intent(order["payment_intent"])["status"] == "canceled"
    screenshot(page, "declined-then-paid")
    assert page.problems == []


def test_three_d_secure_approved_ends_paid(lab, customer, page):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    open_checkout(lab, page, order["id"])
    expect(page.locator("#order-total")).to_have_text("¥500")
    fill_card(page, THREE_DS)
    pay(page)
    approve = page.get_by_role("button", name="Complete authentication")
    expect(approve).to_be_visible()
    screenshot(page, "3ds-challenge")
    approve.click()
    expect_paid(lab, page, order["id"])
    screenshot(page, "3ds-approved-paid")
    assert page.problems == []


def test_three_d_secure_failed_ends_attempted(lab, customer, page):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    open_checkout(lab, page, order["id"])
    fill_card(page, THREE_DS)
    pay(page)
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("3-D Secure authentication failed")
    expect(page.locator("#order-status")).to_have_text("attempted")
    attempted = lab.order_status(order["id"])
    assert attempted["status"] == "attempted" and attempted["attempts"] == 1
    assert attempted["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert page.url.endswith(f"/checkout/{order['id']}")  # still on the payment page
    screenshot(page, "3ds-failed")
    assert page.problems == []


def test_keyboard_only_happy_path(lab, customer, page):
    """Type, Tab, type, as on any form: the page keeps the focus where the person put it, so
    the mock Stripe.js's own jumps (16 digits -> month) do not skip a field."""
    order = lab.order("prod_enamel_mug", 2, customer)["order"]
    open_checkout(lab, page, order["id"])
    tab_to_card_number(page)
    for label, text in [("Card number", SUCCESS), ("Expiry month (MM)", "12"),
                        ("Expiry year (YY)", "34"), ("CVC", "123")]:
        expect(page.get_by_label(label)).to_be_focused()
        page.keyboard.type(text)
        expect(page.get_by_label(label)).to_be_focused()  # no jump after the last digit
        page.keyboard.press("Tab")
    for label, text in [("Card number", SUCCESS), ("Expiry month (MM)", "12"),
                        ("Expiry year (YY)", "34"), ("CVC", "123")]:
        expect(page.get_by_label(label)).to_have_value(text)
    page.keyboard.press("Shift+Tab")  # back in the CVC (Tab went on to the postal code)
    page.keyboard.press("Enter")  # submits the form
    expect_paid(lab, page, order["id"])
    screenshot(page, "keyboard-only-paid")
    assert page.problems == []


def test_a_card_not_filled_in_names_the_fields_and_charges_nothing(lab, customer, page):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    open_checkout(lab, page, order["id"])
    pay(page)  # nothing filled in
    expect(page.get_by_role("alert")).to_have_text(
        "Enter the card number (16 digits), the expiry month (01 to 12), the expiry year "
        "(two digits, YY) and the CVC (3 digits).")
    fill_card(page, SUCCESS[:15])  # one digit short: the page names the field
    pay(page)
    expect(page.get_by_role("alert")).to_have_text("Check the card number (16 digits).")
    expect(page.get_by_label("Card number")).to_be_focused()
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "card-unreadable")
    assert lab.order_status(order["id"])["status"] == "created"
    assert page.problems == []


def test_success_page_says_so_when_the_webhook_never_comes(fresh_lab, customer, page):
    lost = drop_webhooks(fresh_lab)  # Stripe accepts the payment; its webhook never arrives
    order = fresh_lab.order("prod_drip_bags", 1, customer)["order"]
    pay_with_test_card(fresh_lab.gateway(), order["payment_intent"], "success")
    wait_for(lambda: lost(order["payment_intent"]), message="the webhook to be lost")
    page.goto(f"{fresh_lab.url}/checkout/{order['id']}/complete?wait=1")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No confirmation after 1 s")
    expect(alert).to_contain_text("Please do not pay again")
    expect(alert).to_contain_text("python -m tutorial_server.lab reconcile")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment not confirmed yet")
    screenshot(page, "webhook-timeout")
    assert page.problems == []


def test_success_page_of_a_never_paid_order_sends_the_customer_to_pay(lab, customer, page):
    order = lab.order("prod_drip_bags", 1, customer)["order"]  # no payment ever made
    page.goto(f"{lab.url}/checkout/{order['id']}/complete?wait=30")
    expect(page.get_by_role("heading", level=1)).to_have_text("This order is not paid yet")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No payment has gone through for this order.")
    expect(page.get_by_text("do not pay again")).to_be_hidden()
    expect(page.locator("#progress")).to_be_hidden()  # nothing to wait for
    page.get_by_role("link", name="Pay for this order").click()
    expect(page).to_have_url(f"{lab.url}/checkout/{order['id']}")
    expect(page.get_by_label("Card number")).to_be_visible()
    screenshot(page, "complete-never-paid")
    assert page.problems == []


def test_success_page_after_a_decline_counts_the_attempt_and_sends_back_to_pay(lab, customer,
                                                                             page):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "declined")
    lab.wait_for_status(order["id"], "attempted")
    page.goto(f"{lab.url}/checkout/{order['id']}/complete")
    expect(page.get_by_role("alert")).to_contain_text(
        "No payment has gone through for this order (its 1 earlier attempt did not).")
    expect(page.get_by_text("do not pay again")).to_be_hidden()
    assert page.problems == []


def test_unknown_order_is_404(lab, page):
    response = page.goto(f"{lab.url}/checkout/order_doesnotexist00")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("No such order")
    screenshot(page, "unknown-order-404")


def test_checkout_page_sends_a_strict_csp_and_no_secrets(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)
    r = lab.get(f"/checkout/{order['order']['id']}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    policy = dict(d.strip().split(" ", 1) for d in r.headers["Content-Security-Policy"].split(";"))
    scripts = policy["script-src"].split()
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert scripts == ["'self'"]  # offline, even the mock Stripe.js comes through this server
    assert policy["connect-src"].split() == ["'self'"]
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    html = r.text
    assert "sk_" not in html and "whsec_" not in html
    assert order["client_secret"] in html and "pk_test_" in html  # what the page may know
    assert "¥500" in html
    # No inline scripts: every <script> has a src.
    assert re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>", html) == []
    assert 'src="/offline-stripe/js.stripe.com/v3/"' in html


def test_confirm_with_bad_input_is_a_json_error_and_changes_nothing(lab, customer):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    url = f"/checkout/{order['id']}/confirm"
    before = lab.snapshot()
    cases = [
        (dict(data="token=tok_x", headers={"Content-Type": "application/x-www-form-urlencoded"}),
         415, None),
        (dict(data="{not json", headers={"Content-Type": "application/json"}), 400, None),
        (dict(json=["tok_x"]), 400, None),
        (dict(json={}), 400, "token"),
        (dict(json={"token": 42}), 400, "token"),
        (dict(json={"token": "pm_card_visa"}), 400, "token"),
        (dict(json={"token": "tok_x", "amount": 1}), 400, "amount"),
        (dict(json={"token": "tok_doesnotexist"}), 400, "token"),  # Stripe does not know it
    ]
    for kwargs, status, param in cases:
        r = lab.post(url, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        error = r.json()["error"]
        assert {"type", "message", "param"} <= error.keys() and error["param"] == param, error
        assert error["type"] == "invalid_request_error" and error["message"]
    r = lab.post("/checkout/order_doesnotexist00/confirm", json={"token": "tok_x"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "id"

    assert lab.snapshot() == before
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert intent["status"] == "requires_payment_method" and intent["payment_method"] is None


def browser_token(lab, number: str) -> str:
    """What Stripe.js createToken does in the browser: the card goes to (offline) Stripe,
    through the lab's relay of the mock Stripe.js, as the checkout page sends it."""
    r = requests.post(f"{lab.url}/offline-stripe/v1/tokens", timeout=10,
                      headers={"Origin": lab.url}, data={
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
        "card[cvc]": "123", "key": "pk_test_offline_lab"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def webhook_outcomes(lab, payment_intent_id: str) -> list[str]:
    db = sqlite3.connect(lab.db_path)
    try:
        return [row[0] for row in db.execute(
            "SELECT outcome FROM webhook_events WHERE payment_intent = ?", (payment_intent_id,))]
    finally:
        db.close()


def test_retry_right_after_a_decline_counts_each_attempt_once(lab, customer):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    url = f"/checkout/{order['id']}/confirm"
    declined = lab.post(url, json={"token": browser_token(lab, DECLINED)}).json()
    assert declined["payment_intent"]["status"] == "requires_payment_method"
    assert declined["payment_intent"]["last_payment_error"]["code"] == "card_declined"
    # Retry at once, most likely before the decline's webhook (about 1 s later) has arrived.
    retried = lab.post(url, json={"token": browser_token(lab, SUCCESS)}).json()
    fresh = retried["payment_intent"]["id"]
    assert retried["payment_intent"]["status"] == "succeeded" and fresh != order["payment_intent"]
    lab.wait_for_status(order["id"], "paid")
    # Once both PaymentIntents' webhooks are in, each attempt has been counted exactly once.
    wait_for(lambda: (webhook_outcomes(lab, order["payment_intent"])
                      and webhook_outcomes(lab, fresh)), message="both webhooks")
    paid = lab.order_status(order["id"])
    assert paid["attempts"] == 2 and paid["amount_paid"] == 1340 and paid["payment_intent"] == fresh
