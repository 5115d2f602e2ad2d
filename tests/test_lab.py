"""The lab as a learner runs it: processes, restarts, a second lab, reconcile, no leaks."""
import json
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tutorial_server.lab.process import state_file_for
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import ROOT, drop_webhooks, lab_env, run_cli, wait_for


def port_closed(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) != 0


def test_orders_and_inventory_survive_a_restart(fresh_lab, customer):
    paid = fresh_lab.order("prod_coffee_beans", 1, customer)["order"]
    pay_with_test_card(fresh_lab.gateway(), paid["payment_intent"], "success")
    fresh_lab.wait_for_status(paid["id"], "paid")
    unpaid = fresh_lab.order("prod_enamel_mug", 2, customer)["order"]

    fresh_lab.restart()

    assert fresh_lab.order_status(paid["id"])["status"] == "paid"
    inventory = fresh_lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [i["order"] for i in inventory] == [paid["id"]]
    # The offline Stripe starts empty: the unpaid order's PaymentIntent is gone, and the lab
    # says so instead of leaving the order pointing at nothing.
    lost = fresh_lab.order_status(unpaid["id"])
    assert lost["status"] == "canceled"
    assert lost["cancellation_reason"] == "payment_intent_missing"
    assert "1 canceled: their PaymentIntent no longer exists" in fresh_lab.log()
    # New orders work as before.
    again = fresh_lab.order("prod_enamel_mug", 2, customer)["order"]
    pay_with_test_card(fresh_lab.gateway(), again["payment_intent"], "success")
    fresh_lab.wait_for_status(again["id"], "paid")


