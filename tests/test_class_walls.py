"""Walls in a shared class, over a real network: Mallory, a classmate on another address (a
network namespace), against a class lab (`serve --host <address>`, a real process with its
offline Stripe). Ada is a learner on this machine's classroom address (not loopback, so not
the instructor). The same rules in process, case by case: tests/fast/test_learners.py.
"""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tutorial_server.notebook import LabClient
from tutorial_server.notebook.customer import pay_with_test_card

from .browsers import browser_page
from .card_form import SUCCESS, fill_card, pay
from .classroom_network import RESET_TOKEN, class_lab, room  # noqa: F401 (fixtures)
from .running_lab import ROOT

def ada_says(lab, method, path, key=None, **kw):
    headers = kw.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, lab.url + path, headers=headers, timeout=15, **kw)


def test_mallory_cannot_read_cancel_refund_or_check_out_adas_orders(room, class_lab):
    lab = class_lab
    assert urlsplit(lab.url).hostname == room.host_address
    joined = ada_says(lab, "POST", "/api/class/join", json={"customer": "ada"})
    assert joined.status_code == 201, joined.text
    key = joined.json()["learner_key"]
    order = {"productId": "prod_drip_bags", "quantity": 1, "customer": "ada"}
    paid = ada_says(lab, "POST", "/api/orders", key, json=order).json()
    pay_with_test_card(lab.gateway(), paid["order"]["payment_intent"], "success")
    lab.wait_for_status(paid["order"]["id"], "paid")
    unpaid = ada_says(lab, "POST", "/api/orders", key, json=order).json()
    paid_id, unpaid_id = paid["order"]["id"], unpaid["order"]["id"]
    stand_in_port = urlsplit(lab.backend_url).port

    base = lab.url
    attacks = {
        "join as ada": {"method": "POST", "url": f"{base}/api/class/join",
                        "json": {"customer": "ada"}},
        "refund": {"method": "POST", "url": f"{base}/api/orders/{paid_id}/refund", "json": {},
                   "headers": {"Idempotency-Key": uuid.uuid4().hex}},
        "cancel": {"method": "POST", "url": f"{base}/api/orders/{unpaid_id}/cancel"},
        "sync": {"method": "POST", "url": f"{base}/api/orders/{unpaid_id}/sync"},
        "checkout": {"method": "GET", "url": f"{base}/checkout/{unpaid_id}"},
        "confirm": {"method": "POST", "url": f"{base}/checkout/{unpaid_id}/confirm",
                    "json": {"token": "tok_visa"}},
        "order as ada": {"method": "POST", "url": f"{base}/api/orders", "json": order},
        "read": {"method": "GET", "url": f"{base}/api/orders/{unpaid_id}"},
        "dashboard": {"method": "GET", "url": f"{base}/api/dashboard"},
        "trace": {"method": "GET", "url": f"{base}/api/orders/{unpaid_id}/trace"},
        "stand-in": {"connect": [room.host_address, stand_in_port]},
    }
    traces_before = {i: lab.get(f"/api/orders/{i}/trace").json() for i in (paid_id, unpaid_id)}
    assert ada_says(lab, "GET", "/api/dashboard").status_code == 200
    answers = dict(zip(attacks, room.classmate(list(attacks.values()))))
    statuses = {name: a.get("status") for name, a in answers.items() if "status" in a}
    assert statuses == {"join as ada": 409, "refund": 403, "cancel": 403, "sync": 403,
                        "checkout": 403, "confirm": 403, "order as ada": 403, "read": 200,
                        "dashboard": 200, "trace": 200}
    assert not any("_secret_" in a.get("body", "") for a in answers.values())
    assert json.loads(answers["cancel"]["body"])["error"]["code"] == "order_not_yours"
    assert answers["stand-in"]["connected"] is False, "the offline Stripe is on the network"

    # Nothing changed: Ada's paid order is hers, the unpaid one still open, their stories
    # (traces) untouched by Mallory's requests.
    for order_id, before in traces_before.items():
        assert lab.get(f"/api/orders/{order_id}/trace").json() == before
    assert lab.order_status(paid_id)["status"] == "paid"
    assert lab.order_status(unpaid_id)["status"] == "created"
    inventory = ada_says(lab, "GET", "/api/customers/ada/inventory").json()["data"]
    assert [item["order"] for item in inventory] == [paid_id]

    # The owner and the instructor still can.
    link = f"{base}{unpaid['checkout_url']}"
    assert room.classmate([{"method": "GET", "url": link}])[0]["status"] == 200  # the link works
    assert ada_says(lab, "POST", f"/api/orders/{unpaid_id}/cancel", key).status_code == 200
    refund = ada_says(lab, "POST", f"/api/orders/{paid_id}/refund", key, json={},
                      headers={"Idempotency-Key": uuid.uuid4().hex})
    assert refund.status_code == 201, refund.text
    assert ada_says(lab, "POST", f"/api/orders/{paid_id}/sync",
                    RESET_TOKEN).status_code == 200  # the instructor's token


