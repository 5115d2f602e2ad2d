"""Fixtures that start a real lab: `python -m tutorial_server serve` as its own process, with
its own localstripe process, on free ports, with a temporary SQLite file. Tests talk HTTP.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tutorial_server.gateway import StripeGateway
from tutorial_server.lab.process import LabDidNotStart, LabProcess, gateway_for, stop_process
from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS

from .lab_view import LabDatabaseView

ROOT = Path(__file__).resolve().parent.parent

# Every Stripe request the package sends during the session (from the labs' processes and
# from this one) is appended here; tests/test_stripe_fidelity.py checks each one against
# stripe-python's typed params. Set by the session fixture `stripe_request_log` below.
STRIPE_REQUEST_LOG: Path | None = None


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
    if STRIPE_REQUEST_LOG is not None:
        env[RECORD_STRIPE_REQUESTS] = str(STRIPE_REQUEST_LOG)
    env.update(extra or {})
    return env


@dataclass
class RunningLab(LabDatabaseView):
    db_path: Path
    webhook_secret: str = field(repr=False)  # never in a test report
    log_path: Path
    process: subprocess.Popen | None = None
    state: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # extra environment for `serve`
    args: list = field(default_factory=list)  # extra `serve` options (--roster, --fresh)
    _process: LabProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.state["server_url"]

    @property
    def backend_url(self) -> str:
        return self.state["backend_url"]

    def start(self, timeout: float = 30.0) -> "RunningLab":
        self._process = LabProcess(self.db_path, args=self.args, log=self.log_path,
                                   env=lab_env(self.db_path, self.webhook_secret, self.env))
        try:
            self.state = self._process.start(timeout)
        except LabDidNotStart as e:
            pytest.fail(f"{e}:\n{self.log()}")
        self.process = self._process.process
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        # Also for subclasses that start their own process (test_server_killed's AttachedLab).
        code = stop_process(self.process, sig)
        self.process = None
        return code

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

    def order(self, product: str = "prod_drip_bags", quantity: int = 1,
              customer: str | None = None, **kw) -> dict:
        body = {"productId": product, "quantity": quantity}
        if customer:
            body["customer"] = customer
        r = self.post("/api/orders", json=body, **kw)
        assert r.status_code == 201, r.text
        return r.json()

    def order_status(self, order_id: str) -> dict:
        return self.get(f"/api/orders/{order_id}").json()["order"]

    def wait_for_status(self, order_id: str, status: str, timeout: float = 10.0) -> dict:
        return wait_for(lambda: (o := self.order_status(order_id))["status"] == status and o,
                        timeout, message=f"order {order_id} to become {status}")

    def gateway(self) -> StripeGateway:
        """The customer's side of step 5, played against this lab's offline Stripe."""
        return gateway_for(self.state)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


@pytest.fixture(scope="session", autouse=True)
def stripe_request_log(tmp_path_factory):
    """Record every Stripe request of the session: labs get the file through lab_env, and
    gateways made in this process (lab.gateway(), notebook kernels) through the environment.
    At the end of the session each request is checked against stripe-python's typed params."""
    global STRIPE_REQUEST_LOG
    log = STRIPE_REQUEST_LOG = tmp_path_factory.mktemp("stripe-requests") / "requests.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RECORD_STRIPE_REQUESTS, str(log))
        yield log
    STRIPE_REQUEST_LOG = None
    # After the last test (notebooks included): every request of the session must be one
    # real Stripe's current API version accepts.
    from tutorial_server.lab.stripe_http import read_recorded

    from .stripe_params import unaccepted_requests
    report = unaccepted_requests(read_recorded(log))
    if report:
        pytest.fail(report, pytrace=False)


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> RunningLab:
    """One lab shared by the session's tests; each test uses its own customer id."""
    tmp = tmp_path_factory.mktemp("lab")
    running = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    yield running
    running.stop()


@pytest.fixture
def fresh_lab(tmp_path) -> RunningLab:
    """A lab of the test's own, for tests that stop, kill or restart it."""
    running = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log")
    yield running.start()
    if running.process is not None:
        running.stop()


@pytest.fixture
def customer(request) -> str:
    """A customer id unique to the test, so inventories never mix between tests."""
    return "cus_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]


# Debian's chromium, driven by Playwright from PyPI (never `playwright install`). The flags keep
# it from calling home: this machine has no network but the package registries.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (closed before the next module, e.g. the notebooks' own
    event loops, starts)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def browser_page(browser, width: int, height: int, console_error=lambda text: True):
    """A fresh page in its own context; `page.problems` collects uncaught script errors and the
    console errors `console_error` picks, for the test to assert on."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.problems = problems
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and console_error(m.text) else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        yield page
    finally:
        context.close()
