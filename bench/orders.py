"""Benchmark 1: what the merchant server adds to creating a payment.

    python bench/orders.py [--requests 300] [--concurrent-requests 500]

POST /api/orders (validate, price, store the order and its Idempotency-Key, create the
PaymentIntent on the offline Stripe, link it, answer) against the SDK's own
PaymentIntent.create with the same parameters on the same offline Stripe, interleaved request
by request (alternating which goes first) so both see the same backend state: the offline
Stripe gets slower as it stores more objects, because it re-saves its whole store on each write.
Then requests per second with 10 concurrent clients, for both, to show which one is the limit.

With --with-sample, a server shaped like Stripe's own Flask sample (bench/sample_server.py:
one route, PaymentIntent.create, the client secret back) joins the interleaving on the same
offline Stripe, and the report gives the overhead ratio: this server's overhead over the direct
create divided by the sample's (the sample = 1.0; below 1.0 this server adds less).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import requests

from common import BenchLab, heading, percentile, summary
from tutorial_server.lab.offline_stripe import KEY_ENV

PRODUCT, QUANTITY, AMOUNT, CURRENCY = "prod_enamel_mug", 1, 1200, "usd"


def order_request(session: requests.Session, url: str, run: str, i: int) -> float:
    started = time.perf_counter()
    response = session.post(f"{url}/api/orders", timeout=30,
                            json={"productId": PRODUCT, "quantity": QUANTITY, "customer": "bench"},
                            headers={"Idempotency-Key": f"{run}-order-{i}"})
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/orders answered {response.status_code}: {response.text}")
    return elapsed * 1000


def direct_create(client, run: str, i: int) -> float:
    """What the gateway sends for an order, sent straight to the offline Stripe by the SDK."""
    started = time.perf_counter()
    client.v1.payment_intents.create(
        params={"amount": AMOUNT, "currency": CURRENCY,
                "metadata": {"order_id": f"order_{run}{i}", "product": PRODUCT,
                             "quantity": str(QUANTITY), "customer": "bench"}},
        options={"idempotency_key": f"{run}-direct-{i}"})
    return (time.perf_counter() - started) * 1000


def sample_request(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.post(f"{url}/create-payment-intent", timeout=30)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"the sample answered {response.status_code}: {response.text}")
    return elapsed * 1000


def start_sample(backend_url: str, backend_key: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sample_server.py")),
                                str(port), backend_url], stdout=subprocess.DEVNULL,
                               env={**os.environ, KEY_ENV: backend_key},
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.post(f"{url}/create-payment-intent", timeout=2)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sample server did not start")


def with_sample(lab, args, run: str) -> dict:
    """This server, the sample and the direct create, interleaved (rotating which goes first)."""
    process, sample_url = start_sample(lab.backend_url, lab.backend_key)
    try:
        ours_session, sample_session = requests.Session(), requests.Session()
        client = lab.stripe_client()
        sends = [lambda i: order_request(ours_session, lab.url, run + "s", i),
                 lambda i: sample_request(sample_session, sample_url),
                 lambda i: direct_create(client, run + "s", i)]
        for i in range(args.warmup):
            for send in sends:
                send(i)
        times: list[list[float]] = [[], [], []]
        for i in range(args.requests):
            for k in range(3):
                which = (i + k) % 3
                times[which].append(sends[which](i))
        ours, sample, direct = times
        ours_over = statistics.median([o - d for o, d in zip(ours, direct)])
        sample_over = statistics.median([s - d for s, d in zip(sample, direct)])
        print(f"POST /api/orders           {summary(ours)}")
        print(f"the sample's POST          {summary(sample)}")
        print(f"PaymentIntent.create (SDK) {summary(direct)}")
        print(f"overhead over the direct create (medians of paired differences): this server "
              f"{ours_over:.2f} ms, the sample {sample_over:.2f} ms; overhead ratio "
              f"{ours_over / sample_over:.2f} (the sample = 1.00)")
        return {"overhead_ms": ours_over, "sample_overhead_ms": sample_over,
                "overhead_ratio": ours_over / sample_over}
    finally:
        process.terminate()
        process.wait(timeout=10)


def throughput(worker, total: int, clients: int = 10) -> tuple[float, list[float]]:
    """Requests per second with `clients` threads, each sending back to back."""
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []

    def run_client():
        local = worker()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            latencies.append(local(i))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(run_client) for _ in range(clients)]:
            future.result()
    return total / (time.perf_counter() - started), latencies


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="interleaved pairs (default 300)")
    parser.add_argument("--concurrent-requests", type=int, default=500,
                        help="requests per throughput run (default 500)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-trace", action="store_true",
                        help="the server records no order traces (TUTORIAL_TRACE=off)")
    parser.add_argument("--with-sample", action="store_true",
                        help="also compare with a server shaped like Stripe's Flask sample")
    args = parser.parse_args(argv)
    heading("1. POST /api/orders vs a direct PaymentIntent.create (offline Stripe)")
    run = uuid.uuid4().hex[:8]
    with BenchLab("orders", trace=not args.no_trace) as lab:
        session, client = requests.Session(), lab.stripe_client()
        for i in range(args.warmup):
            order_request(session, lab.url, run + "w", i)
            direct_create(client, run + "w", i)
        server_ms, direct_ms = [], []
        for i in range(args.requests):
            if i % 2 == 0:
                server_ms.append(order_request(session, lab.url, run, i))
                direct_ms.append(direct_create(client, run, i))
            else:
                direct_ms.append(direct_create(client, run, i))
                server_ms.append(order_request(session, lab.url, run, i))
        differences = [s - d for s, d in zip(server_ms, direct_ms)]
        print(f"POST /api/orders          {summary(server_ms)}")
        print(f"PaymentIntent.create (SDK) {summary(direct_ms)}")
        med_s, med_d = statistics.median(server_ms), statistics.median(direct_ms)
        print(f"ratio of medians {med_s / med_d:.2f}x; overhead {med_s - med_d:.2f} ms "
              f"(median of paired differences {statistics.median(differences):.2f} ms, "
              f"gap between the p95s {percentile(server_ms, 95) - percentile(direct_ms, 95):.2f} ms)")
        print(f"  where the median order's time goes: {med_d:.2f} ms in the offline Stripe's "
              f"PaymentIntent.create, {med_s - med_d:.2f} ms in the server (validation, pricing, "
              "two SQLite transactions, the Idempotency-Key, JSON)")

        def server_worker():
            own = requests.Session()
            return lambda i: order_request(own, lab.url, run + "c", i)

        def direct_worker():
            own = lab.stripe_client()
            return lambda i: direct_create(own, run + "c", i)

        compared = with_sample(lab, args, run) if args.with_sample else {}
        server_rps, server_lat = throughput(server_worker, args.concurrent_requests)
        direct_rps, direct_lat = throughput(direct_worker, args.concurrent_requests)
        print(f"10 concurrent clients: POST /api/orders {server_rps:6.1f} req/s "
              f"(median {statistics.median(server_lat):.1f} ms); direct PaymentIntent.create "
              f"{direct_rps:6.1f} req/s (median {statistics.median(direct_lat):.1f} ms)")
        limit = ("the offline Stripe is the limit: the server reaches "
                 f"{server_rps / direct_rps:.0%} of what the stand-in alone sustains"
                 if server_rps >= 0.7 * direct_rps else
                 f"the server is the limit: {server_rps / direct_rps:.0%} of the stand-in's rate")
        print(f"  {limit}. Clients, server and stand-in share this machine's CPUs.")
    return {"server_median_ms": med_s, "direct_median_ms": med_d, "server_rps": server_rps,
            "direct_rps": direct_rps, **compared}


if __name__ == "__main__":
    main()
