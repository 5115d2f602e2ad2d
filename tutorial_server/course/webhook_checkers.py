"""The exercise checkers of the webhook notebooks (06: be Stripe; 07: replay a captured
delivery); the others are in checkers.py. Each returns None when the answer is right, else one
line naming the likely mistake, including the state an earlier attempt left and how to start over.
"""
from __future__ import annotations

from typing import Any

import requests

from .checkers import _common_mistake, _kind, _server_refused


def check_06(answer: Any, context: dict) -> str | None:
    lab, order_id = context["lab"], context["order_id"]
    if not lab.can_sign_webhooks:
        return ("this exercise signs an event with the lab's webhook secret, which stays on "
                "the machine running the lab; do it on a lab of your own.")
    mistake = _common_mistake(answer, "send(...).json()") or _server_refused(answer)
    if mistake:
        return mistake
    if not isinstance(answer, dict) or "outcome" not in answer:
        return f"my_answer is {_kind(answer)}; the server answers a dict with an 'outcome'."
    recorded = {(e["type"], e["outcome"]) for e in lab.get("/api/dashboard").json()["events"]
                if e["order"] == order_id}
    counted = {("payment_intent.payment_failed", "attempt_recorded"),
               ("payment_intent.payment_failed", "attempt_already_recorded")}
    outcome = answer["outcome"]
    if outcome == "duplicate":
        return ("the server had already processed an event with that id: make a new event "
                "with new_event for each delivery.")
    status = lab.order(order_id)["status"]
    if status not in ("created", "attempted"):
        return (f"the order is '{status}', not 'attempted' (an earlier attempt paid or changed "
                "it?): run the exercise's setup cell again for a fresh order, then your answer "
                "cell.")
    if not recorded & counted:
        if any(kind == "payment_intent.succeeded" for kind, _ in recorded):
            return ("the server heard you, but is the event type "
                    "payment_intent.payment_failed?")
        return ("the server has no event about this exercise's order: did data.object hold "
                "exercise_order's PaymentIntent, re-read from Stripe?")
    if outcome not in ("attempt_recorded", "attempt_already_recorded"):
        return f"the answer you stored says '{outcome}': store the answer to your event."
    if status != "attempted":
        return "the order is not 'attempted' yet: send the event for exercise_order's payment."
    return None


def check_07(answer: Any, context: dict) -> str | None:
    lab = context.get("lab")
    body, header = context.get("captured") or (None, None)
    if (lab is not None and not lab.can_sign_webhooks) or (lab is not None and header is None):
        return ("this exercise needs a delivery signed with the lab's webhook secret, which "
                "stays on the machine running the lab; do it on a lab of your own.")
    if isinstance(answer, requests.Response):
        return ("this is a requests.Response; send the replay with deliver(lab.url, body, "
                "header) and keep the Delivery it returns.")
    mistake = _common_mistake(answer, "what deliver(...) returns")
    if mistake:
        return mistake
    status, outcome = getattr(answer, "status", None), getattr(answer, "outcome", None)
    if status is None:
        return f"my_answer is {_kind(answer)}; keep what deliver(...) returns (a Delivery)."
    sent_body, sent_header = getattr(answer, "payload", None), getattr(answer, "signature", None)
    if body is not None and sent_body is not None and sent_body != body:
        return ("the body you sent is not the captured one, byte for byte (re-serialized or "
                "changed?); an attacker replays captured_body as it is. (If you ran the cell "
                "that makes the genuine delivery again, replay the new capture.)")
    if header is not None and sent_body is not None and sent_header != header:
        if sent_header:
            return ("you signed it again: an attacker has no webhook secret, only the captured "
                    "Stripe-Signature header; send captured_header as it was.")
        return "you sent no Stripe-Signature header: a replay sends captured_header with it."
    if status == 400 and "timestamp" in str(outcome).lower():
        return ("the captured delivery is now older than the 5-minute window, so its signature "
                "is refused (the window at work); run the cell that makes the genuine delivery "
                "again, then replay the new capture at once.")
    if status == 400:
        return (f"the server refused it ({outcome}): a replay sends the captured body and "
                "header exactly as they were, unchanged and not signed again.")
    if outcome != "duplicate":
        return (f"the server processed it as a new event ({outcome}): replay the captured "
                "delivery itself, the same body with the same event id.")
    return None
