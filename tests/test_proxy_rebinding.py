"""A lab in proxied mode (`TUTORIAL_BEHIND_PROXY=1`, as jupyter-server-proxy starts it on a
TCP port) behind a port forward: a DNS-rebinding page reaches it as `evil.example:<forward's
port>`, a port that is not the lab's. Only the proxy's per-lab secret header makes a request
count as proxied (tutorial_server/lab/proxied.py); without it the plain Host allow-list holds.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import threading

import pytest
import requests

from tutorial_server.lab.proxied import PROXY_SECRET_HEADER

from .running_lab import RunningLab, new_webhook_secret

FOREIGN = "evil.example"


class PortForward:
    """127.0.0.1:<port> -> 127.0.0.1:<target>, byte for byte (like `ssh -L` or `socat`)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def proxied_lab(tmp_path):
    secret = secrets.token_urlsafe(32)
    running = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                         env={"TUTORIAL_BEHIND_PROXY": "1", "TUTORIAL_PROXY_SECRET": secret,
                              "TUTORIAL_RECONCILE_SECONDS": "0"}).start()
    forward = PortForward(int(running.url.rsplit(":", 1)[1]))
    yield running, forward, secret
    forward.close()
    log = running.log()
    running.stop()
    assert secret not in log  # never logged


def _csrf(text: str) -> str | None:
    found = re.search(r'name="csrf-token" content="([^"]+)"', text)
    return found.group(1) if found else None


def test_a_rebinding_page_through_a_port_forward_gets_nothing_in_proxied_mode(proxied_lab):
    lab, forward, secret = proxied_lab
    order = lab.order("prod_enamel_mug", 2, "cus_rebind_forward")
    token = _csrf(lab.get("/dashboard").text)  # the learner's own page (the right Host)
    assert token
    via = f"http://127.0.0.1:{forward.port}"
    evil = f"http://{FOREIGN}:{forward.port}"
    # What the rebinding page's browser sends: its own name, the forward's port; with no
    # secret header, or one it guessed.
    for extra in ({}, {PROXY_SECRET_HEADER: "guess"}, {PROXY_SECRET_HEADER: secret[:-1]},
                  {PROXY_SECRET_HEADER: ""}):
        host = {"Host": f"{FOREIGN}:{forward.port}", **extra}
        page = requests.get(f"{via}/dashboard", headers=host, timeout=10)
        assert page.status_code == 400, (extra, page.status_code)
        assert _csrf(page.text) is None and token not in page.text
        data = requests.get(f"{via}/api/dashboard", headers=host, timeout=10)
        assert data.status_code == 400
        assert data.json()["error"]["code"] == "host_not_allowed"
        assert order["order"]["id"] not in data.text
        assert order["client_secret"] not in data.text
        reset = requests.post(f"{via}/dashboard/reset", json={"confirm": "reset"}, timeout=10,
                              headers={**host, "Origin": evil, "X-CSRF-Token": token})
        assert reset.status_code in (400, 403), reset.text
        assert reset.headers["Content-Type"].startswith("application/json")
    # Even the loopback name with the forward's port is not the lab's address.
    assert requests.get(f"{via}/api/dashboard", timeout=10).status_code == 400
    assert lab.order_status(order["order"]["id"])["status"] == "created"  # not reset

    # The proxy's own requests (the secret header it adds) still pass with Jupyter's Host...
    proxy = {"Host": f"hub.example.org:{forward.port}", PROXY_SECRET_HEADER: secret}
    page = requests.get(f"{via}/dashboard", headers=proxy, timeout=10)
    assert page.status_code == 200 and _csrf(page.text)
    # ...and a reset from a page of that same host works; one from another origin does not.
    forged = requests.post(f"{via}/dashboard/reset", json={"confirm": "reset"}, timeout=10,
                           headers={**proxy, "Origin": evil, "X-CSRF-Token": _csrf(page.text)})
    assert forged.status_code == 403
    done = requests.post(f"{via}/dashboard/reset", json={"confirm": "reset"}, timeout=10,
                         headers={**proxy, "Origin": f"http://hub.example.org:{forward.port}",
                                  "X-CSRF-Token": _csrf(page.text)})
    assert done.status_code == 200, done.text
    assert lab.query("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0


def test_the_secret_stays_out_of_the_offline_stripes_environment(proxied_lab):
    """The lab takes the secret out of its environment before it starts the offline Stripe."""
    lab, _, secret = proxied_lab
    children = []
    for entry in os.listdir("/proc"):
        try:
            status = open(f"/proc/{entry}/status").read()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{lab.state['pid']}$", status, re.M):
            children.append(int(entry))
    assert children  # the offline Stripe
    for pid in children:
        assert secret.encode() not in open(f"/proc/{pid}/environ", "rb").read()
