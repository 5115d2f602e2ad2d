"""Every benchmark of issue 7, one after the other: `make bench` (or this file).

    python bench/run_all.py           # the full run: a few minutes on 2 cores
    python bench/run_all.py --quick   # small numbers, to check that everything runs

Each prints its numbers; nothing here passes or fails. Run it on a quiet machine: anything
else running (tests, a browser, JupyterLab) shows up in every number. All traffic stays on
127.0.0.1, and every loop is bounded.
"""
from __future__ import annotations

import argparse
import time

import class_day
import classroom
import notebooks
import orders
import trace_cost
import webhooks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N: checks the scripts run")
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.quick:
        orders.main(["--requests", "20", "--concurrent-requests", "40", "--warmup", "3"])
        webhooks.main(["--events", "20"])
        trace_cost.main(["--requests", "20", "--events", "20", "--warmup", "3"])
        classroom.main(["--learners", "8"])
        class_day.main(["--orders", "200", "--window", "20"])
    else:
        orders.main([])
        webhooks.main([])
        trace_cost.main([])
        classroom.main([])
        class_day.main([])
    if not args.skip_notebooks:
        notebooks.main([])
    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
