"""A class on JupyterHub: one lab per learner, reachable by that learner only.

On a hub every learner runs the same installed package on a shared machine (local spawners)
or in their own container (KubeSpawner). What keeps their labs apart:

- The database and its state file are in the learner's own home (config.default_db_path).
- jupyter-server-proxy starts the learner's lab on a Unix socket in a private temporary folder
  (jupyter_proxy.py), so only that learner's Jupyter server reaches it: another learner's
  `/user/<them>/proxy/<port>/` has no port to aim at. The browser reaches the lab through
  `<prefix>stripe-lab/` only.
- The offline Stripe must still deliver webhooks over HTTP, and the notebooks' code calls the
  lab over HTTP. So the lab also listens on 127.0.0.1, but answers there only under a random
  path key (`http://127.0.0.1:PORT/<key>/...`) kept in the learner's state file (mode 600, in
  their home). Anyone else who finds the port (another learner's proxy reaches every loopback
  port) gets a 404 for every path; a webhook forged there would also need the lab's secret.
- The offline Stripe (localstripe) listens on every interface and cannot be told otherwise:
  only the merchant server talks to it and no page links to it, but another local user who
  finds its port can read and change that learner's test payments. Per-user pods (KubeSpawner)
  or network policies close that; see README, "A class on JupyterHub".
"""
from __future__ import annotations

import hmac
import html
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path

from waitress.server import create_server

from .jupyter_proxy import NAME

KEY_BYTES = 16  # the loopback path key: 128 random bits


# --- who the learner is, and where their pages are ---------------------------------------------

def on_hub() -> bool:
    """True inside a JupyterHub (or Binder) single-user server and its kernels."""
    return bool(os.environ.get("JUPYTERHUB_SERVICE_PREFIX"))


def learner_customer() -> str | None:
    """The learner's customer id on a hub: one per hub user (`learner_<user>`), so every kernel
    of one learner fills the same inventory. None outside a hub."""
    user = os.environ.get("JUPYTERHUB_USER")
    if not user:
        return None
    # The API takes 1-64 letters, digits, '_' or '-'; hub names may hold '@', '.', etc.
    return "learner_" + (re.sub(r"[^A-Za-z0-9_-]", "-", user)[:55] or "hub")


def public_url(server_url: str, path: str = "/") -> str:
    """The address a learner's browser opens for `path` on the lab at `server_url`.

    - the learner's own hub lab (started by jupyter-server-proxy): <prefix>stripe-lab<path>;
    - another lab on this machine's loopback: <prefix>proxy/<port><path> (plain TCP labs);
    - outside a hub, or a lab elsewhere (an instructor's): the lab's own URL.
    """
    from urllib.parse import urlsplit

    from .lab import is_loopback
    path = path if path.startswith("/") else "/" + path
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return server_url.rstrip("/") + path
    prefix = prefix.rstrip("/") + "/"
    state = learners_lab_state()
    if state and state.get("unix_socket") and state.get("server_url") == server_url.rstrip("/"):
        return f"{prefix}{NAME}{path}"
    address = urlsplit(server_url)
    if address.port and is_loopback(address.hostname or ""):
        return f"{prefix}proxy/{address.port}{path}"
    return server_url.rstrip("/") + path


def learners_lab_state() -> dict | None:
    """The state of the lab on the learner's default database, if it is running."""
    from .config import load_settings
    from .lab_process import read_lab_state
    try:
        return read_lab_state(load_settings().db_path)
    except Exception:  # a configuration error is reported where the lab starts, not here
        return None


