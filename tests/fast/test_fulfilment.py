"""Step 6's one decision, `fulfilment.settle_order`, case by case on a real SQLite database.

Each PaymentIntent here is the dict Stripe's API returns (as re-read by the webhook handler,
sync and reconcile); ids are fixed, so no case depends on how random ids happen to sort. Each
case was a mutant that survived the earlier tests (a check removed or inverted): the comment
says which.
"""
from __future__ import annotations

import json
import logging

import pytest

from tutorial_server import fulfilment, orders
from tutorial_server.catalogue import get_product
from tutorial_server.db import connect, init_db, transaction
from tutorial_server.pricing import price_order

# Sorted on purpose: one id before the order's own, one after (a `<`/`>` in place of `!=`
# in the "is it the order's own PaymentIntent" check passes for one of them only).
PI_BEFORE, PI_OWN, PI_AFTER = "pi_AAAAAAAAAAAAAAAAAAAAAAAA", "pi_MMMMMMMMMMMMMMMMMMMMMMMM", \
    "pi_ZZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture
def db(tmp_path):
    init_db(tmp_path / "fulfilment.sqlite3")
    db = connect(tmp_path / "fulfilment.sqlite3")
    yield db
    db.close()


@pytest.fixture
def order(db):
    """An order of 2 enamel mugs (in INR), linked to PaymentIntent PI_OWN."""
    with transaction(db):
        order_id = orders.insert_order(db, price_order(get_product("prod_enamel_mug"), 2),
                                       "cus_fulfilment")
        orders.attach_payment_intent(db, order_id, PI_OWN)
    return orders.get_order(db, order_id)


def intent(order, status="succeeded", *, pi=PI_OWN, amount=None, currency=None, error=None,
           **extra) -> dict:
    """The PaymentIntent as Stripe has it: by default, the order's own, paid in full. Through
    JSON, as it arrives from Stripe (its strings are not the test's own constants, so an `is`
    in place of `==` cannot pass by accident)."""
    return json.loads(json.dumps({"id": pi, "object": "payment_intent", "status": status,
            "amount": order["amount"] if amount is None else amount,
            "currency": currency or order["currency"], "metadata": {"order_id": order["id"]},
            "last_payment_error": error, **extra}))


