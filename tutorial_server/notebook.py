"""Plumbing for the notebooks, so their cells show the payment idea and not the wiring.

    from tutorial_server.notebook import connect_lab, show
    lab = connect_lab()          # the running lab, or one of the notebook's own
    order = lab.create_order("80980928378932", 10)
    show(order)

`connect_lab()` looks, in order, for: TUTORIAL_SERVER_URL (a lab someone else runs, e.g. the
instructor's class server; its webhook secret is not known here), a lab running on this machine
on the database TUTORIAL_DB names (`make lab` gives JupyterLab its own; the default is
instance/tutorial.sqlite3), and otherwise starts a private lab (tutorial_server.private_lab: its
own offline Stripe, its own temporary folder), announced in one line, stopped and deleted with
the kernel.
Set TUTORIAL_LAB=own to always start a fresh one (the notebook tests do, so stored outputs
never depend on what a learner did in their own lab).
"""
from __future__ import annotations

import atexit
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from dotenv import load_dotenv

from .config import PROJECT_ROOT, load_settings
from .gateway import StripeGateway
from .hub import learner_customer, link, on_hub, start_learners_lab  # noqa: F401 (link: for notebooks)
from .lab import read_lab_state

# Anything shaped like a Stripe secret is masked before it is displayed, whatever it is in.
_SECRET = re.compile(r"\b(sk|rk)_(test|live)_[0-9A-Za-z_]+|\bwhsec_[0-9A-Za-z_]+")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(0).split("_")[0] + "_...REDACTED", text)


@dataclass
class Lab:
    """A connection to a running lab: the merchant server, and its Stripe backend."""

    url: str
    mode: str
    backend_url: str | None
    started_here: bool = False
    # Your customer id: orders you create go to your own inventory, even on a lab shared by a
    # whole class (set TUTORIAL_CUSTOMER to keep the same id across kernels).
    customer: str = field(default_factory=lambda: os.environ.get("TUTORIAL_CUSTOMER")
                          or learner_customer() or new_customer())
    _webhook_secret: str | None = field(default=None, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _folder: Path | None = field(default=None, repr=False)  # a private lab's temporary folder

    # --- the merchant server's HTTP API (what a client app would call) ---------------------
    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=15)

    def post(self, path: str, json: Any = None, **kwargs) -> requests.Response:
        return requests.post(self.url + path, json=json, timeout=15, **kwargs)

    def public_url(self, path: str = "/") -> str:
        """The address your browser opens for one of the lab's pages, e.g. "/dashboard".

        Inside JupyterHub or Binder the lab listens only inside the container, so the link goes
        through Jupyter: {JUPYTERHUB_SERVICE_PREFIX}stripe-lab{path} for your own hub lab (see
        hub.public_url). Elsewhere it is the lab's plain URL.
        """
        from .hub import public_url
        return public_url(self.url, path)

    def products(self) -> list[dict]:
        return self.get("/api/products").json()["data"]

    def create_order(self, product_id: str, quantity: int, customer: str | None = None,
                     idempotency_key: str | None = None) -> dict:
        """Step 1: POST /api/orders with the article's body; returns the server's answer."""
        body: dict[str, Any] = {"productId": product_id, "quantity": quantity,
                                "customer": customer or self.customer}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.post("/api/orders", json=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code}: {response.text}")
        return response.json()

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

    # --- the customer's side and Stripe's side --------------------------------------------
    @property
    def gateway(self) -> StripeGateway:
        """The Stripe backend this lab uses, for playing the customer in step 5."""
        if self.mode == "offline":
            gateway = StripeGateway(load_settings({}), self.backend_url)
        else:
            load_dotenv(PROJECT_ROOT / ".env")  # test-mode keys, as the lab itself reads them
            gateway = StripeGateway(load_settings())
        gateway.checkout_url = lambda order_id: self.public_url(f"/checkout/{order_id}")
        return gateway

    def pay(self, order: dict, scenario: str = "success") -> dict:
        """Step 5 as the customer: pay the order's PaymentIntent with a test card.

        When Stripe refuses (a paid, canceled or, offline, a declined PaymentIntent), raises
        gateway.PaymentRefused, whose message says why and what to do.
        """
        import stripe

        from .gateway import PaymentRefused, refusal_message
        gateway = self.gateway
        try:
            return gateway.pay_with_test_card(order["payment_intent"], scenario)
        except stripe.InvalidRequestError as error:
            try:
                intent = gateway.retrieve_payment_intent(order["payment_intent"])
            except stripe.StripeError:
                raise error from None
            raise PaymentRefused(refusal_message(intent, gateway.offline), None,
                                 http_status=error.http_status) from None

    def complete_3ds(self, intent: dict, approve: bool) -> dict:
        """The customer completes (approve=True) or fails the 3-D Secure challenge of a
        PaymentIntent in requires_action; returns the PaymentIntent as Stripe has it then.

        Offline, the stand-in's private route plays the customer's click. Real Stripe has no
        API for it: in test mode this prints where the customer completes it (in the
        browser) and returns the PaymentIntent unchanged, so the notebook can go on.
        """
        gateway = self.gateway
        if self.mode == "offline":
            import stripe

            from .gateway import PaymentRefused
            try:
                return gateway.complete_3ds_offline(intent["id"], approve=approve)
            except stripe.InvalidRequestError as error:
                now = gateway.retrieve_payment_intent(intent["id"])["status"]
                raise PaymentRefused(f"this PaymentIntent is not waiting for a 3-D Secure "
                                     f"challenge (it is {now}): pay it with the '3ds' test "
                                     "card first.", None, http_status=error.http_status) from None
        order_id = (intent.get("metadata") or {}).get("order_id")
        action = (intent.get("next_action") or {}).get("type", "none")
        where = (f"open {self.public_url(f'/checkout/{order_id}')} and pay there"
                 if order_id else "let Stripe.js handle the PaymentIntent's next_action")
        print(f"Test mode: the customer completes 3-D Secure in the browser (next_action: "
              f"{action}): {where}, and press {'Complete' if approve else 'Fail'} on Stripe's "
              "test page. The notebook goes on without it.")
        return gateway.retrieve_payment_intent(intent["id"])

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
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


