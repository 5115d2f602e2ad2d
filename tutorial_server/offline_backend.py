"""The offline Stripe stand-in: localstripe, run as its own program (it is GPL-licensed, so
the lab never imports it), on a free port, stopped with the lab.

localstripe keeps its data in memory and also writes it to one shared file in /tmp; the lab
always starts it with --from-scratch so two labs on one machine never read each other's data.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

WEBHOOK_ENDPOINT_ID = "tutorial-lab"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the lab process dies,
    even if the lab is killed with SIGKILL and gets no chance to clean up."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn_child(argv: list[str], **kwargs) -> subprocess.Popen:
    """Start a helper process that cannot outlive the lab."""
    if sys.platform.startswith("linux"):
        return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kwargs)
    child = subprocess.Popen(argv, **kwargs)
    # Elsewhere, a tiny watcher process stops the child when the lab disappears.
    subprocess.Popen([sys.executable, "-m", "tutorial_server.reaper", str(os.getpid()),
                      str(child.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return child


class OfflineBackend:
    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        for _ in range(3):  # a free port can be taken between our probe and its bind
            self.port = free_port()
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.process = spawn_child(
                [sys.executable, "-m", "localstripe", "--port", str(self.port), "--from-scratch"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
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
                    headers={"Authorization": "Bearer sk_test_offline_lab"})
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
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
                                     headers={"Authorization": "Bearer sk_test_offline_lab"})
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
