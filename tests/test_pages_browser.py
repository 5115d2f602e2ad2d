"""The pages as a classmate and a phone see them, in real Chromium.

A class server is reached under its own name, not 127.0.0.1: Chromium maps the name
classroom.test to 127.0.0.1 itself (--host-resolver-rules), so the test still talks to loopback
only, and the page's origin is http://classroom.test:PORT. Every request the page makes is
recorded: anything for another origin (such as the offline Stripe's own 127.0.0.1 port, which
on a classmate's laptop is their own machine) fails the test.
"""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from .browsers import CHROMIUM_ARGS, SCREENSHOTS, browser_page, screenshot
from .card_form import THREE_DS, fill_card, pay
from .running_lab import RunningLab, new_webhook_secret

CLASS_HOST = "classroom.test"


@pytest.fixture(scope="module")
def browser():
    """Chromium that resolves the class host name to 127.0.0.1 (and nothing else differently)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {CLASS_HOST} 127.0.0.1"])
        yield browser
        browser.close()


@pytest.fixture
def class_lab(tmp_path):
    """A lab as the instructor's machine runs it, answering to the class host name. It binds
    127.0.0.1 only (tests never reach out); the browser reaches it as classroom.test."""
    running = RunningLab(tmp_path / "class.sqlite3", new_webhook_secret(), tmp_path / "class.log",
                         env={"TUTORIAL_ALLOWED_HOSTS": CLASS_HOST})
    yield running.start()
    running.stop()


def record_traffic(page: Page) -> tuple[list[str], list[str]]:
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return requested, failed


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_a_classmate_pays_under_the_class_host_name_talking_to_that_origin_only(
        class_lab, browser, customer):
    port = urlsplit(class_lab.url).port
    site = f"http://{CLASS_HOST}:{port}"
    order = class_lab.order("prod_enamel_mug", 1, customer)["order"]
    with browser_page(browser, 900, 1100) as page:  # every console error counts
        requested, failed = record_traffic(page)
        page.goto(f"{site}/checkout/{order['id']}")
        expect(page.get_by_label("Card number")).to_be_visible()  # the mock Stripe.js loaded
        fill_card(page, THREE_DS)  # both of the mock's calls: the token, the 3-D Secure answer
        pay(page)
        page.get_by_role("dialog").get_by_role("button", name="Complete authentication").click()
        expect(page).to_have_url(f"{site}/checkout/{order['id']}/complete")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Payment confirmed: your order is paid", timeout=10_000)
        screenshot(page, "class-host-paid")
        assert page.problems == [] and failed == []
    assert requested and {origin(url) for url in requested} == {site}, requested
    assert any("/offline-stripe/v1/tokens" in url for url in requested)
    assert any("/_authenticate?success=true" in url for url in requested)
    paid = class_lab.order_status(order["id"])  # the server's own view
    assert paid["status"] == "paid" and paid["amount_paid"] == paid["amount"]


def test_the_3ds_challenge_is_a_dialog_on_screen_on_a_phone(lab, browser, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    width, height = 320, 568
    with browser_page(browser, width, height) as page:
        page.goto(f"{lab.url}/checkout/{order['id']}")
        fill_card(page, THREE_DS)
        pay(page)
        dialog = page.get_by_role("dialog", name=re.compile("3D Secure"))
        expect(dialog).to_be_visible()
        expect(dialog).to_have_attribute("aria-modal", "true")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # wherever the page is
        box = dialog.bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, box
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, box
        approve = dialog.get_by_role("button", name="Complete authentication")
        fail = dialog.get_by_role("button", name="Fail authentication")
        a, b = approve.bounding_box(), fail.bounding_box()
        apart = max(b["x"] - (a["x"] + a["width"]), a["x"] - (b["x"] + b["width"]),
                    b["y"] - (a["y"] + a["height"]), a["y"] - (b["y"] + b["height"]))
        assert apart >= 8, (a, b)  # not touching
        for button in (a, b):
            assert 0 <= button["x"] and button["x"] + button["width"] <= width, button
        assert dialog.evaluate("d => d.contains(document.activeElement)")
        assert page.evaluate("document.querySelector('main').inert")  # the page waits behind it
        page.screenshot(path=str(SCREENSHOTS / "3ds-challenge-320px.png"))  # what is on screen
        page.keyboard.press("Escape")  # closing the challenge fails it, as with Stripe's
        expect(dialog).to_have_count(0)
        expect(page.get_by_role("alert")).to_contain_text("3-D Secure authentication failed")
        assert not page.evaluate("document.querySelector('main').inert")
        assert page.problems == []
    assert lab.wait_for_status(order["id"], "attempted")["attempts"] == 1


def test_every_page_has_a_favicon(lab, browser, customer):
    r = lab.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in r.content
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    with browser_page(browser, 900, 900) as page:
        requested, failed = record_traffic(page)
        for path in (f"/checkout/{order['id']}", f"/checkout/{order['id']}/complete?wait=1",
                     "/checkout/order_doesnotexist00", "/dashboard"):
            page.goto(lab.url + path)
            icon = page.locator("link[rel=icon]").get_attribute("href")
            assert icon and not icon.startswith("data:"), path
            assert page.request.get(page.evaluate("document.querySelector('link[rel=icon]').href")
                                    ).status == 200, path
        assert [f for f in failed if "favicon" in f or "icon" in f] == []


def test_the_reset_token_field_is_hidden_on_a_local_lab(lab, browser):
    with browser_page(browser, 1200, 800) as page:
        page.goto(f"{lab.url}/dashboard")
        page.get_by_role("button", name="Reset lab…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("button", name="Yes, reset the lab")).to_be_enabled()
        expect(page.locator("#reset-token-label")).to_be_hidden()  # no token is set here
        expect(page.get_by_label("Instructor reset token")).to_be_hidden()
        screenshot(page, "dashboard-reset-local")
        dialog.get_by_role("button", name="Cancel").click()
        assert page.problems == []
