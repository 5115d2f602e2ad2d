"""The notebooks' exercise checkers: each returns None when the answer is right, else one line
naming the likely mistake (course/exercises.py prints it). A checker compares against what its
exercise was started with (`context`), never against anything the learner can change.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

import requests

# --- mistakes many answers share ---------------------------------------------------------------

def _common_mistake(answer: Any, expected: str) -> str | None:
    if answer is None:
        return f"your answer is still None: replace None in your answer cell with {expected}."
    if isinstance(answer, requests.Response):
        return (f"this is the HTTP response itself (a requests.Response, status "
                f"{answer.status_code}); the exercise wants its JSON body: add .json().")
    return None


def _server_refused(answer: Any) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return ("the server refused your request: "
                f"{answer['error'].get('message')} (param: {answer['error'].get('param')}).")
    return None


def _kind(answer: Any) -> str:
    if isinstance(answer, dict):
        return f"a dict with keys {sorted(answer)[:6]}"
    return f"a {type(answer).__name__}"


# --- one checker per notebook ------------------------------------------------------------------

def check_00(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "the paid order (what lab.wait_for_order returns)")
    if mistake:
        return mistake
    if not isinstance(answer, dict):
        return f"my_answer is {_kind(answer)}; the exercise wants the order, a dict."
    if "client_secret" in answer and "order" in answer:
        return ("this is the server's answer to the new order (order + client_secret), stored "
                "before anyone paid; store the order once it is paid.")
    if answer.get("object") == "payment_intent":
        return ("this is Stripe's PaymentIntent (what lab.pay returns); the exercise wants the "
                "merchant's order, once the server has marked it paid.")
    if answer.get("product") != "prod_enamel_mug" or answer.get("quantity") != 2:
        return (f"this order is for {answer.get('quantity')} x {answer.get('product')}; "
                "the exercise asks for 2 x prod_enamel_mug.")
    if answer.get("status") == "attempted":
        return (f"the order you stored says 'attempted': its payment failed ({answer.get('attempts')} "
                "attempt(s)); pay it with the 'success' test card.")
    if answer.get("status") != "paid":
        return (f"the order you stored says '{answer.get('status')}': either it was not paid, "
                "or you stored it before the server heard from Stripe (step 6 comes about a "
                "second after the payment).")
    if answer.get("amount_paid") != 2 * 1200:
        return f"amount_paid is {answer.get('amount_paid')}; two $12.00 mugs are 2400 cents."
    return None


def check_01(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "lab.post(...).json()") or _server_refused(answer)
    if mistake:
        return mistake
    if not isinstance(answer, dict):
        return f"my_answer is {_kind(answer)}; the server's JSON answer is a dict."
    if answer.get("object") == "order":
        return ("this is the order alone; keep the server's whole answer, which has the order "
                "and the client_secret.")
    order = answer.get("order")
    if not isinstance(order, dict):
        return f"my_answer is {_kind(answer)}, with no 'order' in it."
    if order.get("product") != "prod_pour_over_kit":
        return f"you ordered {order.get('product')}; the exercise asks for prod_pour_over_kit."
    if order.get("quantity") != 3:
        return f"you ordered {order.get('quantity')}; the exercise asks for 3."
    if order.get("amount") != 3 * 1340:
        return f"the amount is {order.get('amount')}, not 3 x 1340: was the order priced again?"
    return None


def check_02(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "a string such as '¥1,234'")
    if mistake:
        return mistake
    if hasattr(answer, "amount") and hasattr(answer, "currency"):
        return ("this is the whole priced order (a PricedOrder); the exercise wants its amount "
                "formatted for people.")
    if isinstance(answer, bool) or not isinstance(answer, (int, float, str)):
        return f"my_answer is {_kind(answer)}; the exercise wants text formatted for people."
    if not isinstance(answer, str):
        if answer == 5400:
            return ("5400 is the right amount, in minor units; people read it formatted: pass "
                    "it through format_amount with its currency.")
        if answer == 54:
            return _YEN_DIVIDED
        if answer == 6000:
            return "6000 is 12 x ¥500 before the volume discount; and format it for people."
        return f"{answer} is a number; the exercise wants the amount formatted, as text."
    text = answer.strip()
    if text == "¥5,400":
        return None
    number = _number_in(text)
    other_currency = any(sign in text for sign in ("$", "₹", "Rs", "USD", "INR"))
    if number == 54 and other_currency:  # format_amount(5400, "usd")
        return ("that formats the amount as another currency, which divides by 100; yen have "
                "no minor unit: format it with the order's own currency (its .currency, 'jpy').")
    if number == 54:  # 5400 divided by 100 by hand: "¥54.00", "¥54.0", "54"...
        return _YEN_DIVIDED
    if other_currency:
        return (f"'{text}' is written in another currency; drip bags are sold in yen: format "
                "the amount with the order's own currency (its .currency, 'jpy').")
    if number in (6000, 60):
        return "that is 12 x ¥500 before the 10% volume discount (from 10 items on)."
    if number in (600, 6):
        return "that is the discount (10% of ¥6,000); the customer pays what is left."
    if number == 540000:
        return ("that multiplies by 100; the amount is already in minor units, and a yen is "
                "its own minor unit: ¥5,400.")
    if number == 5400:
        return (f"'{text}' has the right number but not the right format: let format_amount "
                "write it.")
    return (f"'{text}' is not what 12 boxes cost after the discount: price them with "
            "price_order(get_product('prod_drip_bags'), 12) and format its amount.")


_YEN_DIVIDED = ("that divides by 100, as for rupees or dollars; yen have no minor unit (the "
                "amount 5400 already counts whole yen), so the order costs ¥5,400.")


def _number_in(text: str) -> float | None:
    """The number a formatted amount shows ("¥54.0" -> 54.0), or None."""
    digits = re.sub(r"[^0-9.]", "", text.replace(",", ""))
    try:
        return float(digits.strip("."))
    except ValueError:
        return None


def _order_of(answer: Any) -> dict | None:
    if isinstance(answer, dict) and isinstance(answer.get("order"), dict):
        return answer["order"]
    return None


def check_03(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "(first JSON answer, second JSON answer)")
    if mistake:
        return mistake
    if not isinstance(answer, (list, tuple)) or len(answer) != 2:
        return f"my_answer is {_kind(answer)}; the exercise wants a pair: (first, second)."
    for place, one in zip(("first", "second"), answer):
        if isinstance(one, dict) and (one.get("error") or {}).get("type") == "idempotency_error":
            return (f"the {place} request reused a key already sent with another body (by an "
                    "earlier attempt?): make a new key with uuid.uuid4() and send both again.")
        mistake = _common_mistake(one, "a JSON answer") or _server_refused(one)
        if mistake:
            return f"the {place} answer: {mistake}"
    first, second = (_order_of(one) for one in answer)
    if first is None or second is None:
        return "each half of the pair should be the server's JSON answer, with an 'order' in it."
    if first.get("product") != "prod_enamel_mug" or first.get("quantity") != 2:
        return (f"you ordered {first.get('quantity')} x {first.get('product')}; the exercise "
                "asks for 2 x prod_enamel_mug.")
    if first.get("id") != second.get("id"):
        return ("the server made two orders: did both requests carry the same Idempotency-Key "
                "header (one key, made once, sent twice)?")
    if first.get("payment_intent") != second.get("payment_intent"):
        return "one order but two PaymentIntents: that should not happen; tell the instructor."
    return None


def check_04(answer: Any, context: dict) -> str | None:
    pristine: dict = context["pristine"]
    shared: dict = context["shared"]
    if "_secret_" not in str(pristine.get("client_secret")):
        return ("`answer` had already lost its client secret when this exercise started (an "
                "earlier attempt changed it): run the exercise's setup cell again, which makes "
                "`answer` afresh, then your answer cell.")
    if shared != pristine:
        # Put the shared answer back, so the learner's next try starts from the real thing.
        shared.clear()
        shared.update(copy.deepcopy(pristine))
        return ("your code changed `answer` itself, so the client would have lost its secret "
                "(`answer` is now put back as it was). Build a new dict instead of changing "
                "this one; watch out for changing the 'order' inside it too.")
    mistake = _common_mistake(answer, "a log-safe copy of `answer`")
    if mistake:
        return mistake
    if answer is shared:
        return "my_answer is `answer` itself, not a copy: changing one would change the other."
    if not isinstance(answer, dict):
        return f"my_answer is {_kind(answer)}; the exercise wants a dict like `answer`."
    text = json.dumps(answer, default=str)
    if pristine["client_secret"] in text or "_secret_" in text:
        return "the client secret is still in it: look at the 'client_secret' key."
    if answer.get("order") != pristine["order"]:
        return "the order is not the same as in `answer`: keep it as it is, all of it."
    return None


_NEXT_STEP_HINTS = {
    "nothing tried yet": "status requires_payment_method with no last_payment_error means "
                         "no card has been tried",
    "paid": "status succeeded means the money is collected",
    "declined": "a declined card leaves status requires_payment_method, with "
                "last_payment_error set",
    "3-D Secure pending": "status requires_action means the customer must authenticate",
    "3-D Secure failed": "a failed challenge leaves status requires_payment_method, with "
                         "last_payment_error set",
}


def check_05(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "your function next_step")
    if mistake:
        return mistake
    if not callable(answer):
        return (f"my_answer holds a result ({answer!r}), not the function: write "
                "my_answer = next_step, without the parentheses.")
    for what, intent, right in context["examples"]:
        try:
            got = answer(copy.deepcopy(intent))  # a fresh copy: the function may change it
        except Exception as error:
            return (f"next_step raised {type(error).__name__}: {error} on the PaymentIntent "
                    f"'{what}'; every status must get an answer.")
        if got != right:
            return (f"for the PaymentIntent '{what}' it returned {got!r}, not {right!r}: "
                    f"{_NEXT_STEP_HINTS[what]}.")
    return None


def check_08(answer: Any, context: dict) -> str | None:
    expected = "(first JSON answer, second JSON answer)"
    lab, order_id = context.get("lab"), context.get("order_id")
    codes = [(one.get("error") or {}).get("code") if isinstance(one, dict) else None
             for one in (answer if isinstance(answer, tuple) else ())]
    if codes[:1] == ["charge_already_refunded"]:  # the state an earlier attempt left
        return ("an earlier attempt already refunded this order in full: run the exercise's "
                "setup cell again (it makes a fresh, partly refunded order), then your answer.")
    if codes[1:2] == ["charge_already_refunded"]:
        return ("the second request was a new refund, refused: send it with the first one's "
                "Idempotency-Key (a retry). Then run the setup cell again for a fresh order.")
    if not isinstance(answer, tuple) or len(answer) != 2:
        return _common_mistake(answer, expected) or (
            f"my_answer is {_kind(answer)}; store a pair: {expected}.")
    for which, one in zip(("first", "second"), answer):
        mistake = _common_mistake(one, f"the {which} answer's JSON") or _server_refused(one)
        if mistake:
            return f"the {which} answer: {mistake}"
        if not isinstance(one, dict) or not isinstance(one.get("refund"), dict):
            return f"the {which} answer is {_kind(one)}; keep the server's JSON answer."
    first, second = answer
    if first["refund"].get("id") != second["refund"].get("id"):
        return ("the two answers name two different refunds: send the second request with the "
                "same Idempotency-Key as the first, so it is a retry, not a new refund.")
    if first["order"].get("status") != "refunded":
        return (f"the order is {first['order'].get('status')} after your refund: refund all "
                "that is left (leave `amount` out of the body).")
    if lab is not None and order_id and first["order"].get("id") != order_id:
        return "you refunded another order: use exercise_order['id']."
    if lab is not None and order_id:
        order = lab.order(order_id)
        if order["amount_refunded"] != order["amount_paid"]:
            return (f"the order has {order['amount_refunded']} of {order['amount_paid']} "
                    "refunded; refund what is left.")
    return None


def check_09(answer: Any, context: dict) -> str | None:
    mistake = _common_mistake(answer, "the server's JSON answer") or _server_refused(answer)
    if mistake:
        return mistake
    order = answer.get("order") if isinstance(answer, dict) else None
    if not isinstance(order, dict):
        return f"my_answer is {_kind(answer)}; keep the server's answer, with its 'order'."
    if (order.get("product"), order.get("quantity")) != ("prod_pour_over_kit", 3):
        return (f"this order is {order.get('quantity')} × {order.get('product')}; the exercise "
                "asks for 3 of prod_pour_over_kit.")
    if order.get("pay_with") != "checkout_session" or answer.get("client_secret"):
        return ("this order is paid the usual way (it has a client secret): add "
                "\"payWith\": \"checkout_session\" to the body (or pay_with=... in create_order).")
    session = answer.get("checkout_session")
    if not isinstance(session, dict) or not session.get("url"):
        return "the answer has no checkout_session with a url: keep the whole answer."
    lab = context.get("lab")
    if lab is not None and lab.order(order["id"])["amount"] != order.get("amount"):
        return "the order's amount differs from the server's record: keep its answer unchanged."
    return None
