"""Benchmark 2: the webhook handler, for signed payment_intent.succeeded deliveries.

    python bench/webhooks.py [--events 300]

What is measured, and why this way:
- fresh: each delivery is a new event for a different order that was really paid on the
  offline Stripe. It takes the handler's whole path: verify the signature, look the event id
  up, re-read the PaymentIntent from Stripe, then one write transaction that records the event,
  marks the order paid and adds the inventory. This is what a real delivery costs.
- duplicate: the same events again. Stripe does redeliver; the handler answers after the
  signature check and one lookup, without calling Stripe: the handler's floor.
- the offline Stripe's own PaymentIntent retrieve, timed alone, is the part of "fresh" that
  is the stand-in, not the server.
The offline Stripe's own deliveries are redirected to a closed port while this runs, so the
only deliveries the server sees are the benchmark's (signed with the lab's secret, exactly as
Stripe signs them: t=<ts>,v1=HMAC-SHA256("<ts>.<body>")). Signing happens before the clock starts.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tutorial_server.lab.process import gateway_for
from tutorial_server.notebook.customer import pay_with_test_card

from common import BenchLab, heading, percentile, summary


def signed(event: dict, secret: str) -> tuple[bytes, dict]:
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return payload, {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}",
                     "Content-Type": "application/json"}


def paid_orders(lab: BenchLab, count: int, run: str) -> list[dict]:
    """Orders whose PaymentIntents really succeeded on the offline Stripe (setup, not timed)."""
    gateway = gateway_for(lab.process.state)
    session, intents = requests.Session(), []
    for i in range(count):
        order = session.post(f"{lab.url}/api/orders", timeout=30,
                             json={"productId": "prod_drip_bags", "quantity": 1,
                                   "customer": f"bench_{run}"}).json()["order"]
        intents.append(pay_with_test_card(gateway, order["payment_intent"], "success"))
    return intents


def event_for(intent: dict, run: str, i: int) -> dict:
    return {"id": f"evt_bench_{run}_{i}", "object": "event", "type": "payment_intent.succeeded",
            "created": int(time.time()), "livemode": False, "api_version": "2026-10-28.endive",
            "data": {"object": intent}}


def deliver(session: requests.Session, url: str, event: dict, secret: str,
            expected: str) -> float:
    payload, headers = signed(event, secret)
    started = time.perf_counter()
    response = session.post(f"{url}/webhook", data=payload, headers=headers, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    outcome = response.json().get("outcome") if response.ok else response.text
    if outcome != expected:
        raise RuntimeError(f"expected {expected}, got {response.status_code} {outcome}")
    return elapsed


def concurrently(events: list[dict], send, clients: int = 10) -> float:
    """Events per second with `clients` senders."""
    lock, pending = threading.Lock(), list(events)

    def sender():
        session = requests.Session()
        while True:
            with lock:
                if not pending:
                    return
                event = pending.pop()
            send(session, event)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(sender) for _ in range(clients)]:
            future.result()
    return len(events) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300, help="deliveries per run (default 300)")
    parser.add_argument("--no-trace", action="store_true",
                        help="the server records no order traces (TUTORIAL_TRACE=off)")
    args = parser.parse_args(argv)
    heading("2. Webhook handler: signed payment_intent.succeeded deliveries")
    run = uuid.uuid4().hex[:8]
    with BenchLab("webhooks", trace=not args.no_trace) as lab:
        lab.redirect_webhooks_to_nowhere()
        started = time.perf_counter()
        intents = paid_orders(lab, 2 * args.events, run)
        print(f"setup: {len(intents)} orders paid on the offline Stripe in "
              f"{time.perf_counter() - started:.1f} s (not timed below)")
        # The stand-in still tries its own (redirected) deliveries about 1 s after each
        # payment; let those finish so they do not compete with the measurement.
        time.sleep(2.5)
        sequential, parallel = intents[:args.events], intents[args.events:]
        session, secret = requests.Session(), lab.webhook_secret
        events = [event_for(intent, run, i) for i, intent in enumerate(sequential)]

        started = time.perf_counter()
        fresh = [deliver(session, lab.url, e, secret, "fulfilled") for e in events]
        fresh_rate = len(events) / (time.perf_counter() - started)
        started = time.perf_counter()
        duplicate = [deliver(session, lab.url, e, secret, "duplicate") for e in events]
        duplicate_rate = len(events) / (time.perf_counter() - started)
        client = lab.stripe_client()
        retrieve = []
        for intent in sequential:
            t = time.perf_counter()
            client.v1.payment_intents.retrieve(intent["id"])
            retrieve.append((time.perf_counter() - t) * 1000)

        more = [event_for(intent, run, args.events + i) for i, intent in enumerate(parallel)]
        parallel_rate = concurrently(
            more, lambda s, e: deliver(s, lab.url, e, secret, "fulfilled"))

        print(f"fresh (fulfils an order)  {summary(fresh)}   {fresh_rate:6.1f} events/s")
        print(f"duplicate (already seen)  {summary(duplicate)}   {duplicate_rate:6.1f} events/s")
        print(f"offline Stripe retrieve   {summary(retrieve)}   (inside every fresh delivery)")
        own = statistics.median(fresh) - statistics.median(retrieve)
        print(f"  the handler's own share of a fresh delivery: about {own:.2f} ms of "
              f"{statistics.median(fresh):.2f} ms (the rest is re-reading the PaymentIntent)")
        print(f"fresh, 10 concurrent senders: {parallel_rate:6.1f} events/s")
    return {"fresh_median_ms": statistics.median(fresh), "fresh_p99_ms": percentile(fresh, 99),
            "fresh_events_per_second": fresh_rate, "parallel_events_per_second": parallel_rate}


if __name__ == "__main__":
    main()
