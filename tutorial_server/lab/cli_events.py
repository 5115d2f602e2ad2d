"""The CLI's Stripe-side commands, the offline equivalents of the Stripe CLI's:

  events resend EVT_ID              deliver one of Stripe's events to the lab's /webhook again
  trigger TYPE --order ORDER_ID     deliver a new event about the order's PaymentIntent

with options to forge a delivery on purpose (another secret, an old timestamp, another amount),
so a lesson can show the server refusing it.
"""
from __future__ import annotations

import argparse
import json
import urllib.parse

import requests
import stripe

from ..config import Settings
from .process import gateway_for, read_lab_state
from .webhook_sender import charge_refunded_event, deliver_event, payment_intent_event, with_amount


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
    expected = "succeeded" if args.event_type == "payment_intent.succeeded" else None
    if expected and intent["status"] != expected:
        print(f"Note: Stripe says {payment_intent} is {intent['status']}. The server re-reads "
              "it from Stripe, so this event will not pay the order.")
    _deliver(state, payment_intent_event(intent, args.event_type), secret, args)


def add_forging_options(parser: argparse.ArgumentParser) -> None:
    forge = parser.add_argument_group("forging on purpose (for lessons: the server must refuse)")
    forge.add_argument("--secret", help="sign with this secret instead of the lab's "
                       "(a forger's, or the wrong whsec_ from `stripe listen`)")
    forge.add_argument("--timestamp-offset", type=int, default=0, metavar="SECONDS",
                       help="sign as of now + SECONDS: -600 is a stale replay, 600 the future")
    forge.add_argument("--amount", type=int, help="change data.object.amount, then sign")
    parser.add_argument("--db", help="the running lab's SQLite file (default $TUTORIAL_DB)")
