"""The notebooks' exercises: a check that says what is likely wrong, hints in stages, and the
solution only when the learner asks for it.

    exercise = start_exercise("02")   # the cell before the learner's answer cell
    my_answer = None                  # the learner's answer cell (tools/exercise_copies.py)
    exercise.check(my_answer)         # ✓, or ✗ and the likely mistake; never raises
    exercise.hint()                   # the next hint, one stage at a time
    exercise.show_solution()          # the full answer, on purpose (from solutions.py)

The checkers themselves, one per notebook, are in checkers.py (06 and 07 in webhook_checkers.py).
On a hub each check is also recorded for the instructor's class view (progress.py).
An exercise's setup cell makes what it needs afresh each time it runs, so running it again
starts over; a checker that meets what an earlier attempt left says so, and how to start over.

A checker keeps its own deep copy of whatever it compares against, taken when the exercise
starts, so an answer that changed a shared variable cannot break the next try.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import checkers, webhook_checkers
from .progress import record_check
from .solutions import SOLUTIONS

# A checker returns None when the answer is right, else one line naming the likely mistake.
Checker = Callable[[Any, dict], "str | None"]


@dataclass
class Exercise:
    number: str
    success: str
    hints: list[str]
    checker: Checker
    context: dict = field(default_factory=dict)
    _hints_shown: int = 0

    def check(self, answer: Any) -> None:
        """Print ✓ or ✗ with what is likely wrong. Never raises, so you can simply try again."""
        try:
            problem = self.checker(answer, self.context)
        except Exception as error:  # a checker must never end in a traceback
            problem = (f"your answer could not be checked ({type(error).__name__}: {error}); "
                       "compare its shape with what the exercise asks for")
        record_check(self.number, problem is None)  # on a hub, for the instructor's class view
        if problem is None:
            print("✓ " + self.success)
            return
        print("✗ Not yet: " + problem)
        print("  Stuck? exercise.hint() gives a hint; exercise.show_solution() the answer.")

    def hint(self, stage: int | None = None) -> None:
        """The next hint (or hint number `stage`); the last one is nearly the answer."""
        if stage is None:
            stage = min(self._hints_shown + 1, len(self.hints))
        stage = max(1, min(stage, len(self.hints)))
        self._hints_shown = max(self._hints_shown, stage)
        print(f"Hint {stage} of {len(self.hints)}: {self.hints[stage - 1]}")
        if stage == len(self.hints):
            print("Still stuck? exercise.show_solution() prints the answer.")

    def show_solution(self) -> None:
        """Print the solution. Read it, then type it (or paste it) into your answer cell."""
        print(f"# A solution to exercise {self.number}: put it in your answer cell, run it, "
              "then run the check again.")
        print(SOLUTIONS[self.number].rstrip())


_EXERCISES: dict[str, tuple[Checker, str, list[str]]] = {
    "00": (checkers.check_00, "2 mugs, $24.00, paid and fulfilled: all six steps.", [
        "Three calls, one per part of the flow: create the order (steps 1-4), pay it "
        "(step 5), then wait for the server to hear from Stripe (step 6).",
        "lab.create_order(product_id, quantity)['order'], then lab.pay(order, 'success'), "
        "then lab.wait_for_order(order_id, 'paid'), which returns the paid order.",
    ]),
    "01": (checkers.check_01, "3 kits, priced by the server at $40.20.", [
        "The body has two fields only, the product id and the quantity; the server answers "
        "with JSON.",
        "lab.post('/api/orders', json={'productId': ..., 'quantity': ...}) returns a response; "
        "its .json() is the answer to keep.",
    ]),
    "02": (checkers.check_02, "12 boxes at ¥500 is ¥6,000, less 10% is ¥5,400: yen have no minor unit "
                      "to divide by.", [
        "First price the order (the discount applies from 10 items), then format the amount "
        "with its currency.",
        "p = price_order(get_product('prod_drip_bags'), 12); the answer is "
        "format_amount(p.amount, p.currency).",
    ]),
    "03": (checkers.check_03, "one order and one PaymentIntent, however often the request was sent.", [
        "Make one key before the first request, and send the same key, with the same body, "
        "both times.",
        "key = str(uuid.uuid4()); each request is lab.post('/api/orders', json=body, "
        "headers={'Idempotency-Key': key}).json().",
    ]),
    "04": (checkers.check_04, "safe to log: the order is intact, the client secret is gone, and "
                      "`answer` still holds it for the client.", [
        "A new dict with the same 'order', and something harmless where the client secret was.",
        "{**answer, 'client_secret': '[redacted]'} builds a new dict and leaves `answer` alone.",
    ]),
    "05": (checkers.check_05, "next_step reads status, then last_payment_error, as a checkout page "
                      "does.", [
        "Look at intent['status'] first; requires_payment_method means two different things.",
        "requires_payment_method with last_payment_error set means a failed attempt; without "
        "it, nothing has been tried yet.",
    ]),
    "06": (webhook_checkers.check_06, "the server verified your event, re-read the "
                      "PaymentIntent and counted the failed attempt once.", [
        "new_event(event_type, intent) builds the event; send(event) signs and posts it and "
        "returns the server's response.",
        "The intent is gateway.retrieve_payment_intent(exercise_order['payment_intent']); the "
        "type is 'payment_intent.payment_failed'; keep send(...).json().",
    ]),
    "07": (webhook_checkers.check_07, "accepted (the signature is valid) and ignored: the "
                      "server has already processed this event id. An attacker needs no secret for "
                      "this, and the record of event ids is what stops it.", [
        "A replay sends exactly what was captured: the same bytes and the same header (an "
        "attacker has no secret to sign anything again).",
        "deliver(lab.url, captured_body, captured_header) returns the result to keep.",
    ]),
    "08": (checkers.check_08, "one refund of what was left, however often the request was sent: the "
                      "order is refunded and the mug left the customer's inventory once.", [
        "Make one key before the first request; POST /api/orders/<id>/refund with an empty "
        "body (no amount: what is left) and that key, twice.",
        "key = str(uuid.uuid4()); each request is lab.post(f\"/api/orders/{exercise_order['id']}"
        "/refund\", json={}, headers={'Idempotency-Key': key}).json().",
    ]),
    "09": (checkers.check_09, "3 kits priced by the server, and a Checkout Session to send the "
                      "customer to: the browser got a url, not a client secret.", [
        "The same body as any order, with one more field saying how the customer will pay.",
        "lab.post('/api/orders', json={'productId': 'prod_pour_over_kit', 'quantity': 3, "
        "'payWith': 'checkout_session'}).json()",
    ]),
}


def start_exercise(number: str, **context: Any) -> Exercise:
    """The exercise of notebook `number`. Keyword arguments are what its checker compares
    against; `answer=` (notebook 04) is kept as a deep copy taken now."""
    checker, success, hints = _EXERCISES[number]
    if "answer" in context:
        context["shared"] = context.pop("answer")
        context["pristine"] = copy.deepcopy(context["shared"])
    if "examples" in context:
        context["examples"] = copy.deepcopy(context["examples"])
    return Exercise(number, success, hints, checker, context)
