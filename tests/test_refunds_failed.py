"""refund.failed and charge.dispute.closed over HTTP against a real lab (the server, the offline
Stripe and SQLite as their own processes), signed by the tests and played by the CLI's
`trigger`, which the offline Stripe needs (it sends no refund or dispute events)."""
from __future__ import annotations

from tutorial_server.lab.webhook_sender import lab_dispute, payment_intent_event

from .running_lab import run_cli, wait_for
from .test_refunds import inventory, paid_order, refund


def trigger(lab, *args: str):
    done = run_cli(lab, "trigger", *args)
    assert lab.webhook_secret not in done.stdout + done.stderr
    return done


def test_a_failed_refund_over_http_gives_the_money_and_the_goods_back_once(lab, customer):
    order = paid_order(lab, customer)
    made = refund(lab, order["id"])
    assert made.status_code == 201 and made.json()["order"]["status"] == "refunded", made.text
    assert inventory(lab, customer) == []
    done = trigger(lab, "refund.failed", "--order", order["id"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Delivering refund.failed" in done.stdout and '"outcome": "refund_failed"' in done.stdout
    now = lab.order_status(order["id"])
    assert (now["status"], now["amount_refunded"]) == ("paid", 0)
    assert [i["order"] for i in inventory(lab, customer)] == [order["id"]]
    # The same Refund's failure, signed by the tests, delivered twice: nothing more changes.
    failed = lab.gateway().retrieve_refund(made.json()["refund"]["id"])
    assert failed["status"] == "failed"
    event = payment_intent_event(failed, "refund.failed")
    outcomes = [lab.post_event(event).json()["outcome"] for _ in range(2)]
    assert outcomes == ["refund_already_recorded", "duplicate"]
    assert lab.order_status(order["id"]) == now
    # The dashboard and the order's trace show the failure.
    row = next(o for o in lab.get("/api/dashboard").json()["orders"] if o["id"] == order["id"])
    assert row["status"] == "paid" and any("failed" in a for a in row["alerts"]), row
    trace = wait_for(lambda: [m for m in lab.get(f"/api/orders/{order['id']}/trace").json()["data"]
                              if m.get("outcome") == "refund_failed"] or None,
                     timeout=10, message="the trace's refund.failed")
    assert trace[0]["failed"] is True, trace


def test_trigger_refund_failed_needs_a_refund(lab, customer):
    order = paid_order(lab, customer)
    before = lab.snapshot()
    done = trigger(lab, "refund.failed", "--order", order["id"])
    assert done.returncode != 0 and "has no refund yet" in done.stderr
    assert lab.snapshot() == before


def test_disputes_won_and_lost_over_http(lab, customer):
    won, lost = paid_order(lab, customer), paid_order(lab, customer)
    for order in (won, lost):
        done = trigger(lab, "charge.dispute.created", "--order", order["id"])
        assert '"outcome": "disputed"' in done.stdout, done.stdout + done.stderr
    done = trigger(lab, "charge.dispute.closed", "--order", won["id"])  # won by default
    assert '"outcome": "dispute_won"' in done.stdout, done.stdout + done.stderr
    done = trigger(lab, "charge.dispute.closed", "--order", lost["id"], "--dispute-status", "lost")
    assert '"outcome": "dispute_lost"' in done.stdout, done.stdout + done.stderr
    assert lab.order_status(won["id"])["status"] == "paid"
    assert lab.order_status(lost["id"])["status"] == "disputed"
    # Signed by the tests, the same closing again: once only.
    intent = lab.gateway().retrieve_payment_intent(lost["payment_intent"])
    again = payment_intent_event(lab_dispute(intent, "won"), "charge.dispute.closed")
    assert lab.post_event(again).json()["outcome"] == "dispute_already_closed"
    rows = lab.query("SELECT order_id, status, amount FROM disputes WHERE order_id IN (?, ?)",
                     won["id"], lost["id"])
    assert sorted((r["order_id"] == won["id"], r["status"], r["amount"]) for r in rows) == [
        (False, "lost", 1200), (True, "won", 1200)]
    wrong = trigger(lab, "charge.dispute.closed", "--order", won["id"],
                    "--dispute-status", "needs_response")
    assert wrong.returncode != 0 and "does not fit" in wrong.stderr
