"""Which requests came through jupyter-server-proxy (JupyterHub, Binder), and so may name
Jupyter's Host and carry X-Forwarded-Prefix.

A request is trusted as proxied only when
- it came in on the lab's Unix socket (hub mode, `serve --unix-socket`): only the Jupyter
  server that made the socket's private folder can connect to it; or
- it carries PROXY_SECRET_HEADER with this lab's secret: random per Jupyter server start,
  made by jupyter_proxy.setup_merchant_server(), which gives it to the lab's environment and
  to the proxy's `request_headers_override` (so the proxy adds it to every request it passes
  on, replacing any a browser sent). Compared in constant time; never logged.

Anything else (a browser reaching the lab's port directly, a rebinding page through a port
forward, another learner's `/proxy/<port>/`, which passes no such header) gets the plain
Host allow-list, and its X-Forwarded-* headers are ignored (security.HostPolicy).
"""
from __future__ import annotations

import hmac
import os

from werkzeug.middleware.proxy_fix import ProxyFix

from ..security import PROXIED_ENVIRON_KEY

PROXY_SECRET_HEADER = "X-Stripe-Lab-Proxy-Secret"
PROXY_SECRET_ENV = "TUTORIAL_PROXY_SECRET"
_HEADER_KEY = "HTTP_" + PROXY_SECRET_HEADER.upper().replace("-", "_")
_VIA_UNIX_SOCKET = "tutorial.via_unix_socket"  # a WSGI key: no HTTP header can set it

_secret: str | None = None


def secret_from_environment(environ=os.environ) -> str | None:
    """The lab's proxy secret (TUTORIAL_PROXY_SECRET), taken out of the environment the first
    time, so no process the lab starts (the offline Stripe) inherits it."""
    global _secret
    taken = environ.pop(PROXY_SECRET_ENV, None)
    if taken:
        _secret = taken
    return _secret


def via_unix_socket(app):
    """Marks every request of `app` as arriving on the lab's Unix socket (hub.SocketServer)."""
    def marked(environ, start_response):
        environ[_VIA_UNIX_SOCKET] = True
        return app(environ, start_response)
    return marked


def proxied_requests(app, secret: str | None):
    """WSGI middleware: decides per request whether it came through the proxy (see above),
    records it for security.check_request, and only then applies ProxyFix's prefix."""
    expected = secret.encode() if secret else None
    fixed = ProxyFix(app, x_for=0, x_proto=0, x_host=0, x_prefix=1)

    def dispatch(environ, start_response):
        sent = environ.pop(_HEADER_KEY, None)  # never seen by the app, its log or its traces
        trusted = bool(environ.get(_VIA_UNIX_SOCKET)) or (
            expected is not None and sent is not None
            and hmac.compare_digest(sent.encode("latin-1", "replace"), expected))
        environ[PROXIED_ENVIRON_KEY] = trusted
        return (fixed if trusted else app)(environ, start_response)

    return dispatch