def start_learners_lab(timeout: float = 90.0) -> dict | None:
    """On a hub, make sure the learner's own stripe-lab runs (jupyter-server-proxy starts it on
    the first request, exactly as when the learner opens the launcher entry) and return its
    state. Notebooks and the browser then share one lab. None outside a hub or if the proxy
    does not answer (the caller then falls back to a lab of the notebook's own)."""
    import requests

    state = learners_lab_state()
    if state is not None or not on_hub():
        return state
    server = os.environ.get("JUPYTERHUB_SERVICE_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not server or not token:
        return None
    # The server's own token may use the server (scope access:servers!server).
    try:
        requests.get(f"{server.rstrip('/')}/{NAME}/api/config",
                     headers={"Authorization": f"token {token}"}, timeout=timeout)
    except requests.RequestException:
        return None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = learners_lab_state()
        if state is not None:
            return state
        time.sleep(0.1)
    return None


# --- links in notebooks -------------------------------------------------------------------------

class Link:
    """A clickable link in a notebook (text/plain shows the address, for plain terminals)."""

    def __init__(self, url: str, text: str | None = None) -> None:
        self.url, self.text = url, text or url

    def _repr_html_(self) -> str:
        return (f'<a href="{html.escape(self.url)}" target="_blank" rel="noopener">'
                f'{html.escape(self.text)}</a>')

    def __repr__(self) -> str:
        return self.url if self.text == self.url else f"{self.text}: {self.url}"


def link(url: str, text: str | None = None) -> Link:
    """Show `url` as a link that opens in a new tab: `link(lab.public_url("/dashboard"))`."""
    return Link(url, text)


# --- the lab's listeners when jupyter-server-proxy starts it ------------------------------------

def _not_found(start_response) -> list[bytes]:
    body = json.dumps({"error": {"type": "invalid_request_error",
                                 "message": "Not found.", "param": None}}).encode()
    start_response("404 NOT FOUND", [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(body)))])
    return [body]


def under_key(app, key: str):
    """The app, answering only under /<key>/... (anything else: 404, without calling it).
    The key moves from the path into SCRIPT_NAME, so the app sees its usual paths."""
    expected = key.encode()

    def keyed(environ, start_response):
        path = environ.get("PATH_INFO", "")
        head, _, rest = path[1:].partition("/")
        if not hmac.compare_digest(head.encode("latin-1", "replace"), expected):
            return _not_found(start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + key
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)

    return keyed


class SocketServer:
    """The merchant server on a Unix socket (for jupyter-server-proxy, so the browser) plus a
    keyed loopback port (for the offline Stripe's webhooks and the learner's notebooks).
    Same interface as lab._HTTPServer. The loopback listener IS a lab._HTTPServer, with every
    protection the lab's plain port has, since other learners can reach it; it runs in a
    thread of its own, the socket listener in the caller's."""

    def __init__(self, unix_socket: str, app, threads: int = 8) -> None:
        from .lab import (CLEANUP_INTERVAL, CONNECTION_LIMIT, SILENCE_TIMEOUT, _file_limit_for,
                          _JSONErrorChannel, make_server)
        self.unix_socket = unix_socket
        self.key = secrets.token_urlsafe(KEY_BYTES)
        self._loopback = make_server("127.0.0.1", 0, under_key(app, self.key))
        # Socket file mode 600 (waitress's default), in jupyter-server-proxy's private folder;
        # the same connection limits as the lab's own port.
        self._socket_server = create_server(
            app, unix_socket=unix_socket, unix_socket_perms="600", threads=threads,
            ident="stripe-payments-lab", expose_tracebacks=False,
            connection_limit=_file_limit_for(CONNECTION_LIMIT), channel_timeout=SILENCE_TIMEOUT,
            cleanup_interval=CLEANUP_INTERVAL, asyncore_use_poll=True)
        self._socket_server.channel_class = _JSONErrorChannel
        self.server_port = int(self._loopback.server_port)
        self._thread: threading.Thread | None = None

    @property
    def keyed_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/{self.key}"

    def serve_forever(self) -> None:
        self._thread = threading.Thread(target=self._loopback.serve_forever, daemon=True)
        self._thread.start()
        self._socket_server.run()

    def shutdown(self) -> None:
        self._loopback.shutdown()
        self._socket_server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        self._loopback.server_close()
        self._socket_server.close()
        Path(self.unix_socket).unlink(missing_ok=True)


def banner_lines(unix_socket: str, port: int) -> list[str]:
    return [f"  Merchant server  unix socket {unix_socket}   (your browser: <your server>/{NAME}/)",
            f"  Loopback         http://127.0.0.1:{port}/<key>/   (webhooks and your notebooks; "
            "the key is in the lab's state file, readable only by you)"]
