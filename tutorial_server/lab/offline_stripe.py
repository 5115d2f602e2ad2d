"""The offline Stripe stand-in: localstripe, run as its own program (it is GPL-licensed, so
the lab never imports it), on a free port, stopped with the lab.

localstripe keeps its data in memory and also writes it to one shared file in /tmp; the lab
always starts it with --from-scratch so two labs on one machine never read each other's data.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..config import OFFLINE_SECRET_KEY
from .process import spawn_child, stop_process

WEBHOOK_ENDPOINT_ID = "tutorial-lab"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class OfflineBackend:
    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        protect_store_file()
        for _ in range(3):  # a free port can be taken between our probe and its bind
            self.port = free_port()
            # Its log lists request paths (client secrets among them): readable by you only.
            log = (os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                     0o600), "ab") if self.log_path else subprocess.DEVNULL)
            self.process = spawn_child(
                [sys.executable, "-m", "localstripe", "--port", str(self.port), "--from-scratch"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **_private_files())
            if self._wait_until_ready(timeout):
                return self.url
            self.stop()
        raise RuntimeError("The offline Stripe stand-in (localstripe) did not start"
                           + (f"; see {self.log_path}" if self.log_path else "."))

    def _wait_until_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                request = urllib.request.Request(
                    f"{self.url}/v1/payment_intents?limit=1",
                    headers={"Authorization": f"Bearer {OFFLINE_SECRET_KEY}"})
                with urllib.request.urlopen(request, timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # it answered
            except OSError:
                time.sleep(0.05)
        return False

    def register_webhook(self, url: str, secret: str) -> None:
        """Point the stand-in's webhook deliveries at the merchant server."""
        register_webhook(self.url, url, secret)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout=5)


# localstripe saves its whole store (client secrets included) to this fixed path after every
# write; we cannot change the path without changing localstripe (shared/notes/localstripe.md).
STORE_FILE = Path("/tmp/localstripe.pickle")


def _private_files() -> dict:
    """Popen arguments that make the files the stand-in creates readable by you only."""
    return {"umask": 0o077} if os.name == "posix" else {}


def protect_store_file(path: Path = STORE_FILE) -> None:
    """The stand-in rewrites its store file in place, so a mode set on it survives: make an
    existing one ours-only (a new one is, through the child's umask). A file another user
    made cannot be changed, and is left alone."""
    try:
        if path.exists() and path.stat().st_uid == os.getuid():
            path.chmod(0o600)
    except (OSError, AttributeError):  # AttributeError: no getuid on Windows
        pass


def register_webhook(backend_url: str, url: str, secret: str) -> None:
    """Point the deliveries of the offline Stripe at `backend_url` to `url`, signed with
    `secret` (registering again replaces the previous registration)."""
    data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    request = urllib.request.Request(f"{backend_url}/_config/webhooks/{WEBHOOK_ENDPOINT_ID}",
                                     data=data, method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def backend_answers(backend_url: str, timeout: float = 2.0) -> bool:
    """Does an offline Stripe (or anything speaking HTTP) answer at this URL?"""
    if not backend_url.startswith(("http://", "https://")):
        return False
    request = urllib.request.Request(f"{backend_url}/v1/payment_intents?limit=1",
                                     headers={"Authorization": f"Bearer {OFFLINE_SECRET_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False


def clear_backend_data(backend_url: str) -> None:
    request = urllib.request.Request(f"{backend_url}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=5):
        pass


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
    """

    def __init__(self, backend_url: str, webhook_url: str, secret: str, log=None) -> None:
        self.backend_url, self.webhook_url, self._secret = backend_url, webhook_url, secret
        self.log = log or logging.getLogger(__name__)
        self._customer: str | None = None
        self._sent: tuple[str, float] | None = None
        self._heard: set[str] = set()
        self.status: dict[str, Any] = {"checks": 0, "healed": 0, "last_check_at": None, "last_healed_at": None,
                       "last_error": None}

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
                register_webhook(self.backend_url, self.webhook_url, self._secret)
                self.status["healed"] += 1
                self.status["last_healed_at"] = int(now)
                self.log.warning(
                    "the offline Stripe did not deliver the lab's check event to %s: its "
                    "webhook registration had been changed (by a web page or another program?); "
                    "registered this lab's webhook again", self.webhook_url)
        self._heard.clear()
        nonce = secrets.token_hex(8)
        try:
            self._send_check(nonce)
            self._sent = (nonce, now)
            self.status["last_error"] = None
        except OSError as e:
            self._sent = None  # no check in flight: nothing to conclude next round
            self.status["last_error"] = type(e).__name__
            self.log.warning("could not reach the offline Stripe to check its webhook "
                             "registration: %s", type(e).__name__)

    def _send_check(self, nonce: str) -> None:
        body = urllib.parse.urlencode({f"metadata[{CHECK_METADATA_KEY}]": nonce}).encode()
        headers = {"Authorization": f"Bearer {OFFLINE_SECRET_KEY}"}
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
