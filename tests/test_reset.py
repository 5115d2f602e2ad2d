"""One reset for the whole lab (tutorial_server/lab/reset.py): the dashboard's button, the CLI's
`reset --yes` and `serve --fresh` all empty the same things. `reset --yes` on a running lab asks
that lab to reset itself, so its offline Stripe and the deliveries its dashboard lists go too;
with no lab running it empties the database file.
"""
from __future__ import annotations

import subprocess
import sys

import requests

from tutorial_server.db import connect, init_db
from tutorial_server.lab.webhook_sender import deliver_event, payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import ROOT, lab_env, wait_for


def stand_in_payment_intents(lab) -> list[str]:
    answer = requests.get(f"{lab.backend_url}/v1/payment_intents?limit=100", timeout=10,
                          headers=lab.backend_headers)
    return [p["id"] for p in answer.json()["data"]]


def cli(db_path, secret, *args):
    return subprocess.run([sys.executable, "-m", "tutorial_server.lab", *args, "--db", str(db_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=lab_env(db_path, secret))


def test_reset_yes_on_a_running_lab_does_what_the_dashboard_does(fresh_lab, customer):
    order = fresh_lab.order("prod_enamel_mug", 1, customer)["order"]
    pay_with_test_card(fresh_lab.gateway(), order["payment_intent"], "success")
    fresh_lab.wait_for_status(order["id"], "paid")
    # A refused delivery too: the dashboard lists it among the deliveries.
    deliver_event(fresh_lab.url, payment_intent_event({"id": "pi_forged"}), "whsec_wrong")
    wait_for(lambda: len(fresh_lab.get("/api/dashboard").json()["deliveries"]) >= 2)
    assert stand_in_payment_intents(fresh_lab)

    result = cli(fresh_lab.db_path, fresh_lab.webhook_secret, "reset", "--yes")
    assert result.returncode == 0, result.stderr
    assert "The lab is empty." in result.stdout
    dashboard = fresh_lab.get("/api/dashboard").json()
    assert dashboard["deliveries"] == [] and dashboard["orders"] == []
    assert dashboard["totals"]["deliveries"] == 0 and dashboard["totals"]["orders"] == 0
    assert all(rows == [] for rows in fresh_lab.snapshot().values())
    assert stand_in_payment_intents(fresh_lab) == []
    assert "reset from the dashboard" in fresh_lab.log()  # the lab's own reset ran


def test_reset_yes_without_a_lab_empties_the_database(tmp_path):
    db_path = tmp_path / "idle.sqlite3"
    init_db(db_path)
    db = connect(db_path)
    db.execute("INSERT INTO orders (id, product_id, quantity, customer, subtotal, discount,"
               " amount, currency, receipt, status, created_at) VALUES ('order_idle', 'p', 1,"
               " 'c', 100, 0, 100, 'usd', 'r', 'created', 0)")
    db.close()
    result = cli(db_path, None, "reset", "--yes")
    assert result.returncode == 0, result.stderr
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    db.close()


def test_reset_asks_first_and_keeps_everything_on_no(fresh_lab, customer):
    fresh_lab.order("prod_enamel_mug", 1, customer)
    result = subprocess.run([sys.executable, "-m", "tutorial_server.lab", "reset", "--db",
                             str(fresh_lab.db_path)], cwd=ROOT, capture_output=True, text=True,
                            input="n\n", timeout=60,
                            env=lab_env(fresh_lab.db_path, fresh_lab.webhook_secret))
    assert result.returncode != 0 and "Nothing deleted" in result.stderr
    assert len(fresh_lab.get("/api/dashboard").json()["orders"]) == 1
