"""The six steps end to end against the real lab: order, PaymentIntent, payment with a test
card on the offline Stripe, its own signed webhook delivery, the order paid, the inventory."""
import time

from tutorial_server.catalogue import get_product
from tutorial_server.lab.webhook_sender import payment_intent_event
from tutorial_server.notebook.customer import complete_3ds, pay_with_test_card


def test_full_flow_paid_through_a_real_webhook_delivery(lab, customer):
    # Steps 1-4: the client asks; the server prices, creates the PaymentIntent and answers.
    created = lab.order("prod_coffee_beans", 2, customer)
    order = created["order"]
    assert order["amount"] == 2 * get_product("prod_coffee_beans").unit_amount == 268000
    assert order["currency"] == "inr" and order["status"] == "created"
    assert order["amount_paid"] == 0 and order["amount_due"] == order["amount"]
    assert created["client_secret"].startswith(order["payment_intent"] + "_secret_")

    # Step 5: the customer pays with the success test card.
    started = time.monotonic()
    intent = pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    assert intent["status"] == "succeeded" and intent["amount_received"] == order["amount"]

    # Step 6: the offline Stripe delivers payment_intent.succeeded; the server fulfils.
    paid = lab.wait_for_status(order["id"], "paid", timeout=5)
    elapsed = time.monotonic() - started
    assert paid["amount_paid"] == paid["amount"] and paid["amount_due"] == 0
    assert paid["attempts"] == 1
    inventory = lab.get(f"/api/customers/{customer}/inventory").json()["data"]
    assert [(i["product"], i["quantity"], i["order"]) for i in inventory] == [
        ("prod_coffee_beans", 2, order["id"])]
    print(f"payment to paid order via webhook: {elapsed:.2f}s")


def test_declined_card_marks_the_order_attempted_and_fulfils_nothing(lab, customer):
    order = lab.order("prod_pour_over_kit", 1, customer)["order"]
    declined = pay_with_test_card(lab.gateway(), order["payment_intent"], "declined")
    assert declined["status"] == "requires_payment_method"
    assert declined["last_payment_error"]["code"] == "card_declined"
    attempted = lab.wait_for_status(order["id"], "attempted", timeout=5)
    assert attempted["attempts"] == 1 and attempted["amount_paid"] == 0
    assert attempted["last_payment_error"]["code"] == "card_declined"
    assert lab.get(f"/api/customers/{customer}/inventory").json()["data"] == []


def test_three_d_secure_failed_then_retried_with_another_card(lab, customer):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    gateway = lab.gateway()
    assert pay_with_test_card(gateway, order["payment_intent"], "3ds")["status"] == "requires_action"
    failed = complete_3ds(gateway, order["payment_intent"], approve=False)
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    # The customer tries again with a card that needs no challenge.
    pay_with_test_card(gateway, order["payment_intent"], "success")
    paid = lab.wait_for_status(order["id"], "paid", timeout=5)
    assert paid["amount_paid"] == 1200


def test_three_d_secure_approved_ends_paid(lab, customer):
    order = lab.order("prod_drip_bags", 3, customer)["order"]
    gateway = lab.gateway()
    intent = pay_with_test_card(gateway, order["payment_intent"], "3ds")
    assert intent["status"] == "requires_action"
    complete_3ds(gateway, order["payment_intent"], approve=True)
    paid = lab.wait_for_status(order["id"], "paid", timeout=5)
    assert paid["amount_paid"] == 3 * 500


def test_zero_decimal_currency_is_charged_in_whole_yen(lab, customer):
    order = lab.order("prod_drip_bags", 2, customer)["order"]
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert (intent["amount"], intent["currency"]) == (1000, "jpy")  # ¥1,000, not ¥10


def test_payment_intent_carries_the_order_id_in_metadata(lab, customer):
    order = lab.order("80980928378932", 10, customer)["order"]
    intent = lab.gateway().retrieve_payment_intent(order["payment_intent"])
    assert intent["metadata"]["order_id"] == order["id"]
    assert intent["amount"] == order["amount"] == 90000  # 10 x ₹100, 10% volume discount


