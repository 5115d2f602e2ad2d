"""The notebooks' exercise solutions, kept out of the notebooks themselves.

The committed notebooks are the learner's copy: each answer cell holds only the stub below.
`tools/exercise_copies.py key` writes the instructor's key, with each solution placed between
nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers in that cell, and
`tools/exercise_copies.py learner` turns a key back into a learner's copy. A learner who wants
the answer asks for it on purpose with `exercise.show_solution()`, which prints it from here.
"""
from __future__ import annotations

# The learner's answer cell, as committed (the same cell the key fills with a solution).
STUBS: dict[str, str] = {
    "00": "my_answer = None  # replace None with the paid order",
    "01": "my_answer = None  # replace None with the server's JSON answer",
    "02": "my_answer = None  # replace None with a string such as '¥1,234'",
    "03": "my_answer = None  # replace None with (first JSON answer, second JSON answer)",
    "04": "my_answer = None  # replace None with a log-safe copy of `answer`",
    "05": "my_answer = None  # replace None with your function: def next_step(intent): ...",
    "06": "my_answer = None  # replace None with the server's JSON answer to your event",
    "07": "my_answer = None  # replace None with the result of replaying the captured delivery",
    "08": "my_answer = None  # replace None with (first JSON answer, second JSON answer)",
    "09": "my_answer = None  # replace None with the server's JSON answer",
}

SOLUTIONS: dict[str, str] = {
    "00": '''\
mug_order = lab.create_order("prod_enamel_mug", 2)["order"]
lab.pay(mug_order, "success")
my_answer = lab.wait_for_order(mug_order["id"], "paid")
''',
    "01": '''\
my_answer = lab.post("/api/orders", json={"productId": "prod_pour_over_kit", "quantity": 3}).json()
''',
    "02": '''\
drip_bags = price_order(get_product("prod_drip_bags"), 12)
my_answer = format_amount(drip_bags.amount, drip_bags.currency)
''',
    "03": '''\
key = str(uuid.uuid4())
mugs = {"productId": "prod_enamel_mug", "quantity": 2}
first_answer = lab.post("/api/orders", json=mugs, headers={"Idempotency-Key": key}).json()
second_answer = lab.post("/api/orders", json=mugs, headers={"Idempotency-Key": key}).json()
my_answer = (first_answer, second_answer)
''',
    "04": '''\
my_answer = {**answer, "client_secret": "[redacted]"}  # a new dict: `answer` keeps the secret
''',
    "05": '''\
def next_step(intent):
    if intent["status"] == "succeeded":
        return "done"
    if intent["status"] == "requires_action":
        return "authenticate"
    if intent["last_payment_error"]:  # requires_payment_method after a failed attempt
        return "try another card"
    return "enter a card"


my_answer = next_step  # the function itself, not next_step(...)
''',
    "06": '''\
failed_now = gateway.retrieve_payment_intent(exercise_order["payment_intent"])
my_answer = send(new_event("payment_intent.payment_failed", failed_now)).json()
''',
    "07": '''\
my_answer = deliver(lab.url, captured_body, captured_header)
''',
    "08": '''\
key = str(uuid.uuid4())
refund_path = f"/api/orders/{exercise_order['id']}/refund"
first_answer = lab.post(refund_path, json={}, headers={"Idempotency-Key": key}).json()
second_answer = lab.post(refund_path, json={}, headers={"Idempotency-Key": key}).json()
my_answer = (first_answer, second_answer)
''',
    "09": '''\
kits = {"productId": "prod_pour_over_kit", "quantity": 3, "payWith": "checkout_session"}
my_answer = lab.post("/api/orders", json=kits).json()
''',
}
