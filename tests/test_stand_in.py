"""The offline Stripe stand-in as the lab starts it (tutorial_server/lab/stand_in.py): on
127.0.0.1 only, answering only its own Host names, only to the lab's own key (its `/_config`
routes too), taking no webhook endpoint but the lab's, keeping no store file in /tmp; the
watchdog removes an endpoint that is not the lab's; and a lab whose stand-in cannot start
says why, at once.

Each attack of issue 22 is played here against a real stand-in process, with its answer.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.offline_stripe import (WEBHOOK_ENDPOINT_ID, OfflineBackend,
                                                WebhookWatchdog, new_key, registered_webhooks)
from tutorial_server.lab.process import LabDidNotStart, LabProcess
from tutorial_server.notebook import connect
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import ROOT, lab_env, new_webhook_secret

STORE_FILE = "/tmp/localstripe.pickle"  # where localstripe itself would save its store


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> OfflineBackend:
    backend = OfflineBackend(log_path=tmp_path_factory.mktemp("stand-in") / "stand-in.log")
    backend.start()
    yield backend
    backend.stop()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def non_loopback_address() -> str | None:
    """This machine's address on its network (the UDP-connect trick sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_it_listens_on_127_0_0_1_only(stand_in):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try the stand-in's port on")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, stand_in.port), timeout=5).close()
    if socket.has_ipv6:
        with pytest.raises(OSError):
            socket.create_connection(("::1", stand_in.port), timeout=5).close()
    socket.create_connection(("127.0.0.1", stand_in.port), timeout=5).close()


@pytest.mark.parametrize("method, path", [("GET", "/v1/payment_intents"),
                                          ("DELETE", "/_config/data"),
                                          ("POST", "/_config/webhooks/spy"),
                                          ("POST", f"/_config/webhooks/{WEBHOOK_ENDPOINT_ID}"),
                                          ("GET", "/_lab/webhooks")])
def test_a_request_without_the_labs_key_gets_401(stand_in, method, path):
    customer = requests.post(f"{stand_in.url}/v1/customers", headers=auth(stand_in.key),
                             timeout=10).json()["id"]
    basic = "Basic " + base64.b64encode(f"{stand_in.key}:".encode()).decode()
    for headers in ({}, auth("sk_test_x"), auth("sk_test_offline_lab"), auth(new_key()),
                    {"Authorization": basic}, {"Authorization": stand_in.key}):
        r = requests.request(method, stand_in.url + path, headers=headers, timeout=10,
                             data={"url": "http://attacker.test/", "secret": "whsec_x"})
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert stand_in.key not in r.text
    # Nothing happened: the store is as it was, and no endpoint was added.
    assert requests.get(f"{stand_in.url}/v1/customers/{customer}", headers=auth(stand_in.key),
                        timeout=10).status_code == 200
    assert "spy" not in {w["id"] for w in registered_webhooks(stand_in.url, stand_in.key)}


def test_with_the_key_only_the_labs_own_webhook_endpoint_may_be_registered(stand_in):
    data = {"url": "http://127.0.0.1:9/webhook", "secret": new_webhook_secret()}
    spy = requests.post(f"{stand_in.url}/_config/webhooks/spy", data=data,
                        headers=auth(stand_in.key), timeout=10)
    assert spy.status_code == 403 and spy.json()["error"]["type"] == "invalid_request_error"
    own = requests.post(f"{stand_in.url}/_config/webhooks/{WEBHOOK_ENDPOINT_ID}", data=data,
                        headers=auth(stand_in.key), timeout=10)
    assert own.status_code == 200
    listed = requests.get(f"{stand_in.url}/_lab/webhooks", headers=auth(stand_in.key),
                          timeout=10).json()["data"]
    assert listed == [{"id": WEBHOOK_ENDPOINT_ID, "url": data["url"], "events": None}]
    assert data["secret"] not in json.dumps(listed)  # never the endpoint's secret


def test_a_foreign_host_is_refused(stand_in):
    for host in ("evil.example", f"evil.example:{stand_in.port}", "127.0.0.1",
                 f"127.0.0.1:{stand_in.port + 1}", f"192.0.2.2:{stand_in.port}"):
        r = requests.get(f"{stand_in.url}/v1/payment_intents", timeout=10,
                         headers={**auth(stand_in.key), "Host": host})
        assert r.status_code == 400, host
        assert r.json()["error"]["code"] == "host_not_allowed"
    for host in (f"127.0.0.1:{stand_in.port}", f"localhost:{stand_in.port}",
                 f"LOCALHOST:{stand_in.port}"):
        assert requests.get(f"{stand_in.url}/v1/payment_intents?limit=1", timeout=10,
                            headers={**auth(stand_in.key), "Host": host}).status_code == 200