def test_sync_tells_the_server_about_a_failed_3d_secure_challenge(lab, customer):
    # The offline Stripe sends no webhook when 3-D Secure fails; sync asks Stripe instead.
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    gateway = lab.gateway()
    pay_with_test_card(gateway, order["payment_intent"], "3ds")
    complete_3ds(gateway, order["payment_intent"], approve=False)
    synced = lab.post(f"/api/orders/{order['id']}/sync").json()
    assert synced["payment_intent"]["status"] == "requires_payment_method"
    assert synced["order"]["status"] == "attempted" and synced["order"]["attempts"] == 1
    assert synced["order"]["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    # Idempotent: a second sync counts nothing twice.
    assert lab.post(f"/api/orders/{order['id']}/sync").json()["order"]["attempts"] == 1


def test_one_failed_3d_secure_challenge_counts_one_attempt_whoever_reports_it(lab, customer):
    """Real Stripe sends payment_intent.payment_failed when a challenge fails; the checkout
    page's status check (a sync) may have reported the same failure first. One failure, one
    attempt: in both orders, and however often either is repeated."""
    gateway = lab.gateway()
    for sync_first in (True, False):
        order = lab.order("prod_enamel_mug", 1, customer)["order"]
        pay_with_test_card(gateway, order["payment_intent"], "3ds")
        failed = complete_3ds(gateway, order["payment_intent"], approve=False)
        event = payment_intent_event(failed, "payment_intent.payment_failed")
        def sync():
            lab.post(f"/api/orders/{order['id']}/sync")

        def webhook():
            assert lab.post_event(event).json()["outcome"] == (
                "attempt_already_recorded" if sync_first else "attempt_recorded")

        for report in ((sync, webhook) if sync_first else (webhook, sync)):
            report()
        # Reported again: a new event about the same failure, and another sync.
        assert lab.post_event(payment_intent_event(failed, "payment_intent.payment_failed")
                              ).json()["outcome"] == "attempt_already_recorded"
        sync()
        settled = lab.order_status(order["id"])
        assert (settled["status"], settled["attempts"]) == ("attempted", 1), sync_first


def test_two_declined_cards_are_two_attempts(lab, customer):
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    gateway = lab.gateway()
    declined = pay_with_test_card(gateway, order["payment_intent"], "declined")
    lab.wait_for_status(order["id"], "attempted", timeout=5)
    lab.post(f"/api/orders/{order['id']}/sync")  # the same decline, reported again
    assert lab.order_status(order["id"])["attempts"] == 1
    # A second decline is another charge: another attempt (Stripe's event, played here).
    second = {**declined, "last_payment_error": {**declined["last_payment_error"],
                                                 "charge": "ch_secondDecline0001"}}
    lab.post_event(payment_intent_event(second, "payment_intent.payment_failed"))
    assert lab.order_status(order["id"])["attempts"] == 2


def test_sync_of_an_unknown_order_is_404(lab):
    r = lab.post("/api/orders/order_doesnotexist00/sync")
    assert r.status_code == 404 and r.json()["error"]["param"] == "id"


def test_sync_says_so_when_stripe_no_longer_knows_the_payment(fresh_lab, customer):
    """The same answer as `reconcile` (they share reconcile_order): the order is canceled as
    payment_intent_missing, not reported as Stripe being unreachable."""
    import urllib.request
    order = fresh_lab.order("prod_drip_bags", 1, customer)["order"]
    urllib.request.urlopen(urllib.request.Request(f"{fresh_lab.backend_url}/_config/data",
                                                  method="DELETE",
                                                  headers=fresh_lab.backend_headers))
    r = fresh_lab.post(f"/api/orders/{order['id']}/sync")
    assert r.status_code == 200, r.text
    assert r.json()["order"]["status"] == "canceled"
    assert r.json()["order"]["cancellation_reason"] == "payment_intent_missing"
