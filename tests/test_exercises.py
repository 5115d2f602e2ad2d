"""The exercise checks: they never raise, name the likely mistake, and keep the answer away
until the learner asks. (No lab needed: the checks run on plain values. The tests in
test_notebooks.py run every solution against a real lab.)"""
from __future__ import annotations

import copy
import types

import pytest
import requests

from tutorial_server.course.exercises import start_exercise
from tutorial_server.course.solutions import SOLUTIONS

NO_SECRET_LAB = types.SimpleNamespace(can_sign_webhooks=False)
CONTEXTS = {
    "04": lambda: {"answer": {"order": {"id": "order_1", "payment_intent": "pi_1"},
                              "client_secret": "pi_1_secret_abc"}},
    "05": lambda: {"examples": [("paid", {"status": "succeeded", "last_payment_error": None},
                                 "done")]},
    "06": lambda: {"lab": NO_SECRET_LAB, "order_id": "order_1"},
}
NUMBERS = sorted(SOLUTIONS)


def run_check(capsys, number: str, answer, **context) -> str:
    exercise = start_exercise(number, **(context or CONTEXTS.get(number, dict)()))
    exercise.check(answer)
    return capsys.readouterr().out


def a_response(status: int = 201) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b'{"order": {}}'
    return response


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("answer", [None, 0, "nonsense", object(), [1, 2, 3], {"order": 5},
                                    (None, None), lambda: 1],
                         # the same ids in every process (pytest-xdist's workers must agree)
                         ids=lambda a: "lambda" if callable(a) else
                         "object()" if type(a) is object else repr(a))
def test_a_check_never_raises_and_never_prints_the_solution(capsys, number, answer):
    printed = run_check(capsys, number, answer)
    assert printed.startswith("✗ Not yet: "), printed
    assert "exercise.hint()" in printed
    for line in SOLUTIONS[number].splitlines():
        if len(line.strip()) > 25:
            assert line.strip() not in printed


@pytest.mark.parametrize("number", ["00", "01", "03"])
def test_a_response_instead_of_its_json_is_named(capsys, number):
    answer = (a_response(), a_response()) if number == "03" else a_response()
    assert "add .json()" in run_check(capsys, number, answer)


def test_an_unformatted_amount_is_named(capsys):
    assert "right amount, in minor units" in run_check(capsys, "02", 5400)
    assert "yen have no minor unit" in run_check(capsys, "02", "¥54.00")
    assert run_check(capsys, "02", "¥5,400").startswith("✓")


def test_a_mutated_input_is_named_and_put_back(capsys):
    answer = {"order": {"id": "order_1", "payment_intent": "pi_1"}, "client_secret": "pi_1_secret_abc"}
    pristine = copy.deepcopy(answer)
    exercise = start_exercise("04", answer=answer)
    del answer["client_secret"]  # the learner's mistake: changing the shared answer
    answer["order"].pop("payment_intent")
    exercise.check(answer)
    assert "changed `answer` itself" in capsys.readouterr().out
    assert answer == pristine, "the check put the shared answer back"
    exercise.check({**answer, "client_secret": "[redacted]"})  # the next try works
    assert capsys.readouterr().out.startswith("✓")


def test_a_result_instead_of_a_function_is_named(capsys):
    assert "not the function" in run_check(capsys, "05", "done")
    assert run_check(capsys, "05", lambda intent: "done").startswith("✓")


def test_a_function_that_changes_its_input_cannot_spoil_the_next_try(capsys):
    def destructive(intent):
        intent.clear()
        return "done"

    exercise = start_exercise("05", **CONTEXTS["05"]())
    exercise.check(destructive)
    exercise.check(lambda intent: "done" if intent["status"] == "succeeded" else "?")
    assert capsys.readouterr().out.count("✓") == 2


def test_hints_come_in_stages_and_the_solution_only_on_request(capsys):
    exercise = start_exercise("02")
    exercise.hint()
    first = capsys.readouterr().out
    exercise.hint()
    second = capsys.readouterr().out
    assert first.startswith("Hint 1 of 2") and second.startswith("Hint 2 of 2")
    assert "show_solution" in second and "format_amount(p.amount" not in first
    exercise.show_solution()
    assert SOLUTIONS["02"].strip() in capsys.readouterr().out


