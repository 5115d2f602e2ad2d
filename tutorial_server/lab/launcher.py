"""The lab launcher: offline Stripe stand-in + merchant server (+ JupyterLab), started and
stopped together.

A running lab writes a small state file next to its database (`<db>.lab.json`, readable only
by you) so that notebooks and the `reconcile`/`reset` commands can find it. The webhook
secret the offline lab generates lives only there and in memory; it is never printed.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import security
from ..config import Settings
from ..db import connect
from ..reconcile import DEFAULT_INTERVAL_SECONDS, BackgroundReconcile, describe, reconcile
from .addresses import class_addresses, shared_lab_warning, url_from_here
from .app import create_lab_app
from .course_folder import notebook_folder
from .http_server import AppSlot, check_port_free, make_server
from .hub import SocketServer, banner_lines
from .offline_stripe import (OfflineBackend, StandInDidNotStart, WebhookWatchdog,
                             key_for_running_backend, register_webhook)
from .process import spawn_child, state_file_for
from .reset import clear_lab


@dataclass
class Lab:
    settings: Settings
    host: str = "127.0.0.1"
    # Lets the dashboard's reset button work from other machines too (see shared_lab_warning).
    reset_token: str | None = field(default=None, repr=False)
    # An offline Stripe that is already running (`serve --backend-url`): the lab attaches to
    # it instead of starting its own, and leaves it running when it stops. This is how a
    # merchant server restarts after a crash while Stripe, elsewhere, carries on.
    backend_url: str | None = None
    # The key the lab sends its offline Stripe: a new random one for a stand-in it starts; for
    # `--backend-url`, $TUTORIAL_STAND_IN_KEY (the key that stand-in was started with), else
    # the placeholder a plain localstripe accepts. In the state file (mode 600), never printed.
    backend_key: str | None = field(default=None, repr=False)
    # Started by jupyter-server-proxy on a hub: listen on this Unix socket (see hub.py).
    unix_socket: str | None = None
    # Extra names the server answers to (`serve --allowed-host`), besides 127.0.0.1,
    # localhost and [::1], and TUTORIAL_ALLOWED_HOSTS (security.HostPolicy).
    allowed_hosts: list = field(default_factory=list)
    # Seconds between background reconciles (and offline webhook checks); 0 turns them off.
    # None: $TUTORIAL_RECONCILE_SECONDS, else reconcile.DEFAULT_INTERVAL_SECONDS.
    reconcile_every: float | None = None
    # Learners' customer ids and their join codes, if any (`serve --roster FILE`): only they
    # may join the class; the dashboard lists those who have not ordered yet too.
    roster: dict = field(default_factory=dict)
    # `serve --fresh`: empty the lab (orders, events, inventories) before serving.
    fresh: bool = False

    def start(self) -> None:
        if self.backend_url and not self.settings.offline:
            raise SystemExit("--backend-url names an offline Stripe; in test mode the lab "
                             "talks to api.stripe.com. Unset STRIPE_SECRET_KEY to run offline.")
        if self.backend_url:
            self.backend_key = key_for_running_backend(self.backend_url.rstrip("/"))
        slot = AppSlot()
        self.settings.db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.unix_socket:
            self.server: Any = SocketServer(self.unix_socket, slot)
            self.port = self.server.server_port
            self.server_url = self.server.keyed_url
        else:
            check_port_free(self.host, self.settings.port)
            self.server = make_server(self.host, self.settings.port, slot)
            self.port = self.server.server_port
            self.server_url = url_from_here(self.host, self.port)
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
                try:
                    backend_url = self.backend.start()
                except StandInDidNotStart as e:  # one line: its last error, and its log
                    raise SystemExit(f"The lab did not start: {e}") from None
                self.backend_key = self.backend.key
            # The server's gateway talks to the stand-in with the lab's key.
            settings = replace(settings, secret_key=self.backend_key)
            register_webhook(backend_url, f"{self.server_url}/webhook", settings.webhook_secret,
                             self.backend_key)
        self.backend_url = backend_url
        self.settings = settings
        self.app = create_lab_app(settings, backend_url=backend_url)
        self.app.config.update(LISTEN_HOST=self.host, RESET_TOKEN=self.reset_token,
                               SERVER_PORT=self.port,
                               ALLOWED_HOSTS=[*self.app.config["ALLOWED_HOSTS"],
                                              *self.allowed_hosts],
                               ROSTER=tuple(self.roster),
                               JOIN_CODES={name: code for name, code in self.roster.items()
                                           if code})
        security.configure_hosts(self.app)  # now that the port and the names are known
        if self.fresh:  # before the start-up check, which would cancel last class's orders
            self._clear(backend_url)
        slot.app = self.app
        self.startup_check = reconcile(self.app)
        self._start_background(backend_url)

    def _clear(self, backend_url: str | None) -> None:
        """`--fresh`: last class's orders would otherwise show up again (and the start-up
        check would cancel them, since the new offline Stripe never heard of them)."""
        db = connect(self.settings.db_path)
        try:  # an offline Stripe started now is empty; an attached one keeps its data
            clear_lab(db, backend_url if self.backend is None else None,
                      backend_key=self.backend_key)
        finally:
            db.close()

    def _start_background(self, backend_url: str | None) -> None:
        """The background reconcile, and offline the watchdog of the webhook registration."""
        self.background = None
        interval = background_interval(self.reconcile_every)
        if not interval:
            self.app.extensions["background_reconcile"] = None
            return
        watchdog = None
        if self.settings.offline and backend_url:
            watchdog = WebhookWatchdog(backend_url, f"{self.server_url}/webhook",
                                       self.settings.webhook_secret, self.backend_key)
            self.app.extensions["webhook_watchdog"] = watchdog
        self.background = BackgroundReconcile(self.app, interval, also=watchdog).start()
        self.app.extensions["background_reconcile"] = self.background

    def announce(self, footer: str = "") -> None:
        """Print the banner, then write the state file: whoever waits for the file (notebooks,
        the CLI, the tests) finds the lab serving and its banner already printed."""
        print(self.banner() + footer, flush=True)
        self._write_state(self.backend_url)

    def _write_state(self, backend_url: str | None) -> None:
        state = {"pid": os.getpid(), "mode": self.settings.mode, "server_url": self.server_url,
                 "backend_url": backend_url, "db": str(self.settings.db_path),
                 "started_at": int(time.time()), "unix_socket": self.unix_socket}
        if self.settings.offline:
            state["webhook_secret"] = self.settings.webhook_secret
            state["backend_key"] = self.backend_key
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
        if self.unix_socket:  # the loopback URL holds the lab's key: not in the log
            lines[1:] = banner_lines(self.unix_socket, self.port)
        if s.offline:
            started = ("localstripe, started empty" if self.backend is not None
                       else "already running: attached, left running when the server stops")
            lines += [f"  Offline Stripe   {self.backend_url}   ({started})",
                      "  Webhooks         delivered by the offline Stripe to /webhook, signed "
                      "with the lab's own secret"]
        else:
            lines += ["  Stripe           api.stripe.com (test mode)",
                      f"  Webhooks         run: stripe listen --forward-to localhost:{self.port}/webhook"]
        if not self.unix_socket:
            lines.append(f"  Dashboard        {self.server_url}/dashboard   (instructor's view)")
            lines.append(f"  Demo order       python -m tutorial_server.lab demo --db {s.db_path}   "
                         "(prints its checkout link; or the dashboard's Demo order button)")
        addresses = class_addresses(self.host, self.port)
        if addresses:
            lines.append(f"  Class addresses  {'  '.join(addresses)}   (learners type one: "
                         "export TUTORIAL_SERVER_URL=<it>, or <it>/checkout/<order id>)")
        if self.roster:
            lines.append(f"  Class roster     {len(self.roster)} learners (the dashboard's "
                         "Learners view lists who has not started)")
        lines.append(f"  Database         {s.db_path}")
        lines.append(f"  Start-up check   {describe(self.startup_check)}")
        if self.background is not None:
            checks = " and checks the webhook registration" if s.offline else ""
            lines.append(f"  Reconcile        every {self.background.interval:g} s in the background"
                         f"{checks} (--reconcile-every 0 turns it off)")
        hosts = self.app.extensions["host_policy"]
        if hosts.class_mode or hosts.extra:
            lines.append(f"  Answers to       {hosts.description()} (other Host names get 400; "
                         "add one with --allowed-host NAME)")
        lines += shared_lab_warning(self.host, self.port, self.reset_token is not None)
        return "\n".join(lines)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if getattr(self, "background", None) is not None:
            self.background.stop()
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


def background_interval(value: float | None = None, environ=os.environ) -> float:
    """Seconds between background reconciles: the argument, else $TUTORIAL_RECONCILE_SECONDS,
    else the default; 0 (or less) means off."""
    if value is None:
        text = (environ.get("TUTORIAL_RECONCILE_SECONDS") or "").strip()
        try:
            value = float(text) if text else DEFAULT_INTERVAL_SECONDS
        except ValueError:
            raise SystemExit(f"TUTORIAL_RECONCILE_SECONDS must be a number of seconds (0: "
                             f"off), got {text!r}.") from None
    return max(0.0, value)


def _exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def run_serve(settings: Settings, host: str = "127.0.0.1", reset_token: str | None = None,
              backend_url: str | None = None, unix_socket: str | None = None,
              allowed_hosts: list | None = None, reconcile_every: float | None = None,
              roster: dict | None = None, fresh: bool = False) -> None:
    """`serve`: the stand-in and the merchant server in the foreground until Ctrl-C.
    With `backend_url`, the server attaches to an offline Stripe that is already running."""
    _exit_on_sigterm()
    lab = Lab(settings, host=host, reset_token=reset_token, backend_url=backend_url,
              unix_socket=unix_socket, allowed_hosts=list(allowed_hosts or []),
              reconcile_every=reconcile_every, roster=roster or {}, fresh=fresh)
    try:
        lab.start()
        lab.announce("\nPress Ctrl-C to stop.")
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
        lab.announce()
        argv = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_folder()}"]
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
