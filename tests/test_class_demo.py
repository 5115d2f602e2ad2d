"""The instructor's hour: a demo order in one command, the per-learner view (who has not
started), reset that clears everything the dashboard shows, `serve --fresh`, a quiet terminal,
the class addresses in the banner, and an HTML 404 for a mistyped page.

Real labs (`serve` and localstripe as processes) over HTTP on loopback; the banner's machine
addresses are only computed, never contacted."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import requests

from tutorial_server.lab import launcher as lab_module
from tutorial_server.lab.dashboard import learner_progress
from tutorial_server.db import connect, init_db
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import ROOT, RunningLab, lab_env, new_webhook_secret, wait_for


def dashboard(lab) -> dict:
    return lab.get("/api/dashboard").json()


def csrf_token(lab) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', lab.get("/dashboard").text).group(1)


def test_the_learners_view_lists_a_learner_who_has_not_ordered_yet(tmp_path):
    roster = tmp_path / "class.txt"
    roster.write_text("# the class\nada\ngrace\n\nlinus  # back row\n")
    lab = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                     args=["--roster", str(roster)]).start()
    try:
        learners = {row["customer"]: row for row in dashboard(lab)["learners"]}
        assert set(learners) == {"ada", "grace", "linus"}
        assert all(row["status"] == "not started" and row["step"] is None
                   for row in learners.values())

        paid = lab.order("prod_drip_bags", 1, "grace")["order"]
        pay_with_test_card(lab.gateway(), paid["payment_intent"], "success")
        lab.wait_for_status(paid["id"], "paid")
        lab.order("prod_drip_bags", 1, "linus")
        lab.order("prod_drip_bags", 1, "visitor")  # not on the roster: listed once they order

        data = dashboard(lab)
        rows = data["learners"]
        assert [r["customer"] for r in rows][0] == "ada"  # slowest first: has not started
        by_name = {r["customer"]: r for r in rows}
        assert by_name["ada"]["step"] is None and by_name["ada"]["orders"] == 0
        assert by_name["grace"]["step"] == 6 and by_name["grace"]["status"] == "paid"
        assert by_name["linus"]["step"] == 4 and by_name["linus"]["since"] <= time.time()
        assert by_name["visitor"]["on_roster"] is False and by_name["visitor"]["step"] == 4
        assert data["roster_size"] == 3
    finally:
        lab.stop()


def test_learner_progress_keeps_the_furthest_step_and_when_it_was_reached(tmp_path):
    db_path = tmp_path / "unit.sqlite3"
    init_db(db_path)
    db = connect(db_path)
    rows = [("o1", "ada", "created", "pi_1", 100, None), ("o2", "ada", "paid", "pi_2", 200, 260),
            ("o3", "bob", "canceled", "pi_3", 300, None), ("o4", "cy", "created", None, 400, None)]
    for oid, customer, status, pi, created, paid_at in rows:
        db.execute("INSERT INTO orders (id, product_id, quantity, customer, subtotal, discount,"
                   " amount, currency, receipt, status, payment_intent, created_at, paid_at)"
                   " VALUES (?, 'prod_drip_bags', 1, ?, 500, 0, 500, 'jpy', 'r', ?, ?, ?, ?)",
                   (oid, customer, status, pi, created, paid_at))
    db.execute("INSERT INTO webhook_events VALUES ('evt_1', 'payment_intent.payment_failed',"
               " 'pi_1', 'o1', 'attempt_recorded', 150)")
    progress = {r["customer"]: r for r in learner_progress(db, ("dee",))}
    db.close()
    assert (progress["ada"]["step"], progress["ada"]["since"], progress["ada"]["orders"]) == (6, 260, 2)
    assert progress["bob"]["step"] is None and progress["bob"]["status"] == "canceled"
    assert (progress["cy"]["step"], progress["cy"]["since"]) == (2, 400)
    assert progress["dee"]["status"] == "not started"


def test_reset_clears_the_webhook_deliveries_too(fresh_lab):
    order = fresh_lab.order("prod_drip_bags", 1, "reset_me")["order"]
    pay_with_test_card(fresh_lab.gateway(), order["payment_intent"], "success")
    fresh_lab.wait_for_status(order["id"], "paid")
    wait_for(lambda: dashboard(fresh_lab)["totals"]["deliveries"] >= 1, message="a delivery")
    assert dashboard(fresh_lab)["deliveries"] != []

    reset = fresh_lab.post("/dashboard/reset", json={"confirm": "reset"},
                           headers={"Origin": fresh_lab.url, "X-CSRF-Token": csrf_token(fresh_lab)})
    assert reset.status_code == 200, reset.text
    data = dashboard(fresh_lab)
    assert data["deliveries"] == [] and data["totals"]["deliveries"] == 0
    assert data["orders"] == [] and data["events"] == [] and data["learners"] == []
    assert data["totals"]["orders"] == 0


def test_demo_command_prints_a_checkout_link_that_opens(fresh_lab):
    started = time.monotonic()
    demo = subprocess.run(
        [sys.executable, "-m", "tutorial_server.lab", "demo", "--db", str(fresh_lab.db_path)],
        cwd=ROOT, env=lab_env(fresh_lab.db_path, None), capture_output=True, text=True,
        timeout=60)
    print(f"demo command: {time.monotonic() - started:.2f} s")  # a number, not an assert
    assert demo.returncode == 0, demo.stderr
    link = re.search(r"Checkout\s+(http://127\.0\.0\.1:\d+/checkout/(order_\w+))", demo.stdout)
    assert link, demo.stdout
    page = requests.get(link.group(1), timeout=10)
    assert page.status_code == 200 and "Pay by card" in page.text
    order = fresh_lab.order_status(link.group(2))
    assert order["customer"] == "instructor" and order["status"] == "created"
    assert f"/dashboard#follow={link.group(2)}" in demo.stdout
    assert "sk_" not in demo.stdout and "whsec_" not in demo.stdout


def test_fresh_start_is_empty_and_the_terminal_is_quiet(tmp_path):
    lab = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                     args=["--reconcile-every", "1"]).start()
    try:
        # The background reconcile's webhook check has come back through /webhook at least once.
        wait_for(lambda: (dashboard(lab)["background"]["webhook_watchdog"] or {}).get("checks"),
                 timeout=20, message="a webhook check")
        assert dashboard(lab)["background"]["webhook_watchdog"]["healed"] == 0
        old = lab.order("prod_drip_bags", 1, "last_class")["order"]
        for _ in range(3):  # a projector polling, a success page asking
            assert lab.get("/api/dashboard").status_code == 200
            assert lab.get(f"/api/orders/{old['id']}").status_code == 200
        log = lab.log()
        assert "POST /api/orders 201" in log  # what changes things is shown
        assert "GET /api/dashboard" not in log and "GET /api/orders/" not in log
        assert "Request to Stripe" not in log  # stripe-python's INFO lines
        assert "POST /webhook" not in log  # the lab's own webhook checks
        assert "Demo order       python -m tutorial_server.lab demo" in log  # the banner
        lab.stop()
        lab.args = ["--fresh", "--verbose"]
        lab.start()
        assert lab.get("/api/dashboard").json()["totals"]["orders"] == 0  # not "canceled"
        assert lab.get(f"/api/orders/{old['id']}").status_code == 404
        lab.order("prod_drip_bags", 1, "this_class")
        wait_for(lambda: "GET /api/dashboard 200" in lab.log(), message="the verbose log")
        assert "Request to Stripe" in lab.log()
    finally:
        if lab.process is not None:
            lab.stop()


def test_a_class_lab_banner_names_the_hostname_and_the_ip_addresses(monkeypatch):
    # Computed only: nothing is sent to these addresses.
    from tutorial_server.lab import addresses
    monkeypatch.setattr(addresses.socket, "gethostname", lambda: "teacher-laptop")
    monkeypatch.setattr(addresses, "machine_addresses", lambda: ["192.0.2.7"])
    assert addresses.class_addresses("0.0.0.0", 4242) == [
        "http://teacher-laptop:4242", "http://192.0.2.7:4242"]
    assert lab_module.class_addresses("127.0.0.1", 4242) == []
    assert lab_module.class_addresses("192.0.2.7", 4242) == ["http://192.0.2.7:4242"]


def test_the_banner_of_a_class_lab_prints_its_addresses_and_the_demo_command(tmp_path, monkeypatch):
    from collections import Counter

    from tutorial_server.config import load_settings
    from tutorial_server.lab import addresses
    monkeypatch.setattr(addresses.socket, "gethostname", lambda: "teacher-laptop")
    monkeypatch.setattr(addresses, "machine_addresses", lambda: ["192.0.2.7"])
    settings = load_settings({"TUTORIAL_DB": str(tmp_path / "b.sqlite3")})
    from tutorial_server import security
    from tutorial_server.lab.app import create_lab_app
    lab = lab_module.Lab(settings, host="0.0.0.0", roster={"ada": None, "grace": None})
    # What start() would have set; nothing is started or contacted.
    lab.server_url, lab.port, lab.backend = "http://127.0.0.1:4242", 4242, None
    lab.backend_url, lab.startup_check, lab.background = "http://127.0.0.1:8420", Counter(), None
    lab.app = create_lab_app(settings, backend_url=lab.backend_url)
    lab.app.config.update(LISTEN_HOST=lab.host, SERVER_PORT=lab.port)
    security.configure_hosts(lab.app)
    banner = lab.banner()
    assert "Class addresses  http://teacher-laptop:4242  http://192.0.2.7:4242" in banner
    assert f"python -m tutorial_server.lab demo --db {settings.db_path}" in banner
    assert "Class roster     2 learners" in banner
    lab.host = "127.0.0.1"
    assert "Class addresses" not in lab.banner()


def test_machine_addresses_are_never_loopback():
    from tutorial_server.lab.addresses import machine_addresses
    assert all(not a.startswith("127.") for a in machine_addresses())


def test_unknown_page_is_an_html_404_and_unknown_api_url_json(lab):
    browser_accept = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    page = lab.get("/dashbord", headers=browser_accept)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    assert "Page not found" in page.text and "Content-Security-Policy" in page.headers
    for path in ("/api/nope", "/webhook/x", "/offline-stripe/nope"):
        r = lab.get(path, headers=browser_accept)
        assert r.status_code == 404 and r.json()["error"]["code"] == "resource_missing", path
    assert lab.get("/dashbord").json()["error"]["code"] == "resource_missing"  # curl, requests
