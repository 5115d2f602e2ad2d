"""Benchmark 3: a classroom. Many learners run the whole flow against one lab at once.

    python bench/classroom.py [--learners 60]

Each simulated learner does what notebooks 01-06 do, with the notebooks' own helper
(tutorial_server.notebook.LabClient) and its own customer id: create an order (steps 1-4), pay it
with the success test card on the offline Stripe (step 5), wait for the webhook to mark it paid
(step 6; the helper polls every 0.1 s, as the notebooks do), then check the inventory. All start
together (a barrier). Meanwhile one projector polls the dashboard every 1.5 s.
Reported: how many succeed, the errors, time from order to paid, and where that time goes.
"""
from __future__ import annotations

import argparse
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tutorial_server.notebook import LabClient

from common import BenchLab, heading, percentile, summary

PRODUCTS = ["80980928378932", "prod_coffee_beans", "prod_pour_over_kit", "prod_enamel_mug",
            "prod_drip_bags"]


def learner(lab: BenchLab, n: int, barrier: threading.Barrier, paid_timeout: float) -> dict:
    me = LabClient(url=lab.url, mode="offline", backend_url=lab.backend_url,
             customer=f"learner_{n:03d}", _backend_key=lab.backend_key)
    barrier.wait()
    t0 = time.perf_counter()
    answer = me.create_order(PRODUCTS[n % len(PRODUCTS)], 1 + n % 3)
    t1 = time.perf_counter()
    intent = me.pay(answer["order"], "success")
    t2 = time.perf_counter()
    if intent["status"] != "succeeded":
        raise RuntimeError(f"payment {intent['status']}")
    order = me.wait_for_order(answer["order"]["id"], "paid", timeout=paid_timeout)
    t3 = time.perf_counter()
    if order["status"] != "paid":
        raise RuntimeError(f"not paid after {paid_timeout:.0f} s (status {order['status']})")
    inventory = me.inventory(me.customer)
    if [item["order"] for item in inventory] != [order["id"]]:
        raise RuntimeError(f"inventory wrong: {inventory}")
    return {"order_ms": (t1 - t0) * 1000, "pay_ms": (t2 - t1) * 1000,
            "webhook_wait_ms": (t3 - t2) * 1000, "order_to_paid_ms": (t3 - t0) * 1000}


def projector(lab: BenchLab, stop: threading.Event, latencies: list[float]) -> None:
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        session.get(f"{lab.url}/api/dashboard", timeout=30).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
        stop.wait(1.5)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=60)
    parser.add_argument("--paid-timeout", type=float, default=60.0,
                        help="seconds a learner waits for the webhook (default 60)")
    args = parser.parse_args(argv)
    heading(f"3. A classroom: {args.learners} learners run the whole flow at once")
    with BenchLab("classroom") as lab:
        barrier = threading.Barrier(args.learners)
        stop = threading.Event()
        dashboard_ms: list[float] = []
        watcher = threading.Thread(target=projector, args=(lab, stop, dashboard_ms), daemon=True)
        watcher.start()
        results: list[dict] = []
        errors: Counter[str] = Counter()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.learners) as pool:
            futures = [pool.submit(learner, lab, n, barrier, args.paid_timeout)
                       for n in range(args.learners)]
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as e:  # counted and shown, never hidden
                    errors[f"{type(e).__name__}: {str(e)[:120]}"] += 1
                    if len(errors) == 1:
                        traceback.print_exception(e)
        wall = time.perf_counter() - started
        stop.set()
        watcher.join(timeout=5)
        print(f"{len(results)} of {args.learners} learners paid and saw their inventory; "
              f"{sum(errors.values())} errors; whole class done in {wall:.1f} s")
        for message, count in errors.most_common():
            print(f"  error x{count}: {message}")
        if results:
            def column(key):
                return [r[key] for r in results]
            print(f"order to paid             {summary(column('order_to_paid_ms'))}")
            print(f"  step 1-4 POST /api/orders  {summary(column('order_ms'))}")
            print(f"  step 5 pay (offline Stripe) {summary(column('pay_ms'))}")
            print(f"  step 6 wait for webhook    {summary(column('webhook_wait_ms'))}")
            print("  The offline Stripe sends each webhook about 1 s after the payment (its own "
                  "delay), so step 6's wait is mostly the stand-in, not the server.")
        if dashboard_ms:
            print(f"projector: GET /api/dashboard during the class {summary(dashboard_ms)}")
    return {"succeeded": len(results), "errors": sum(errors.values()),
            "p95_order_to_paid_ms": percentile(column("order_to_paid_ms"), 95) if results else None}


if __name__ == "__main__":
    main()
