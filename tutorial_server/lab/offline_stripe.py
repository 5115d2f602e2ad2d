"""The offline Stripe stand-in: localstripe's application served by our own launcher
(stand_in.py, run as its own program: localstripe is GPL-licensed, so the lab never imports
it), on a free port of 127.0.0.1, with the lab's own random key, stopped with the lab.

Everything the lab sends the stand-in carries that key (`Authorization: Bearer sk_test_...`):
the server's gateway, the webhook registration, the reset, the relay of the mock Stripe.js,
the watchdog. The stand-in refuses anything else (stand_in.py says what it refuses).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..config import OFFLINE_SECRET_KEY, PROJECT_ROOT
from .process import last_line, spawn_child, stop_process

WEBHOOK_ENDPOINT_ID = "tutorial-lab"
# `serve --backend-url URL`: the key of that already-running stand-in (never on the command line).
KEY_ENV = "TUTORIAL_STAND_IN_KEY"


def new_key() -> str:
    """A lab's own key for its stand-in."""
    return "sk_test_lab_" + secrets.token_urlsafe(24)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StandInDidNotStart(RuntimeError):
    """The stand-in exited, or did not listen in time; the message says why and where its log is."""


class OfflineBackend:
    """The lab's own stand-in process (`python -m tutorial_server.lab.stand_in`)."""

    def __init__(self, log_path: Path | None = None, key: str | None = None) -> None:
        self.log_path = log_path
        self.key = key or new_key()
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        """Start it and wait for the line that says it listens; fail fast if it exits."""
        # Its log lists request paths (client secrets among them): readable by you only.
        log = (os.fdopen(os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600),
                         "a+b") if self.log_path else tempfile.TemporaryFile())
        try:
            self.process = spawn_child(
                [sys.executable, "-m", "tutorial_server.lab.stand_in", "--port", "0",
                 "--webhook-id", WEBHOOK_ENDPOINT_ID],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=PROJECT_ROOT,
                start_new_session=True, **_private_files())
            assert self.process.stdin is not None and self.process.stdout is not None
            try:  # the key goes through a pipe: never on the command line, where ps shows it
                self.process.stdin.write(self.key.encode() + b"\n")
                self.process.stdin.close()
            except OSError:
                pass  # it exited already: the log says why
            line = _read_line(self.process.stdout, timeout)
            words = line.split()
            if len(words) == 3 and words[0] == b"listening" and words[2].isdigit():
                self.port = int(words[2])
                return self.url
            self.stop()
            why = last_line(log) or ("it did not listen within %g s" % timeout)
            where = f" (its log: {self.log_path})" if self.log_path else ""
            raise StandInDidNotStart(f"the offline Stripe stand-in did not start: {why}{where}")
        finally:
            log.close()  # the child has its own copy

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout=5)
            if process.stdout is not None:
                process.stdout.close()


def _read_line(stream, timeout: float) -> bytes:
    """The first line a child writes, or b"" if it exits (or says nothing) first."""
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else b""


def _private_files() -> dict:
    """Popen arguments that make the files the stand-in creates readable by you only."""
    return {"umask": 0o077} if os.name == "posix" else {}


