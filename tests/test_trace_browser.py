"""The trace's Mermaid text is valid, and draws: Chromium renders it with the Mermaid library the
server serves (no CDN), on the dashboard under its strict CSP, without a parse error or any
console error. A screenshot goes to test-artifacts/screenshots/trace-dashboard.png."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tutorial_server.lab.shop import DIST
from tutorial_server.trace.diagram import CONDENSE_OVER

from .browsers import browser_page
from .card_form import DECLINED, SUCCESS, card_token
from .running_lab import ROOT
from .signing import sign

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module", autouse=True)
def mermaid_built():
    if not (DIST / "vendor" / "mermaid.min.js").is_file():
        pytest.fail("The Mermaid library is not built: run `make client` (npm, client/package.json).")


def busy_order(lab, customer) -> str:
    """An order with a bit of everything: a replayed request, a decline, a retry on a fresh
    PaymentIntent, a paid webhook, the same webhook again, and a forged copy."""
    key = f"{customer}-trace"
    order = lab.order("prod_enamel_mug", 2, customer, headers={"Idempotency-Key": key})["order"]
    lab.order("prod_enamel_mug", 2, customer, headers={"Idempotency-Key": key})
    lab.post(f"/checkout/{order['id']}/confirm", json={"token": card_token(lab, DECLINED)})
    lab.wait_for_status(order["id"], "attempted")
    lab.post(f"/checkout/{order['id']}/confirm", json={"token": card_token(lab, SUCCESS)})
    paid = lab.wait_for_status(order["id"], "paid")
    event = lab.gateway().events_about(paid["payment_intent"], "payment_intent.succeeded")[0]
    payload = json.dumps(event).encode()
    for secret in (lab.webhook_secret, "whsec_forged"):
        lab.post("/webhook", data=payload, headers={"Stripe-Signature": sign(payload, secret),
                                                    "Content-Type": "application/json"})
    # A signed event whose id is made of Mermaid's syntax: drawn, as plain text.
    lab.post_event({**event, "id": EVIL_EVENT_ID})
    return order["id"]


EVIL_EVENT_ID = 'evt_<b>x</b>;#1%%{init}%%:y"`\\\r\u00a0Note over C,St: click'



def test_the_dashboard_draws_an_orders_trace_with_the_served_mermaid(lab, customer, browser):
    order_id = busy_order(lab, customer)
    body = lab.get(f"/api/orders/{order_id}/trace").json()
    text = body["mermaid"]
    assert len(body["data"]) > CONDENSE_OVER
    requests_seen: list[str] = []
    with browser_page(browser, 1280, 720) as page:
        page.on("request", lambda r: requests_seen.append(r.url))
        page.goto(f"{lab.url}/dashboard#follow={order_id}")
        diagram = page.locator("#trace-diagram svg")
        expect(diagram).to_be_visible(timeout=15_000)
        # A long trace comes condensed: one arrow per step; "full" draws every message.
        arrows = page.locator("#trace-diagram svg :is(.messageLine0, .messageLine1)")
        expect(arrows).to_have_count(len({m["step"] for m in body["data"]}), timeout=15_000)
        assert page.evaluate("(text) => window.mermaid.parse(text)", body["condensed"])
        page.get_by_label("full: every message").check()
        # Drawing 50 messages takes a while on a busy machine: waits of 15 s, as above.
        expect(page.locator("#trace-text")).not_to_contain_text("condensed:", timeout=15_000)
        expect(page.locator("#trace-text")).to_contain_text("6. webhook", timeout=15_000)
        text = page.locator("#trace-text").text_content()  # the trace may have grown since
        expect(arrows).to_have_count(len([line for line in text.splitlines()[4:]
                                          if ": " in line and not line.startswith("    Note")]),
                                     timeout=15_000)
        # Mermaid itself says the text parses (it throws on a parse error).
        assert page.evaluate("(text) => window.mermaid.parse(text)", text)
        drawn = page.evaluate("document.querySelector('#trace-diagram svg').textContent")
        assert "Syntax error" not in drawn
        for expected in ("1. POST /api/orders", "3. POST /v1/payment_intents", "declined",
                         "6. webhook payment_intent.succeeded", "duplicate",
                         # The evil id as drawn: look-alikes for Mermaid's syntax.
                         "evt_\u2039b\u203ax\u2039/b\u203a\uff1b\uff031\uff05\uff05"
                         "\uff5binit\uff5d\uff05\uff05:y\u201d\u02cb\uff3c Note over C,St: click"):
            # Labels wrap into lines of their own: compare without the spaces.
            assert "".join(expected.split()) in "".join(drawn.split()), expected
        assert "refused" not in drawn  # the forged copy is listed on the dashboard, not drawn
        assert page.locator("#trace-diagram svg .note").count() == 0  # no injected Note
        # Mermaid's stylesheet reached the page (adopted, the CSP allows no inline style).
        assert page.evaluate("document.adoptedStyleSheets.length") >= 1
        page.locator("#trace-diagram").scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#view-follow").screenshot(path=str(SCREENSHOTS / "trace-dashboard.png"))
        assert page.problems == [], page.problems  # CSP reports and script errors included
    assert all(url.startswith(lab.url) for url in requests_seen), "a request left the lab"
    assert f"{lab.url}/dashboard/vendor/mermaid.min.js" in requests_seen


def test_without_the_library_the_dashboard_shows_the_text(lab, customer, browser):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    with browser_page(browser, 1280, 720, console_error=lambda t: "mermaid.min.js" not in t
                      and "404" not in t) as page:
        page.route("**/dashboard/vendor/mermaid.min.js", lambda route: route.fulfill(status=404))
        page.goto(f"{lab.url}/dashboard#follow={order['id']}")
        expect(page.locator("#trace-status")).to_contain_text("make client")
        expect(page.locator("#trace-text")).to_contain_text("sequenceDiagram")
        assert page.problems == []


def test_the_success_page_links_to_what_just_happened(lab, customer, browser):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    lab.post(f"/checkout/{order['id']}/confirm", json={"token": card_token(lab, SUCCESS)})
    lab.wait_for_status(order["id"], "paid")
    with browser_page(browser, 1280, 720) as page:
        page.goto(f"{lab.url}/checkout/{order['id']}/complete")
        page.get_by_role("link", name="What just happened?").click()
        expect(page.locator("#trace-diagram svg")).to_be_visible(timeout=15_000)
        assert order["id"] in page.url
        # Condensed (a paid order holds 25 messages or so), one arrow per step; then in full,
        # every message of the trace (its label wraps, so count, not read, them).
        body = lab.get(f"/api/orders/{order['id']}/trace").json()
        assert len(body["data"]) > CONDENSE_OVER
        drawn = page.locator("#trace-diagram svg :is(.messageLine0, .messageLine1)")
        expect(drawn).to_have_count(len({m["step"] for m in body["data"]}), timeout=15_000)
        page.get_by_label("full: every message").check()
        expect(page.locator("#trace-text")).not_to_contain_text("condensed:", timeout=15_000)
        text = page.locator("#trace-text").text_content()
        arrows = [line for line in text.splitlines()[4:] if ": " in line]
        assert any("5. POST /checkout/" in a and "/confirm" in a for a in arrows)
        expect(drawn).to_have_count(len(arrows), timeout=15_000)
        assert page.problems == []
