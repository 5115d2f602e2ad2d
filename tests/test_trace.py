"""An order's trace (GET /api/orders/<id>/trace): the messages of one payment, in order, as the
six-step sequence diagram, and never a secret in it. Real lab, real offline Stripe, real
webhooks; the test plays the customer (lab.gateway(), card tokens through the lab's proxy)."""
from __future__ import annotations

import json

from tutorial_server.db import connect, init_db, transaction
from tutorial_server.notebook.customer import pay_with_test_card

from .card_form import DECLINED, SUCCESS, card_token
from .running_lab import drop_webhooks, run_cli, wait_for
from .signing import sign

# Every trace a test reads, with the client secrets its orders had: scanned at the end of each test.
SECRET_MARKERS = ("sk_", "whsec_", "rk_", "_secret_")


def trace_of(lab, order_id: str) -> dict:
    r = lab.get(f"/api/orders/{order_id}/trace")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["mermaid"].startswith("sequenceDiagram")
    return body


def assert_no_secret(lab, body: dict, client_secrets: list[str]) -> None:
    text = json.dumps(body)
    for secret in [lab.webhook_secret, *client_secrets, *SECRET_MARKERS]:
        assert secret not in text, f"{secret[:8]}... appears in the trace"


def first_steps(messages: list[dict]) -> list[int]:
    seen: list[int] = []
    for m in messages:
        if m["step"] not in seen:
            seen.append(m["step"])
    return seen