def test_only_the_mock_stripe_js_is_served_without_the_key_and_no_page_may_read_it(stand_in):
    script = requests.get(f"{stand_in.url}/js.stripe.com/v3/", timeout=10,
                          headers={"Origin": "http://attacker.test"})
    assert script.status_code == 200 and "LOCALSTRIPE_BASE_API" in script.text
    assert "Access-Control-Allow-Origin" not in script.headers  # no CORS: no page reads answers
    # The mock's own calls (publishable key only) now go through the lab's relay.
    token = requests.post(f"{stand_in.url}/v1/tokens", timeout=10, data={
        "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2034",
        "card[cvc]": "123", "key": "pk_test_offline_lab"})
    assert token.status_code == 401


def test_the_key_is_not_on_the_command_line_nor_in_the_environment(stand_in):
    pid = stand_in.process.pid
    assert stand_in.key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert stand_in.key.encode() not in Path(f"/proc/{pid}/environ").read_bytes()


def test_the_watchdog_removes_a_webhook_endpoint_that_is_not_the_labs(tmp_path, caplog):
    """A stand-in told to take a second endpoint id (ours never is): the watchdog sees the
    endpoint at its next round, removes it, logs it, and counts it for the dashboard."""
    key = new_key()
    with open(tmp_path / "stand-in.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tutorial_server.lab.stand_in", "--webhook-id",
             WEBHOOK_ENDPOINT_ID, "--webhook-id", "spy"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log)
    try:
        process.stdin.write(key.encode() + b"\n")
        process.stdin.close()
        words = process.stdout.readline().split()  # waits for its one line
        assert words[:2] == [b"listening", b"127.0.0.1"], (tmp_path / "stand-in.log").read_text()
        url = f"http://127.0.0.1:{int(words[2])}"
        for endpoint in (WEBHOOK_ENDPOINT_ID, "spy"):
            requests.post(f"{url}/_config/webhooks/{endpoint}", headers=auth(key), timeout=10,
                          data={"url": f"http://127.0.0.1:9/{endpoint}",
                                "secret": new_webhook_secret()}).raise_for_status()
        watchdog = WebhookWatchdog(url, "http://127.0.0.1:9/webhook", new_webhook_secret(), key)
        with caplog.at_level(logging.WARNING):
            watchdog(now=1000.0)
        assert watchdog.status["foreign"] == 1 and watchdog.status["last_foreign_at"] == 1000
        assert [w["id"] for w in registered_webhooks(url, key)] == [WEBHOOK_ENDPOINT_ID]
        assert any("not the lab's" in r.getMessage() and "'spy'" in r.getMessage()
                   for r in caplog.records)
        watchdog(now=1010.0)  # nothing foreign any more: nothing more to say
        assert watchdog.status["foreign"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def _private_tmp_possible() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare(1), to give the lab a /tmp of its own"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /tmp"], capture_output=True)
    return None if probe.returncode == 0 else "this machine cannot make a private mount namespace"


def test_no_store_file_is_written_and_a_leftover_of_another_user_does_not_stop_the_lab():
    """The hub failure of issue 22: another user's /tmp/localstripe.pickle (here owned by
    nobody, mode 000) used to make every write of the stand-in fail with a 500. The lab runs
    in a mount namespace of its own with a /tmp of its own (so no other lab on this machine
    is touched), with that leftover in it: it starts, takes and pays an order, and the file is
    left exactly as it was."""
    why_not = _private_tmp_possible()
    if why_not:
        pytest.skip(why_not)
    folder = Path(tempfile.mkdtemp(prefix="stand-in-test-", dir="/var/tmp"))  # outside /tmp
    db = folder / "lab.sqlite3"
    secret = new_webhook_secret()
    # A checkout (and its venv) may itself live under /tmp (a CI clone): the real /tmp is kept
    # aside and those folders are bound back into the new, empty one.
    keep = folder / "real-tmp"
    keep.mkdir()
    needed = sorted({Path(p).resolve().relative_to("/tmp").parts[0]
                     for p in (ROOT, sys.executable, sys.prefix)
                     if Path(p).resolve().is_relative_to("/tmp")})
    rebind = "".join(f" && mkdir -p /tmp/{d} && mount --bind {keep}/{d} /tmp/{d}"
                     for d in needed)
    script = (f"mount --bind /tmp {keep} && mount -t tmpfs none /tmp{rebind} && "
              f"printf leftover > {STORE_FILE} && "
              f"chown 65534:65534 {STORE_FILE} && chmod 000 {STORE_FILE} && "
              f'exec "$0" -m tutorial_server.lab serve --port 0 --db "$1"')
    lab = LabProcess(db, argv=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               script, sys.executable, str(db)],
                     env=lab_env(db, secret), log=folder / "lab.log")
    try:
        state = lab.start(timeout=60)
        leftover = Path(f"/proc/{state['pid']}/root{STORE_FILE}")  # the lab's own /tmp
        before = os.stat(leftover)
        assert (before.st_uid, stat.S_IMODE(before.st_mode)) == (65534, 0)
        order = requests.post(state["server_url"] + "/api/orders", timeout=15, json={
            "productId": "prod_drip_bags", "quantity": 1, "customer": "cus_leftover"})
        assert order.status_code == 201, order.text
        intent = pay_with_test_card(lab.gateway(), order.json()["order"]["payment_intent"])
        assert intent["status"] == "succeeded"
        after = os.stat(leftover)
        assert (after.st_size, after.st_mtime_ns, after.st_uid) == (
            len(b"leftover"), before.st_mtime_ns, 65534)
        assert leftover.read_bytes() == b"leftover"
    finally:
        lab.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def broken_localstripe(tmp_path) -> dict:
    """An environment whose localstripe fails on import, as a broken install would."""
    package = tmp_path / "broken" / "localstripe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise RuntimeError('this localstripe is broken on purpose')\n")
    return {"PYTHONPATH": str(package.parent)}


