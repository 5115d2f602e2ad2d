"""The merchant server of the Stripe payments lab (a Flask application factory).

    from tutorial_server import create_app
    app = create_app(settings, backend_url="http://127.0.0.1:8420")

Nothing runs at import time; `python -m tutorial_server serve` starts everything.
"""
from __future__ import annotations

import logging
import queue
import os
from collections import deque

from flask import Flask, g, request

from .config import Settings, load_settings
from .db import POOL_SIZE
from .gateway import API_VERSION, make_gateway

MAX_BODY_BYTES = 64 * 1024  # orders and Stripe events are a few KB; refuse bigger bodies


def create_app(settings: Settings | None = None, *, backend_url: str | None = None,
               test_config: dict | None = None, http_client=None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Stripe's field order
    app.config.update(
        SETTINGS=settings,
        DATABASE=str(settings.db_path),
        STRIPE_WEBHOOK_SECRET=settings.webhook_secret,
        BACKEND_URL=backend_url,
        STRIPE_API_VERSION=API_VERSION,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["gateway"] = make_gateway(settings, backend_url, http_client=http_client)
    app.extensions["webhook_deliveries"] = deque(maxlen=200)
    app.extensions["db_pool"] = queue.LifoQueue(maxsize=POOL_SIZE)

    from . import db, errors, orders_api, security, webhooks
    db.init_db(app.config["DATABASE"])
    app.teardown_appcontext(db.close_db)
    errors.register_error_handlers(app)
    # First of all hooks: Host allow-list, no state change from another site, JSON depth.
    security.install(app)
    app.register_blueprint(orders_api.bp)
    app.register_blueprint(webhooks.bp)
    from . import refunds
    app.register_blueprint(refunds.bp)  # POST /api/orders/<id>/refund
    from . import dashboard, lab_reset
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(lab_reset.bp)
    from . import checkout
    app.register_blueprint(checkout.bp)
    from . import shop
    app.register_blueprint(shop.bp)  # the React client (client/), built by `make client`
    from . import trace
    trace.install(app)  # each order's messages, drawn as the six steps (GET /api/orders/<id>/trace)
    if settings.offline:
        # Routes that exist only for the offline stand-in (test mode: 404): the token confirm,
        # and the mock Stripe.js with its calls through this server's own address.
        from . import stripe_js_proxy
        app.register_blueprint(checkout.offline_bp)
        app.register_blueprint(stripe_js_proxy.bp)
    logging.getLogger("tutorial_server").setLevel(logging.INFO)
    request_log = logging.getLogger("tutorial_server.requests")

    @app.after_request
    def log_request(response):
        # Method, path and status only: never bodies, headers or query strings. Escaped: a
        # %0a in the path must not write a line of its own into the log. Routine reads (every
        # dashboard polls each 1.5 s, every success page twice a second) are DEBUG, so the
        # terminal shows what changes things and what fails (`serve --verbose`: all).
        routine = (request.method in ("GET", "HEAD") or g.get("routine_request", False)) \
            and response.status_code < 400
        request_log.log(logging.DEBUG if routine else logging.INFO, "%s %s %s",
                        security.escape_for_log(request.method),
                        security.escape_for_log(request.path), response.status_code)
        return response

    if os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or os.environ.get("TUTORIAL_BEHIND_PROXY"):
        # Behind jupyter-server-proxy (JupyterHub, Binder) the pages live under a prefix such as
        # /user/ada/proxy/4242/; the proxy says which in X-Forwarded-Prefix, and url_for() then
        # builds links and redirects that work there. Trusted only inside such a container.
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=0, x_host=0, x_prefix=1)  # type: ignore[method-assign]
    return app


__all__ = ["create_app", "load_settings", "Settings"]
