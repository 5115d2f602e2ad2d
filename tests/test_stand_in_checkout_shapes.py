"""The offline stand-in's Checkout Sessions and line items against real Stripe's own examples
(`checkout.session` and `item` in ../shared/reference/stripe-openapi-fixtures3.json, read as
tests/test_stripe_fidelity.py reads the PaymentIntent's): every field the stand-in returns
exists in the real object with a compatible JSON type, and every field the server reads
(checkout_sessions.py) is there offline, in every state a session passes through.
Skipped, saying why, when shared/reference is not beside the clone.
"""
from __future__ import annotations

from typing import Any

import pytest
import stripe

from tutorial_server.notebook.customer import pay_with_test_card

from .test_stand_in_checkout import (events, events_about, gateway, new_session,  # noqa: F401
                                     payment, stand_in)
from .test_stripe_fidelity import (ABSENT, json_type, real_stripe_examples,  # noqa: F401
                                   sdk_json_types, shape_problems)

# Every Checkout Session field the server reads (checkout_sessions.py, gateway.py), with the
# JSON types it copes with.
SESSION_READS: dict[str, set[str]] = {
    "id": {"string"},
    "object": {"string"},
    "status": {"string"},
    "payment_status": {"string"},
    "payment_intent": {"string", "null"},  # named once the customer pays; never expanded
    "amount_total": {"integer"},
    "currency": {"string"},
    "metadata": {"object"},
    "metadata.order_id": {"string"},
    "client_reference_id": {"string"},
    "url": {"string", "null"},  # null once the session is complete or expired
    "expires_at": {"integer"},
}
# What the lab's hosted page shows of a line item (and the tests compare).
ITEM_READS: dict[str, set[str]] = {
    "id": {"string"}, "object": {"string"}, "description": {"string"},
    "quantity": {"integer"}, "amount_total": {"integer"}, "currency": {"string"},
    "price": {"object"}, "price.unit_amount": {"integer"},
}
# Objects whose keys are the merchant's own: their values are compared, not their keys.
FREE_FORM = {"metadata"}


def extra_fields(offline: Any, real: Any, resource: type, path: str = "") -> list[str]:
    """Every field of `offline` that real Stripe's example lacks, or holds with another JSON
    type (where the example has null, the type stripe-python's class declares)."""
    problems = []
    if isinstance(offline, list):
        for element in offline if real else []:  # an empty example list shows no element
            if isinstance(element, dict):
                problems += extra_fields(element, real[0], resource, path + "[]")
            elif json_type(element) != json_type(real[0]):
                problems.append(f"{path}[]: a {json_type(element)} offline, real Stripe: "
                                f"{json_type(real[0])}")
        return problems
    if not isinstance(offline, dict):
        return problems
    for key, value in offline.items():
        where = f"{path}.{key}" if path else key
        if key not in real:
            problems.append(f"{where}: the stand-in returns it, real Stripe has no such field")
            continue
        accepted = (sdk_json_types(resource, where) if "[]" not in where else None) or set()
        if real[key] is not None:
            accepted.add(json_type(real[key]))
        kind = json_type(value)
        if kind not in accepted | {"null"} and not (kind == "integer" and "number" in accepted):
            problems.append(f"{where}: a {kind} offline, real Stripe: {sorted(accepted)}")
        elif value is None and accepted and "null" not in accepted:
            problems.append(f"{where}: null offline, never null on real Stripe")
        if key in FREE_FORM:
            continue
        if isinstance(value, dict) and isinstance(real[key], dict):
            problems += extra_fields(value, real[key], resource, where)
        elif isinstance(value, list) and isinstance(real[key], list):
            problems += extra_fields(value, real[key], resource, where)
    return problems


