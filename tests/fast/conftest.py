"""The fast tier, like flaskr's tests: the Flask app in this process (`create_app` with a
temporary SQLite file per test) and the Flask test client, against ONE offline Stripe stand-in
(a real localstripe process) shared by the whole session. No lab process, no waitress, no
browser: edge cases of one endpoint or one function cost milliseconds.

What this tier cannot see, and the other tiers do: the stand-in's own webhook deliveries (no
server listens here; tests sign and post their events themselves, with tests/signing.py),
waitress, the lab's start-up and background reconcile, browsers, notebooks.

`make test-fast` runs it; `make test` runs it with every other tier.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from tutorial_server.lab.app import create_lab_app
from tutorial_server.config import load_settings
from tutorial_server.gateway import StripeGateway
from tutorial_server.lab.process import gateway_for
from tutorial_server.lab.offline_stripe import OfflineBackend

from ..lab_view import LabDatabaseView

FAST_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    # Every test in this folder is of the fast tier (`-m fast` picks it out of a whole run).
    for item in items:
        if FAST_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session")
def stand_in_backend(tmp_path_factory) -> OfflineBackend:
    """One offline Stripe (localstripe served by our launcher, its own process) for the whole
    session, with a key of its own."""
    backend = OfflineBackend(log_path=tmp_path_factory.mktemp("stand-in") / "localstripe.log")
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def stand_in(stand_in_backend) -> str:
    """The session's offline Stripe: its URL."""
    return stand_in_backend.url


@pytest.fixture(scope="session")
def stand_in_key(stand_in_backend) -> str:
    """The key the session's offline Stripe wants (as a lab gives its server its own)."""
    return stand_in_backend.key


@pytest.fixture
def settings(tmp_path, stand_in_key):
    """Offline settings on a temporary database, with a webhook secret of the test's own, and
    the stand-in's key (as a lab gives its server)."""
    return replace(load_settings({}), db_path=tmp_path / "fast.sqlite3",
                   webhook_secret="whsec_" + secrets.token_hex(16), secret_key=stand_in_key)


@pytest.fixture
def app(settings, stand_in):
    app = create_lab_app(settings, backend_url=stand_in)
    app.config.update(TESTING=True)
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


class Answer:
    """A test-client response with requests' reading API (r.json(), r.text), so a test reads
    the same whether it runs here or against a lab process over HTTP."""

    def __init__(self, response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.get_data()
        self.text = response.get_data(as_text=True)

    def json(self):
        return json.loads(self.content)


class InProcessLab(LabDatabaseView):
    """The same conveniences as tests/conftest.py's RunningLab (get, post, order, post_event,
    query, snapshot, gateway), on the in-process app: a test written against the `lab` fixture
    (a lab process) runs here against `fast_lab` with the same lines."""

    def __init__(self, app, settings) -> None:
        self.app, self.client = app, app.test_client()
        self.db_path = settings.db_path
        self.webhook_secret = settings.webhook_secret
        self.backend_url = app.config["BACKEND_URL"]
        self.backend_key = settings.secret_key
        self.url = "http://localhost"

    def get(self, path: str, **kw) -> Answer:
        kw.pop("timeout", None)
        return Answer(self.client.get(path, **kw))

    def post(self, path: str, **kw) -> Answer:
        kw.pop("timeout", None)
        return Answer(self.client.post(path, **kw))

    def request(self, method: str, path: str, **kw) -> Answer:
        kw.pop("timeout", None)
        return Answer(self.client.open(path, method=method, **kw))

    def gateway(self) -> StripeGateway:
        """The customer's side of step 5, against the shared stand-in."""
        return gateway_for({"mode": "offline", "backend_url": self.backend_url,
                            "backend_key": self.backend_key})


@pytest.fixture
def fast_lab(app, settings) -> InProcessLab:
    """The in-process app with a lab's conveniences. Named apart from tests/conftest.py's `lab`
    (a lab process): one fixture name, one meaning."""
    return InProcessLab(app, settings)


@pytest.fixture
def customer(request) -> str:
    return "cus_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