_current: Lab | None = None


def connect_lab() -> Lab:
    """The lab this notebook talks to (found or started once per kernel)."""
    global _current
    if _current is not None and (not _current.started_here or (
            _current._process is not None and _current._process.poll() is None)):
        return _current  # (a private lab that was stopped, or died, is started again)
    _current = _find_lab() or _start_own_lab()
    return _current


def _attach(url: str, started_here: bool = False, webhook_secret: str | None = None,
            process: subprocess.Popen | None = None) -> Lab:
    config = requests.get(url.rstrip("/") + "/api/config", timeout=10).json()
    secret = webhook_secret or os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    return Lab(url=url.rstrip("/"), mode=config["mode"],
               backend_url=backend_seen_from_here(url, config.get("backend_url")),
               started_here=started_here, _webhook_secret=secret, _process=process)


def backend_seen_from_here(server_url: str, backend_url: str | None) -> str | None:
    """The offline Stripe's address as this machine reaches it.

    It runs next to the merchant server, which reports it as http://127.0.0.1:PORT. On a class
    lab (TUTORIAL_SERVER_URL=http://teacher-laptop:4242) that 127.0.0.1 is the teacher's
    machine, so step 5 goes to the server's host instead (localstripe listens on every
    interface).
    """
    from urllib.parse import urlsplit

    from .lab import is_loopback
    server, backend = urlsplit(server_url), urlsplit(backend_url or "")
    if (not backend_url or not server.hostname or is_loopback(server.hostname)
            or not is_loopback(backend.hostname or "")):
        return backend_url
    host = f"[{server.hostname}]" if ":" in server.hostname else server.hostname
    return backend._replace(netloc=f"{host}:{backend.port}").geturl()


def _find_lab() -> Lab | None:
    if os.environ.get("TUTORIAL_LAB") == "own":
        return None
    if os.environ.get("TUTORIAL_SERVER_URL"):
        return _attach(os.environ["TUTORIAL_SERVER_URL"])
    try:
        settings = load_settings()
    except Exception:
        return None
    # On a hub: your own stripe-lab, the one your browser opens (started now if need be).
    state = start_learners_lab() if on_hub() else read_lab_state(settings.db_path)
    if state is None:
        return None
    try:
        return _attach(state["server_url"], webhook_secret=state.get("webhook_secret"))
    except requests.RequestException:
        return None


