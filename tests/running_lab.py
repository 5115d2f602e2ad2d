"""A real lab for tests: `python -m tutorial_server.lab serve` as its own process (started, found and
stopped through tutorial_server.lab.process.LabProcess, like every lab), with its own localstripe
process, on free ports, with a temporary SQLite file. Tests talk HTTP.

Also what tests do to a running lab from outside: run its CLI, make its offline Stripe lose
webhook deliveries. The fixtures that hand out labs (`lab`, `fresh_lab`) are in conftest.py.
"""
from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tutorial_server.gateway import StripeGateway
from tutorial_server.lab.process import LabDidNotStart, LabProcess, gateway_for
from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS

from .lab_view import LabDatabaseView

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll until predicate() is truthy; return its value. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def lab_env(db: Path, webhook_secret: str | None, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TUTORIAL_"))}
    env["TUTORIAL_DB"] = str(db)
    env["PYTHONUNBUFFERED"] = "1"
    # Set, though empty: a developer's .env (loaded by the CLI) must not switch test labs
    # to real Stripe. Tests that want test mode pass the keys in `extra`.
    env["STRIPE_SECRET_KEY"] = env["STRIPE_PUBLISHABLE_KEY"] = ""
    if webhook_secret:
        env["STRIPE_WEBHOOK_SECRET"] = webhook_secret
    # Every Stripe request of the session is recorded (conftest.py's `stripe_request_log` sets
    # the variable for the whole session) and checked at its end.
    if os.environ.get(RECORD_STRIPE_REQUESTS):
        env[RECORD_STRIPE_REQUESTS] = os.environ[RECORD_STRIPE_REQUESTS]
    env.update(extra or {})
    return env


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


@dataclass
class RunningLab(LabDatabaseView):
    db_path: Path
    webhook_secret: str = field(repr=False)  # never in a test report
    log_path: Path
    state: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # extra environment for `serve`
    args: list = field(default_factory=list)  # extra `serve` options (--roster, --backend-url)
    _process: LabProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.state["server_url"]

    @property
    def backend_url(self) -> str:
        return self.state["backend_url"]

    @property
    def backend_headers(self) -> dict:
        """What the lab sends its offline Stripe with every request: the lab's own key."""
        return {"Authorization": f"Bearer {self.state['backend_key']}"}

    @property
    def process(self) -> subprocess.Popen | None:
        """The running `serve` process (None once stopped)."""
        return self._process.process if self._process is not None else None

    def start(self, timeout: float = 30.0) -> "RunningLab":
        self._process = LabProcess(self.db_path, args=self.args, log=self.log_path,
                                   env=lab_env(self.db_path, self.webhook_secret, self.env))
        try:
            self.state = self._process.start(timeout)
        except LabDidNotStart as e:
            pytest.fail(f"{e}:\n{self.log()}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and return once the process has exited (its exit code): whatever the lab
        does on its way out (stopping its stand-in, removing its state file) is done by then."""
        if self._process is None:
            return 0
        return self._process.stop(sig)

    def restart(self) -> "RunningLab":
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- conveniences for tests -----------------------------------------------------------
    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kw)

    def wait_for_status(self, order_id: str, status: str, timeout: float = 10.0) -> dict:
        return wait_for(lambda: (o := self.order_status(order_id))["status"] == status and o,
                        timeout, message=f"order {order_id} to become {status}")

    def gateway(self) -> StripeGateway:
        """The customer's side of step 5, played against this lab's offline Stripe."""
        return gateway_for(self.state)


# --- from outside the lab ------------------------------------------------------------------------

def run_cli(running, *args, timeout=60):
    """`python -m tutorial_server.lab ARGS --db <the lab's database>`, as a learner types it."""
    return subprocess.run([sys.executable, "-m", "tutorial_server.lab", *args, "--db",
                           str(running.db_path)], cwd=ROOT, capture_output=True, text=True,
                          env=lab_env(running.db_path, running.webhook_secret), timeout=timeout)


class _Refuse(http.server.BaseHTTPRequestHandler):
    """Answers every delivery 503, like a server that is down, and notes what it refused."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.refused.append(json.loads(body)["data"]["object"]["id"])
        except (ValueError, KeyError, TypeError):
            self.server.refused.append(None)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def drop_webhooks(running):
    """Point the offline Stripe's webhook at a receiver that refuses every delivery: the
    deliveries are lost (the stand-in never retries), as when the merchant server is down.
    Returns a function telling whether the delivery about a PaymentIntent has been lost yet,
    so a test can wait for the loss instead of racing it."""
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    sink.refused = []
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    running.__dict__.setdefault("_sinks", []).append(sink)  # lives as long as the lab object
    data = urllib.parse.urlencode({"url": f"http://127.0.0.1:{sink.server_port}/webhook",
                                   "secret": running.webhook_secret}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{running.backend_url}/_config/webhooks/tutorial-lab", data=data, method="POST",
        headers=running.backend_headers))
    return lambda payment_intent: payment_intent in sink.refused
