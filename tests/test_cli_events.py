"""The CLI's offline `stripe events resend` / `stripe trigger`, honest and forged, and the
webhook_delivery helpers they use.
"""
import hmac
import secrets
import subprocess
import sys

from tutorial_server.lab.webhook_sender import deliver, deliver_event, sign_payload
from tutorial_server.notebook.customer import pay_with_test_card

from .failure_lab import failure_lab  # noqa: F401 (a fixture)
from .running_lab import ROOT, RunningLab, drop_webhooks, lab_env, new_webhook_secret, run_cli


# --- (c) the CLI's `events resend` and `trigger` -------------------------------------------------

def cli(lab: RunningLab, *args: str) -> subprocess.CompletedProcess:
    result = run_cli(lab, *args)
    for text in (result.stdout, result.stderr):
        assert lab.webhook_secret not in text
    return result


def test_events_resend_of_a_delivered_event_is_a_duplicate(failure_lab):
    order = failure_lab.order("prod_enamel_mug", 1, "cus_cli_resend")["order"]
    pay_with_test_card(failure_lab.gateway(), order["payment_intent"], "success")
    failure_lab.wait_for_status(order["id"], "paid")
    [event] = failure_lab.query("SELECT * FROM webhook_events WHERE payment_intent = ?",
                    order["payment_intent"])
    assert event["outcome"] == "fulfilled"

    before = failure_lab.snapshot()
    result = cli(failure_lab, "events", "resend", event["id"])
    assert result.returncode == 0, result.stderr
    assert f"Delivering payment_intent.succeeded {event['id']}" in result.stdout
    assert '-> 200 {"received": true, "outcome": "duplicate"}' in result.stdout
    assert "whsec_" not in result.stdout
    assert failure_lab.snapshot() == before


def test_trigger_on_a_paid_order_changes_nothing(failure_lab):
    order = failure_lab.order("prod_pour_over_kit", 1, "cus_cli_trigger")["order"]
    pay_with_test_card(failure_lab.gateway(), order["payment_intent"], "success")
    paid = failure_lab.wait_for_status(order["id"], "paid")
    before = failure_lab.snapshot()
    for event_type, outcome in (("payment_intent.succeeded", "already_paid"),
                                ("payment_intent.payment_failed", "already_paid")):
        result = cli(failure_lab, "trigger", event_type, "--order", order["id"])
        assert result.returncode == 0, result.stderr
        assert f'"outcome": "{outcome}"' in result.stdout
    after = failure_lab.snapshot()
    assert failure_lab.order_status(order["id"]) == paid
    assert (after["orders"], after["inventory"]) == (before["orders"], before["inventory"])
    assert len(after["webhook_events"]) == len(before["webhook_events"]) + 2  # recorded, no effect


def test_cli_without_a_running_lab_or_with_an_unknown_event(failure_lab, tmp_path):
    result = subprocess.run([sys.executable, "-m", "tutorial_server.lab", "events", "resend",
                             "evt_123", "--db", str(tmp_path / "none.sqlite3")], cwd=ROOT,
                            env=lab_env(tmp_path / "none.sqlite3", None), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "No lab is running" in result.stderr
    unknown = cli(failure_lab, "events", "resend", "evt_doesnotexist")
    assert unknown.returncode != 0 and "Stripe has no event 'evt_doesnotexist'" in unknown.stderr
    no_order = cli(failure_lab, "trigger", "payment_intent.succeeded", "--order", "order_nope")
    assert no_order.returncode != 0 and "The lab has no order 'order_nope'" in no_order.stderr


def test_forged_deliveries_are_refused_and_the_honest_one_then_pays(fresh_lab):
    """An order paid at Stripe whose webhook was lost: the forged deliveries the CLI can make
    (another secret, a stale or future timestamp, a changed amount) must not pay it; the same
    event, honestly signed, does. So each was refused for its forgery, not by accident."""
    order = fresh_lab.order("prod_enamel_mug", 3, "cus_cli_forged")["order"]
    drop_webhooks(fresh_lab)
    pay_with_test_card(fresh_lab.gateway(), order["payment_intent"], "success")

    for forgery in (["--secret", new_webhook_secret()], ["--secret", "whsec_"],
                    ["--timestamp-offset", "-301"], ["--timestamp-offset", "-86400"],
                    ["--timestamp-offset", "330"], ["--timestamp-offset", "600"]):
        before = fresh_lab.snapshot()
        result = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"],
                     *forgery)
        assert result.returncode == 1, (forgery, result.stdout, result.stderr)
        assert "-> 400 " in result.stdout and '"param": "Stripe-Signature"' in result.stdout
        if forgery[0] == "--secret":
            assert forgery[1] not in result.stdout  # the forger's secret is not echoed either
        assert fresh_lab.snapshot() == before, forgery

    before = fresh_lab.snapshot()
    tampered = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"],
                   "--amount", "1")
    assert tampered.returncode == 0 and '"outcome": "amount_mismatch"' in tampered.stdout
    after = fresh_lab.snapshot()
    assert (after["orders"], after["inventory"]) == (before["orders"], before["inventory"])

    honest = cli(fresh_lab, "trigger", "payment_intent.succeeded", "--order", order["id"])
    assert honest.returncode == 0 and '"outcome": "fulfilled"' in honest.stdout
    assert fresh_lab.order_status(order["id"])["status"] == "paid"
    assert len(fresh_lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1


def test_deliver_helpers_sign_like_stripe(failure_lab):
    """webhook_delivery (used by the CLI and notebook 07) signs exactly as Stripe does."""
    payload = b'{"id": "evt_x"}'
    header = sign_payload(payload, "whsec_test", 1_700_000_000)
    assert header == ("t=1700000000,v1="
                      + hmac.new(b"whsec_test", b"1700000000." + payload, "sha256").hexdigest())
    event = {"id": "evt_helper_" + secrets.token_hex(6), "object": "event",
             "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    delivery = deliver_event(failure_lab.url, event, failure_lab.webhook_secret)
    assert (delivery.status, delivery.outcome) == (200, "ignored_type")
    refused = deliver(failure_lab.url, payload, None)
    assert (refused.status, refused.accepted) == (400, False)
    assert refused.outcome.startswith("rejected: Missing Stripe-Signature")
