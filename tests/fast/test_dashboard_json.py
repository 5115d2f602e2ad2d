"""GET /api/dashboard on the in-process app: the totals and lists follow the orders, the
deliveries and the events, and nothing secret is in it (the fast tier; the page itself, its
reset and its live updates are tested against a lab process in tests/test_dashboard.py)."""
from __future__ import annotations

import re

from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import pay_with_test_card

SECRET_LOOKING = re.compile(r"\b(?:sk|rk|whsec)_|_secret_")


def test_dashboard_json_follows_a_paid_a_declined_and_an_unpaid_order(fast_lab, customer):
    empty = fast_lab.get("/api/dashboard").json()
    assert empty["object"] == "dashboard" and empty["mode"] == "offline"
    assert empty["totals"]["orders"] == 0 and empty["orders"] == []

    paid = fast_lab.order("prod_enamel_mug", 2, customer)["order"]
    declined = fast_lab.order("prod_drip_bags", 1, customer)["order"]
    fast_lab.order("prod_pour_over_kit", 1, customer)
    gateway = fast_lab.gateway()
    intent = pay_with_test_card(gateway, paid["payment_intent"], "success")
    assert fast_lab.post_event(payment_intent_event(intent)).json()["outcome"] == "fulfilled"
    failed = pay_with_test_card(gateway, declined["payment_intent"], "declined")
    fast_lab.post_event(payment_intent_event(failed, "payment_intent.payment_failed"))

    r = fast_lab.get("/api/dashboard")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    data = r.json()
    assert data["totals"]["orders"] == 3 and data["totals"]["paid"] == 1
    assert data["totals"]["webhook_events"] == 2 and data["totals"]["deliveries"] == 2
    assert len(data["totals"]["collected"]) == 1
    by_id = {o["id"]: o for o in data["orders"]}
    assert by_id[paid["id"]]["status"] == "paid" and by_id[paid["id"]]["step"] == 6
    assert by_id[declined["id"]]["status"] == "attempted"
    assert by_id[declined["id"]]["attempts"] == 1 and by_id[declined["id"]]["payment_error"]
    assert {p["order"] for p in data["payments"]} == {o["id"] for o in data["orders"]}
    assert [d["verified"] for d in data["deliveries"]] == [True, True]
    assert {e["outcome"] for e in data["events"]} == {"fulfilled", "attempt_recorded"}
    assert not SECRET_LOOKING.search(r.text), "the dashboard must show no secret"
    # Unchanged data: the ETag lets a polling page skip the body.
    again = fast_lab.get("/api/dashboard", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
