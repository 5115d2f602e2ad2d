"""The CLI's Stripe-side commands, the offline equivalents of the Stripe CLI's:

  events resend EVT_ID              deliver one of Stripe's events to the lab's /webhook again
  trigger TYPE --order ORDER_ID     deliver a new event about the order's PaymentIntent (or
                                    its latest Refund, or a Dispute of its charge)

with options to forge a delivery on purpose (another secret, an old timestamp, another amount),
so a lesson can show the server refusing it.
"""
from __future__ import annotations

import argparse
import json
import urllib.parse

import requests
import stripe

from ..config import OFFLINE_SECRET_KEY, Settings
from .offline_stripe import fail_refund
from .process import gateway_for, read_lab_state
from .webhook_sender import (
    charge_refunded_event,
    deliver_event,
    lab_dispute,
    payment_intent_event,
    with_amount,
)

DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.closed")


def _running_lab(settings: Settings):
    """The lab running on this database: its state, the secret its server verifies webhooks
    with, and a gateway to its Stripe (the offline one it uses, or real Stripe in test mode)."""
    state = read_lab_state(settings.db_path)
    if state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server.lab serve` (and pass the same --db).")
    if state.get("mode") == "offline":
        secret = state.get("webhook_secret")
        gateway = gateway_for(state)
    elif settings.offline:
        raise SystemExit("The lab runs in test mode: set STRIPE_SECRET_KEY (and "
                         "STRIPE_WEBHOOK_SECRET) here too, as for the server.")
    else:
        secret = settings.webhook_secret
        gateway = gateway_for(state, settings)
    if not secret:
        raise SystemExit("The lab's webhook secret is not known here: set STRIPE_WEBHOOK_SECRET "
                         "to the secret the server uses.")
    return state, secret, gateway


def _deliver(state: dict, event: dict, secret: str, args) -> None:
    """Sign and deliver the event as asked (forged on purpose if the options say so), then
    print the server's answer. Never prints a secret."""
    if args.secret is not None:
        secret = args.secret
        how = ["signed with the secret given by --secret (not the lab's)"]
    else:
        how = ["signed with the lab's webhook secret"]
    offset = args.timestamp_offset
    if offset:
        how.append(f"timestamp {abs(offset)} s in the {'past' if offset < 0 else 'future'}")
    if args.amount is not None:
        event = with_amount(event, args.amount)
        how.append(f"data.object.amount changed to {args.amount}")
    url = state["server_url"]
    print(f"Delivering {event.get('type')} {event.get('id')} to {url}/webhook")
    print(f"  {'; '.join(how)}")
    delivery = deliver_event(url, event, secret, timestamp_offset=offset,
                             sender="the lab command line")
    answer = (json.dumps(delivery.answer) if isinstance(delivery.answer, (dict, list))
              else str(delivery.answer)[:500])
    print(f"-> {delivery.status} {answer}")
    if not delivery.accepted:
        raise SystemExit(1)


def cmd_events_resend(args, settings: Settings) -> None:
    state, secret, gateway = _running_lab(settings)
    try:
        event = gateway.retrieve_event(args.event_id)  # as Stripe stored it
    except stripe.InvalidRequestError:
        raise SystemExit(f"Stripe has no event {args.event_id!r} (list recent ones in the "
                         "Dashboard, or on the lab's dashboard page).") from None
    except stripe.StripeError as e:
        raise SystemExit(f"Could not reach Stripe: {type(e).__name__}.") from None
    _deliver(state, event, secret, args)


def cmd_trigger(args, settings: Settings) -> None:
    state, secret, gateway = _running_lab(settings)
    order_url = f"{state['server_url']}/api/orders/{urllib.parse.quote(args.order, safe='')}"
    answer = requests.get(order_url, timeout=15)
    if answer.status_code != 200:
        raise SystemExit(f"The lab has no order {args.order!r}.")
    payment_intent = answer.json()["order"]["payment_intent"]
    if not payment_intent:
        raise SystemExit(f"Order {args.order} has no PaymentIntent yet.")
    try:
        intent = gateway.retrieve_payment_intent(payment_intent)
    except stripe.StripeError as e:
        raise SystemExit(f"Could not read {payment_intent} from Stripe: "
                         f"{type(e).__name__}.") from None
    if args.event_type == "charge.refunded":
        # The offline Stripe sends no refund events: play the one real Stripe sends after a
        # refund. The server re-reads the refunds from Stripe, so it settles only real ones.
        if not intent.get("latest_charge"):
            raise SystemExit(f"{payment_intent} has no charge yet: nothing to refund.")
        _deliver(state, charge_refunded_event(gateway, intent), secret, args)
        return
    if args.event_type == "refund.failed":
        _deliver(state, _failed_refund_event(state, gateway, payment_intent), secret, args)
        return
    if args.event_type in DISPUTE_EVENTS:
        _deliver(state, _dispute_event(state, intent, args), secret, args)
        return
    expected = "succeeded" if args.event_type == "payment_intent.succeeded" else None
    if expected and intent["status"] != expected:
        print(f"Note: Stripe says {payment_intent} is {intent['status']}. The server re-reads "
              "it from Stripe, so this event will not pay the order.")
    _deliver(state, payment_intent_event(intent, args.event_type), secret, args)


def _failed_refund_event(state: dict, gateway, payment_intent: str) -> dict:
    """refund.failed about the PaymentIntent's latest Refund. Offline, the lab first makes that
    Refund fail at the stand-in (which has no failing refunds); in test mode Stripe's own Refund
    is sent as it is (a refund of a payment made with pm_card_refundFail fails by itself)."""
    try:
        refunds = gateway.refunds_of(payment_intent)
    except stripe.StripeError as e:
        raise SystemExit(f"Could not list the refunds of {payment_intent}: "
                         f"{type(e).__name__}.") from None
    if not refunds:
        raise SystemExit(f"{payment_intent} has no refund yet: refund the order first.")
    latest = max(refunds, key=lambda r: (r.get("created") or 0, r["id"]))
    if state.get("mode") == "offline":
        fail_refund(state["backend_url"], state.get("backend_key") or OFFLINE_SECRET_KEY,
                    latest["id"])
        latest = gateway.retrieve_refund(latest["id"])
    elif latest.get("status") != "failed":
        print(f"Note: Stripe says {latest['id']} is {latest.get('status')}. The server re-reads "
              "it from Stripe, so this event will change nothing.")
    return payment_intent_event(latest, "refund.failed")


def _dispute_event(state: dict, intent: dict, args) -> dict:
    """charge.dispute.created or .closed about a Dispute of the PaymentIntent's charge (offline
    only: the stand-in has no disputes; in test mode Stripe sends real ones)."""
    if state.get("mode") != "offline":
        raise SystemExit("In test mode Stripe sends dispute events itself: pay with the card "
                         "4000 0000 0000 0259, then submit the evidence text winning_evidence "
                         "or losing_evidence in the Dashboard to close the dispute.")
    if not intent.get("latest_charge") or intent.get("status") != "succeeded":
        raise SystemExit(f"{intent['id']} has no successful charge: nothing to dispute.")
    closing = args.event_type == "charge.dispute.closed"
    status = args.dispute_status or ("won" if closing else "needs_response")
    if closing != (status in ("won", "lost", "warning_closed")):
        raise SystemExit(f"--dispute-status {status} does not fit {args.event_type}.")
    return payment_intent_event(lab_dispute(intent, status), args.event_type)


def add_forging_options(parser: argparse.ArgumentParser) -> None:
    forge = parser.add_argument_group("forging on purpose (for lessons: the server must refuse)")
    forge.add_argument("--secret", help="sign with this secret instead of the lab's "
                       "(a forger's, or the wrong whsec_ from `stripe listen`)")
    forge.add_argument("--timestamp-offset", type=int, default=0, metavar="SECONDS",
                       help="sign as of now + SECONDS: -600 is a stale replay, 600 the future")
    forge.add_argument("--amount", type=int, help="change data.object.amount, then sign")
    parser.add_argument("--db", help="the running lab's SQLite file (default $TUTORIAL_DB)")
