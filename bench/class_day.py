"""Benchmark: a class day of orders on one lab.

    python bench/class_day.py [--orders 2000] [--window 100]

One lab, one offline Stripe, `--orders` orders one after the other (POST /api/orders, as a
class sends them all day long). Prints the median order time over the first `--window` orders
and over the last `--window`, and their ratio: a lab must not get slower as its day goes on
(target: the end at most 1.3 times the start). The stand-in's whole-store save after every
write used to make this about 2.9.
"""
from __future__ import annotations

import argparse
import statistics
import uuid

import requests

from common import BenchLab, heading
from orders import order_request

TARGET_RATIO = 1.3


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args(argv)
    heading(f"A class day: {args.orders} orders on one lab, the first {args.window} against "
            f"the last {args.window}")
    run = uuid.uuid4().hex[:8]
    with BenchLab("class-day") as lab:
        session = requests.Session()
        times = [order_request(session, lab.url, run, i) for i in range(args.orders)]
    start = statistics.median(times[:args.window])
    end = statistics.median(times[-args.window:])
    ratio = end / start
    print(f"median order, first {args.window}: {start:.2f} ms; last {args.window}: {end:.2f} ms; "
          f"end / start x{ratio:.2f} (target at most x{TARGET_RATIO})")
    return {"start_median_ms": start, "end_median_ms": end, "ratio": ratio}


if __name__ == "__main__":
    main()
