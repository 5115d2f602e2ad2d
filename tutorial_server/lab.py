"""The lab launcher: offline Stripe stand-in + merchant server (+ JupyterLab), started and
stopped together.

A running lab writes a small state file next to its database (`<db>.lab.json`, readable only
by you) so that notebooks and the `reconcile`/`reset` commands can find it. The webhook
secret the offline lab generates lives only there and in memory; it is never printed.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from . import create_app
from .config import PROJECT_ROOT, Settings
from .offline_backend import OfflineBackend, backend_answers, register_webhook, spawn_child
from .reconcile import describe, reconcile


def state_file_for(db_path: Path) -> Path:
    return Path(f"{db_path}.lab.json")


def read_lab_state(db_path: Path) -> dict | None:
    """The running lab for this database, or None (a stale file from a killed lab is ignored)."""
    path = state_file_for(db_path)
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def is_loopback(host: str) -> bool:
    """True if only this machine can reach a server listening on `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or 0.0.0.0 / :: (every interface)


def shared_lab_warning(host: str, port: int, reset_token: bool) -> list[str]:
    """What `serve --host 0.0.0.0` exposes, said once at start (empty on a loopback address)."""
    if is_loopback(host):
        return []
    reset = ("from this machine (http://127.0.0.1:{port}/dashboard) or with the reset token "
             "you chose (--reset-token)" if reset_token else
             "only from this machine (http://127.0.0.1:{port}/dashboard)").format(port=port)
    return [
        f"  WARNING: listening on {host}, not only on this machine. Anyone who can reach "
        f"port {port} here can:",
        "    - create orders and pay them with test cards (no real money: test mode or offline),",
        "    - read the dashboard: every order, payment, customer id and webhook delivery,",
        "    - send webhooks to /webhook (only ones signed with the lab's secret are accepted).",
        f"  Resetting the lab from the dashboard works {reset}.",
        f"  Learners set TUTORIAL_SERVER_URL=http://{socket.gethostname()}:{port} (or this "
        "machine's IP address). Use a trusted classroom network; Ctrl-C ends the class.",
    ]


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"Port {port} is already in use: is another lab running? Stop it, or "
                    f"choose another port with --port (0 picks a free one).") from None
            raise


class _JSONErrorTask(ErrorTask):
    """Requests waitress refuses before the app sees them (a malformed header, say) are
    answered in the API's error shape too, not as text."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": {"type": "invalid_request_error",
                                     "message": f"{error.reason}: {error.body}",
                                     "param": None}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JSONErrorChannel(HTTPChannel):
    error_task_class = _JSONErrorTask


class _HTTPServer:
    """The merchant server's HTTP server: waitress, a production WSGI server in pure Python
    with a fixed pool of threads (Flask's development server starts a thread per request and
    costs about 1 ms more per request)."""

    def __init__(self, host: str, port: int, app, threads: int = 8) -> None:
        self._server = create_server(app, host=host, port=port, threads=threads,
                                     ident="stripe-payments-lab", expose_tracebacks=False)
        self._server.channel_class = _JSONErrorChannel
        self.server_port = self._server.effective_port

    def serve_forever(self) -> None:
        self._server.run()  # returns on Ctrl-C or SIGTERM (waitress stops its threads)

    def shutdown(self) -> None:
        self._server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        self._server.close()


def make_server(host: str, port: int, app, **_kw) -> _HTTPServer:
    return _HTTPServer(host, port, app)


class _AppSlot:
    """A WSGI app filled in after the socket is bound (the app needs the port for webhooks)."""

    app: Any = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@dataclass
class Lab:
    settings: Settings
    host: str = "127.0.0.1"
    announce: object = print
    # Lets the dashboard's reset button work from other machines too (see shared_lab_warning).
    reset_token: str | None = field(default=None, repr=False)
    # An offline Stripe that is already running (`serve --backend-url`): the lab attaches to
    # it instead of starting its own, and leaves it running when it stops. This is how a
    # merchant server restarts after a crash while Stripe, elsewhere, carries on.
    backend_url: str | None = None

    def start(self) -> None:
        if self.backend_url and not self.settings.offline:
            raise SystemExit("--backend-url names an offline Stripe; in test mode the lab "
                             "talks to api.stripe.com. Unset STRIPE_SECRET_KEY to run offline.")
        if self.backend_url and not backend_answers(self.backend_url.rstrip("/")):
            raise SystemExit(f"No offline Stripe answers at {self.backend_url}. Start it first "
                             "(localstripe --port PORT), or leave out --backend-url.")
        slot = _AppSlot()
        self.settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        _check_port_free(self.host, self.settings.port)
        self.server = make_server(self.host, self.settings.port, slot)
        self.port = self.server.server_port
        self.server_url = f"http://127.0.0.1:{self.port}"
        self.backend: OfflineBackend | None = None
        settings = self.settings
        backend_url = None
        if settings.offline:
            if settings.webhook_secret is None:
                settings = replace(settings, webhook_secret="whsec_" + secrets.token_hex(24))
            if self.backend_url:
                backend_url = self.backend_url.rstrip("/")
            else:
                self.backend = OfflineBackend(
                    log_path=Path(f"{settings.db_path}.localstripe.log"))
                backend_url = self.backend.start()
            register_webhook(backend_url, f"{self.server_url}/webhook", settings.webhook_secret)
        self.backend_url = backend_url
        self.settings = settings
        self.app = create_app(settings, backend_url=backend_url)
        self.app.config.update(LISTEN_HOST=self.host, RESET_TOKEN=self.reset_token)
        slot.app = self.app
        self.startup_check = reconcile(self.app)
        self._write_state(backend_url)

    def _write_state(self, backend_url: str | None) -> None:
        state = {"pid": os.getpid(), "mode": self.settings.mode, "server_url": self.server_url,
                 "backend_url": backend_url, "db": str(self.settings.db_path),
                 "started_at": int(time.time())}
        if self.settings.offline:
            state["webhook_secret"] = self.settings.webhook_secret
        path = state_file_for(self.settings.db_path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
        self.state_path = path

    def banner(self) -> str:
        s = self.settings
        lines = [f"Stripe payments lab: {s.mode.upper()} mode"
                 + (" (no STRIPE_SECRET_KEY set)" if s.offline else " (real Stripe, test data only)"),
                 f"  Merchant server  {self.server_url}   (API under /api, webhooks at /webhook)"]
        if s.offline:
            started = ("localstripe, started empty" if self.backend is not None
                       else "already running: attached, left running when the server stops")
            lines += [f"  Offline Stripe   {self.backend_url}   ({started})",
                      "  Webhooks         delivered by the offline Stripe to /webhook, signed "
                      "with the lab's own secret"]
        else:
            lines += ["  Stripe           api.stripe.com (test mode)",
                      f"  Webhooks         run: stripe listen --forward-to localhost:{self.port}/webhook"]
        lines.append(f"  Dashboard        {self.server_url}/dashboard   (instructor's view)")
        lines.append(f"  Database         {s.db_path}")
        lines.append(f"  Start-up check   {describe(self.startup_check)}")
        lines += shared_lab_warning(self.host, self.port, self.reset_token is not None)
        return "\n".join(lines)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            if getattr(self, "_thread", None) is not None:
                server.shutdown()
            server.server_close()
        if getattr(self, "backend", None) is not None:
            self.backend.stop()
        path = getattr(self, "state_path", None)
        if path is not None:
            path.unlink(missing_ok=True)


def _exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def run_serve(settings: Settings, host: str = "127.0.0.1", reset_token: str | None = None,
              backend_url: str | None = None) -> None:
    """`serve`: the stand-in and the merchant server in the foreground until Ctrl-C.
    With `backend_url`, the server attaches to an offline Stripe that is already running."""
    _exit_on_sigterm()
    lab = Lab(settings, host=host, reset_token=reset_token, backend_url=backend_url)
    try:
        lab.start()
        print(lab.banner() + "\nPress Ctrl-C to stop.", flush=True)
        lab.serve_forever()
        print("\nStopping the lab.", flush=True)
    except KeyboardInterrupt:
        print("\nStopping the lab.", flush=True)
    finally:
        lab.stop()


def run_lab(settings: Settings, open_browser: bool = True) -> None:
    """`lab`: everything `serve` starts, plus JupyterLab opened on notebooks/."""
    _exit_on_sigterm()
    lab = Lab(settings)
    jupyter = None
    try:
        lab.start()
        lab.serve_in_thread()
        print(lab.banner(), flush=True)
        argv = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={PROJECT_ROOT / 'notebooks'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            argv.append("--allow-root")
        if not open_browser:
            argv.append("--no-browser")
        # The notebooks find this lab through its database's state file (TUTORIAL_DB), which
        # also holds the webhook secret they sign with. TUTORIAL_SERVER_URL means "a class
        # server on another machine, whose secret is not known here": never set it for our own.
        env = {k: v for k, v in os.environ.items()
               if k not in ("TUTORIAL_SERVER_URL", "TUTORIAL_LAB")}
        env["TUTORIAL_DB"] = str(settings.db_path.resolve())  # kernels run in notebooks/
        print("  JupyterLab       starting (its URL follows); Ctrl-C stops everything.", flush=True)
        # Its own session: Ctrl-C reaches the lab, which then stops JupyterLab cleanly.
        jupyter = spawn_child(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        jupyter.wait()
    except KeyboardInterrupt:
        print("\nStopping the lab.", flush=True)
    finally:
        if jupyter is not None and jupyter.poll() is None:
            jupyter.terminate()
            try:
                jupyter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                jupyter.kill()
        lab.stop()