def test_a_paid_order_shows_steps_1_to_6_in_order(lab, customer):
    created = lab.order("prod_drip_bags", 2, customer, headers={"Idempotency-Key": f"{customer}-1"})
    order = created["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    body = trace_of(lab, order["id"])
    messages = body["data"]
    assert first_steps(messages) == [1, 2, 3, 4, 5, 6], [(m["step"], m["kind"]) for m in messages]
    ask = messages[0]
    assert (ask["from"], ask["to"], ask["path"], ask["idempotency_key"]) == \
        ("client", "server", "/api/orders", f"{customer}-1")
    create = next(m for m in messages if m["kind"] == "stripe")
    assert (create["step"], create["method"], create["path"], create["status"]) == \
        (3, "POST", "/v1/payment_intents", "200")
    assert create["idempotency_key"] == f"{order['id']}-create-payment-intent"
    webhook = next(m for m in messages if m["kind"] == "webhook")
    assert (webhook["from"], webhook["event_type"], webhook["signature"], webhook["outcome"]) == \
        ("stripe", "payment_intent.succeeded", "verified", "fulfilled")
    assert all(m["t_ms"] >= 0 for m in messages)
    # The diagram: the notebooks' participants, each message numbered with its step.
    text = body["mermaid"]
    assert "participant C as Client (browser / app)" in text and "participant St as Stripe" in text
    assert "C->>S: 1. POST /api/orders" in text and "S->>St: 3. POST /v1/payment_intents" in text
    assert "St->>S: 6. webhook payment_intent.succeeded" in text
    assert_no_secret(lab, body, [created["client_secret"]])


def test_a_replayed_order_request_shows_as_a_replay(lab, customer):
    key = f"{customer}-replay"
    first = lab.order("prod_enamel_mug", 1, customer, headers={"Idempotency-Key": key})
    lab.order("prod_enamel_mug", 1, customer, headers={"Idempotency-Key": key})
    messages = trace_of(lab, first["order"]["id"])["data"]
    asks = [m for m in messages if m["kind"] == "request"]
    assert [a.get("replayed", False) for a in asks] == [False, True]
    assert [m["kind"] for m in messages].count("priced") == 1  # priced once, not on the replay


def test_declined_then_paid_shows_both_attempts(lab, customer):
    created = lab.order("prod_enamel_mug", 1, customer)
    order = created["order"]
    declined = lab.post(f"/checkout/{order['id']}/confirm",
                        json={"token": card_token(lab, DECLINED)}).json()
    assert declined["payment_intent"]["status"] == "requires_payment_method"
    lab.wait_for_status(order["id"], "attempted")
    paid = lab.post(f"/checkout/{order['id']}/confirm",
                    json={"token": card_token(lab, SUCCESS)}).json()
    assert paid["payment_intent"]["status"] == "succeeded"
    lab.wait_for_status(order["id"], "paid")
    body = trace_of(lab, order["id"])
    messages = body["data"]
    confirms = [m for m in messages if m["kind"] == "answer" and m.get("purpose") == "confirm"]
    assert [(c["failed"], c.get("intent_status")) for c in confirms] == \
        [(True, "requires_payment_method"), (False, "succeeded")], confirms
    # The second attempt needed a fresh PaymentIntent offline, created in step 5.
    creates = [m for m in messages if m["kind"] == "stripe" and m["method"] == "POST"
               and m["path"] == "/v1/payment_intents"]
    assert [c["step"] for c in creates] == [3, 5]
    assert creates[1]["idempotency_key"].endswith("-attempt-2")
    outcomes = [m["outcome"] for m in messages if m["kind"] == "webhook"]
    assert "attempt_recorded" in outcomes and outcomes[-1] == "fulfilled", outcomes
    assert "--x" in body["mermaid"] or "-x" in body["mermaid"]  # the decline is marked
    assert_no_secret(lab, body, [created["client_secret"], declined["payment_intent"]
                                 ["client_secret"], paid["payment_intent"]["client_secret"]])


def test_a_duplicate_webhook_shows_as_a_duplicate(lab, customer):
    created = lab.order("prod_drip_bags", 1, customer)
    order = created["order"]
    gateway = lab.gateway()
    pay_with_test_card(gateway, order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    event = gateway.events_about(order["payment_intent"], "payment_intent.succeeded")[0]
    payload = json.dumps(event).encode()
    r = lab.post("/webhook", data=payload, headers={"Stripe-Signature": sign(
        payload, lab.webhook_secret), "Content-Type": "application/json"})
    assert r.json()["outcome"] == "duplicate"
    # And a forged copy (wrong secret): refused, and not drawn on the order it names (nothing
    # says Stripe sent it); the dashboard's list of deliveries shows the refusal instead.
    r = lab.post("/webhook", data=payload, headers={"Stripe-Signature": sign(
        payload, "whsec_notTheLabsSecret"), "Content-Type": "application/json"})
    assert r.status_code == 400
    body = trace_of(lab, order["id"])
    webhooks = [m for m in body["data"] if m["kind"] == "webhook"]
    assert [(w["event_id"], w["outcome"][:8]) for w in webhooks] == \
        [(event["id"], "fulfille"), (event["id"], "duplicat")]
    assert "duplicate" in body["mermaid"] and "refused" not in body["mermaid"]
    listed = lab.get("/api/dashboard").json()["deliveries"]
    assert any(d["outcome"].startswith("rejected: Invalid signature") for d in listed)
    assert_no_secret(lab, body, [created["client_secret"]])


def test_a_lost_webhook_then_reconcile_shows_the_reconcile(fresh_lab, customer):
    lost = drop_webhooks(fresh_lab)
    created = fresh_lab.order("prod_drip_bags", 1, customer)
    order = created["order"]
    pay_with_test_card(fresh_lab.gateway(), order["payment_intent"], "success")
    wait_for(lambda: lost(order["payment_intent"]), timeout=10, message="the lost delivery")
    result = run_cli(fresh_lab, "reconcile")
    assert result.returncode == 0, result.stderr
    fresh_lab.wait_for_status(order["id"], "paid", timeout=2)
    body = trace_of(fresh_lab, order["id"])
    messages = body["data"]
    assert not [m for m in messages if m["kind"] == "webhook"]  # it never arrived
    settled = [m for m in messages if m["kind"] == "reconcile"]
    assert [(m["by"], m["intent_status"], m["outcome"]) for m in settled] == \
        [("reconcile", "succeeded", "fulfilled")]
    assert first_steps(messages) == [1, 2, 3, 4, 5, 6]
    assert "S->>S: 6. reconcile:" in body["mermaid"]
    assert_no_secret(fresh_lab, body, [created["client_secret"]])


def test_polls_fold_into_one_line_with_a_count(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    for _ in range(5):
        lab.get(f"/api/orders/{order['id']}")
    polls = [m for m in trace_of(lab, order["id"])["data"] if m["kind"] == "poll"]
    assert [(p["count"], p["order_status"]) for p in polls] == [(5, "created")]


def test_unknown_order_trace_is_404_in_the_error_shape(lab):
    r = lab.get("/api/orders/order_doesnotexist00/trace")
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "id"


def test_traces_are_bounded_and_go_with_the_orders(tmp_path):
    from tutorial_server.lab.reset import clear_lab
    from tutorial_server.trace import writer
    from tutorial_server.trace.diagram import MAX_MESSAGES_PER_ORDER, mermaid
    from tutorial_server.trace.messages import message
    init_db(tmp_path / "t.sqlite3")
    db = connect(tmp_path / "t.sqlite3")
    db.execute("INSERT INTO orders (id, product_id, quantity, customer, subtotal, discount,"
               " amount, currency, receipt, status, created_at) VALUES ('order_x', 'p', 1, 'c',"
               " 100, 0, 100, 'usd', 'r', 'created', 0)")
    many = [message(6, "client", "server", "request", at=1000.0 + i, method="GET", path="/x")
            for i in range(MAX_MESSAGES_PER_ORDER + 50)]
    with transaction(db):
        writer._write(db, "order_x", many)
        writer._write(db, "order_unknown", many[:3])  # no such order: nothing kept
    count = db.execute("SELECT order_id, COUNT(*) FROM trace_messages GROUP BY order_id").fetchall()
    assert [tuple(r) for r in count] == [("order_x", MAX_MESSAGES_PER_ORDER)]
    assert "only the first" in mermaid(writer.read_trace(db, "order_x"))
    clear_lab(db)  # the lab's reset
    assert db.execute("SELECT COUNT(*) FROM trace_messages").fetchone()[0] == 0


def test_secrets_are_masked_before_they_are_stored():
    from tutorial_server.trace.messages import clean
    assert clean("pi_abc123_secret_XYZ") == "pi_abc123 (client secret hidden)"
    assert "sk_test_abc" not in clean("Idempotency-Key sk_test_abc") and \
        "whsec_1" not in clean("whsec_1")


def test_the_background_reconcile_shows_as_such(tmp_path, customer):
    from .running_lab import RunningLab, new_webhook_secret
    lab = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                     args=["--reconcile-every", "0.5"]).start()
    try:
        lost = drop_webhooks(lab)
        order = lab.order("prod_drip_bags", 1, customer)["order"]
        pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
        wait_for(lambda: lost(order["payment_intent"]), timeout=10, message="the lost delivery")
        lab.wait_for_status(order["id"], "paid", timeout=10)  # settled in the background
        settled = [m for m in trace_of(lab, order["id"])["data"] if m["kind"] == "reconcile"]
        assert [(m["by"], m["outcome"]) for m in settled] == [("background reconcile", "fulfilled")]
    finally:
        lab.stop()


def test_a_canceled_order_shows_the_cancel(lab, customer):
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    assert lab.post(f"/api/orders/{order['id']}/cancel").status_code == 200
    messages = trace_of(lab, order["id"])["data"]
    cancel = [m for m in messages if m.get("purpose") == "cancel" or
              m.get("path", "").endswith("/cancel")]
    assert [(m["kind"], m["step"]) for m in cancel] == \
        [("request", 5), ("stripe", 5), ("answer", 5)], cancel
    assert cancel[-1]["order_status"] == "canceled"
