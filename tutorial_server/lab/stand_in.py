"""The offline Stripe stand-in, served by a launcher of ours: a program run as its own process.

    TUTORIAL_STAND_IN_KEY=sk_test_... python -m tutorial_server.lab.stand_in [--port 0]
    (or the key as the first line on stdin, which is how the lab passes it: never on the
    command line, where `ps` shows it to every user of the machine)

It serves localstripe's own aiohttp application (`localstripe.server.app`). localstripe is
GPL-licensed, so it stays at arm's length: this launcher (with stand_in_checkout.py, its
Checkout Sessions) is the only code that imports it, and it runs in a process of its own; the lab, the merchant server and the notebooks never
import it, and talk to it over HTTP only (offline_stripe.py starts this program).

What it changes around localstripe, before any of localstripe's own code runs:
- it listens on 127.0.0.1 only (localstripe's own `start()` binds every interface);
- a Host check: only 127.0.0.1:PORT, localhost:PORT and [::1]:PORT (no DNS rebinding);
- every request must carry the lab's own key (`Authorization: Bearer sk_test_...`, random per
  lab), the `/_config` routes included; anything else gets a Stripe-shaped 401. The one
  exception is `GET /js.stripe.com/v3/`, the mock Stripe.js (a static script);
- only the lab's own webhook endpoint ids (`--webhook-id`) may be registered (403 otherwise);
- no whole-store save: localstripe pickles its store to the fixed /tmp/localstripe.pickle
  after every write (slower with every object, and one file shared by every user of the
  machine); here the store lives in memory only, and that file is never read or written;
- no CORS headers: no web page may read its answers;
- `GET /_lab/webhooks` lists the registered endpoints (ids and URLs, never their secrets) and
  `DELETE /_lab/webhooks/<id>` removes one, so the lab's watchdog can see and remove an
  endpoint that is not the lab's;
- Checkout Sessions, which localstripe lacks (stand_in_checkout.py): create, retrieve, expire,
  line items, each backed by a PaymentIntent on the stand-in.

When it listens, it writes one line to stdout, `listening 127.0.0.1 PORT`, and then sends its
stdout to stderr (its log): the lab reads that line to learn the port.
"""
from __future__ import annotations

import argparse
import hmac
import logging
import os
import re
import socket
import sys

from aiohttp import web
# The only module of the package that imports localstripe (GPL): see the docstring.
from localstripe import resources as ls_resources  # type: ignore[import-untyped]
from localstripe import server as ls_server
from localstripe import webhooks as ls_webhooks

from . import stand_in_checkout as checkout

KEY_ENV = "TUTORIAL_STAND_IN_KEY"
STRIPE_JS = "/js.stripe.com/v3/"
_WEBHOOK_CONFIG = re.compile(r"^/_config/webhooks/(.*)$")


def _error(status: int, message: str, code: str) -> web.Response:
    """An error shaped like Stripe's."""
    return web.json_response({"error": {"type": "invalid_request_error", "code": code,
                                        "message": message}}, status=status)


