"""The notebooks' client of a running lab: the merchant server's HTTP API as a learner's client
app calls it (orders, sync, inventory), plus the customer's side (customer.py).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..lab.process import LabProcess
from ..trace.diagram import TraceDiagram
from .customer import CustomerSide
from .hub import learner_customer, public_url


KEYS_FILE = Path.home() / ".stripe-lab" / "learner-keys.json"


def saved_learner_key(server_url: str, customer: str) -> str | None:
    try:
        return json.loads(KEYS_FILE.read_text()).get(f"{server_url} {customer}")
    except (OSError, ValueError, AttributeError):
        return None


def save_learner_key(server_url: str, customer: str, key: str) -> None:
    try:
        keys = json.loads(KEYS_FILE.read_text())
    except (OSError, ValueError):
        keys = {}
    keys[f"{server_url} {customer}"] = key
    KEYS_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump(keys, f)


def new_customer(prefix: str = "learner") -> str:
    """A customer id of your own, so your inventory is not mixed with anyone else's."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@dataclass
class LabClient(CustomerSide):
    """A connection to a running lab: the merchant server's HTTP API, and its Stripe backend
    (the customer's side: customer.CustomerSide)."""

    url: str
    mode: str
    backend_url: str | None
    started_here: bool = False
    # Your customer id: orders you create go to your own inventory, even on a lab shared by a
    # whole class (set TUTORIAL_CUSTOMER to keep the same id across kernels).
    customer: str = field(default_factory=lambda: os.environ.get("TUTORIAL_CUSTOMER")
                          or learner_customer() or new_customer())
    # Class mode (a server shared by a class): your learner key, sent as a Bearer key, so the
    # orders you create are yours alone (TUTORIAL_LEARNER_KEY, or join_class() keeps one).
    learner_key: str | None = field(default_factory=lambda: os.environ.get("TUTORIAL_LEARNER_KEY")
                                    or None, repr=False)
    class_mode: bool = False
    _access: dict = field(default_factory=dict, repr=False)  # order id -> its access code
    _webhook_secret: str | None = field(default=None, repr=False)
    _backend_key: str | None = field(default=None, repr=False)  # the lab's key for its stand-in
    # The client secrets of the orders this notebook created (customer_gateway.py): what lets it
    # play their customer on a lab elsewhere. Never shown.
    _client_secrets: dict = field(default_factory=dict, repr=False)
    _process: LabProcess | None = field(default=None, repr=False)
    _folder: Path | None = field(default=None, repr=False)  # a private lab's temporary folder

    # --- the merchant server's HTTP API (what a client app would call) ---------------------
    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.learner_key}"} if self.learner_key else {}
        return {**headers, **(extra or {})}

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=15, headers=self._headers())

    def post(self, path: str, json: Any = None, headers: dict | None = None,
             **kwargs) -> requests.Response:
        response = requests.post(self.url + path, json=json, timeout=15,
                                 headers=self._headers(headers), **kwargs)
        if path == "/api/orders" and response.status_code in (200, 201):
            self._remember(response.json())
        return response

    def _remember(self, answer: Any) -> None:
        """Keep an order's client secret, as the customer's page would (step 4)."""
        if isinstance(answer, dict) and isinstance(answer.get("order"), dict) \
                and answer.get("client_secret"):
            self._client_secrets[answer["order"]["payment_intent"]] = answer["client_secret"]

    def join_class(self, code: str | None = None) -> str:
        """Class mode: join as `self.customer` and keep the learner key for this kernel (and in
        ~/.stripe-lab/learner-keys.json, yours only, so a restarted kernel has it too).
        Returns your customer id; the key itself is never printed."""
        self.learner_key = self.learner_key or saved_learner_key(self.url, self.customer)
        if self.learner_key:
            return self.customer
        body = {"customer": self.customer, **({"code": code} if code else {})}
        answer = self.post("/api/class/join", json=body)
        if answer.status_code != 201:
            message = answer.json().get("error", {}).get("message", answer.text)
            raise RuntimeError(f"Could not join the class as {self.customer}: {message} "
                               "(set TUTORIAL_CUSTOMER to the id the instructor gave you, and "
                               "TUTORIAL_JOIN_CODE if you have one)")
        self.learner_key = answer.json()["learner_key"]
        save_learner_key(self.url, self.customer, self.learner_key)
        return self.customer

    def checkout_url(self, order: str | dict) -> str:
        """The checkout page of an order you created, as your browser opens it (on a class
        server the link carries the order's access code: only you can open it)."""
        order_id = order if isinstance(order, str) else order.get("id") or order["order"]["id"]
        access = self._access.get(order_id)
        return self.public_url(f"/checkout/{order_id}" + (f"?access={access}" if access else ""))

    def public_url(self, path: str = "/") -> str:
        """The address your browser opens for one of the lab's pages, e.g. "/dashboard".

        Inside JupyterHub or Binder the lab listens only inside the container, so the link goes
        through Jupyter: {JUPYTERHUB_SERVICE_PREFIX}stripe-lab{path} for your own hub lab (see
        hub.public_url). Elsewhere it is the lab's plain URL.
        """
        return public_url(self.url, path)

    def products(self) -> list[dict]:
        return self.get("/api/products").json()["data"]

    def create_order(self, product_id: str, quantity: int, customer: str | None = None,
                     idempotency_key: str | None = None, pay_with: str | None = None) -> dict:
        """Step 1: POST /api/orders with the article's body; returns the server's answer.
        pay_with="checkout_session": paid on Stripe's hosted page (notebook 09)."""
        body: dict[str, Any] = {"productId": product_id, "quantity": quantity,
                                "customer": customer or self.customer}
        if pay_with is not None:
            body["payWith"] = pay_with
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.post("/api/orders", json=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code}: {response.text}")
        answer = response.json()
        access = answer.pop("access", None)  # class mode: kept here, not shown in the notebook
        answer.pop("checkout_url", None)
        if access:
            self._access[answer["order"]["id"]] = access
        return answer

    def order(self, order_id: str) -> dict:
        return self.get(f"/api/orders/{order_id}").json()["order"]

    def sync(self, order_id: str) -> dict:
        """Ask the server to re-check the order's payment with Stripe (POST .../sync)."""
        return self.post(f"/api/orders/{order_id}/sync").json()

    def inventory(self, customer: str) -> list[dict]:
        return self.get(f"/api/customers/{customer}/inventory").json()["data"]

    def wait_for_order(self, order_id: str, status: str, timeout: float = 10.0) -> dict:
        """Poll the order until it has `status` (webhooks arrive about 1 s after payment)."""
        deadline = time.monotonic() + timeout
        while True:
            order = self.order(order_id)
            if order["status"] == status or time.monotonic() > deadline:
                return order
            time.sleep(0.1)

    def trace(self, order: str | dict):
        """Every message of one order so far (client, server, Stripe, webhooks), drawn as the
        six-step sequence diagram (GET /api/orders/{id}/trace; trace/diagram.py)."""
        return TraceDiagram.of(self, order)

    @property
    def can_sign_webhooks(self) -> bool:
        """True when this machine knows the lab's webhook secret (your own lab, or
        STRIPE_WEBHOOK_SECRET set); a class server's secret stays on the instructor's machine."""
        return self._webhook_secret is not None

    @property
    def webhook_secret(self) -> str:
        """The secret webhooks are signed with. For signing by hand; never print it."""
        if self._webhook_secret is None:
            raise RuntimeError("This lab's webhook secret is not known here: set "
                               "STRIPE_WEBHOOK_SECRET, or use a lab started on this machine.")
        return self._webhook_secret

    def stop(self) -> None:
        """Stop a lab this notebook started (and delete its temporary folder)."""
        if self._process is not None:
            self._process.stop(timeout=10)
        self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