def test_mallorys_own_order_is_hers_to_change(room, class_lab):
    lab = class_lab
    order = {"productId": "prod_drip_bags", "quantity": 1, "customer": "mallory"}
    created = room.classmate([{"method": "POST", "url": f"{lab.url}/api/orders",
                               "json": order}])[0]
    assert created["status"] == 201
    answer = json.loads(created["body"])
    order_id = answer["order"]["id"]
    cancel = {"method": "POST", "url": f"{lab.url}/api/orders/{order_id}/cancel"}
    without, with_code = room.classmate(
        [cancel, {**cancel, "headers": {"X-Order-Access": answer["access"]}}])
    assert (without["status"], with_code["status"]) == (403, 200)


def test_a_learner_pays_on_stripes_page_and_a_classmate_never_sees_the_session(room, class_lab):
    """The other way in a class: Ada's notebook (no key for the class lab's offline Stripe)
    pays her session order on the lab's hosted page through the merchant server alone; Mallory
    reads the order, the dashboard and the trace and gets only the start of the session id."""
    lab = class_lab
    key = ada_says(lab, "POST", "/api/class/join", json={"customer": "ada_s"}).json()["learner_key"]
    answer = ada_says(lab, "POST", "/api/orders", key, json={
        "productId": "prod_drip_bags", "quantity": 1, "customer": "ada_s",
        "payWith": "checkout_session"}).json()
    order_id, session_id = answer["order"]["id"], answer["checkout_session"]["id"]
    learner = LabClient(url=lab.url, mode="offline", backend_url=None, customer="ada_s",
                        learner_key=key, class_mode=True)
    paid = learner.pay_on_stripes_page(answer["checkout_session"], "3ds", approve=True)
    assert paid["payment_intent"]["status"] == "succeeded"
    lab.wait_for_status(order_id, "paid", timeout=15)
    reads = room.classmate([{"method": "GET", "url": f"{lab.url}{path}"} for path in (
        f"/api/orders/{order_id}", "/api/dashboard", f"/api/orders/{order_id}/trace")])
    assert [r["status"] for r in reads] == [200, 200, 200]
    assert all(session_id not in r["body"] for r in reads)
    assert json.loads(reads[0]["body"])["order"]["checkout_session"] == session_id[:14] + "\u2026"


def test_in_a_class_browser_pages_pay_their_own_orders_and_refuse_others(class_lab, browser):
    """Chromium on a classroom address (not loopback: a learner, not the instructor): the
    checkout link a notebook prints pays; the bare checkout address is refused; the React shop
    pays the order it made (it sends the order's access code)."""
    lab = class_lab
    key = ada_says(lab, "POST", "/api/class/join", json={"customer": "grace"}).json()["learner_key"]
    answer = ada_says(lab, "POST", "/api/orders", key, json={
        "productId": "prod_drip_bags", "quantity": 1, "customer": "grace"}).json()
    order_id = answer["order"]["id"]
    with browser_page(browser, 900, 1100) as page:
        page.goto(f"{lab.url}/checkout/{order_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "This order is not yours to pay")
        assert "_secret_" not in page.content()
        page.problems.clear()  # the browser logs that 403: expected here

        page.goto(lab.url + answer["checkout_url"])
        fill_card(page, SUCCESS)
        pay(page)
        expect(page.locator("body")).to_contain_text("paid", timeout=15_000)
        lab.wait_for_status(order_id, "paid", timeout=15)
        assert page.problems == []

    if not (ROOT / "client" / "dist" / "index.html").is_file():
        pytest.fail("The React shop is not built: run `make client`.", pytrace=False)
    with browser_page(browser, 900, 1100) as page:
        page.goto(f"{lab.url}/shop/?customer=visitor_shop")
        item = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Coffee beans, 1 kg"))
        item.get_by_role("button", name="Buy Coffee beans, 1 kg").click()
        expect(page.get_by_label("Card number")).to_be_visible()
        shop_order = page.locator("#order-id").inner_text()
        fill_card(page, SUCCESS)
        pay(page)
        expect(page.get_by_role("heading", level=2)).to_have_text(
            "Payment confirmed: your order is paid", timeout=15_000)
        assert lab.order_status(shop_order)["status"] == "paid"
        assert page.problems == []

