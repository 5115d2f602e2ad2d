"""Benchmark: what recording each order's trace (tutorial_server/trace/) costs.

    python bench/trace_cost.py [--requests 300] [--events 300]

First in one process (Flask's test client, an instant in-memory Stripe): the server's own CPU
time per request, traced and untraced, interleaved; CPU time, so a busy machine barely skews
it. Then two real labs side by side, one recording traces and one with TUTORIAL_TRACE=off, each with its own
offline Stripe. Requests go to both in turn (alternating which goes first), so both see the
same machine load and offline Stripes of the same size (the stand-in slows down as its store
grows). Reported: each side's latency, and the median of the paired differences (on minus off),
which is the recording's cost:
- POST /api/orders: the request, pricing, the Stripe create, the answer: five messages;
- a fresh signed webhook (fulfils an order): the delivery, the payment it reports, the
  PaymentIntent re-read: three messages;
- a duplicate delivery: one message.
The budget: at most 0.1 ms on POST /api/orders (the request only hands its facts to the
trace's writer thread, trace/recorder.py).
"""
from __future__ import annotations

import argparse
import statistics
import time
import uuid

import requests
import stripe

from common import BenchLab, heading, percentile, summary
from orders import order_request
from webhooks import deliver, event_for, paid_orders

BUDGET_MS = 0.1


def paired(on: list[float], off: list[float]) -> str:
    differences = [a - b for a, b in zip(on, off)]
    cost = statistics.median(differences)
    verdict = "within" if cost <= BUDGET_MS else "OVER"
    return (f"recording costs {cost:+.3f} ms (median of {len(differences)} paired differences; "
            f"p95 gap {percentile(on, 95) - percentile(off, 95):+.2f} ms): {verdict} the "
            f"{BUDGET_MS} ms budget")


def interleaved(count: int, send_on, send_off) -> tuple[list[float], list[float]]:
    on, off = [], []
    for i in range(count):
        if i % 2 == 0:
            on.append(send_on(i))
            off.append(send_off(i))
        else:
            off.append(send_off(i))
            on.append(send_on(i))
    return on, off


class InstantStripe(stripe.HTTPClient):
    """A stand-in for the Stripe API that answers at once from memory, for the in-process part
    only: it takes the offline Stripe's time (and its noise) out of the measurement, so what is
    left is the server's own CPU work, with and without recording."""

    name = "instant"

    def __init__(self) -> None:
        super().__init__()
        self.intents: dict[str, dict] = {}

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        import json
        import urllib.parse
        path = urllib.parse.urlsplit(url).path
        if method.lower() == "post" and path == "/v1/payment_intents":
            form = dict(urllib.parse.parse_qsl(post_data.decode() if isinstance(post_data, bytes)
                                               else post_data or ""))
            pid = f"pi_instant{len(self.intents):014d}"
            self.intents[pid] = {"id": pid, "object": "payment_intent",
                                 "amount": int(form["amount"]), "currency": form["currency"],
                                 "status": "requires_payment_method",
                                 "client_secret": f"{pid}_secret_x",
                                 "metadata": {"order_id": form["metadata[order_id]"]}}
            return json.dumps(self.intents[pid]), 200, {}
        pid = path.rsplit("/", 1)[-1]
        return json.dumps(self.intents[pid]), 200, {}

    def close(self):
        pass


