"""The merchant server of the Stripe payments lab (a Flask application factory).

    from tutorial_server import create_app
    app = create_app(settings, backend_url="http://127.0.0.1:8420")

The server is the package's top level: these modules, templates/ and static/ make a merchant
server you could copy into a shop of your own and run against Stripe test mode. The wings
around it (lab/, notebook/, course/, trace/) import it, never the other way round.
Nothing runs at import time; `python -m tutorial_server.lab serve` starts the lab around it.
"""
from __future__ import annotations

import logging
import queue
from collections import deque

import stripe
from flask import Flask, g, request

from . import (checkout, checkout_sessions, db, errors, learners, orders_api, refunds, security,
               webhooks)
from .config import Settings, load_settings
from .gateway import API_VERSION, make_gateway

MAX_BODY_BYTES = 64 * 1024  # orders and Stripe events are a few KB; refuse bigger bodies


def create_app(settings: Settings | None = None, *, backend_url: str | None = None,
               test_config: dict | None = None,
               http_client: stripe.HTTPClient | None = None) -> Flask:
    """The merchant server: the orders API, the checkout pages, the webhook, refunds.

    `backend_url`: the offline stand-in's address (offline mode). `http_client`: what the
    gateway sends Stripe requests with (the lab passes one that records and traces them).
    """
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
    app.extensions["db_pool"] = queue.LifoQueue(maxsize=db.POOL_SIZE)

    db.init_db(app.config["DATABASE"])
    app.teardown_appcontext(db.close_db)
    errors.register_error_handlers(app)
    # First of all hooks: Host allow-list, no state change from another site, JSON depth.
    security.install(app)
    app.register_blueprint(orders_api.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(refunds.bp)  # POST /api/orders/<id>/refund
    app.register_blueprint(checkout_sessions.bp)  # POST /api/orders/<id>/checkout-session
    app.register_blueprint(checkout.bp)
    app.register_blueprint(learners.bp)  # POST /api/class/join (class mode)
    if settings.offline:
        # The token confirm exists only for the offline stand-in (test mode: 404).
        app.register_blueprint(checkout.offline_bp)
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

    return app


__all__ = ["create_app", "load_settings", "Settings"]