def _request(backend_url: str, key: str, method: str, path: str,
             fields: dict | None = None, timeout: float = 5) -> bytes:
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    request = urllib.request.Request(f"{backend_url}{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.read()


def register_webhook(backend_url: str, url: str, secret: str, key: str) -> None:
    """Point the deliveries of the offline Stripe at `backend_url` to `url`, signed with
    `secret` (registering again replaces the previous registration). `key`: the lab's key."""
    _request(backend_url, key, "POST", f"/_config/webhooks/{WEBHOOK_ENDPOINT_ID}",
             {"url": url, "secret": secret})


def key_for_running_backend(backend_url: str) -> str:
    """`serve --backend-url`: the key for an offline Stripe someone else started ($KEY_ENV, or
    the placeholder a plain localstripe accepts); SystemExit saying why if it does not answer."""
    key = os.environ.get(KEY_ENV) or OFFLINE_SECRET_KEY
    status = backend_status(backend_url, key)
    if status is None:
        raise SystemExit(f"No offline Stripe answers at {backend_url}. Start it first, or "
                         "leave out --backend-url.")
    if status in (401, 403):
        raise SystemExit(f"The offline Stripe at {backend_url} refused the lab's key "
                         f"({status}): set {KEY_ENV} to the key it was started with.")
    return key


def backend_status(backend_url: str, key: str, timeout: float = 2.0) -> int | None:
    """The HTTP status an offline Stripe at this URL gives the lab's key (200: it is ours;
    401: it wants another key), or None when nothing answers."""
    if not backend_url.startswith(("http://", "https://")):
        return None
    try:
        _request(backend_url, key, "GET", "/v1/payment_intents?limit=1", timeout=timeout)
        return 200
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def clear_backend_data(backend_url: str, key: str) -> None:
    _request(backend_url, key, "DELETE", "/_config/data")


def fail_refund(backend_url: str, key: str, refund_id: str) -> None:
    """Make a Refund fail at the stand-in, as real Stripe's does later for the card
    pm_card_refundFail (4000 0000 0000 5126). Not Stripe's API: Stripe lets nobody set a
    Refund's status; the stand-in's generic update does, and the lab uses it for this alone."""
    _request(backend_url, key, "POST", "/v1/refunds/" + urllib.parse.quote(refund_id, safe=""),
             {"status": "failed"})


def registered_webhooks(backend_url: str, key: str) -> list[dict] | None:
    """The endpoints registered at our stand-in (id, url, events), or None where the stand-in
    cannot list them (a plain localstripe attached with `serve --backend-url`)."""
    try:
        return json.loads(_request(backend_url, key, "GET", "/_lab/webhooks"))["data"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def remove_webhook(backend_url: str, key: str, endpoint_id: str) -> None:
    _request(backend_url, key, "DELETE",
             "/_lab/webhooks/" + urllib.parse.quote(endpoint_id, safe=""))


# --- is the stand-in still delivering this lab's webhooks to it? ------------------------------

CHECK_METADATA_KEY = "lab_webhook_check"
CHECK_WAIT_SECONDS = 3.0  # the stand-in delivers about 1 s after the change; allow for load


class WebhookWatchdog:
    """Notices when the offline Stripe no longer delivers this lab's webhooks to it, puts the
    registration back, and logs it.

    Why a check event: the stand-in cannot read registrations back (and a web page can change
    them: it accepts a cross-site form post to /_config/webhooks/...). Registering again on a
    timer would repair silently, so nobody would learn it happened. Instead, at each round the
    watchdog changes the metadata of one "check" customer of its own at the stand-in; the
    stand-in sends `customer.updated` to whatever URL, signed with whatever secret, is now
    registered. If the lab's /webhook has not received that event, correctly signed, by the
    next round (at least CHECK_WAIT_SECONDS later), the registration is no longer the lab's:
    the watchdog registers it again and says so in the log and on the dashboard. The check
    events are answered but not recorded (webhooks.receive_webhook). One customer, updated in
    place, so the stand-in's store does not grow.

    A registration changed and put back between two rounds goes unnoticed, and payments
    whose webhooks it lost meanwhile are settled by the background reconcile.

    Each round it also lists the endpoints registered at the stand-in (`GET /_lab/webhooks`):
    one that is not the lab's (it would receive every event) is removed, logged, and counted
    on the dashboard (`foreign`). Our stand-in refuses to register one, so this is the second
    wall, for a stand-in that was told otherwise.
    """

    def __init__(self, backend_url: str, webhook_url: str, secret: str, key: str,
                 log=None) -> None:
        self.backend_url, self.webhook_url, self._secret = backend_url, webhook_url, secret
        self._key = key
        self.log = log or logging.getLogger(__name__)
        self._customer: str | None = None
        self._sent: tuple[str, float] | None = None
        self._heard: set[str] = set()
        self.status: dict[str, Any] = {"checks": 0, "healed": 0, "last_check_at": None,
                                       "last_healed_at": None, "foreign": 0,
                                       "last_foreign_at": None, "last_error": None}

    def heard(self, event: dict) -> bool:
        """Called by the webhook receiver with a verified event: True if it is a check event
        (the receiver then answers it without recording it)."""
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        nonce = metadata.get(CHECK_METADATA_KEY) if isinstance(metadata, dict) else None
        if not isinstance(nonce, str) or not str(event.get("type", "")).startswith("customer."):
            return False
        self._heard.add(nonce)
        return True

    def __call__(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self._sent is not None:
            nonce, sent_at = self._sent
            if now - sent_at < CHECK_WAIT_SECONDS:
                return  # too early to tell; look again next round
            self.status["checks"] += 1
            self.status["last_check_at"] = int(now)
            if nonce not in self._heard:
                register_webhook(self.backend_url, self.webhook_url, self._secret, self._key)
                self.status["healed"] += 1
                self.status["last_healed_at"] = int(now)
                self.log.warning(
                    "the offline Stripe did not deliver the lab's check event to %s: its "
                    "webhook registration had been changed (by a web page or another program?); "
                    "registered this lab's webhook again", self.webhook_url)
        self._heard.clear()
        nonce = secrets.token_hex(8)
        try:
            self._remove_foreign_endpoints(now)
            self._send_check(nonce)
            self._sent = (nonce, now)
            self.status["last_error"] = None
        except OSError as e:
            self._sent = None  # no check in flight: nothing to conclude next round
            self.status["last_error"] = type(e).__name__
            self.log.warning("could not reach the offline Stripe to check its webhook "
                             "registration: %s", type(e).__name__)

    def _remove_foreign_endpoints(self, now: float) -> None:
        for endpoint in registered_webhooks(self.backend_url, self._key) or []:
            if endpoint.get("id") == WEBHOOK_ENDPOINT_ID:
                continue
            remove_webhook(self.backend_url, self._key, str(endpoint.get("id")))
            self.status["foreign"] += 1
            self.status["last_foreign_at"] = int(now)
            self.log.warning("the offline Stripe had a webhook endpoint that is not the lab's "
                             "(id %r, to %r): it would have received every event; removed it",
                             str(endpoint.get("id"))[:64], str(endpoint.get("url"))[:200])

    def _send_check(self, nonce: str) -> None:
        body = urllib.parse.urlencode({f"metadata[{CHECK_METADATA_KEY}]": nonce}).encode()
        headers = {"Authorization": f"Bearer {self._key}"}
        if self._customer is not None:
            try:
                _post(f"{self.backend_url}/v1/customers/{self._customer}", body, headers)
                return
            except urllib.error.HTTPError as e:
                if e.code != 404:  # the lab was reset: the customer is gone; make another
                    raise
        self._customer = _post(f"{self.backend_url}/v1/customers", body, headers)["id"]


def _post(url: str, body: bytes, headers: dict) -> dict:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())
