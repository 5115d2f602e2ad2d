"""The merchant server killed with SIGKILL (after a payment whose webhook is lost, and in the
middle of a burst of orders) while its offline Stripe keeps running (`serve --backend-url`).
"""
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from tutorial_server.catalogue import PRODUCTS, get_product
from tutorial_server.pricing import MINIMUM_CHARGE
from tutorial_server.lab.offline_stripe import KEY_ENV, OfflineBackend
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import (ROOT, RunningLab, drop_webhooks, lab_env, new_webhook_secret, run_cli,
                          wait_for)


# --- (b) the merchant server killed with SIGKILL ------------------------------------------------

@pytest.fixture
def offline_stripe(tmp_path):
    """An offline Stripe the test starts itself (and stops): it outlives the merchant server."""
    backend = OfflineBackend(log_path=tmp_path / "localstripe.log")
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def attached_lab(tmp_path, offline_stripe):
    """`serve --backend-url`: a merchant server attached to an offline Stripe already running."""
    running = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                         args=["--backend-url", offline_stripe.url],
                         env={KEY_ENV: offline_stripe.key})  # its key: never on the command line
    yield running.start()
    running.stop(signal.SIGKILL)


def rows_by_id(rows: list) -> dict:
    return {row[0]: row for row in rows}


def test_serve_attaches_to_a_running_offline_stripe(attached_lab, offline_stripe):
    assert attached_lab.backend_url == offline_stripe.url
    assert "already running: attached" in attached_lab.log()
    order = attached_lab.order("prod_drip_bags", 1, "cus_attached")["order"]
    pay_with_test_card(attached_lab.gateway(), order["payment_intent"], "success")
    attached_lab.wait_for_status(order["id"], "paid")  # the webhook was registered there
    attached_lab.stop()
    # The server stopped; the offline Stripe it attached to did not.
    assert offline_stripe.process.poll() is None
    assert attached_lab.gateway().retrieve_payment_intent(order["payment_intent"])[
        "status"] == "succeeded"


def test_serve_refuses_a_backend_url_where_nothing_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "tutorial_server.lab", "serve", "--port", "0", "--db",
         str(tmp_path / "db.sqlite3"), "--backend-url", f"http://127.0.0.1:{dead}"],
        cwd=ROOT, env=lab_env(tmp_path / "db.sqlite3", None), capture_output=True, text=True,
        timeout=60)
    assert result.returncode != 0
    assert f"No offline Stripe answers at http://127.0.0.1:{dead}" in result.stderr


def test_server_killed_after_a_payment_whose_webhook_was_lost(attached_lab, offline_stripe):
    """The merchant server dies (SIGKILL: no clean-up at all) after Stripe took a payment and
    before the payment's webhook was handled; Stripe stays up. After a restart the order is
    paid exactly once and nothing else is lost.

    Why nothing committed is lost: the database runs in WAL mode. A COMMIT appends the
    transaction's pages and a commit record to the -wal file with write(), so when COMMIT
    returns, the data is in the operating system's page cache. SIGKILL ends the process, not
    the kernel: the page cache is written out as usual, and the next connection replays the WAL
    up to its last complete commit, ignoring any torn, uncommitted tail. synchronous=NORMAL only
    skips the fsync at each commit; that matters for a power cut or an OS crash (where the last
    transactions could roll back, still consistently), never for a killed process.
    """
    lab = attached_lab
    # Orders that must come through the crash untouched: paid, waiting, abandoned.
    paid = lab.order("prod_coffee_beans", 1, "cus_crash_paid")["order"]
    pay_with_test_card(lab.gateway(), paid["payment_intent"], "success")
    lab.wait_for_status(paid["id"], "paid")
    waiting = lab.order("prod_enamel_mug", 2, "cus_crash_waiting")["order"]
    abandoned = lab.order("prod_enamel_mug", 1, "cus_crash_abandoned")["order"]
    assert lab.post(f"/api/orders/{abandoned['id']}/cancel").status_code == 200

    order = lab.order("prod_pour_over_kit", 2, "cus_crash")["order"]
    lost = drop_webhooks(lab)  # the success webhook will be lost, as if it hit the dead server
    assert pay_with_test_card(lab.gateway(), order["payment_intent"])["status"] == "succeeded"
    # Kill only once the delivery has really been lost: a restart faster than the stand-in's
    # one-second delay would otherwise receive it.
    wait_for(lambda: lost(order["payment_intent"]), timeout=10, message="the lost delivery")
    before = lab.snapshot()
    lab.stop(signal.SIGKILL)
    assert Path(f"{lab.db_path}.lab.json").exists()  # the killed server could not clean up

    lab.start()  # the same database, the same (still running) offline Stripe
    assert lab.log().count("Start-up check") == 2
    assert "Start-up check   1 paid now (their webhook never arrived)" in lab.log()
    settled = lab.order_status(order["id"])
    assert (settled["status"], settled["amount_paid"], settled["amount_due"],
            settled["attempts"]) == ("paid", 2 * 1340, 0, 1)

    result = run_cli(lab, "reconcile")
    assert result.returncode == 0, result.stderr
    assert "paid now" not in result.stdout  # nothing left to settle

    after = lab.snapshot()
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1
    others = {k: v for k, v in rows_by_id(after["orders"]).items() if k != order["id"]}
    assert others == {k: v for k, v in rows_by_id(before["orders"]).items() if k != order["id"]}
    assert {o["id"] for o in (paid, waiting, abandoned)} <= set(others)
    assert after["webhook_events"] == before["webhook_events"]
    assert after["idempotency_keys"] == before["idempotency_keys"]
    assert set(after["inventory"]) - set(before["inventory"]) == {
        r for r in after["inventory"] if r[0] == order["id"]}
    assert set(before["inventory"]) <= set(after["inventory"])

    # The restarted server registered its webhook with the offline Stripe again.
    again = lab.order("prod_drip_bags", 1, "cus_crash")["order"]
    pay_with_test_card(lab.gateway(), again["payment_intent"], "success")
    lab.wait_for_status(again["id"], "paid")


