"""The session's fixtures: labs (a `serve` process each, tests/running_lab.py), a customer id
per test, one Chromium per module (tests/browsers.py), and the record of every Stripe request.
Helpers live in those helper modules; test modules import them from there, never from here.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS

from .browsers import CHROMIUM_ARGS
from .running_lab import RunningLab, new_webhook_secret


@pytest.fixture(scope="session", autouse=True)
def stripe_request_log(tmp_path_factory):
    """Record every Stripe request of the session: labs get the file through lab_env, and
    gateways made in this process (lab.gateway(), notebook kernels) through the environment.
    At the end of the session each request is checked against stripe-python's typed params."""
    log = tmp_path_factory.mktemp("stripe-requests") / "requests.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RECORD_STRIPE_REQUESTS, str(log))
        yield log
    # After the last test (notebooks included): every request of the session must be one
    # real Stripe's current API version accepts.
    from tutorial_server.lab.stripe_http import read_recorded

    from .stripe_params import unaccepted_requests
    report = unaccepted_requests(read_recorded(log))
    if report:
        pytest.fail(report, pytrace=False)


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> RunningLab:
    """One lab shared by the session's tests (under pytest-xdist, by one worker's); each test
    uses its own customer id."""
    tmp = tmp_path_factory.mktemp("lab")
    running = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    yield running
    running.stop()


@pytest.fixture
def fresh_lab(tmp_path) -> RunningLab:
    """A lab of the test's own, for tests that stop, kill or restart it, or lose its webhooks.
    No background reconcile (and so no webhook watchdog): a test that loses a webhook on
    purpose decides itself what settles the order, however long a busy machine makes it take
    (the safety nets have tests of their own, with labs that ask for them)."""
    running = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                         args=["--reconcile-every", "0"])
    yield running.start()
    if running.process is not None:
        running.stop()


@pytest.fixture
def customer(request) -> str:
    """A customer id unique to the test, so inventories never mix between tests."""
    return "cus_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]


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
