"""Who may talk to the lab: checks every request passes before any route sees it.

A lab runs on a learner's laptop while they browse the web, and in class it serves a room.
Three checks keep other web sites out (README, "Security"):

1. The Host allow-list (against DNS rebinding). A page on another site can point its own name
   at 127.0.0.1 and then read the lab as if it were its own origin; the browser then sends
   `Host: evil.example:4242`. The lab answers only the names it is configured for:
   127.0.0.1, localhost and [::1] on its own port; names given with `--allowed-host` or
   TUTORIAL_ALLOWED_HOSTS; with `--host 0.0.0.0` (class mode) this machine's names and IP
   addresses; for a request that came through jupyter-server-proxy (the lab marks it so
   only on its Unix socket or with its per-lab secret header: lab/proxied.py), the Host
   the proxy passes on, whatever it is. `TUTORIAL_BEHIND_PROXY` alone opens nothing.
2. No state change from another site. A form or a `text/plain` fetch on any site reaches the
   lab without asking first (no CORS preflight); a JSON body cannot. So every state-changing
   request must be `application/json`, and one that says it comes from another origin (the
   browser's Origin header) is refused. The webhook is exempt: Stripe signs it instead.
   (A script's bare POST, with no body and no Origin, is let through: browsers always send
   Origin with a POST, so no web page can send one.)
3. JSON nesting: bodies nested deeper than parsing.MAX_JSON_DEPTH are refused before parsing.

Plus `escape_for_log`: request data in the server log can never start a line of its own.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .errors import ApiError
from .parsing import check_json_depth

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGNED_ENDPOINTS = ("webhooks.receive_webhook",)  # checked by signature, not by origin
# Callers that cannot send JSON, so exempt from the JSON rule and the depth check (a foreign
# Origin is still refused): the offline mock Stripe.js relay, whose calls are Stripe.js's own
# forms (lab/stripe_js_relay.py, offline only; it checks size, fields and origin itself).
NOT_JSON_BLUEPRINTS = ("stripe_js_relay",)

# The WSGI environ key the lab sets (lab/proxied.py) on a request that came through
# jupyter-server-proxy; a dotted WSGI key, so no HTTP header can set it.
PROXIED_ENVIRON_KEY = "tutorial.proxied"

_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$")


# --- names ----------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    """True if only this machine can reach a server listening on `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or 0.0.0.0 / :: (every interface)


def parse_host(value: str | None) -> tuple[str, int | None] | None:
    """`Host` header (or an Origin's netloc) -> (name, port or None); None if malformed."""
    match = _HOST.match((value or "").strip().lower())
    if not match:
        return None
    name, port = match.group(1).rstrip("."), match.group(2)
    return name, int(port) if port else None


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def extra_hosts_from_env(environ=os.environ) -> list[str]:
    """TUTORIAL_ALLOWED_HOSTS=classroom.test,teacher.lan:8080 -> ["classroom.test", ...]."""
    return [h.strip() for h in (environ.get("TUTORIAL_ALLOWED_HOSTS") or "").split(",")
            if h.strip()]


def machine_names() -> set[str]:
    """This machine's own names, as learners in the room may type them."""
    names = set()
    try:
        hostname = socket.gethostname()
        names |= {hostname, socket.getfqdn(), f"{hostname.split('.')[0]}.local"}
    except OSError:
        pass
    return {n.lower().rstrip(".") for n in names if n}


def is_class_mode(listen_host: str | None) -> bool:
    return not is_loopback(listen_host or "127.0.0.1")


def behind_proxy(environ=os.environ) -> bool:
    return bool(environ.get("JUPYTERHUB_SERVICE_PREFIX") or environ.get("TUTORIAL_BEHIND_PROXY"))


class HostPolicy:
    """Which Host headers (and so which origins) this lab answers to."""

    def __init__(self, port: int | None, extra: Sequence[str] = (), class_mode: bool = False,
                 proxied: bool = False) -> None:
        # port None: the app does not know the port it is served on (an app made with
        # create_app() and run elsewhere, or Flask's test client): any port will do.
        self.port = int(port) if port else None  # (waitress gives the port as a string)
        self.class_mode = class_mode
        self.proxied = proxied
        self.machine = machine_names() if class_mode else set()
        self.names: dict[str, int | None] = {n: self.port for n in LOOPBACK_NAMES}
        self.names.update({n: self.port for n in self.machine})
        self.extra: set[tuple[str, int | None]] = set()
        for entry in extra:
            parsed = parse_host(entry)
            if parsed:
                name, port = parsed
                self.extra.add((name, port if port is not None else self.port))

    def allows(self, host: str | None, via_proxy: bool = False) -> bool:
        """May a request carrying this Host header be answered? `via_proxy`: the request
        proved it came through jupyter-server-proxy (request_via_proxy())."""
        parsed = parse_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if self.proxied and via_proxy:
            # The Host is the one the browser sent to Jupyter (the proxy passes it on), which
            # Jupyter checked along with the learner's login. Without that proof the port
            # decides nothing: a port forward gives a rebinding page any port it likes.
            return True
        # No port at all (Flask's test client, tools that leave it out): the name decides.
        return self._configured(name, port, exact_port=False)

    def allows_origin(self, origin: str | None, host: str | None,
                      via_proxy: bool = False) -> bool:
        """Does a browser's Origin (or Referer) name a page this lab serves? Compared with the
        configured names and port, never with the request's own Host (which a rebinding page
        chooses); behind the proxy, with the Host the proxy passed on."""
        if not origin or origin == "null":
            return False
        parts = urlsplit(origin)
        parsed = parse_host(parts.netloc)
        if parts.scheme not in ("http", "https") or parsed is None:
            return False
        if self.proxied and via_proxy and parse_host(host) is not None:
            # Through the proxy the page's origin is Jupyter's: the host the proxy passed on.
            # Jupyter checked that Host (and the learner's login) before passing it on.
            return parts.netloc.lower() == (host or "").strip().lower()
        name, port = parsed
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        return self._configured(name, port, exact_port=True)

    def _configured(self, name: str, port: int | None, exact_port: bool) -> bool:
        def port_ok(expected: int | None) -> bool:
            return expected is None or port == expected or (port is None and not exact_port)

        if any(name == n and port_ok(p) for n, p in self.extra):
            return True
        if name in self.names and port_ok(self.names[name]):
            return True
        # Class mode: learners may type one of this machine's IP addresses. A rebinding page
        # can only use a name it controls, never a bare address, so any address is safe here.
        return self.class_mode and _is_ip_literal(name) and port_ok(self.port)

    def description(self) -> str:
        port = f":{self.port}" if self.port else ""
        names = [f"{n}{port}" for n in LOOPBACK_NAMES]
        names += sorted({f"{n}:{p}" if p else n for n, p in self.extra})
        if self.class_mode:
            names += sorted({f"{n}{port}" for n in self.machine} - set(names))
            names.append("this machine's IP addresses")
        return ", ".join(names)


def policy() -> HostPolicy:
    return current_app.extensions["host_policy"]


def request_via_proxy() -> bool:
    """Did this request prove it came through jupyter-server-proxy (lab/proxied.py)?"""
    return bool(request.environ.get(PROXIED_ENVIRON_KEY))


def configure_hosts(app: Flask) -> None:
    """(Re)build the app's Host policy from its config: SERVER_PORT, LISTEN_HOST,
    ALLOWED_HOSTS. The lab calls this again once it knows its port."""
    app.extensions["host_policy"] = HostPolicy(
        app.config.get("SERVER_PORT"), app.config.get("ALLOWED_HOSTS") or [],
        class_mode=is_class_mode(app.config.get("LISTEN_HOST")),
        proxied=bool(app.config.get("BEHIND_PROXY")))


# --- the checks, run before every request ---------------------------------------------------

_REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Wrong address</title></head>
<body><h1>Wrong address for this lab</h1>
<p>This Stripe payments lab answers only at the addresses it was started for: {names}.</p>
<p>Open it at one of those, or start it with <code>serve --allowed-host NAME</code>.</p>
</body></html>
"""


def _wants_json() -> bool:
    path = request.path
    return (request.method not in SAFE_METHODS or path.startswith("/api/")
            or path == "/api" or path.startswith("/webhook"))


def _refuse_host():
    message = ("This lab does not answer to the Host this request names. Use one of: "
               f"{policy().description()}.")
    if _wants_json():
        raise ApiError(400, message, param="Host", code="host_not_allowed")
    page = _REFUSED_PAGE.format(names=escape(policy().description()))
    return page, 400, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Security-Policy": "default-src 'none'",
                       "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def check_request():
    """Flask before_request: Host, then (state changes) Origin and JSON, then JSON depth."""
    via_proxy = request_via_proxy()
    if not policy().allows(request.host, via_proxy):
        return _refuse_host()
    state_change = request.method not in SAFE_METHODS
    if state_change and request.routing_exception is None \
            and request.endpoint not in SIGNED_ENDPOINTS:
        origin = request.headers.get("Origin")
        if origin is not None and not policy().allows_origin(origin, request.host,
                                                                via_proxy):
            raise ApiError(403, "Cross-site request refused: this lab only takes changes from "
                           "its own pages and from scripts (which send no Origin).",
                           code="cross_site_request")
        # One exception: no body, no Content-Type and no Origin is a script's bare POST (say
        # `requests.post(url + "/cancel")`); a browser names the origin of every POST.
        bare_script_post = origin is None and not request.content_type \
            and not request.content_length and not request.headers.get("Transfer-Encoding")
        if request.mimetype != "application/json" and not bare_script_post \
                and request.blueprint not in NOT_JSON_BLUEPRINTS:
            raise ApiError(415, "Send the request as JSON (Content-Type: application/json), "
                           "with {} as the body when there is nothing to say: a page on "
                           "another site cannot send JSON without asking first.",
                           code="json_required")
    if state_change and request.blueprint not in NOT_JSON_BLUEPRINTS:
        # (The relay takes 2 KB at most and parses what JSON it gets with RecursionError caught.)
        check_json_depth(request.get_data(cache=True))
    return None


# --- the server log ---------------------------------------------------------------------------

def escape_for_log(value) -> str:
    """The value as one line: line breaks and other control characters written as escapes
    (\\n, \\x1b, \\u2028), so nothing a client sends can start a line of its own in the log."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class OneLineFormatter(logging.Formatter):
    """A log formatter for the server: each event's message on one line, escaped; a traceback,
    when there is one, indented under it so no line of it reads as an event of its own."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.msg, record.args = escape_for_log(record.getMessage()), None
        exc_info, exc_text, stack = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        line = super().format(record)
        extra = []
        if exc_info:
            extra.append(exc_text or self.formatException(exc_info))
        if stack:
            extra.append(self.formatStack(stack))
        for block in extra:
            line += "".join(f"\n    | {escape_for_log(part)}" for part in block.splitlines())
        return line


def install(app: Flask) -> None:
    """Register the checks on the app (create_app calls this before any blueprint's hooks)."""
    app.config.setdefault("ALLOWED_HOSTS", extra_hosts_from_env())
    app.config.setdefault("SERVER_PORT", None)
    app.config.setdefault("BEHIND_PROXY", behind_proxy())
    configure_hosts(app)
    app.before_request(check_request)