def test_a_lab_whose_stand_in_cannot_start_says_why_at_once(tmp_path, broken_localstripe):
    db = tmp_path / "lab.sqlite3"
    lab = LabProcess(db, env=lab_env(db, new_webhook_secret(), broken_localstripe),
                     log=tmp_path / "lab.log")
    started = time.monotonic()
    with pytest.raises(LabDidNotStart) as failed:
        lab.start(timeout=60)
    took = time.monotonic() - started
    message = str(failed.value)
    assert "this localstripe is broken on purpose" in message
    assert f"(its log: {db}.localstripe.log)" in message
    assert took < 20, f"took {took:.1f} s to say it"
    print(f"\nthe lab said why it did not start after {took:.1f} s: {message}")


def test_a_notebooks_private_lab_says_why_in_one_line(monkeypatch, broken_localstripe):
    for name, value in broken_localstripe.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failed:
        connect._start_own_lab(timeout=60)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("The lab did not start: ")
    assert "this localstripe is broken on purpose" in message
    log = Path(message.rsplit("(its log: ", 1)[1].rstrip(")."))
    assert "broken on purpose" in log.read_text()  # kept for the learner until the kernel ends
    assert time.monotonic() - started < 20
    shutil.rmtree(log.parent, ignore_errors=True)


# --- a notebook on a class server plays the customer through the merchant server ------------

def test_the_relay_lets_a_customer_act_only_on_a_payment_intent_whose_client_secret_they_hold(
        lab, customer):
    """What replaces reaching the instructor's stand-in directly: the client secret is the
    key to one PaymentIntent (as with Stripe.js and a publishable key), and nothing else is
    passed on."""
    answer = lab.order("prod_drip_bags", 1, customer)
    intent_id, secret = answer["order"]["payment_intent"], answer["client_secret"]
    other = lab.order("prod_drip_bags", 1, customer)["client_secret"]
    relay, own = f"{lab.url}/offline-stripe/v1", {"Origin": lab.url}
    for given in (None, "", other, secret + "x", intent_id + "_secret_guess"):
        params = {} if given is None else {"client_secret": given}
        r = requests.get(f"{relay}/payment_intents/{intent_id}", params=params, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "resource_missing", given
        r = requests.post(f"{relay}/payment_intents/{intent_id}/confirm", headers=own,
                          data={**params, "payment_method": "pm_x"}, timeout=10)
        assert r.status_code == 404, given
    mine = requests.get(f"{relay}/payment_intents/{intent_id}", timeout=10,
                        params={"client_secret": secret})
    assert mine.status_code == 200 and mine.json()["id"] == intent_id
    card = {"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
            "card[exp_year]": "2034", "card[cvc]": "123"}
    assert requests.post(f"{relay}/payment_methods", data=card, timeout=10,
                         headers={"Origin": "http://attacker.test"}).status_code == 403
    assert requests.post(f"{relay}/payment_methods", data={**card, "customer": "cus_x"},
                         headers=own, timeout=10).status_code == 400
    method = requests.post(f"{relay}/payment_methods", data=card, headers=own, timeout=10)
    assert method.status_code == 200, method.text
    paid = requests.post(f"{relay}/payment_intents/{intent_id}/confirm", headers=own, timeout=10,
                         data={"client_secret": secret, "payment_method": method.json()["id"]})
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    for path in ("/payment_intents", "/events", "/refunds", "/customers"):
        assert requests.get(relay + path, timeout=10).status_code in (404, 405), path
