"""Step 5 in React: the shop at /shop/ (client/, built by `make client`), in a real browser.

Debian's Chromium, driven by Playwright (never `playwright install`), against a real lab with
its own offline Stripe, exactly as the checkout page's tests (test_checkout_browser.py). After
each scenario the test reads the order from the SERVER: the shop saying "paid" proves
nothing unless the server says so too. Every wait is on the page or the order, never a sleep.
The shop is built from source first (`make client`, which `make test` runs).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import stripe
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from tutorial_server.lab.app import create_lab_app
from tutorial_server.config import load_settings

from .app_modes import app_in
from .browsers import browser_page
from .card_form import DECLINED, SUCCESS, THREE_DS, fill_card, pay

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "client" / "dist"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_FOR_WEBHOOK_MS = 10_000


@pytest.fixture(scope="module", autouse=True)
def built_shop():
    if not (DIST / "index.html").is_file():
        pytest.fail("The React shop is not built: run `make client` (Node.js 20.19+ and npm), "
                    "or `make test`, which builds it first.", pytrace=False)


@pytest.fixture
def page(browser, lab):
    """A fresh page that records every console error (Content-Security-Policy reports
    included), uncaught script errors, console warnings, and any request that leaves the lab's
    own origin."""
    with browser_page(browser, 900, 1100) as page:
        page.elsewhere, page.warnings = [], []
        page.on("console", lambda m: page.warnings.append(m.text) if m.type == "warning" else None)
        page.on("request", lambda r: page.elsewhere.append(r.url)
                if not r.url.startswith((lab.url + "/", "data:")) else None)
        yield page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"shop-{name}.png"), full_page=True)


def open_shop(lab, page: Page, customer: str) -> None:
    page.goto(f"{lab.url}/shop/?customer={customer}")
    expect(page.locator("#mode")).to_contain_text("Offline mode")


def product(page: Page, name: str):
    return page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=name))


def buy(page: Page, name: str, quantity: int = 1) -> str:
    """Choose a quantity, press Buy; answers the id of the order the server made."""
    item = product(page, name)
    item.get_by_label("Quantity").fill(str(quantity))
    item.get_by_role("button", name=f"Buy {name}").click()
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
    expect(page.get_by_label("Card number")).to_be_visible()  # the mock Stripe.js mounted
    return page.locator("#order-id").inner_text()


def expect_paid(lab, page: Page, order_id: str) -> dict:
    expect(page.get_by_role("heading", level=2)).to_have_text(
        "Payment confirmed: your order is paid", timeout=WAIT_FOR_WEBHOOK_MS)
    expect(page.locator("#order-status")).to_have_text("paid")
    order = lab.order_status(order_id)
    assert order["status"] == "paid" and order["amount_paid"] == order["amount"]
    return order


def clean(page: Page) -> None:
    assert page.problems == []  # no console error, no CSP violation, no uncaught exception
    assert page.elsewhere == []  # offline, nothing but the lab itself
    # loadStripe checks the mock's Stripe.version (the relay says it: stripe_js_relay.py).
    assert [w for w in page.warnings if "Stripe.js@" in w] == []


def test_success_ends_paid_and_the_inventory_holds_the_product(lab, customer, page):
    open_shop(lab, page, customer)
    # The list comes from GET /api/products; the amount is the server's integer, written out.
    expect(product(page, "Coffee beans, 1 kg")).to_contain_text("₹1,340.00 each")
    unlabelled = page.evaluate("[...document.querySelectorAll('input, button')]"
                               ".filter(el => !el.labels.length && !el.textContent.trim())"
                               ".map(el => el.outerHTML)")
    assert unlabelled == []
    order_id = buy(page, "Coffee beans, 1 kg", 2)
    created = lab.order_status(order_id)
    assert (created["customer"], created["quantity"], created["status"]) == (customer, 2, "created")
    # The amount shown is the one the server priced, whatever it is.
    expect(page.locator("#order-total")).to_have_text(
        "₹{:,.2f}".format(created["amount"] / 100))
    expect(page.get_by_role("button", name=re.compile(r"^Pay "))).to_have_text(
        "Pay ₹{:,.2f}".format(created["amount"] / 100))
    fill_card(page, SUCCESS)
    pay(page)
    paid = expect_paid(lab, page, order_id)
    assert paid["attempts"] == 1
    inventory = lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [(i["product"], i["quantity"], i["order"]) for i in inventory] == [
        ("prod_coffee_beans", 2, order_id)]
    assert f"order={order_id}" in page.url  # a reload comes back to this order
    screenshot(page, "paid")
    clean(page)
    # The paid screen links to the order's trace: the dashboard's Follow view draws it.
    page.get_by_role("link", name="Follow this order on the lab's dashboard").click()
    assert page.url == f"{lab.url}/dashboard#follow={order_id}"
    expect(page.locator("#follow-summary")).to_contain_text(order_id)
    expect(page.locator("#trace-diagram svg, #trace-text")).not_to_have_count(0)


def test_the_checkout_says_what_happens_to_an_order_left_unpaid(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = buy(page, "Pour-over kit")
    text = page.locator(".checkout").inner_text()
    assert "nothing expires an unpaid order" in text
    page.get_by_role("link", name="its checkout page").click()
    assert page.url == f"{lab.url}/checkout/{order_id}"
    expect(page.get_by_label("Card number")).to_be_visible()
    assert lab.order_status(order_id)["status"] == "created"  # still open: nothing expired it
    clean(page)


def test_pay_on_stripes_page_goes_to_the_labs_hosted_page_and_back_paid(lab, customer, page):
    """The other way: the shop creates the order with payWith=checkout_session and sends the
    browser to the session's url (offline, the lab's stand-in for Stripe's hosted page)."""
    open_shop(lab, page, customer)
    item = product(page, "Enamel mug")
    item.get_by_label("Quantity").fill("2")
    item.get_by_role("button", name="Pay on Stripe's page for Enamel mug").click()
    expect(page).to_have_url(re.compile(r"/offline-checkout/cs_test_\w+$"))
    expect(page.locator("#stand-in-label")).to_contain_text("offline only")
    session_id = page.url.rsplit("/", 1)[1]
    fill_card(page, SUCCESS)
    pay(page)
    expect(page).to_have_url(re.compile(rf"/complete\?session_id={session_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Payment confirmed: your order is paid", timeout=WAIT_FOR_WEBHOOK_MS)
    order_id = page.url.split("/checkout/", 1)[1].split("/", 1)[0]
    order = lab.order_status(order_id)
    assert (order["pay_with"], order["checkout_session"], order["quantity"], order["customer"],
            order["status"]) == ("checkout_session", session_id, 2, customer, "paid")
    screenshot(page, "paid-on-stripes-page")
    clean(page)


def test_declined_card_shows_the_error_then_another_card_pays(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = buy(page, "Pour-over kit")
    fill_card(page, DECLINED)
    pay(page)
    error = page.get_by_role("alert")
    expect(error).to_contain_text("Payment declined: Your card was declined.")
    expect(error).to_contain_text("try another card")
    attempted = lab.wait_for_status(order_id, "attempted")
    assert attempted["attempts"] == 1 and attempted["amount_paid"] == 0
    assert attempted["last_payment_error"]["code"] == "card_declined"
    expect(page.locator("#order-status")).to_have_text("attempted")  # the shop shows it too
    expect(page.get_by_label("Card number")).to_be_focused()  # ready for another card
    screenshot(page, "declined")

    fill_card(page, SUCCESS)
    pay(page)
    paid = expect_paid(lab, page, order_id)
    assert paid["attempts"] == 2 and paid["amount_paid"] == 1340
    clean(page)


def test_three_d_secure_approved_ends_paid(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = buy(page, "Drip bags, box of 5")
    expect(page.locator("#order-total")).to_have_text("¥500")
    fill_card(page, THREE_DS)
    pay(page)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("3D Secure")
    screenshot(page, "3ds-challenge")
    dialog.get_by_role("button", name="Complete authentication").click()
    paid = expect_paid(lab, page, order_id)
    assert paid["attempts"] == 1
    clean(page)


def test_three_d_secure_failed_ends_attempted(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = buy(page, "Enamel mug", 10)
    # From 10 items the server takes 10% off; the shop shows what the server priced.
    expect(page.locator("#order-total")).to_have_text("$108.00")
    expect(page.get_by_text("−$12.00")).to_be_visible()
    fill_card(page, THREE_DS)
    pay(page)
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("3-D Secure authentication failed")
    expect(page.locator("#order-status")).to_have_text("attempted")
    attempted = lab.order_status(order_id)
    assert attempted["status"] == "attempted" and attempted["attempts"] == 1
    assert attempted["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
    screenshot(page, "3ds-failed")
    clean(page)


def test_a_double_click_on_buy_makes_one_order(lab, customer, page):
    sent = []
    page.on("request", lambda r: sent.append(r.headers.get("idempotency-key"))
            if r.method == "POST" and r.url.endswith("/api/orders") else None)
    open_shop(lab, page, customer)
    product(page, "Enamel mug").get_by_role("button", name="Buy Enamel mug").dblclick()
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
    orders = lab.query("SELECT id FROM orders WHERE customer = ?", customer)
    assert len(orders) == 1
    assert sent and all(key and key == sent[0] for key in sent)  # one attempt, one key
    clean(page)


def test_buy_again_after_a_lost_answer_gets_the_same_order(lab, customer, page):
    """The Idempotency-Key at work: the server made the order but its answer never reached
    the shop; pressing Buy again sends the same key, and the server answers with that order."""
    lost = []

    def lose_the_first_answer(route):
        if lost:
            route.continue_()
            return
        lost.append(route.fetch())  # the request reaches the server ...
        route.abort()  # ... and the shop never hears back

    page.route("**/api/orders", lose_the_first_answer)
    open_shop(lab, page, customer)
    item = product(page, "Enamel mug")
    item.get_by_role("button", name="Buy Enamel mug").click()
    expect(item.get_by_role("alert")).to_contain_text("No answer from the server")
    assert lost[0].status == 201
    item.get_by_role("button", name="Buy Enamel mug").click()
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
    assert page.locator("#order-id").inner_text() == lost[0].json()["order"]["id"]
    assert len(lab.query("SELECT id FROM orders WHERE customer = ?", customer)) == 1
    page.problems[:] = [p for p in page.problems if "ERR_FAILED" not in p]  # the lost answer
    clean(page)


def test_server_errors_are_shown_in_the_servers_words(lab, customer, page):
    open_shop(lab, page, customer)
    item = product(page, "Enamel mug")
    item.get_by_label("Quantity").fill("0")
    item.get_by_role("button", name="Buy Enamel mug").click()
    expect(item.get_by_role("alert")).to_have_text("quantity must be between 1 and 100.")
    assert lab.query("SELECT id FROM orders WHERE customer = ?", customer) == []
    # The 400 is the browser's own console line for a failed request, not a script error.
    page.problems[:] = [p for p in page.problems if "400 (BAD REQUEST)" not in p]
    clean(page)


# --- the page the server sends: no browser needed ------------------------------------------

def test_the_shop_page_has_the_checkout_pages_policy_in_both_modes(tmp_path):
    for mode, stripe_origin in [("offline", None), ("test", "https://js.stripe.com")]:
        response = app_in(mode, tmp_path).test_client().get("/shop/")
        assert response.status_code == 200, mode
        policy = response.headers["Content-Security-Policy"]
        scripts = re.search(r"script-src ([^;]*)", policy).group(1).split()
        assert scripts == ["'self'"] + ([stripe_origin, "https://*.js.stripe.com"]
                                        if stripe_origin else [])
        assert "unsafe-inline" not in policy
        html = response.text
        assert "<script>" not in html and "<script " in html  # no inline script
        # Relative addresses only: the same build works under JupyterHub's proxy prefix.
        assert re.findall(r'(?:src|href)="([^"]+)"', html) and all(
            url.startswith(("./", "../")) for url in re.findall(r'(?:src|href)="([^"]+)"', html))
        asset = re.search(r'src="\./(assets/[^"]+\.js)"', html).group(1)
        script = app_in(mode, tmp_path).test_client().get(f"/shop/{asset}")
        assert script.status_code == 200 and "javascript" in script.mimetype


def test_without_a_build_the_shop_says_how_to_make_one(tmp_path):
    settings = replace(load_settings({}), db_path=tmp_path / "db.sqlite3")
    app = create_lab_app(settings, backend_url="http://127.0.0.1:9",
                     test_config={"SHOP_DIST": str(tmp_path / "nothing")})
    response = app.test_client().get("/shop/")
    assert response.status_code == 503
    assert "make client" in response.text and "Node.js" in response.text
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert app.test_client().get("/shop/assets/index.js").status_code == 404


def test_behind_jupyterhubs_proxy_the_shop_and_its_stripe_js_follow_the_prefix(
        tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_BEHIND_PROXY", "1")
    monkeypatch.setenv("TUTORIAL_PROXY_SECRET", "s3cret")  # what the proxy's config adds
    settings = replace(load_settings({}), db_path=tmp_path / "db.sqlite3")
    client = create_lab_app(settings, backend_url="http://127.0.0.1:9").test_client()
    prefix = {"X-Forwarded-Prefix": "/user/ada/proxy/4242", "X-Stripe-Lab-Proxy-Secret": "s3cret"}
    moved = client.get("/shop", headers=prefix)
    assert moved.status_code in (301, 308)
    assert moved.headers["Location"].endswith("/user/ada/proxy/4242/shop/")
    assert client.get("/shop/", headers=prefix).status_code == 200
    # The shop loads the mock Stripe.js from the address /api/config gives, under the prefix.
    config = client.get("/api/config", headers=prefix).get_json()
    assert config["stripe_js_url"] == "/user/ada/proxy/4242/offline-stripe/js.stripe.com/v3/"


def test_the_code_in_client_readme_is_the_code_in_client_src():
    """client/README.md teaches with excerpts of the source (for notebook 05); each excerpt
    names its file on its first line, and every line of it (but the `…`) must be there."""
    readme = (ROOT / "client" / "README.md").read_text()
    blocks = re.findall(r"```tsx\n// (client/src/[\w.]+)[^\n]*\n(.*?)```", readme, re.S)
    assert len(blocks) >= 6
    for path, code in blocks:
        source = {line.strip() for line in (ROOT / path).read_text().splitlines()}
        missing = [line for line in code.splitlines()
                   if line.strip() not in ("…", "") and line.strip() not in source]
        assert missing == [], f"{path}: {missing}"


# --- test mode's branch of modes.tsx, with Stripe faked on both sides ----------------------

class _CannedStripeApi(stripe.HTTPClient):
    """api.stripe.com, faked: every request gets one canned PaymentIntent waiting for a card.
    Nothing leaves this process (the real thing: tests/test_stripe_test_mode_http.py)."""

    name = "canned"

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        return json.dumps({"id": "pi_shopcanned", "object": "payment_intent", "amount": 1200,
                           "currency": "usd", "status": "requires_payment_method",
                           "client_secret": "pi_shopcanned_secret_canned", "metadata": {}}), 200, {}

    def close(self):
        pass


# js.stripe.com, faked in the browser (Playwright answers the request; nothing leaves the
# machine): records what the shop asks of Stripe.js, and declines the card.
FAKE_STRIPE_JS = """
window.stripeCalls = [];
window.Stripe = function (key) {
  stripeCalls.push(["Stripe", key]);
  const element = {mount(node) { node.textContent = "(Payment Element)"; },
                   on() {}, off() {}, update() {}, destroy() {}};
  return {
    elements(options) {
      stripeCalls.push(["elements", options]);
      return {create(type) { stripeCalls.push(["create", type]); return element; },
              getElement() { return element; }, update() {}};
    },
    createToken() {}, createPaymentMethod() {}, confirmCardPayment() {},
    async confirmPayment(args) {
      stripeCalls.push(["confirmPayment", args.confirmParams, args.elements !== undefined]);
      return {error: {type: "card_error", code: "card_declined",
                      message: "Your card was declined."}};
    },
  };
};
"""


@pytest.fixture
def test_mode_shop(tmp_path):
    """A test-mode merchant server (api.stripe.com canned) on a free loopback port."""
    settings = load_settings({"TUTORIAL_DB": str(tmp_path / "test.sqlite3"),
                              "STRIPE_SECRET_KEY": "sk_test_" + "x" * 24,
                              "STRIPE_PUBLISHABLE_KEY": "pk_test_" + "y" * 24,
                              "STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 32})
    app = create_lab_app(settings, http_client=_CannedStripeApi())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_in_test_mode_the_shop_uses_the_payment_element_and_confirm_payment(test_mode_shop,
                                                                            browser):
    with browser_page(browser, 900, 1100) as page:
        scripts = []

        def fake_stripe_js(route):
            scripts.append(route.request.url)
            route.fulfill(status=200, content_type="text/javascript", body=FAKE_STRIPE_JS)

        page.route("https://js.stripe.com/**", fake_stripe_js)
        page.goto(f"{test_mode_shop}/shop/?customer=ada")
        expect(page.locator("#mode")).to_contain_text("Stripe test mode")
        product(page, "Enamel mug").get_by_role("button", name="Buy Enamel mug").click()
        expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
        order_id = page.locator("#order-id").inner_text()
        expect(page.get_by_text("(Payment Element)")).to_be_visible()
        pay(page)
        expect(page.get_by_role("alert")).to_contain_text("Payment declined: Your card was "
                                                          "declined.")
        calls = page.evaluate("stripeCalls")
        # loadStripe added Stripe's own script (js.stripe.com/<release>/stripe.js), once.
        assert len(scripts) == 1 and re.match(r"^https://js\.stripe\.com/\w+/stripe\.js$",
                                              scripts[0])
        assert calls[0] == ["Stripe", "pk_test_" + "y" * 24]
        assert ["elements", {"clientSecret": "pi_shopcanned_secret_canned"}] in calls
        assert ["create", "payment"] in calls
        confirm = [c for c in calls if c[0] == "confirmPayment"]
        assert confirm == [["confirmPayment", {"return_url":
                            f"{test_mode_shop}/shop/?customer=ada&order={order_id}"}, True]]

        # Stripe.js sends the browser back with redirect_status=succeeded; the shop still asks
        # the server, which has had no webhook: the order is not paid, and the shop says so.
        page.goto(f"{test_mode_shop}/shop/?customer=ada&order={order_id}"
                  "&payment_intent=pi_shopcanned&redirect_status=succeeded")
        expect(page.get_by_role("heading", level=2)).to_have_text(
            "Waiting for the server to confirm your payment")
        expect(page.locator("#order-status")).to_have_text("created")
        expect(page.get_by_role("status")).to_contain_text("it says the order is created")
        assert page.problems == []


# --- by keyboard only, as people fill in forms (issue 24) ----------------------------------
# The mock Stripe.js moves the focus by itself (16 digits -> month, ...); the shop puts it
# back, so type-then-Tab, paste-then-Tab and Shift+Tab back all land where the person meant.

# Everything the shop's live region says, in order, recorded in the page; and that it is one
# element from Pay to "paid" (a region added with its text already in it is not announced).
RECORD_LIVE_REGION = """() => {
window.said = [];
new MutationObserver(() => {
  const region = document.getElementById("payment-status");
  if (!region) return;
  window.liveRegion ||= region;
  const text = region.textContent;
  if (text && said[said.length - 1] !== text) said.push(text);
}).observe(document, {subtree: true, childList: true, characterData: true});
}"""


def focused(page: Page, locator) -> bool:
    return locator.evaluate("el => el === document.activeElement")


def tab_to(page: Page, locator, limit: int = 40) -> None:
    """Tab from wherever the focus is (never a click) until `locator` has it."""
    for _ in range(limit):
        if focused(page, locator):
            return
        page.keyboard.press("Tab")
    pytest.fail("Tab never reached the field")


def paste(page: Page, text: str) -> None:
    """Ctrl+V from the clipboard: the whole value in one input event."""
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.keyboard.press("Control+V")


def keyboard_buy(lab, page: Page, name: str, quantity: int) -> str:
    page.evaluate(RECORD_LIVE_REGION)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    quantity_field = page.get_by_role("spinbutton", name=f"Quantity of {name}")
    tab_to(page, quantity_field)
    page.keyboard.press("Control+A")
    page.keyboard.type(str(quantity))
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=f"Buy {name}")).to_be_focused()
    page.keyboard.press("Enter")
    # After Buy the focus is on the checkout's heading; the next Tab is the card number.
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_focused()
    expect(page.get_by_label("Card number")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Card number")).to_be_focused()
    return page.locator("#order-id").inner_text()


def keyboard_card(page: Page, number: str, by: str) -> None:
    """From the card number: the number (typed or pasted), Tab, 12, Tab, 34, Tab, 123, and
    Enter; `by="paste"` also Tabs on to the postal code and Shift+Tabs back first."""
    paste(page, number) if by == "paste" else page.keyboard.type(number)
    for label, text in [("Expiry month (MM)", "12"), ("Expiry year (YY)", "34"), ("CVC", "123")]:
        page.keyboard.press("Tab")
        expect(page.get_by_label(label)).to_be_focused()
        page.keyboard.type(text)
        expect(page.get_by_label(label)).to_be_focused()  # no jump after the last digit
    if by == "paste":
        page.keyboard.press("Tab")
        expect(page.get_by_label("Postal code (optional)")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        expect(page.get_by_label("CVC")).to_be_focused()
    for label, text in [("Card number", number), ("Expiry month (MM)", "12"),
                        ("Expiry year (YY)", "34"), ("CVC", "123"),
                        ("Postal code (optional)", "")]:
        expect(page.get_by_label(label)).to_have_value(text)
    page.keyboard.press("Enter")


def expect_paid_and_announced(lab, page: Page, order_id: str) -> None:
    expect_paid(lab, page, order_id)
    heading = page.get_by_role("heading", name="Payment confirmed: your order is paid")
    expect(heading).to_be_focused()  # the result, where a screen reader starts reading
    status = page.get_by_role("status")  # the one live region, still there, saying the outcome
    expect(status).to_have_text(re.compile(rf"^Payment confirmed: order {order_id} is paid "))
    # The accessibility tree (what a screen reader gets) has the heading and the status.
    tree = page.locator("main").aria_snapshot()
    assert 'heading "Payment confirmed: your order is paid"' in tree, tree
    assert re.search(rf'^ *- status: "?Payment confirmed: order {order_id} is paid', tree,
                     re.M), tree
    said = page.evaluate("said")
    assert said[0] == "Sending the card to Stripe …", said
    assert "Stripe accepted the payment. Now waiting for the server to confirm it …" in said
    assert said[-1].startswith(f"Payment confirmed: order {order_id} is paid"), said
    assert page.evaluate("window.liveRegion === document.getElementById('payment-status')")


@pytest.mark.parametrize("by", ["type", "paste"])
def test_keyboard_only_purchase_type_or_paste_then_tab(lab, customer, page, by):
    open_shop(lab, page, customer)
    order_id = keyboard_buy(lab, page, "Coffee beans, 1 kg", 2)
    keyboard_card(page, SUCCESS, by)
    expect_paid_and_announced(lab, page, order_id)
    clean(page)


def test_keyboard_only_three_d_secure_completed_with_tab_kept_in_the_dialog(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = keyboard_buy(lab, page, "Drip bags, box of 5", 1)
    keyboard_card(page, THREE_DS, "paste")
    dialog = page.get_by_role("dialog", name=re.compile("3D Secure"))
    expect(dialog.get_by_role("button", name="Complete authentication")).to_be_focused()
    for key in ["Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"]:
        page.keyboard.press(key)  # from "Fail" too: the focus never leaves the dialog
        assert dialog.evaluate("d => d.contains(document.activeElement)"), key
    expect(dialog.get_by_role("button", name="Complete authentication")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Fail authentication")).to_be_focused()
    page.keyboard.press("Tab")  # from "Fail": back to "Complete", not out of the dialog
    expect(dialog.get_by_role("button", name="Complete authentication")).to_be_focused()
    page.keyboard.press("Enter")
    expect_paid_and_announced(lab, page, order_id)
    clean(page)


def test_keyboard_only_three_d_secure_failed_then_the_card_number_has_the_focus(lab, customer,
                                                                               page):
    open_shop(lab, page, customer)
    order_id = keyboard_buy(lab, page, "Enamel mug", 1)
    keyboard_card(page, THREE_DS, "type")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Fail authentication")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("3-D Secure authentication failed")
    expect(page.get_by_label("Card number")).to_be_focused()
    assert lab.wait_for_status(order_id, "attempted")["attempts"] == 1
    clean(page)


def test_keyboard_only_decline_then_another_card_pays(lab, customer, page):
    open_shop(lab, page, customer)
    order_id = keyboard_buy(lab, page, "Pour-over kit", 1)
    keyboard_card(page, DECLINED, "type")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Payment declined: Your card was declined.")
    number = page.get_by_label("Card number")
    expect(number).to_be_focused()  # selected: typing replaces it
    expect(number).to_have_attribute("aria-invalid", "false")  # the card was read; the bank said no
    tree = page.locator("main").aria_snapshot()
    assert re.search(r'^ *- alert: "?Payment declined: Your card was declined\.', tree, re.M), tree
    page.keyboard.type(SUCCESS)
    expect(number).to_be_focused()
    page.keyboard.press("Enter")
    expect_paid_and_announced(lab, page, order_id)
    assert lab.order_status(order_id)["attempts"] == 2
    clean(page)


def test_errors_name_only_the_wrong_fields_mark_them_invalid_and_focus_the_first(lab, customer,
                                                                                 page):
    open_shop(lab, page, customer)
    order_id = keyboard_buy(lab, page, "Enamel mug", 1)
    page.keyboard.type(SUCCESS)
    page.keyboard.press("Tab")  # the month left empty
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("CVC")).to_be_focused()
    page.keyboard.type("12")  # one digit short
    page.keyboard.press("Enter")
    error = page.get_by_role("alert")
    expect(error).to_have_text("Enter the expiry month (01 to 12) and the expiry year (two "
                               "digits, YY). Check the CVC (3 digits).")
    month = page.get_by_label("Expiry month (MM)")
    expect(month).to_be_focused()  # the first field to fix
    for label, invalid in [("Card number", "false"), ("Expiry month (MM)", "true"),
                           ("Expiry year (YY)", "true"), ("CVC", "true")]:
        expect(page.get_by_label(label)).to_have_attribute("aria-invalid", invalid)
    expect(month).to_have_accessible_description(error.inner_text())
    expect(page.get_by_label("Card number")).not_to_have_attribute("aria-describedby",
                                                                   "payment-error")
    assert lab.order_status(order_id)["status"] == "created"
    page.keyboard.type("12")  # fixed: no longer announced as invalid
    expect(month).to_have_attribute("aria-invalid", "false")
    expect(month).to_be_focused()
    clean(page)


def test_autofill_fills_every_card_field_and_the_focus_stays(lab, customer, page):
    """The browser's autofill sets each field and fires `input` on each, the focus in the one
    the person chose; the mock would jump on after each."""
    open_shop(lab, page, customer)
    keyboard_buy(lab, page, "Enamel mug", 1)
    page.evaluate("""values => Object.entries(values).forEach(([id, value]) => {
        const input = document.getElementById(id);
        input.value = value;
        input.dispatchEvent(new Event("input", {bubbles: true}));
    })""", {"card-number": SUCCESS, "card-exp-month": "12", "card-exp-year": "34",
            "card-cvc": "123"})
    expect(page.get_by_label("Card number")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Payment confirmed: your order is paid")).to_be_visible(
        timeout=WAIT_FOR_WEBHOOK_MS)
    clean(page)


def test_every_quantity_input_and_form_is_named_after_its_product(lab, customer, page):
    open_shop(lab, page, customer)
    names = page.locator(".products h2").all_inner_texts()
    assert len(names) == 6
    for name in names:
        expect(page.get_by_role("spinbutton", name=f"Quantity of {name}", exact=True)) \
            .to_have_count(1)
        expect(page.get_by_role("form", name=name, exact=True)).to_have_count(1)
    tree = page.locator("main").aria_snapshot()
    assert tree.count('spinbutton "Quantity"') == 0, tree
    clean(page)