def check_no_half_written_order(lab: RunningLab) -> Counter:
    """Every order row is whole and consistent; every paid order has exactly one inventory
    entry and every inventory entry a paid order. Returns the orders per status."""
    assert lab.query("PRAGMA integrity_check")[0][0] == "ok"
    statuses: Counter = Counter()
    for o in lab.query("SELECT * FROM orders"):
        product = get_product(o["product_id"])
        assert product is not None and 1 <= o["quantity"] <= 100
        assert o["subtotal"] == product.unit_amount * o["quantity"], dict(o)
        assert o["amount"] == o["subtotal"] - o["discount"] > 0, dict(o)
        assert o["currency"] == product.currency and len(o["receipt"]) == 24
        paid = o["status"] == "paid"
        assert o["amount_paid"] == (o["amount"] if paid else 0), dict(o)
        assert (o["paid_at"] is not None) == paid, dict(o)
        entries = lab.query("SELECT * FROM inventory WHERE order_id = ?", o["id"])
        assert len(entries) == (1 if paid else 0), dict(o)
        if paid:
            assert (entries[0]["customer"], entries[0]["product_id"], entries[0]["quantity"]) == (
                o["customer"], o["product_id"], o["quantity"])
        statuses[o["status"]] += 1
    assert lab.query("SELECT COUNT(*) FROM inventory WHERE order_id NOT IN "
                      "(SELECT id FROM orders WHERE status = 'paid')")[0][0] == 0
    assert lab.query("SELECT COUNT(*) FROM idempotency_keys WHERE order_id NOT IN "
                      "(SELECT id FROM orders)")[0][0] == 0
    return statuses


def test_server_killed_in_the_middle_of_a_burst_of_orders(attached_lab):
    """SIGKILL while orders are being created and paid orders' webhooks handled: no order is
    half-written (see the WAL note in the test above); retrying every request with its
    Idempotency-Key after the restart creates each order exactly once; every payment Stripe
    took ends in exactly one paid order with one inventory entry."""
    lab = attached_lab
    # Paid just before the burst: their webhooks arrive about 1 s later, in the middle of it.
    prepaid = [lab.order("prod_drip_bags", 1 + i, f"cus_burst_pre{i}")["order"] for i in range(4)]
    for o in prepaid:
        pay_with_test_card(lab.gateway(), o["payment_intent"], "success")

    sold_alone = [p for p in PRODUCTS if p.unit_amount >= MINIMUM_CHARGE[p.currency]]
    bodies = {f"burst-{i}": {"productId": sold_alone[i % len(sold_alone)].id, "quantity": 1 + i % 7,
                             "customer": f"cus_burst_{i % 4}"} for i in range(48)}
    answered: list[str] = []
    cut: list[str] = []
    lock = threading.Lock()

    def send(keys: list[str]) -> None:
        for key in keys:
            try:
                r = requests.post(lab.url + "/api/orders", json=bodies[key],
                                  headers={"Idempotency-Key": key}, timeout=10)
                with lock:
                    (answered if r.status_code == 201 else cut).append(key)
            except requests.RequestException:
                with lock:
                    cut.append(key)

    keys = list(bodies)
    threads = [threading.Thread(target=send, args=(keys[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answered) >= 12, timeout=20, message="a dozen orders")
    lab.stop(signal.SIGKILL)  # returns once the process is gone
    for t in threads:
        t.join(timeout=30)
    assert answered and cut, (len(answered), len(cut))  # the kill did land mid-burst

    statuses = check_no_half_written_order(lab)  # straight after the kill
    print(f"\nburst: {len(answered)} answered, {len(cut)} cut off by the kill; "
          f"orders on disk after the kill: {dict(statuses)}")

    lab.start()
    for key, body in bodies.items():  # the clients retry, with the same keys
        r = requests.post(lab.url + "/api/orders", json=body, headers={"Idempotency-Key": key},
                          timeout=15)
        assert r.status_code == 201, r.text
        assert r.json()["client_secret"]
    assert len(lab.query("SELECT * FROM idempotency_keys")) == len(bodies)
    assert len(lab.query("SELECT * FROM orders")) == len(bodies) + len(prepaid)
    assert lab.query("SELECT COUNT(*) FROM orders WHERE payment_intent IS NULL")[0][0] == 0

    assert run_cli(lab, "reconcile").returncode == 0
    for o in prepaid:  # each payment Stripe took: paid once, whether its webhook got through or not
        assert lab.order_status(o["id"])["status"] == "paid"
    statuses = check_no_half_written_order(lab)
    assert statuses == {"paid": len(prepaid), "created": len(bodies)}