def test_without_the_webhook_secret_the_webhook_exercise_says_why(capsys):
    assert "webhook secret" in run_check(capsys, "06", {"outcome": "attempt_recorded"})


def test_08_names_the_state_an_earlier_attempt_left_and_how_to_start_over(capsys):
    """The typical mistake (a new key for the retry) refunds the rest; the right answer then
    finds the order refunded in full: the check says so, and how to start over, in one line."""
    refunded = {"order": {"id": "order_1", "status": "refunded"},
                "refund": {"id": "re_1", "amount": 500}}
    refused = {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                         "message": "Order order_1 is already refunded in full.", "param": None}}
    mistake = run_check(capsys, "08", (refunded, refused), lab=NO_SECRET_LAB, order_id="order_1")
    assert "Idempotency-Key" in mistake and "setup cell again" in mistake, mistake
    stuck = run_check(capsys, "08", (refused, refused), lab=NO_SECRET_LAB, order_id="order_1")
    assert "earlier attempt" in stuck and "setup cell again" in stuck, stuck
    assert len(stuck.splitlines()[0]) < 200


@pytest.mark.parametrize("answer", ["¥54.0", "¥54.00", "¥54", "54.0", 54, "$54.00"])
def test_yen_divided_by_100_is_named_as_the_minor_unit_mistake(capsys, answer):
    printed = run_check(capsys, "02", answer)
    assert "yen have no minor unit" in printed and "price_order first" not in printed, printed


@pytest.mark.parametrize("answer, named", [("$5,400.00", "another currency"),
                                           ("¥600", "the discount"),
                                           ("¥6,000", "before the 10% volume discount"),
                                           ("¥540,000", "multiplies by 100"),
                                           ("5400", "not the right format")])
def test_other_pricing_mistakes_are_named(capsys, answer, named):
    assert named in run_check(capsys, "02", answer)


def _delivery(status, outcome, payload=b'{"id": "evt_1"}', signature="t=1,v1=abc"):
    return types.SimpleNamespace(status=status, outcome=outcome, payload=payload,
                                 signature=signature)


SIGNING_LAB = types.SimpleNamespace(can_sign_webhooks=True)
CAPTURED = (b'{"id": "evt_1"}', "t=1,v1=abc")


def run_07(capsys, answer) -> str:
    return run_check(capsys, "07", answer, lab=SIGNING_LAB, captured=CAPTURED)


def test_a_replay_signed_again_with_the_labs_secret_is_not_a_replay(capsys):
    resigned = _delivery(200, "duplicate", signature="t=2,v1=def")
    assert "you signed it again: an attacker has no webhook secret" in run_07(capsys, resigned)
    assert run_07(capsys, _delivery(200, "duplicate")).startswith("✓")


def test_a_replay_must_be_the_captured_body_byte_for_byte(capsys):
    reformatted = _delivery(200, "duplicate", payload=b'{"id":"evt_1"}')
    assert "byte for byte" in run_07(capsys, reformatted)
    assert "no Stripe-Signature header" in run_07(capsys, _delivery(400, "rejected", signature=None))


def test_a_capture_older_than_the_window_says_to_capture_again(capsys):
    stale = _delivery(400, "rejected: Timestamp outside the tolerance zone")
    printed = run_07(capsys, stale)
    assert "5-minute window" in printed and "run the cell that makes the genuine delivery again" in printed


def test_the_replay_exercise_answers_in_my_answer_like_every_other(capsys):
    from tutorial_server.course.solutions import STUBS
    assert all(stub.startswith("my_answer = None") for stub in STUBS.values())
    assert "my_answer is a dict" in run_07(capsys, {"x": 1})


def test_state_an_earlier_attempt_left_is_named_with_how_to_start_over(capsys):
    lost = {"order": {"id": "order_1"}, "client_secret": "[redacted]"}
    start_exercise("04", answer=lost).check({**lost})  # `answer` lost its secret before the start
    assert "run the exercise's setup cell again" in capsys.readouterr().out
    conflict = {"error": {"type": "idempotency_error", "message": "Keys...", "param": "Idempotency-Key"}}
    assert "make a new key" in run_check(capsys, "03", (conflict, conflict))
