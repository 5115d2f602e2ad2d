"""A merchant server shaped like Stripe's own Flask sample (stripe-samples/accept-a-payment,
custom payment flow, server.py), written here for comparison only: one route that creates a
PaymentIntent for a fixed amount with the SDK's global client and answers its client secret,
served by Flask's built-in server as the sample's `app.run` does. No pricing, no order store,
no idempotency key, no validation: the floor a real merchant server is measured against.

    python bench/sample_server.py PORT STRIPE_API_BASE

(The sample also passes automatic_payment_methods, which the offline stand-in refuses; it is
left out here.)
"""
from __future__ import annotations

import os
import sys

import stripe
from flask import Flask, jsonify

from tutorial_server.lab.offline_stripe import KEY_ENV

app = Flask(__name__)


@app.post("/create-payment-intent")
def create_payment_intent():
    intent = stripe.PaymentIntent.create(amount=1200, currency="usd")
    return jsonify(clientSecret=intent.client_secret)


if __name__ == "__main__":
    port, stripe.api_base = int(sys.argv[1]), sys.argv[2]
    stripe.api_key = os.environ[KEY_ENV]  # the lab's key for its stand-in
    stripe.max_network_retries = 0
    app.run(host="127.0.0.1", port=port)