def in_process(count: int) -> dict:
    """The server's own CPU time per request (time.thread_time: this thread only, so other
    processes on the machine barely show), in one process through Flask's test client."""
    import os
    import tempfile
    from pathlib import Path

    from tutorial_server.lab.app import create_lab_app
    from tutorial_server.config import load_settings
    from webhooks import signed

    results = {}
    apps = {}
    for name, switch in (("traced", "on"), ("untraced", "off")):
        os.environ["TUTORIAL_TRACE"] = switch
        folder = Path(tempfile.mkdtemp(prefix=f"stripe-lab-trace-{name}-"))
        secret = "whsec_" + uuid.uuid4().hex
        settings = load_settings({"TUTORIAL_DB": str(folder / "bench.sqlite3"),
                                  "STRIPE_WEBHOOK_SECRET": secret})
        instant = InstantStripe()
        app = create_lab_app(settings, backend_url="http://127.0.0.1:9", http_client=instant)
        apps[name] = (app.test_client(), instant, secret)
    os.environ.pop("TUTORIAL_TRACE", None)

    def order(name, i):
        client = apps[name][0]
        started = time.thread_time()
        r = client.post("/api/orders", json={"productId": "prod_enamel_mug", "quantity": 1,
                                             "customer": "bench"},
                        headers={"Idempotency-Key": f"{name}-{i}"})
        elapsed = (time.thread_time() - started) * 1000
        assert r.status_code == 201, r.text
        return elapsed, r.get_json()["order"]

    made = {"traced": [], "untraced": []}

    def send_order(name):
        def send(i):
            elapsed, o = order(name, i)
            made[name].append(o)
            return elapsed
        return send

    for name in apps:  # warm up
        for i in range(20):
            order(name, -1 - i)
    on, off = interleaved(count, send_order("traced"), send_order("untraced"))
    print(f"in-process POST /api/orders CPU, traced   {summary(on)}")
    print(f"in-process POST /api/orders CPU, untraced {summary(off)}")
    print(f"  {paired(on, off)}")
    results["orders_cpu_cost_ms"] = statistics.median([a - b for a, b in zip(on, off)])

    def webhook(name, expected):
        client, instant, secret = apps[name]

        def send(i):
            o = made[name][i]
            intent = dict(instant.intents[o["payment_intent"]], status="succeeded")
            instant.intents[intent["id"]] = intent
            payload, headers = signed(event_for(intent, f"{name}x", i), secret)
            started = time.thread_time()
            r = client.post("/webhook", data=payload, headers=headers)
            elapsed = (time.thread_time() - started) * 1000
            assert r.get_json()["outcome"] == expected, r.get_json()
            return elapsed
        return send

    for expected in ("fulfilled", "duplicate"):
        on, off = interleaved(count, webhook("traced", expected), webhook("untraced", expected))
        print(f"in-process {expected} webhook CPU, traced   {summary(on)}")
        print(f"in-process {expected} webhook CPU, untraced {summary(off)}")
        print(f"  {paired(on, off)}")
        results[f"{expected}_cpu_cost_ms"] = statistics.median([a - b for a, b in zip(on, off)])
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="order pairs (default 300)")
    parser.add_argument("--events", type=int, default=300, help="webhook pairs (default 300)")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    heading("Order traces: POST /api/orders and webhooks, recording on vs off")
    results = in_process(max(args.requests, args.events))
    run = uuid.uuid4().hex[:8]
    # No background reconcile: the setup below loses every webhook on purpose, and would
    # otherwise see its orders settled before the benchmark's own deliveries.
    quiet = ["--reconcile-every", "0"]
    with BenchLab("trace-on", args=quiet) as lab_on, \
            BenchLab("trace-off", trace=False, args=quiet) as lab_off:
        s_on, s_off = requests.Session(), requests.Session()
        for i in range(args.warmup):
            order_request(s_on, lab_on.url, run + "w", i)
            order_request(s_off, lab_off.url, run + "w", i)
        on, off = interleaved(args.requests,
                              lambda i: order_request(s_on, lab_on.url, run, i),
                              lambda i: order_request(s_off, lab_off.url, run, i))
        print(f"POST /api/orders, traced   {summary(on)}")
        print(f"POST /api/orders, untraced {summary(off)}")
        print(f"  {paired(on, off)}")
        results["orders_cost_ms"] = statistics.median([a - b for a, b in zip(on, off)])

        for lab in (lab_on, lab_off):
            lab.redirect_webhooks_to_nowhere()
        started = time.perf_counter()
        intents_on = paid_orders(lab_on, args.events, run)
        intents_off = paid_orders(lab_off, args.events, run)
        print(f"setup: {2 * args.events} orders paid in {time.perf_counter() - started:.1f} s "
              "(not timed)")
        time.sleep(2.5)  # the stand-ins' own (redirected) deliveries finish first
        events_on = [event_for(intent, run, i) for i, intent in enumerate(intents_on)]
        events_off = [event_for(intent, run, i) for i, intent in enumerate(intents_off)]
        for expected, name in (("fulfilled", "fresh webhook"), ("duplicate", "duplicate webhook")):
            on, off = interleaved(
                args.events,
                lambda i: deliver(s_on, lab_on.url, events_on[i], lab_on.webhook_secret, expected),
                lambda i: deliver(s_off, lab_off.url, events_off[i], lab_off.webhook_secret,
                                  expected))
            print(f"{name + ', traced':<28}{summary(on)}")
            print(f"{name + ', untraced':<28}{summary(off)}")
            print(f"  {paired(on, off)}")
            results[f"{expected}_cost_ms"] = statistics.median([a - b for a, b in zip(on, off)])
    return results


if __name__ == "__main__":
    main()