def test_idempotency_keys_hold_across_a_restart(fresh_lab, customer):
    body = {"productId": "prod_drip_bags", "quantity": 4, "customer": customer}
    first = fresh_lab.post("/api/orders", json=body, headers={"Idempotency-Key": "restart-key"})
    assert first.status_code == 201
    fresh_lab.restart()
    replay = fresh_lab.post("/api/orders", json=body, headers={"Idempotency-Key": "restart-key"})
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["order"]["id"] == first.json()["order"]["id"]
    conflict = fresh_lab.post("/api/orders", json={**body, "quantity": 5},
                              headers={"Idempotency-Key": "restart-key"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["type"] == "idempotency_error"
    db = sqlite3.connect(fresh_lab.db_path)
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, from /proc; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), fields[19]


def stand_in_of(running) -> tuple[int, str]:
    """The lab's offline Stripe process (its child running our launcher of localstripe):
    (pid, start time), the start time telling it apart from a later process given the same
    pid."""
    port = running.backend_url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        stat = _stat(int(proc.name))
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat and stat[1] == running.process.pid and b"tutorial_server.lab.stand_in" in argv:
            return int(proc.name), stat[2]
    pytest.fail(f"no localstripe process of the lab's serves port {port}")


def exited(process: tuple[int, str]) -> bool:
    """The process has exited: gone, a zombie nobody reaped yet, or its pid now another's."""
    stat = _stat(process[0])
    return stat is None or stat[0] == "Z" or stat[2] != process[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_stopping_or_killing_the_lab_leaves_no_offline_stripe_behind(fresh_lab, sig):
    backend, server = fresh_lab.backend_url, fresh_lab.url
    stand_in = stand_in_of(fresh_lab)
    assert not port_closed(backend)
    # Returns once the lab's process has exited: what it does on its way out is done.
    code = fresh_lab.stop(sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        # No clean-up: the kernel tells the stand-in its parent died (PR_SET_PDEATHSIG), and
        # it exits on its own, a little later.
        wait_for(lambda: exited(stand_in), timeout=10, message="localstripe to exit")
    else:
        assert code == 0, f"the lab did not stop on {signal.Signals(sig).name} by itself"
        # A clean stop: the lab stopped its stand-in and removed its state file, then exited.
        assert exited(stand_in), "the lab exited before its offline Stripe"
        assert not state_file_for(fresh_lab.db_path).exists()
    assert port_closed(backend) and port_closed(server)


def test_a_second_lab_does_not_disturb_the_first(lab, fresh_lab, customer):
    assert lab.url != fresh_lab.url and lab.backend_url != fresh_lab.backend_url
    assert lab.db_path != fresh_lab.db_path
    one = lab.order("prod_drip_bags", 1, customer)["order"]
    two = fresh_lab.order("prod_drip_bags", 1, customer)["order"]
    pay_with_test_card(lab.gateway(), one["payment_intent"], "success")
    pay_with_test_card(fresh_lab.gateway(), two["payment_intent"], "success")
    # Each offline Stripe delivers to its own server; each database holds only its own order.
    lab.wait_for_status(one["id"], "paid")
    fresh_lab.wait_for_status(two["id"], "paid")
    assert fresh_lab.get(f"/api/orders/{one['id']}").status_code == 404
    assert lab.get(f"/api/orders/{two['id']}").status_code == 404


def test_a_busy_port_is_a_clear_error(lab, tmp_path):
    port = lab.url.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "tutorial_server.lab", "serve", "--port", port],
                            cwd=ROOT, env=lab_env(tmp_path / "db.sqlite3", None),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"Port {port} is already in use" in result.stderr
    assert lab.get("/api/products").status_code == 200  # the first lab is untouched


def test_reconcile_settles_an_order_whose_webhook_was_lost(fresh_lab, customer):
    drop_webhooks(fresh_lab)
    order = fresh_lab.order("prod_pour_over_kit", 2, customer)["order"]
    declined = fresh_lab.order("prod_pour_over_kit", 1, customer)["order"]
    waiting = fresh_lab.order("prod_pour_over_kit", 3, customer)["order"]
    gateway = fresh_lab.gateway()
    assert pay_with_test_card(gateway, order["payment_intent"], "success")["status"] == "succeeded"
    pay_with_test_card(gateway, declined["payment_intent"], "declined")
    assert fresh_lab.order_status(order["id"])["status"] == "created"

    result = run_cli(fresh_lab, "reconcile")
    assert result.returncode == 0, result.stderr
    assert "1 paid now" in result.stdout
    assert "1 marked attempted" in result.stdout
    assert "1 still waiting" in result.stdout
    assert fresh_lab.order_status(order["id"])["status"] == "paid"
    assert fresh_lab.order_status(declined["id"])["status"] == "attempted"
    assert fresh_lab.order_status(waiting["id"])["status"] == "created"
    inventory = fresh_lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [i["order"] for i in inventory] == [order["id"]]

    # Idempotent: running it again changes nothing.
    before = fresh_lab.snapshot()
    again = run_cli(fresh_lab, "reconcile")
    assert again.returncode == 0 and "paid now" not in again.stdout
    assert fresh_lab.snapshot() == before


def test_reconcile_without_a_running_lab_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tutorial_server.lab", "reconcile", "--db",
                             str(tmp_path / "none.sqlite3")], cwd=ROOT,
                            env=lab_env(tmp_path / "none.sqlite3", None),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "No lab is running" in result.stderr


def test_reset_empties_the_lab(fresh_lab, customer):
    fresh_lab.order("prod_drip_bags", 1, customer)
    result = run_cli(fresh_lab, "reset", "--yes")
    assert result.returncode == 0, result.stderr
    assert all(rows == [] for rows in fresh_lab.snapshot().values())


def test_no_secret_in_logs_or_answers(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)
    pay_with_test_card(lab.gateway(), order["order"]["payment_intent"], "success")
    lab.wait_for_status(order["order"]["id"], "paid")
    backend_log = lab.db_path.with_name(lab.db_path.name + ".localstripe.log").read_text()
    for text in (lab.log(), backend_log, str(order)):
        assert lab.webhook_secret not in text
        assert "whsec_" not in text and "sk_test_" not in text


def test_a_request_the_http_server_refuses_is_still_answered_in_the_error_shape(lab):
    """A malformed header never reaches Flask: the HTTP server (waitress) refuses it, and the
    answer is still JSON in the API's error shape, not a text page."""
    host, port = lab.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /api/orders HTTP/1.1\r\nHost: x\r\nBad Header\r\nContent-Length: 0\r\n\r\n")
        raw = b""
        while chunk := s.recv(4096):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400"
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
