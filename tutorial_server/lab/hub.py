"""A class on JupyterHub: one lab per learner, reachable by that learner only (the lab's side;
the notebooks' side, finding the learner's lab and linking to it, is notebook/hub.py).

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
import json
import secrets
import threading
from pathlib import Path

from waitress.server import create_server

from .http_server import (
    CLEANUP_INTERVAL,
    CONNECTION_LIMIT,
    SILENCE_TIMEOUT,
    JSONErrorChannel,
    file_limit_for,
    make_server,
)
from .jupyter_proxy import NAME
from .proxied import via_unix_socket

KEY_BYTES = 16  # the loopback path key: 128 random bits


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
    Same interface as http_server.HTTPServer. The loopback listener IS an HTTPServer, with every
    protection the lab's plain port has, since other learners can reach it; it runs in a
    thread of its own, the socket listener in the caller's."""

    def __init__(self, unix_socket: str, app, threads: int = 8) -> None:
        self.unix_socket = unix_socket
        self.key = secrets.token_urlsafe(KEY_BYTES)
        self._loopback = make_server("127.0.0.1", 0, under_key(app, self.key))
        # Socket file mode 600 (waitress's default), in jupyter-server-proxy's private folder;
        # the same connection limits as the lab's own port.
        # Only jupyter-server-proxy reaches the socket: its requests count as proxied.
        self._socket_server = create_server(
            via_unix_socket(app), unix_socket=unix_socket, unix_socket_perms="600",
            threads=threads, ident="stripe-payments-lab", expose_tracebacks=False,
            connection_limit=file_limit_for(CONNECTION_LIMIT), channel_timeout=SILENCE_TIMEOUT,
            cleanup_interval=CLEANUP_INTERVAL, asyncore_use_poll=True)
        self._socket_server.channel_class = JSONErrorChannel
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