def walls(key: str, webhook_ids: frozenset[str], port: int):
    """The middleware that runs before localstripe's own: Host, key, webhook ids."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    expected = f"Bearer {key}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler):
        if (request.headers.get("Host") or "").lower() not in hosts:
            return _error(400, "This offline Stripe answers only to 127.0.0.1, localhost and "
                          "[::1] on its own port.", "host_not_allowed")
        if request.method in ("GET", "HEAD") and request.path == STRIPE_JS:
            return await handler(request)
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "This offline Stripe belongs to one lab: send that lab's key "
                          "(Authorization: Bearer sk_test_...).", "invalid_api_key")
        match = _WEBHOOK_CONFIG.match(request.path)
        if match and match.group(1) not in webhook_ids:
            return _error(403, "Only the lab's own webhook endpoint may be registered here.",
                          "webhook_endpoint_not_allowed")
        return await handler(request)
    return middleware


async def list_webhooks(request: web.Request) -> web.Response:
    """The registered endpoints: ids, URLs and event filters, never their secrets."""
    data = [{"id": id_, "url": hook.url, "events": hook.events}
            for id_, hook in sorted(ls_webhooks._webhooks.items())]
    return web.json_response({"object": "list", "data": data})


async def remove_webhook(request: web.Request) -> web.Response:
    found = ls_webhooks._webhooks.pop(request.match_info["id"], None) is not None
    return web.json_response({"id": request.match_info["id"], "deleted": found},
                             status=200 if found else 404)


def _no_store_file() -> None:
    """The store stays in memory: never read or write /tmp/localstripe.pickle."""
    ls_resources.Store.dump_to_disk = lambda self: None
    ls_resources.Store.try_load_from_disk = lambda self: None


# --- Checkout Sessions (stand_in_checkout.py), which localstripe lacks --------------------------

async def create_session(request: web.Request) -> web.Response:
    data = await ls_server.get_post_data(request)
    return web.json_response(checkout.create_session(data)._export())


async def retrieve_session(request: web.Request) -> web.Response:
    return web.json_response(checkout.session_or_404(request.match_info["id"])._export())


async def expire_session(request: web.Request) -> web.Response:
    session = checkout.session_or_404(request.match_info["id"])
    if session.status != "open":
        raise checkout.CheckoutError("Only Checkout Sessions with a status in [open] can be "
                                     "expired.", "session", code="checkout_session_not_open")
    checkout.expire(session)
    return web.json_response(session._export())


async def session_line_items(request: web.Request) -> web.Response:
    session = checkout.session_or_404(request.match_info["id"])
    return web.json_response({"object": "list", "has_more": False, "data": session.items,
                              "url": f"/v1/checkout/sessions/{session.id}/line_items"})


async def session_payment(request: web.Request) -> web.Response:
    """The lab's offline hosted page only: what to pay, and the client secret to pay it with."""
    return web.json_response(checkout.payment_for(
        checkout.session_or_404(request.match_info["id"])))


@web.middleware
async def checkout_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except checkout.CheckoutError as e:
        return e.response()


def add_checkout_routes(app: web.Application) -> None:
    checkout.watch_events()
    app.middlewares.append(checkout_errors)
    app.router.add_post("/v1/checkout/sessions", create_session)
    app.router.add_get("/v1/checkout/sessions/{id}", retrieve_session)
    app.router.add_post("/v1/checkout/sessions/{id}/expire", expire_session)
    app.router.add_get("/v1/checkout/sessions/{id}/line_items", session_line_items)
    app.router.add_get("/_lab/checkout/sessions/{id}/payment", session_payment)


def build_app(key: str, webhook_ids: frozenset[str], port: int) -> web.Application:
    _no_store_file()
    app = ls_server.app
    app.middlewares.insert(0, walls(key, webhook_ids, port))
    if ls_server.add_cors_headers in app.on_response_prepare:
        app.on_response_prepare.remove(ls_server.add_cors_headers)
    app.router.add_get("/_lab/webhooks", list_webhooks)
    app.router.add_delete("/_lab/webhooks/{id}", remove_webhook)
    add_checkout_routes(app)
    return app


def read_key(environ=os.environ, stdin=sys.stdin) -> str:
    key = environ.pop(KEY_ENV, None) or stdin.readline().strip()
    if not key.startswith("sk_test_") or len(key) < 24:
        raise SystemExit(f"stand_in: no key (set {KEY_ENV}, or write it as the first line on "
                         "stdin): sk_test_ and at least 16 random characters.")
    return key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port (the default)")
    parser.add_argument("--webhook-id", action="append", default=[],
                        help="a webhook endpoint id the lab may register (repeatable)")
    args = parser.parse_args(argv)
    key = read_key()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # connections wait in the backlog until the app accepts them
    port = sock.getsockname()[1]
    app = build_app(key, frozenset(args.webhook_id or ["tutorial-lab"]), port)
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.DEBUG)
    access.addHandler(logging.StreamHandler(sys.stderr))
    print(f"listening 127.0.0.1 {port}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # from now on, stdout is the log
    web.run_app(app, sock=sock, access_log=access, print=None)


if __name__ == "__main__":
    main()
