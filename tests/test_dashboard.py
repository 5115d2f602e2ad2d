"""The instructor's dashboard: what it shows after real payments, that it updates by
itself in a real browser, that nothing secret is on it, and that its reset button cannot be
pressed from another site.

A lab of this module's own (its own offline Stripe, its own database) keeps the step counts
exact; the browser test, which resets, runs on a lab of its own (fresh_lab).
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from tutorial_server.lab.app import create_lab_app
from tutorial_server.lab import launcher as lab_module
from tutorial_server import orders
from tutorial_server.catalogue import get_product
from tutorial_server.config import load_settings
from tutorial_server.lab.dashboard import payment_status, step_of, stripe_dashboard_url
from tutorial_server.db import connect, transaction
from tutorial_server.notebook import backend_seen_from_here
from tutorial_server.pricing import price_order
from tutorial_server.notebook.customer import pay_with_test_card

from .browsers import browser_page
from .running_lab import RunningLab, new_webhook_secret, wait_for

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SECRET_SHAPES = re.compile(r"\b(sk|rk)_(test|live)_|\bwhsec_|_secret_")


@pytest.fixture(scope="module")
def dash_lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard-lab")
    running = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    yield running
    running.stop()


def dashboard(lab) -> dict:
    response = lab.get("/api/dashboard")
    assert response.status_code == 200
    return response.json()


def page_token(lab) -> str:
    html = lab.get("/dashboard").text
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def backend_payment_intents(lab) -> list[str]:
    response = requests.get(f"{lab.backend_url}/v1/payment_intents?limit=100", timeout=10,
                            headers=lab.backend_headers)
    return [p["id"] for p in response.json()["data"]]


# --- units ---------------------------------------------------------------------------------

def test_each_order_sits_at_one_step():
    assert step_of("created", None) == 2  # recorded; Stripe not reached yet
    assert step_of("created", "pi_1") == 4  # client has the client secret; nobody paid
    assert step_of("attempted", "pi_1") == 5  # declined, or 3-D Secure pending
    assert step_of("paid", "pi_1") == 6  # webhook verified, fulfilled
    assert step_of("canceled", "pi_1") is None  # off the path


def test_payment_status_is_the_servers_view():
    def row(status, error=None, reason=None):
        return {"status": status, "last_payment_error": json.dumps(error) if error else None,
                "cancellation_reason": reason}

    assert payment_status(row("paid")) == "succeeded"
    assert payment_status(row("created")) == "requires_payment_method"
    assert payment_status(row("attempted", {"code": "card_declined"})) == "requires_payment_method"
    assert payment_status(row("attempted", {"code": "authentication_required"})) == "requires_action"
    assert payment_status(row("canceled", reason="payment_intent_missing")) == "missing"


def test_test_mode_links_each_payment_intent_to_the_stripe_dashboard():
    assert (stripe_dashboard_url("pi_3PqRsT1234", "test")
            == "https://dashboard.stripe.com/test/payments/pi_3PqRsT1234")
    assert stripe_dashboard_url("pi_3PqRsT1234", "offline") is None  # no real Dashboard offline
    for odd in ("pi_x/../../settings", "pi_x?y=1", "ch_123", "", None):
        assert stripe_dashboard_url(odd, "test") is None


def test_test_mode_json_and_page_carry_links_and_no_key(tmp_path):
    secret_key = "sk_test_" + "D" * 24
    settings = load_settings({"STRIPE_SECRET_KEY": secret_key,
                              "STRIPE_PUBLISHABLE_KEY": "pk_test_" + "P" * 24,
                              "STRIPE_WEBHOOK_SECRET": "whsec_" + "W" * 24,
                              "TUTORIAL_DB": str(tmp_path / "test-mode.sqlite3")})
    app = create_lab_app(settings)  # test mode; nothing here calls Stripe
    db = connect(settings.db_path)
    with transaction(db):
        order_id = orders.insert_order(db, price_order(get_product("prod_enamel_mug"), 2), "ada")
        orders.attach_payment_intent(db, order_id, "pi_3TestModeLink")
    db.close()
    client = app.test_client()
    data = client.get("/api/dashboard").get_json()
    assert data["mode"] == "test"
    assert data["payments"] == [{"id": "pi_3TestModeLink", "status": "requires_payment_method",
                                 "amount": "$24.00", "order": order_id,
                                 "dashboard_url": "https://dashboard.stripe.com/test/payments/"
                                                  "pi_3TestModeLink",
                                 "pay_with": "payment_intent"}]
    page = client.get("/dashboard").get_data(as_text=True)
    for text in (json.dumps(data), page):
        assert secret_key not in text and "whsec_" not in text and "pk_test_" not in text


# --- the page and its JSON against a real lab ----------------------------------------------

def test_dashboard_after_a_paid_and_a_declined_order(dash_lab):
    gateway = dash_lab.gateway()
    paid = dash_lab.order("prod_coffee_beans", 1, "dash_paid")["order"]
    declined = dash_lab.order("prod_pour_over_kit", 1, "dash_declined")["order"]
    waiting = dash_lab.order("prod_drip_bags", 3, "dash_waiting")["order"]
    pay_with_test_card(gateway, paid["payment_intent"], "success")
    pay_with_test_card(gateway, declined["payment_intent"], "declined")
    dash_lab.wait_for_status(paid["id"], "paid")
    dash_lab.wait_for_status(declined["id"], "attempted")
    wait_for(lambda: len(dashboard(dash_lab)["deliveries"]) == 2, message="both deliveries")
    # A delivery whose signature is wrong: listed as rejected, and nothing else happens.
    forged = dash_lab.post_event({"id": "evt_forged", "type": "payment_intent.succeeded"},
                                 secret=new_webhook_secret())
    assert forged.status_code == 400

    data = dashboard(dash_lab)
    assert data["mode"] == "offline"
    assert {s["step"]: s["count"] for s in data["steps"]} == {
        1: None, 2: 0, 3: None, 4: 1, 5: 1, 6: 1}
    assert data["totals"]["orders"] == 3 and data["totals"]["paid"] == 1
    assert data["totals"]["collected"] == ["₹1,340.00"]

    by_id = {o["id"]: o for o in data["orders"]}
    assert [by_id[o["id"]]["status"] for o in (paid, declined, waiting)] == [
        "paid", "attempted", "created"]
    assert by_id[paid["id"]]["amount"] == "₹1,340.00" and by_id[paid["id"]]["step"] == 6
    assert by_id[declined["id"]]["payment_error"] == "card_declined"
    assert by_id[waiting["id"]]["amount"] == "¥1,500" and by_id[waiting["id"]]["step"] == 4

    payments = {p["id"]: p for p in data["payments"]}
    assert payments[paid["payment_intent"]] == {
        "id": paid["payment_intent"], "status": "succeeded", "amount": "₹1,340.00",
        "order": paid["id"], "dashboard_url": None,  # offline: no real Dashboard to link to
        "pay_with": "payment_intent"}
    assert payments[declined["payment_intent"]]["status"] == "requires_payment_method"

    deliveries = [(d["type"], d["verified"], d["outcome"]) for d in data["deliveries"]]
    assert ("payment_intent.succeeded", True, "fulfilled") in deliveries
    assert ("payment_intent.payment_failed", True, "attempt_recorded") in deliveries
    assert deliveries[0][:2] == (None, False)  # newest first: the forged one
    assert data["deliveries"][0]["outcome"].startswith("rejected: Invalid signature")
    events = {(e["type"], e["outcome"], e["order"]) for e in data["events"]}
    assert events == {("payment_intent.succeeded", "fulfilled", paid["id"]),
                      ("payment_intent.payment_failed", "attempt_recorded", declined["id"])}


def test_page_and_json_hold_no_secret_and_run_no_inline_script(dash_lab):
    dash_lab.order("prod_enamel_mug", 1, "dash_secrets")
    page = dash_lab.get("/dashboard")
    data = dash_lab.get("/api/dashboard")
    for text in (page.text, data.text):
        assert not SECRET_SHAPES.search(text), SECRET_SHAPES.search(text)
        assert dash_lab.webhook_secret not in text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["Cache-Control"] == "no-store"
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert all('src="' in s or 'type="application/json"' in s for s in scripts), scripts
    # Polling is cheap when nothing changed: the JSON carries an ETag.
    again = dash_lab.get("/api/dashboard", headers={"If-None-Match": data.headers["ETag"]})
    assert again.status_code == 304


def test_cross_site_reset_is_refused_and_changes_nothing(dash_lab):
    dash_lab.order("prod_enamel_mug", 1, "dash_csrf")
    before, intents = dash_lab.snapshot(), backend_payment_intents(dash_lab)
    token, own = page_token(dash_lab), dash_lab.url
    confirm = {"confirm": "reset"}
    forgeries = [
        ({}, None),  # no Origin, no Referer, no token: a bare POST
        ({"Origin": own}, confirm),  # right origin, no token
        # forged token: one character of its signature changed (not the last one, whose low
        # bits are base64 padding that decodes to the same bytes whatever they are)
        ({"Origin": own, "X-CSRF-Token": token[:-5] + ("A" if token[-5] != "A" else "B")
          + token[-4:]}, confirm),
        ({"Origin": own, "X-CSRF-Token": "1.abc"}, confirm),  # expired / garbage
        ({"Origin": "http://attacker.example", "X-CSRF-Token": token}, confirm),  # stolen token
        ({"Origin": "null", "X-CSRF-Token": token}, confirm),  # sandboxed frame
        ({"Referer": "http://attacker.example/page", "X-CSRF-Token": token}, confirm),
    ]
    for headers, body in forgeries:
        response = dash_lab.post("/dashboard/reset", json=body, headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert response.json()["error"]["code"] in ("cross_site_request", "csrf_token_invalid")
    assert dash_lab.get("/dashboard/reset").status_code == 405  # POST only
    unconfirmed = dash_lab.post("/dashboard/reset", json={},
                                headers={"Origin": own, "X-CSRF-Token": token})
    assert unconfirmed.status_code == 400 and unconfirmed.json()["error"]["param"] == "confirm"
    assert dash_lab.snapshot() == before
    assert backend_payment_intents(dash_lab) == intents


def test_a_shared_lab_resets_only_from_its_own_machine_or_with_the_token(tmp_path):
    settings = load_settings({"STRIPE_SECRET_KEY": "sk_test_" + "E" * 24,
                              "STRIPE_PUBLISHABLE_KEY": "pk_test_" + "F" * 24,
                              "STRIPE_WEBHOOK_SECRET": "whsec_" + "G" * 24,
                              "TUTORIAL_DB": str(tmp_path / "shared.sqlite3")})
    app = create_lab_app(settings)
    app.config.update(LISTEN_HOST="0.0.0.0", RESET_TOKEN="open-sesame")
    db = connect(settings.db_path)
    with transaction(db):
        orders.insert_order(db, price_order(get_product("prod_enamel_mug"), 1), "ada")
    db.close()
    # A learner's laptop (in-process requests from a documentation address; no traffic).
    learner = app.test_client()
    learner.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    page = learner.get("/dashboard").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert learner.get("/api/dashboard").get_json()["reset"] == {"allowed": True,
                                                                 "needs_token": True, "resets": 0}
    headers = {"Origin": "http://localhost", "X-CSRF-Token": token}  # the test client's host
    refused = learner.post("/dashboard/reset", json={"confirm": "reset"}, headers=headers)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "reset_not_allowed"
    wrong = learner.post("/dashboard/reset", json={"confirm": "reset", "reset_token": "guess"},
                         headers=headers)
    assert wrong.status_code == 403
    assert sqlite3.connect(settings.db_path).execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
    done = learner.post("/dashboard/reset", json={"confirm": "reset", "reset_token": "open-sesame"},
                        headers=headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert sqlite3.connect(settings.db_path).execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0

    # Without a reset token, only the server's own machine may reset.
    app.config["RESET_TOKEN"] = None
    assert learner.get("/api/dashboard").get_json()["reset"] == {"allowed": False,
                                                                 "needs_token": False,
                                                                 "resets": 1}  # the one above
    assert learner.post("/dashboard/reset", json={"confirm": "reset", "reset_token": ""},
                        headers=headers).status_code == 403
    instructor = app.test_client()  # REMOTE_ADDR 127.0.0.1
    assert instructor.get("/api/dashboard").get_json()["reset"]["allowed"] is True


def test_serve_on_every_interface_warns_what_it_exposes(tmp_path, monkeypatch):
    """`serve --host 0.0.0.0`, with the socket itself bound on 127.0.0.1: tests never listen on
    (or send to) a non-loopback address."""
    real_make_server = lab_module.make_server
    monkeypatch.setattr(lab_module, "make_server",
                        lambda host, port, app, **kw: real_make_server("127.0.0.1", port, app, **kw))
    monkeypatch.setattr(lab_module, "check_port_free", lambda host, port: None)
    settings = load_settings({"TUTORIAL_DB": str(tmp_path / "class.sqlite3"), "PORT": "0"})
    shared = lab_module.Lab(settings, host="0.0.0.0")
    try:
        shared.start()
        banner = shared.banner()
        assert shared.app.config["LISTEN_HOST"] == "0.0.0.0"
    finally:
        shared.stop()
    assert "WARNING: listening on 0.0.0.0" in banner
    for exposed in ("create orders", "read the dashboard", "send webhooks",
                    "Resetting the lab from the dashboard works only from this machine",
                    "TUTORIAL_SERVER_URL="):
        assert exposed in banner
    assert lab_module.shared_lab_warning("127.0.0.1", 4242, False) == []
    assert lab_module.shared_lab_warning("::1", 4242, False) == []
    assert "--reset-token" in "\n".join(lab_module.shared_lab_warning("0.0.0.0", 4242, True))


def test_a_learner_on_a_class_lab_pays_on_the_instructors_offline_stripe():
    # The server reports its stand-in as 127.0.0.1: from a learner's laptop that is the
    # instructor's machine, reached by the server's own host name.
    assert backend_seen_from_here("http://teacher-laptop:4242", "http://127.0.0.1:8420") == \
        "http://teacher-laptop:8420"
    assert backend_seen_from_here("http://192.0.2.7:4242/", "http://127.0.0.1:8420") == \
        "http://192.0.2.7:8420"
    # On the same machine, and in test mode (no stand-in), nothing changes.
    assert backend_seen_from_here("http://127.0.0.1:4242", "http://127.0.0.1:8420") == \
        "http://127.0.0.1:8420"
    assert backend_seen_from_here("http://teacher-laptop:4242", None) is None


# --- in a real browser -------------------------------------------------------------------

@pytest.fixture
def page(browser):
    with browser_page(browser, 1600, 900) as page:  # projector size; every console error counts
        yield page


def test_dashboard_updates_itself_and_resets_after_confirmation(fresh_lab, page: Page):
    gateway = fresh_lab.gateway()
    declined = fresh_lab.order("prod_pour_over_kit", 1, "ada")["order"]
    pay_with_test_card(gateway, declined["payment_intent"], "declined")
    fresh_lab.order("prod_drip_bags", 3, "grace")
    fresh_lab.wait_for_status(declined["id"], "attempted")

    page.goto(f"{fresh_lab.url}/dashboard")
    expect(page.locator("#live")).to_contain_text("live")
    expect(page.locator('.step[data-step="5"] .step-count')).to_have_text("1")
    expect(page.locator("#orders tbody tr")).to_have_count(2)
    page.evaluate("window.notReloaded = true")

    # A learner pays; the projector shows it without anyone touching the page.
    paid = fresh_lab.order("prod_coffee_beans", 2, "linus")["order"]
    pay_with_test_card(gateway, paid["payment_intent"], "success")
    row = page.locator("#orders tbody tr", has_text="linus")
    expect(row).to_contain_text("paid", timeout=15_000)
    expect(row).to_contain_text("₹2,680.00")
    expect(page.locator('.step[data-step="6"] .step-count')).to_have_text("1")
    expect(page.locator("#deliveries tbody")).to_contain_text("payment_intent.succeeded")
    expect(page.locator("#payments tbody")).to_contain_text("succeeded")
    assert page.evaluate("window.notReloaded") is True
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))
    # A small projector (1280 x 720) shows the same layout, scaled: nothing runs off screen.
    page.set_viewport_size({"width": 1280, "height": 720})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # Another site tries to press reset with a form (the token even stolen): refused.
    before, intents = fresh_lab.snapshot(), backend_payment_intents(fresh_lab)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    attacker = (f'<form id="f" method="post" action="{fresh_lab.url}/dashboard/reset">'
                f'<input name="confirm" value="reset"><input name="csrf" value="{token}"></form>')
    attacker_page = page.context.new_page()
    attacker_page.route("http://attacker.test/**", lambda route: route.fulfill(
        content_type="text/html", body=attacker))
    attacker_page.goto("http://attacker.test/")
    with attacker_page.expect_navigation():
        attacker_page.evaluate("document.getElementById('f').submit()")
    assert json.loads(attacker_page.locator("body").inner_text())["error"]["code"] == \
        "cross_site_request"
    attacker_page.close()
    assert fresh_lab.snapshot() == before and backend_payment_intents(fresh_lab) == intents

    # Cancel changes nothing; confirming empties the lab, offline Stripe included.
    page.get_by_role("button", name="Reset lab…").click()
    expect(page.get_by_role("dialog")).to_contain_text("Reset the lab?")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert fresh_lab.snapshot() == before
    # The page says "lab reset" only until its next refresh (every 1.5 s): keep every text the
    # status line shows, so that a slow moment cannot let the message come and go between looks.
    page.evaluate("""() => {
        const live = document.getElementById("live");
        window.liveSaid = [];
        new MutationObserver(() => window.liveSaid.push(live.textContent))
            .observe(live, {childList: true, characterData: true, subtree: true});
    }""")
    page.get_by_role("button", name="Reset lab…").click()
    page.get_by_role("button", name="Yes, reset the lab").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("#orders tbody")).to_contain_text("nothing yet")
    expect(page.locator('.step[data-step="6"] .step-count')).to_have_text("0")
    page.wait_for_function("window.liveSaid.some(text => text.includes('lab reset'))")
    assert all(rows == [] for rows in fresh_lab.snapshot().values())
    assert backend_payment_intents(fresh_lab) == []
    assert page.evaluate("window.notReloaded") is True
    assert page.problems == []  # type: ignore[attr-defined]
