"""The Postman collection in postman/, run by newman against a real lab.

Learners import the two files into Postman and click through the six steps; these tests prove
that what they import still works: the files are well-formed and carry no real secret, every
request runs and passes its own `pm.test`s, and the lab's database ends with the order paid and
the product in the customer's inventory, once (and, from the folder "The other way: Stripe
Checkout", one order paid on Stripe's page once and two canceled). newman writes a JUnit report to test-artifacts/
(git-ignored). The lab's webhook secret reaches newman only on its command line.
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .running_lab import ROOT

COLLECTION = Path("postman/stripe-payments-lab.postman_collection.json")
ENVIRONMENT = Path("postman/local-lab.postman_environment.json")
NEWMAN = Path("node_modules/.bin/newman")
JUNIT_REPORT = Path("test-artifacts/newman-junit.xml")
SCHEMA_V2_1 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# The flow's order, as Step 1's request sends it (the article's step-1 example).
ARTICLE_PRODUCT, ARTICLE_QUANTITY = "80980928378932", 10
# A real key or signing secret is long and random; the placeholders in postman/ are not.
REAL_LOOKING_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]{20,}|\bwhsec_[A-Za-z0-9]{20,}")


def load(path: Path) -> dict:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def requests_in(node: dict, folder: str = "") -> list[tuple[str, dict]]:
    """Every request of a collection, as ("Folder / Request", item), in run order."""
    found = []
    for item in node.get("item", []):
        name = f"{folder} / {item['name']}" if folder else item["name"]
        if "request" in item:
            found.append((name, item))
        else:
            found += requests_in(item, name)
    return found


def script(item: dict, listen: str) -> str:
    return "\n".join(line for event in item.get("event", []) if event["listen"] == listen
                     for line in event["script"]["exec"])


# --- the files ------------------------------------------------------------------------------

def test_collection_is_v2_1_with_one_folder_per_step_in_flow_order():
    collection = load(COLLECTION)
    assert collection["info"]["schema"] == SCHEMA_V2_1
    folders = [item["name"] for item in collection["item"]]
    assert [f.split(":")[0] for f in folders] == [f"Step {n}" for n in range(1, 7)] + [
        "After the payment", "The other way", "Error cases"]


def test_every_request_is_described_and_has_tests():
    collection = load(COLLECTION)
    everywhere = script(collection, "test")
    assert "pm.test(" in everywhere  # the collection-level check runs after every request
    for name, item in requests_in(collection):
        assert len(item["request"].get("description", "")) > 80, f"{name}: no description"
        tests = script(item, "test")
        assert "pm.test(" in tests and "to.have.status(" in tests, f"{name}: no status test"


def test_idempotency_key_is_fresh_per_request_and_reused_by_the_retry():
    collection = load(COLLECTION)
    assert "{{$guid}}" in script(collection, "prerequest")
    keys = {name.split(" / ")[-1]: header["value"]
            for name, item in requests_in(collection)
            for header in item["request"]["header"] if header["key"] == "Idempotency-Key"}
    assert keys["Create the order"] == "{{idempotencyKey}}"
    assert keys["Retry the order with the same Idempotency-Key"] == "{{orderIdempotencyKey}}"


def test_environment_is_the_local_lab_with_a_placeholder_webhook_secret():
    values = {v["key"]: v for v in load(ENVIRONMENT)["values"]}
    assert values["baseUrl"]["value"] == "http://localhost:4242"
    assert values["webhookSecret"]["type"] == "secret"
    assert values["webhookSecret"]["value"] == "whsec_paste_the_lab_secret_here"
    for filled_in_by_the_run in ("backendUrl", "orderId", "clientSecret", "paymentIntentId",
                                 "sessionOrderId", "checkoutSessionId", "sessionPaymentIntentId"):
        assert values[filled_in_by_the_run]["value"] == ""


@pytest.mark.parametrize("path", [COLLECTION, ENVIRONMENT], ids=lambda p: p.name)
def test_no_real_key_or_secret_in_the_postman_files(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    assert REAL_LOOKING_SECRET.findall(text) == []
    # The one Stripe key in the files is the placeholder for the lab's key for its stand-in.
    assert set(re.findall(r"\b[sr]k_(?:test|live)_\w+", text)) <= {
        "sk_test_paste_the_lab_stand_in_key_here"}


# --- newman against a running lab -----------------------------------------------------------

@dataclass
class NewmanRun:
    result: subprocess.CompletedProcess = field(repr=False)  # its argv holds the secret
    seconds: float
    customer: str
    suites: list[ET.Element]

    def output(self) -> str:
        return (self.result.stdout + self.result.stderr)[-6000:]


@pytest.fixture(scope="module")
def newman_run(lab) -> NewmanRun:
    if not (ROOT / NEWMAN).exists():
        pytest.fail("newman is not installed: run `npm ci` (`make test` does it first)")
    customer = "postman_" + secrets.token_hex(6)  # this run's orders and inventory only
    (ROOT / JUNIT_REPORT).parent.mkdir(exist_ok=True)
    (ROOT / JUNIT_REPORT).unlink(missing_ok=True)
    argv = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT),
            "--env-var", f"baseUrl={lab.url}",
            "--env-var", f"webhookSecret={lab.webhook_secret}",
            "--env-var", f"offlineStripeKey={lab.state['backend_key']}",
            "--env-var", f"customer={customer}",
            "--reporters", "cli,junit", "--reporter-junit-export", str(JUNIT_REPORT),
            "--color", "off"]
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    suites = []
    if (ROOT / JUNIT_REPORT).exists():
        suites = ET.parse(ROOT / JUNIT_REPORT).getroot().findall("testsuite")
    return NewmanRun(result, seconds, customer, suites)


def test_newman_passes_every_assertion(newman_run):
    assert newman_run.result.returncode == 0, newman_run.output()
    failed = {s.get("name"): (s.get("failures"), s.get("errors")) for s in newman_run.suites
              if int(s.get("failures")) or int(s.get("errors"))}
    assert failed == {}, newman_run.output()


def test_every_request_ran_with_all_its_assertions(newman_run):
    collection = load(COLLECTION)
    requests = requests_in(collection)
    ran = {s.get("name"): int(s.get("tests")) for s in newman_run.suites}
    # A collection that silently runs nothing (or skips a folder) fails here.
    assert list(ran) == [name for name, _ in requests], newman_run.output()
    # Each request runs the collection-level check plus every pm.test of its own script.
    per_request = script(collection, "test").count("pm.test(")
    for name, item in requests:
        assert ran[name] >= per_request + script(item, "test").count("pm.test("), name
    assert len(requests) >= 25 and sum(ran.values()) >= 100
    print(f"newman: {len(requests)} requests, {sum(ran.values())} assertions, "
          f"{newman_run.seconds:.1f}s")


def test_the_report_does_not_contain_the_webhook_secret(newman_run, lab):
    for secret in (lab.webhook_secret, lab.state["backend_key"]):
        assert secret not in (ROOT / JUNIT_REPORT).read_text(encoding="utf-8")
        assert secret not in newman_run.result.stdout


def test_the_order_ended_paid_and_fulfilled_once_in_the_lab_db(newman_run, lab):
    assert newman_run.result.returncode == 0, newman_run.output()
    db = sqlite3.connect(f"file:{lab.db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        # One order: the retry replayed it, and the 409 request was refused.
        [order] = db.execute("SELECT * FROM orders WHERE customer = ? AND status != 'created' "
                             "AND pay_with = 'payment_intent'", (newman_run.customer,)).fetchall()
        assert (order["product_id"], order["quantity"]) == (ARTICLE_PRODUCT, ARTICLE_QUANTITY)
        # ...and then ₹100.00 of it was refunded once, the retry replayed (After the payment).
        assert (order["status"], order["amount_paid"], order["attempts"]) == (
            "partially_refunded", order["amount"], 1)
        assert order["amount_refunded"] == 10000
        assert len(db.execute("SELECT * FROM refunds WHERE order_id = ?", (order["id"],))
                   .fetchall()) == 1
        assert order["amount"] == 90000  # 10 x ₹100.00, less the 10% volume discount, in paise
        inventory = db.execute("SELECT order_id, product_id, quantity FROM inventory "
                               "WHERE customer = ? AND order_id = ?",
                               (newman_run.customer, order["id"])).fetchall()
        assert [tuple(r) for r in inventory] == [(order["id"], ARTICLE_PRODUCT, ARTICLE_QUANTITY)]
        # The offline Stripe's own delivery fulfilled it; the event Postman signed found it
        # already paid; the redelivery and the forgeries were never recorded as events.
        outcomes = sorted(r["outcome"] for r in db.execute(
            "SELECT outcome FROM webhook_events WHERE payment_intent = ?",
            (order["payment_intent"],)))
        assert outcomes == ["already_paid", "fulfilled"]
    finally:
        db.close()


def test_the_other_way_paid_one_session_order_once_and_canceled_two(newman_run, lab):
    """The folder "The other way: Stripe Checkout": one order paid on Stripe's page (played
    offline), settled once although three events named it; one canceled by the customer, its
    session expired first; one canceled by checkout.session.expired."""
    assert newman_run.result.returncode == 0, newman_run.output()
    db = sqlite3.connect(f"file:{lab.db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        orders = db.execute("SELECT * FROM orders WHERE customer = ? AND pay_with = "
                            "'checkout_session' ORDER BY created_at, rowid",
                            (newman_run.customer,)).fetchall()
        [paid] = [o for o in orders if o["status"] == "paid"]
        assert (paid["product_id"], paid["quantity"], paid["amount"], paid["amount_paid"]) == (
            ARTICLE_PRODUCT, 2, 20000, 20000)
        assert paid["checkout_session"].startswith("cs_test_")
        assert paid["payment_intent"].startswith("pi_")
        assert sorted((o["status"], o["cancellation_reason"]) for o in orders
                      if o["id"] != paid["id"]) == [("canceled", "abandoned"),
                                                    ("canceled", "checkout_session_expired")]
        assert all(o["checkout_session"] for o in orders)
        inventory = db.execute("SELECT product_id, quantity FROM inventory WHERE order_id = ?",
                               (paid["id"],)).fetchall()
        assert [tuple(r) for r in inventory] == [(ARTICLE_PRODUCT, 2)]
        # The stand-in's payment_intent.succeeded and checkout.session.completed, whichever
        # came first, and the session event Postman signed: fulfilled once.
        events = db.execute("SELECT type, outcome FROM webhook_events WHERE order_id = ?",
                            (paid["id"],)).fetchall()
        assert sorted(r["outcome"] for r in events) == ["already_paid", "already_paid",
                                                        "fulfilled"], [tuple(r) for r in events]
        assert sorted(r["type"] for r in events) == [
            "checkout.session.completed", "checkout.session.completed",
            "payment_intent.succeeded"]
    finally:
        db.close()
