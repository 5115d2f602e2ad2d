"""The lab's app: the merchant server (tutorial_server.create_app) plus what a class and a
learner need around it, none of which a shop of your own would have:

- the instructor's dashboard (dashboard.py) and its reset button (reset.py),
- the learner's progress for the class view on a hub (progress.py),
- the React shop at /shop/ (shop.py),
- offline, the mock Stripe.js passed on from this server's own address (stripe_js_relay.py),
  and the page that plays Stripe's hosted Checkout page for Checkout Sessions (hosted_checkout.py),
- each order's trace (tutorial_server/trace/): Stripe's HTTP client wrapped to record it,
- every Stripe request recorded when the tests ask for it (stripe_http.py),
- behind jupyter-server-proxy (JupyterHub, Binder), links that follow the proxy's prefix
  (for requests that prove they came through it: lab/proxied.py),
- the offline stand-in's webhook watchdog answering its own check events.
"""
from __future__ import annotations

import stripe
from flask import Flask, current_app, g, jsonify, request

from .. import create_app, trace
from ..config import Settings
from ..errors import ApiError
from ..security import behind_proxy
from ..trace.recorder import tracing_client
from ..webhooks import verify_event
from . import dashboard, hosted_checkout, progress, refused, reset, shop, stripe_js_relay
from .proxied import proxied_requests, secret_from_environment
from .offline_stripe import CHECK_METADATA_KEY
from .stripe_http import lab_http_client


def create_lab_app(settings: Settings, *, backend_url: str | None = None,
                   test_config: dict | None = None,
                   http_client: stripe.HTTPClient | None = None) -> Flask:
    """The lab's app. `http_client`: what Stripe requests are sent with underneath the lab's
    own wrappers (default: the gateway's own; the tests pass a canned Stripe)."""
    app = create_app(settings, backend_url=backend_url, test_config=test_config,
                     http_client=lab_http_client(settings, wrap=tracing_client,
                                                 inner=http_client))
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(reset.bp)
    app.register_blueprint(progress.bp)  # GET /api/progress, for the class view on a hub
    app.register_blueprint(shop.bp)  # the React client (client/), built by `make client`
    if settings.offline:
        app.register_blueprint(stripe_js_relay.bp)
        app.register_blueprint(hosted_checkout.bp)  # plays Stripe's hosted Checkout page
        app.before_request(_answer_watchdog_checks)
    trace.install(app)  # each order's messages, drawn as the six steps
    refused.install(app)  # refused webhook deliveries, for the dashboard's list only
    if behind_proxy():
        # Behind jupyter-server-proxy (JupyterHub, Binder) the pages live under a prefix such as
        # /user/ada/stripe-lab/; the proxy says which in X-Forwarded-Prefix, and url_for() then
        # builds links and redirects that work there. Trusted only for requests that came
        # through the proxy: on the lab's Unix socket, or with the lab's secret header.
        app.wsgi_app = proxied_requests(app.wsgi_app,  # type: ignore[method-assign]
                                        secret_from_environment())
    return app


def _answer_watchdog_checks():
    """The lab's own check that the offline Stripe still delivers here (offline_stripe.
    WebhookWatchdog): a verified check event is answered before the webhook handler sees it,
    so it is neither recorded nor logged (unless --verbose); it comes every round of the
    background reconcile. Anything else, forged checks included, goes on to the handler."""
    watchdog = current_app.extensions.get("webhook_watchdog")
    if watchdog is None or request.endpoint != "webhooks.receive_webhook":
        return None
    payload = request.get_data(cache=True)
    if CHECK_METADATA_KEY.encode() not in payload:
        return None
    try:
        event = verify_event(payload, request.headers.get("Stripe-Signature"),
                             current_app.config["STRIPE_WEBHOOK_SECRET"])
    except ApiError:  # the handler refuses it, and says why
        return None
    if not watchdog.heard(event):
        return None
    g.routine_request = True
    return jsonify({"received": True, "outcome": "lab_check"}), 200