@pytest.fixture(scope="module")
def offline_sessions(gateway, stand_in, events) -> dict[str, dict]:  # noqa: F811
    """One session in each state, as the stand-in answers the server, and as its events
    carry it: open, open with its PaymentIntent named, complete, expired."""
    sessions = gateway.client.v1.checkout.sessions
    paid = new_session(gateway)
    seen = {"created": paid, "open": sessions.retrieve(paid["id"]).to_dict()}
    answer = payment(stand_in, paid["id"])
    assert answer.status_code == 200, answer.text
    seen["paying"] = sessions.retrieve(paid["id"]).to_dict()
    assert pay_with_test_card(gateway, answer.json()["payment_intent"],
                              "success")["status"] == "succeeded"
    dropped = new_session(gateway)
    seen["expired (expire's answer)"] = sessions.expire(dropped["id"]).to_dict()
    seen["expired"] = sessions.retrieve(dropped["id"]).to_dict()
    for event in events_about(events, {paid["id"], dropped["id"]}, 2):
        seen[f"{event['type']} event"] = event["data"]["object"]
    seen["complete"] = sessions.retrieve(paid["id"]).to_dict()
    assert {s["status"] for s in seen.values()} == {"open", "complete", "expired"}
    assert seen["paying"]["payment_intent"] and seen["complete"]["payment_status"] == "paid"
    return seen


@pytest.fixture(scope="module")
def offline_items(gateway) -> dict[str, Any]:  # noqa: F811
    session = new_session(gateway)
    return gateway.client.v1.checkout.sessions.line_items.list(session["id"]).to_dict()


def test_the_real_examples_are_the_objects_compared(real_stripe_examples):  # noqa: F811
    assert real_stripe_examples["checkout.session"]["object"] == "checkout.session"
    assert real_stripe_examples["item"]["object"] == "item"


def test_every_session_field_the_stand_in_returns_is_real_stripes(
        real_stripe_examples, offline_sessions):  # noqa: F811
    example = real_stripe_examples["checkout.session"]
    problems = [f"checkout.session ({state}).{problem}" for state, obj in offline_sessions.items()
                for problem in extra_fields(obj, example, stripe.checkout.Session)]
    assert not problems, "\n".join(problems)


def test_every_session_field_the_server_reads_is_there_offline(real_stripe_examples,  # noqa: F811
                                                                offline_sessions):
    example = real_stripe_examples["checkout.session"]
    assert {path.split(".")[0] for path in SESSION_READS} <= set(example)
    problems = shape_problems(SESSION_READS, example, stripe.checkout.Session, offline_sessions,
                              "checkout.session")
    assert not problems, "\n".join(problems)
    for state, session in offline_sessions.items():
        missing = [path for path in SESSION_READS if "." not in path and path not in session]
        assert not missing, f"{state}: {missing}"


def test_every_line_item_field_the_stand_in_returns_is_real_stripes(
        real_stripe_examples, offline_items):  # noqa: F811
    assert offline_items["object"] == "list" and offline_items["data"]
    assert set(offline_items) <= {"object", "data", "has_more", "url"}
    example = real_stripe_examples["item"]
    problems = [problem for item in offline_items["data"]
                for problem in extra_fields(item, example, stripe.LineItem)]
    problems += shape_problems(ITEM_READS, example, stripe.LineItem,
                               {item["id"]: item for item in offline_items["data"]}, "item")
    assert not problems, "\n".join(problems)


def test_the_comparison_finds_a_field_real_stripe_lacks_and_a_wrong_type(
        real_stripe_examples):  # noqa: F811
    example = real_stripe_examples["checkout.session"]
    made_up = {"id": "cs_test_1", "amount_total": "900", "customer_details": {"planet": "Mars"},
               "payment_method_types": [1], "metadata": {"anything": "goes"}}
    problems = extra_fields(made_up, example, stripe.checkout.Session)
    assert [p.split(":")[0] for p in problems] == [
        "amount_total", "customer_details.planet", "payment_method_types[]"]
    assert extra_fields({"expires_at": None}, example, stripe.checkout.Session) == [
        "expires_at: null offline, never null on real Stripe"]
    assert ABSENT not in SESSION_READS["url"]