def declined(charge: str) -> dict:
    return {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": "Your card was declined.", "charge": charge}


def settle(db, pi: dict, **kw):
    with transaction(db):
        return fulfilment.settle_order(db, pi, **kw)


def row(db, order):
    return orders.get_order(db, order["id"])


def inventory(db, order):
    return db.execute("SELECT product_id, quantity FROM inventory WHERE order_id = ?",
                      (order["id"],)).fetchall()


# --- paying: amount and currency -----------------------------------------------------------

def test_a_full_payment_fulfils_once(db, order):
    assert settle(db, intent(order)) == (fulfilment.FULFILLED, order["id"])
    paid = row(db, order)
    assert (paid["status"], paid["amount_paid"], paid["attempts"]) == ("paid", order["amount"], 1)
    assert [tuple(r) for r in inventory(db, order)] == [("prod_enamel_mug", 2)]
    assert settle(db, intent(order)) == (fulfilment.ALREADY_PAID, order["id"])
    assert len(inventory(db, order)) == 1


def test_the_right_amount_in_the_wrong_currency_does_not_fulfil(db, order):
    # Mutant: the currency half of amount_matches removed, or `and` made `or`.
    assert settle(db, intent(order, currency="eur")) == (fulfilment.AMOUNT_MISMATCH, order["id"])
    assert row(db, order)["status"] == "created" and inventory(db, order) == []


@pytest.mark.parametrize("delta", [-1, 1])
def test_a_wrong_amount_in_the_right_currency_does_not_fulfil(db, order, delta):
    assert settle(db, intent(order, amount=order["amount"] + delta)) == (
        fulfilment.AMOUNT_MISMATCH, order["id"])
    assert row(db, order)["status"] == "created" and inventory(db, order) == []


def test_amount_matches_needs_both_amount_and_currency():
    order = {"amount": 500, "currency": "usd"}
    assert fulfilment.amount_matches(order, {"amount": 500, "currency": "usd"})
    assert not fulfilment.amount_matches(order, {"amount": 500, "currency": "eur"})
    assert not fulfilment.amount_matches(order, {"amount": 499, "currency": "usd"})
    assert not fulfilment.amount_matches(order, {"amount": 499, "currency": "eur"})
    # Above as well as below: currencies and amounts that sort after the order's.
    assert not fulfilment.amount_matches({"amount": 500, "currency": "eur"},
                                         {"amount": 500, "currency": "usd"})
    assert not fulfilment.amount_matches(order, {"amount": 501, "currency": "usd"})
    assert not fulfilment.amount_matches(order, {})


def test_a_doctored_snapshot_does_not_fulfil_even_when_stripe_says_paid(db, order):
    snapshot = intent(order, amount=1)
    assert settle(db, intent(order), snapshot=snapshot) == (fulfilment.AMOUNT_MISMATCH,
                                                             order["id"])
    assert row(db, order)["status"] == "created"
    # The snapshot's currency counts too.
    assert settle(db, intent(order), snapshot=intent(order, currency="eur")) == (
        fulfilment.AMOUNT_MISMATCH, order["id"])
    assert settle(db, intent(order), snapshot=intent(order)) == (fulfilment.FULFILLED,
                                                                  order["id"])


# --- whose PaymentIntent is it --------------------------------------------------------------

@pytest.mark.parametrize("other", [PI_BEFORE, PI_AFTER])
def test_a_payment_intent_that_is_not_the_orders_own_settles_nothing(db, order, other, caplog):
    # Mutant: `!=` made `<` or `>` in find_order_for (passed for one random order of ids).
    with caplog.at_level(logging.ERROR, logger="tutorial_server.fulfilment"):
        assert settle(db, intent(order, pi=other)) == (fulfilment.UNKNOWN_ORDER, None)
    assert row(db, order)["status"] == "created" and inventory(db, order) == []
    # Money was taken on it and it names a real order: a person must look.
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "refund it or investigate" in record.getMessage()
    assert other in record.getMessage() and order["id"] in record.getMessage()


def test_find_order_for_is_exact(db, order):
    assert fulfilment.find_order_for(db, intent(order))["id"] == order["id"]
    for other in (PI_BEFORE, PI_AFTER):
        assert fulfilment.find_order_for(db, intent(order, pi=other)) is None
    assert fulfilment.find_order_for(db, {"id": PI_OWN, "metadata": {}}) is None
    assert fulfilment.find_order_for(db, {"id": PI_OWN, "metadata": {"order_id": 7}}) is None
    assert fulfilment.find_order_for(db, {"id": PI_OWN}) is None


@pytest.mark.parametrize("case", ["not-succeeded", "names-no-order", "names-nothing"])
def test_no_error_is_logged_when_no_money_was_taken_on_a_known_order(db, order, case, caplog):
    pi = {"not-succeeded": intent(order, "requires_payment_method", pi=PI_AFTER),
          "names-no-order": {**intent(order, pi=PI_AFTER), "metadata": {"order_id": "order_x"}},
          "names-nothing": {**intent(order, pi=PI_AFTER), "metadata": {}}}[case]
    with caplog.at_level(logging.ERROR, logger="tutorial_server.fulfilment"):
        assert settle(db, pi) == (fulfilment.UNKNOWN_ORDER, None)
    assert caplog.records == []


# --- failed payments -------------------------------------------------------------------------

def test_each_real_failure_counts_once_and_a_second_one_counts_again(db, order):
    # Mutant: a second, distinct failure on an `attempted` order not recorded.
    first = intent(order, "requires_payment_method", error=declined("ch_first"))
    assert settle(db, first) == (fulfilment.ATTEMPT_RECORDED, order["id"])
    assert (row(db, order)["status"], row(db, order)["attempts"]) == ("attempted", 1)
    assert settle(db, first) == (fulfilment.ATTEMPT_ALREADY_RECORDED, order["id"])
    assert settle(db, first, payment_failed=True, snapshot=first) == (
        fulfilment.ATTEMPT_ALREADY_RECORDED, order["id"])
    second = intent(order, "requires_payment_method", error=declined("ch_second"))
    assert settle(db, second) == (fulfilment.ATTEMPT_RECORDED, order["id"])
    attempted = row(db, order)
    assert (attempted["status"], attempted["attempts"]) == ("attempted", 2)
    assert '"card_declined"' in attempted["last_payment_error"]
    assert inventory(db, order) == []


def test_decline_then_pay_is_recorded_as_fulfilled(db, order):
    # Mutant: decline-then-pay logged as fulfilled_after_cancel (or not fulfilled at all).
    settle(db, intent(order, "requires_payment_method", error=declined("ch_declined")))
    assert settle(db, intent(order)) == (fulfilment.FULFILLED, order["id"])
    paid = row(db, order)
    assert (paid["status"], paid["attempts"], paid["last_payment_error"]) == ("paid", 2, None)


def test_a_failure_reported_after_the_payment_does_not_unpay(db, order):
    settle(db, intent(order))
    late = intent(order, "requires_payment_method", error=declined("ch_late"))
    assert settle(db, late, payment_failed=True, snapshot=late)[0] in (
        fulfilment.ATTEMPT_RECORDED, fulfilment.NO_CHANGE)
    assert row(db, order)["status"] == "paid"


def test_a_payment_failed_event_without_an_error_still_counts_once(db, order):
    pi = intent(order, "requires_payment_method")
    assert settle(db, pi) == (fulfilment.NO_CHANGE, order["id"])  # nothing failed yet
    assert settle(db, pi, payment_failed=True, snapshot=pi) == (fulfilment.ATTEMPT_RECORDED,
                                                                 order["id"])
    assert settle(db, pi, payment_failed=True, snapshot=pi) == (
        fulfilment.ATTEMPT_ALREADY_RECORDED, order["id"])
    assert row(db, order)["attempts"] == 1


def test_only_a_payment_failed_event_lends_its_snapshot_to_the_failure(db, order):
    # Mutant: the snapshot passed on for every event, or never.
    quiet = intent(order, "requires_payment_method")
    failed_snapshot = intent(order, "requires_payment_method", error=declined("ch_snap"))
    # A succeeded-type delivery (or a sync) whose snapshot shows an error counts nothing.
    assert settle(db, quiet, snapshot=failed_snapshot) == (fulfilment.NO_CHANGE, order["id"])
    assert row(db, order)["attempts"] == 0
    # A payment_failed event counts the failure its snapshot names, not the intent's newer one.
    newer = intent(order, "requires_payment_method", error=declined("ch_newer"))
    assert settle(db, newer, payment_failed=True, snapshot=failed_snapshot) == (
        fulfilment.ATTEMPT_RECORDED, order["id"])
    assert settle(db, newer) == (fulfilment.ATTEMPT_RECORDED, order["id"])  # ch_newer: new
    assert row(db, order)["attempts"] == 2


def test_a_payment_failed_event_records_the_error_its_snapshot_names(db, order):
    # The re-read PaymentIntent has no error (the customer is already retrying): the event's
    # snapshot says what failed.
    quiet = intent(order, "requires_payment_method")
    snapshot = intent(order, "requires_payment_method", error=declined("ch_snap"))
    assert settle(db, quiet, payment_failed=True, snapshot=snapshot)[0] == \
        fulfilment.ATTEMPT_RECORDED
    assert '"card_declined"' in row(db, order)["last_payment_error"]


def test_a_payment_intent_without_a_status_settles_nothing(db, order):
    linked = {k: v for k, v in intent(order).items() if k != "status"}
    assert settle(db, linked) == (fulfilment.NO_CHANGE, order["id"])
    unlinked = {**linked, "id": PI_AFTER}
    assert settle(db, unlinked) == (fulfilment.UNKNOWN_ORDER, None)
    assert row(db, order)["status"] == "created"


def test_failure_key_names_one_failed_payment():
    key = fulfilment.failure_key
    assert key({"id": "pi_1"}) is None
    assert key({"id": "pi_1"}, payment_failed=True) == "pi_1:payment_failed"
    assert key({"id": "pi_1", "last_payment_error": declined("ch_9")}) == "pi_1:ch_9"
    assert key({"id": "pi_1", "last_payment_error": {"payment_method": {"id": "pm_1"}}}) \
        == "pi_1:pm_1"
    assert key({"id": "pi_1", "last_payment_error": {"payment_method": "pm_2"}}) == "pi_1:pm_2"
    assert key({"id": "pi_1", "last_payment_error": {"code": "expired_card"}}) \
        == "pi_1:expired_card"
    assert key({"id": "pi_1", "last_payment_error": {}}) == "pi_1:failed"
    # The event's snapshot names the failure when it has one (the customer may be retrying).
    assert key({"id": "pi_1", "last_payment_error": declined("ch_new")},
               {"last_payment_error": declined("ch_old")}, True) == "pi_1:ch_old"
    assert key({"id": "pi_1", "last_payment_error": declined("ch_new")}, {}, True) \
        == "pi_1:ch_new"


# --- 3-D Secure pending ----------------------------------------------------------------------

def test_3ds_pending_shows_on_the_order_but_counts_no_attempt(db, order):
    pending = intent(order, "requires_action")
    assert settle(db, pending) == (fulfilment.ATTEMPT_RECORDED, order["id"])
    waiting = row(db, order)
    assert (waiting["status"], waiting["attempts"]) == ("attempted", 0)
    assert '"authentication_required"' in waiting["last_payment_error"]
    assert db.execute("SELECT COUNT(*) FROM counted_failures").fetchone()[0] == 0
    # Asked again (another sync): nothing more is recorded.
    assert settle(db, pending) == (fulfilment.NO_CHANGE, order["id"])
    assert row(db, order)["attempts"] == 0 and inventory(db, order) == []


def test_error_of_describes_the_failure():
    assert fulfilment._error_of({"last_payment_error": declined("ch_1")}) == {
        "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined."}
    assert fulfilment._error_of({"status": "requires_action"})["code"] == \
        "authentication_required"
    for status in ("requires_payment_method", "processing", "canceled", "succeeded"):
        assert fulfilment._error_of({"status": status}) is None


def test_3ds_pending_on_a_paid_or_attempted_order_records_nothing(db, order):
    settle(db, intent(order))
    assert settle(db, intent(order, "requires_action")) == (fulfilment.NO_CHANGE, order["id"])
    paid = row(db, order)
    assert (paid["status"], paid["last_payment_error"]) == ("paid", None)


# --- canceled orders -------------------------------------------------------------------------

@pytest.fixture
def canceled(db, order):
    with transaction(db):
        assert orders.cancel_order(db, order["id"], "abandoned")
    return row(db, order)


def test_a_canceled_order_paid_in_full_is_fulfilled_and_flagged(db, canceled, caplog):
    with caplog.at_level(logging.ERROR, logger="tutorial_server.fulfilment"):
        assert settle(db, intent(canceled)) == (fulfilment.FULFILLED_AFTER_CANCEL,
                                                canceled["id"])
    assert row(db, canceled)["status"] == "paid" and len(inventory(db, canceled)) == 1
    [record] = caplog.records
    assert "was canceled" in record.getMessage() and "refund" in record.getMessage()
    assert settle(db, intent(canceled)) == (fulfilment.ALREADY_PAID, canceled["id"])


@pytest.mark.parametrize("change", [{"amount": 1}, {"currency": "eur"}])
def test_a_canceled_order_paid_with_the_wrong_amount_is_not_fulfilled(db, canceled, change,
                                                                      caplog):
    # Mutant: a canceled order paid the wrong amount logged as "fulfilled".
    with caplog.at_level(logging.ERROR, logger="tutorial_server.fulfilment"):
        assert settle(db, intent(canceled, **change)) == (fulfilment.AMOUNT_MISMATCH,
                                                          canceled["id"])
    assert row(db, canceled)["status"] == "canceled" and inventory(db, canceled) == []
    assert not any("Marked paid" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", ["requires_payment_method", "requires_action", "canceled"])
def test_a_canceled_order_stays_canceled_unless_paid(db, canceled, status):
    pi = intent(canceled, status, error=declined("ch_x"))
    assert settle(db, pi, payment_failed=True, snapshot=pi) == (fulfilment.NO_CHANGE,
                                                                 canceled["id"])
    after = row(db, canceled)
    assert (after["status"], after["attempts"]) == ("canceled", 0)


def test_canceled_at_stripe_cancels_an_unsettled_order(db, order):
    pi = intent(order, "canceled", cancellation_reason="requested_by_customer")
    assert settle(db, pi) == (fulfilment.CANCELED, order["id"])
    assert (row(db, order)["status"], row(db, order)["cancellation_reason"]) == (
        "canceled", "requested_by_customer")


def test_canceled_at_stripe_without_a_reason_names_one(db, order):
    assert settle(db, intent(order, "canceled")) == (fulfilment.CANCELED, order["id"])
    assert row(db, order)["cancellation_reason"] == "payment_intent_canceled"


def test_canceled_at_stripe_after_an_attempt_cancels_too(db, order):
    settle(db, intent(order, "requires_payment_method", error=declined("ch_1")))
    assert settle(db, intent(order, "canceled")) == (fulfilment.CANCELED, order["id"])


def test_canceled_at_stripe_does_not_touch_a_paid_order(db, order):
    settle(db, intent(order))
    assert settle(db, intent(order, "canceled")) == (fulfilment.NO_CHANGE, order["id"])
    assert row(db, order)["status"] == "paid"


@pytest.mark.parametrize("status", ["requires_payment_method", "processing",
                                    "requires_confirmation"])
def test_nothing_to_record_is_no_change(db, order, status):
    assert settle(db, intent(order, status)) == (fulfilment.NO_CHANGE, order["id"])
    assert row(db, order)["status"] == "created"


def test_the_flags_of_settle_order_are_keyword_only(db, order):
    # A positional True could be taken for the snapshot, or the snapshot for the flag.
    with pytest.raises(TypeError):
        fulfilment.settle_order(db, intent(order), True)  # type: ignore[misc]