def _start_own_lab(timeout: float = 30.0) -> Lab:
    """A private lab for this kernel (tutorial_server.private_lab): it stops and deletes its
    temporary folder (database, log, lab.json with the webhook secret) when the kernel ends,
    even when the kernel is killed or restarted."""
    from . import private_lab

    private_lab.remove_stale_folders()  # left behind by kernels that are gone
    folder = private_lab.make_folder()
    db = folder / private_lab.DATABASE
    env = {k: v for k, v in os.environ.items() if k not in ("TUTORIAL_DB", "PORT")}
    # The kernel keeps its own handle on the log: the lab deletes its folder when it exits,
    # and a lab that fails to start must still be able to say why.
    log = tempfile.TemporaryFile()
    # Its own session: Jupyter interrupts (SIGINT) and kills (SIGKILL) the kernel's whole
    # process group; the lab must survive an interrupt and clean up after a kill.
    process = subprocess.Popen(
        [sys.executable, "-m", "tutorial_server.private_lab", str(folder), str(os.getpid())],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)

    def log_text() -> str:
        log.seek(0)
        return redact(log.read().decode(errors="replace"))

    def stop_if_running() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)  # the notebook's own lab leaves nothing behind

    atexit.register(stop_if_running)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("The lab did not start: " + log_text())
        state = read_lab_state(db)
        if state and state.get("pid") == process.pid:
            lab = _attach(state["server_url"], started_here=True,
                          webhook_secret=state.get("webhook_secret"), process=process)
            lab._folder = folder
            # One line, so the learner knows; the link works for as long as the kernel runs.
            print(f"No lab was running, so this notebook started a private one ({lab.mode}); "
                  "it stops and deletes its files when this kernel ends. Dashboard: "
                  + lab.public_url("/dashboard"))
            return lab
        time.sleep(0.05)
    stop_if_running()
    raise RuntimeError("The lab did not start within 30 s: " + log_text())


def new_customer(prefix: str = "learner") -> str:
    """A customer id of your own, so your inventory is not mixed with anyone else's."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# --- showing things ---------------------------------------------------------------------------

def to_json(obj: Any) -> str:
    return redact(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def show(obj: Any, keys: list[str] | None = None) -> None:
    """Print a JSON object readably (only `keys`, if given). Secrets are always masked."""
    if keys is not None and isinstance(obj, dict):
        obj = {k: obj.get(k) for k in keys}
    print(to_json(obj))


class _SideBySide:
    def __init__(self, left: Any, right: Any, titles: tuple[str, str]) -> None:
        self.left, self.right, self.titles = left, right, titles

    def _text(self, obj: Any) -> str:
        return obj if isinstance(obj, str) else to_json(obj)

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<td style="vertical-align:top;padding:0 1em"><b>{html.escape(t)}</b>'
            f'<pre style="text-align:left">{html.escape(self._text(o))}</pre></td>'
            for t, o in zip(self.titles, (self.left, self.right)))
        return f"<table><tr>{cells}</tr></table>"

    def __repr__(self) -> str:
        return "\n".join(f"--- {t} ---\n{self._text(o)}"
                         for t, o in zip(self.titles, (self.left, self.right)))


def side_by_side(left: Any, right: Any, titles: tuple[str, str] = ("left", "right")) -> _SideBySide:
    """Two JSON documents next to each other (e.g. the article's payload and the lab's)."""
    return _SideBySide(left, right, titles)


def check(condition: bool, success: str, hint: str) -> None:
    """An exercise check: prints a tick or a hint; never raises, so you can try again."""
    print(("✓ " + success) if condition else ("✗ Not yet: " + hint))


def show_differences():
    """The table of what the offline stand-in does differently from real Stripe, straight from
    gateway.OFFLINE_DIFFERENCES (the code that absorbs each difference lives next to it)."""
    from IPython.display import Markdown

    from .gateway import differences_markdown
    return Markdown(differences_markdown())


# --- cells that need what only some labs allow ------------------------------------------------

def signing_possible(lab: Lab) -> bool:
    """True if this machine can sign webhooks for the lab. Otherwise prints one line saying why,
    so a cell written `if signing_possible(lab): ...` skips itself and Run All goes on."""
    if lab.can_sign_webhooks:
        return True
    print("Skipped: this cell signs webhooks with the lab's secret, which stays on the machine "
          "running the lab (a class server's is the instructor's); the stored output shows it.")
    return False


def rewiring_possible(lab: Lab) -> bool:
    """True if a cell may re-point the offline Stripe's webhooks (its private /_config route):
    only on an offline lab of your own. Otherwise prints one line on what to do instead."""
    if lab.mode == "offline" and lab.backend_url and lab.can_sign_webhooks:
        return True
    if lab.mode != "offline":
        print("Test mode: Stripe's deliveries can't be re-pointed from here. To play this, stop "
              "`stripe listen` (or the lab), pay, start it again, then `stripe events resend "
              "EVT_ID`; `stripe trigger payment_intent.succeeded` makes a fresh event.")
    else:
        print("Skipped: this cell re-points the offline Stripe's webhooks, which would break "
              "them for everyone on a shared lab; run it on a lab of your own (make lab).")
    return False
