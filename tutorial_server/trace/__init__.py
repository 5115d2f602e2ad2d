"""See your own payment: every message of one order, drawn as the six-step sequence diagram
(GET /api/orders/<order_id>/trace; the dashboard's Follow view; lab.trace(order) in a notebook).

The lab records, per order, each message the merchant server takes part in:
- the client's requests about the order (POST /api/orders with its Idempotency-Key, the
  checkout page, the offline card confirm, sync, cancel; polls of the order fold into one line);
- its own requests to Stripe while handling them (create, retrieve, confirm, cancel), with
  their idempotency keys, status and duration (a wrapper around stripe-python's HTTP client);
- each webhook delivery about the order: event id and type, the signature check, and what the
  handler did (fulfilled, duplicate, amount_mismatch ...);
- each sync and reconcile (the background one and the CLI's too) and what it settled.
The customer's own payment (step 5) goes from the browser straight to Stripe, so the server
only learns of it through Stripe: that line says so ("reported by Stripe").

Never a secret: no request or response body is kept, only methods, paths, ids, statuses and
idempotency keys; a client secret shows as the PaymentIntent it belongs to, and anything
shaped like a key or webhook secret is masked before it is stored.

recorder.py notes the facts on the request's time; messages.py and writer.py build and store
them in a thread of their own; views.py serves them; diagram.py draws them. The server knows
nothing of this: the trace listens to its signals (webhooks.event_handled, reconcile.
order_checked ...) and wraps its Stripe HTTP client. Set TUTORIAL_TRACE=off to record nothing
(the benchmarks compare both).
"""
from __future__ import annotations

from flask import Flask

from .. import reconcile, webhooks
from . import recorder, views
from .writer import Writer


def install(app: Flask) -> None:
    """Register the endpoint and, unless TUTORIAL_TRACE=off, the recording hooks."""
    app.register_blueprint(views.bp)
    app.extensions["trace_writer"] = Writer(app.config["DATABASE"])
    if not recorder.enabled():
        return
    app.before_request(recorder.before_request)
    app.after_request(recorder.after_request)
    app.teardown_request(recorder.teardown_request)
    webhooks.event_handled.connect(recorder.webhook_handled, sender=app)
    webhooks.event_refused.connect(recorder.webhook_refused, sender=app)
    reconcile.order_checking.connect(recorder.order_checking, sender=app)
    reconcile.order_checked.connect(recorder.order_checked, sender=app)
