"""Shared pieces of the benchmarks: a lab of their own, statistics, and the report format.

Every benchmark starts its own lab (`python -m tutorial_server.lab serve --port 0`) on 127.0.0.1
with a temporary database and its own offline Stripe, so the numbers never depend on a lab
someone else is using, and all traffic stays on this machine.
"""
from __future__ import annotations

import math
import os
import platform
import secrets
import shutil
import socket
import statistics
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import stripe

from tutorial_server.gateway import API_VERSION
from tutorial_server.lab.process import LabDidNotStart, LabProcess
from tutorial_server.lab.offline_stripe import WEBHOOK_ENDPOINT_ID

ROOT = Path(__file__).resolve().parent.parent  # the project (the scripts run from anywhere)


class BenchLab:
    """A lab of the benchmark's own: the merchant server and its offline Stripe."""

    def __init__(self, label: str = "bench", trace: bool = True,
                 args: list[str] | None = None) -> None:
        self.trace = trace  # False: the server records no order traces (TUTORIAL_TRACE=off)
        self.args = args or []  # more `serve` options
        self.folder = Path(tempfile.mkdtemp(prefix=f"stripe-lab-{label}-"))
        self.db = self.folder / "bench.sqlite3"
        self.webhook_secret = "whsec_" + secrets.token_hex(24)
        self.process: LabProcess | None = None

    def __enter__(self) -> "BenchLab":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TUTORIAL_"))}
        env.update(TUTORIAL_DB=str(self.db), STRIPE_WEBHOOK_SECRET=self.webhook_secret,
                   PYTHONUNBUFFERED="1")
        if not self.trace:
            env["TUTORIAL_TRACE"] = "off"
        self.log = self.folder / "lab.log"
        self.process = LabProcess(self.db, env=env, log=self.log)
        try:
            self.process.start(timeout=60)
        except LabDidNotStart as e:
            raise RuntimeError(f"{e}:\n" + self.log.read_text()) from None
        self.url, self.backend_url = self.process.url, self.process.backend_url
        self.backend_key = self.process.state["backend_key"]  # the lab's key for its stand-in
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)
        shutil.rmtree(self.folder, ignore_errors=True)

    def stripe_client(self) -> stripe.StripeClient:
        """The SDK pointed at this lab's offline Stripe, configured as the server's gateway is."""
        return stripe.StripeClient(self.backend_key, stripe_version=API_VERSION,
                                   base_addresses={"api": self.backend_url},
                                   max_network_retries=0)

    def redirect_webhooks_to_nowhere(self) -> None:
        """Make the offline Stripe deliver its webhooks to a closed port, so that only the
        benchmark's own deliveries reach the server (as when the webhook is lost)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        data = urllib.parse.urlencode({"url": f"http://127.0.0.1:{dead}/webhook",
                                       "secret": self.webhook_secret}).encode()
        request = urllib.request.Request(
            f"{self.backend_url}/_config/webhooks/{WEBHOOK_ENDPOINT_ID}", data=data, method="POST",
            headers={"Authorization": f"Bearer {self.backend_key}"})
        with urllib.request.urlopen(request, timeout=10):
            pass


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(values_ms: list[float]) -> str:
    return (f"median {statistics.median(values_ms):7.2f} ms   p95 {percentile(values_ms, 95):7.2f} ms"
            f"   p99 {percentile(values_ms, 99):7.2f} ms   (n={len(values_ms)})")


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, load average {load} (other work running skews every number)")


def heading(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)
    print(f"machine: {machine()}", flush=True)
