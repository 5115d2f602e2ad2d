"""Command line: `python -m tutorial_server COMMAND`.

  serve      start the offline Stripe stand-in (offline mode) and the merchant server
  lab        the same, plus JupyterLab on notebooks/
  demo       create an order for the instructor on the running lab; print its checkout link
  reconcile  settle orders whose webhook never arrived, by asking Stripe
  reset      clear the lab's orders, inventories and events
  events resend EVT                 deliver one of Stripe's events to the lab's /webhook again
  trigger TYPE --order ORDER_ID     deliver a new event about the order's PaymentIntent
(the last two are the offline equivalents of `stripe events resend` and `stripe trigger`)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dotenv import load_dotenv

from .config import ConfigError, Settings, load_settings


def _settings(args) -> Settings:
    load_dotenv(Path.cwd() / ".env")  # a learner's keys, if they made a .env from .env.example
    try:
        settings = load_settings()
    except ConfigError as e:
        raise SystemExit(f"Configuration error: {e}") from None
    if getattr(args, "port", None) is not None:
        settings = _replace(settings, port=args.port)
    if getattr(args, "db", None):
        settings = _replace(settings, db_path=Path(args.db))
    return settings


def _replace(settings: Settings, **changes) -> Settings:
    from dataclasses import replace
    return replace(settings, **changes)


def _attached_app(settings: Settings):
    """An app talking to the same Stripe backend as the lab running on this database."""
    from . import create_app
    from .lab_process import read_lab_state
    state = read_lab_state(settings.db_path)
    if settings.offline and state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server serve`: in offline mode the payments live "
                         "in the running lab's offline Stripe.")
    return create_app(settings, backend_url=state["backend_url"] if state else None), state


def read_roster(path: str | None) -> tuple[str, ...]:
    """The class roster: one learner's customer id a line (what each learner sets as
    TUTORIAL_CUSTOMER); blank lines and # comments skipped."""
    if not path:
        return ()
    from .orders_api import _CUSTOMER_ID
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SystemExit(f"Cannot read the roster {path}: {e.strerror}.") from None
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = [n for n in names if n]
    bad = [n for n in names if not _CUSTOMER_ID.match(n)]
    if bad:
        raise SystemExit(f"Roster {path}: not a customer id (1 to 64 letters, digits, '_' or "
                         f"'-'): {', '.join(repr(b) for b in bad[:5])}")
    return tuple(dict.fromkeys(names))


def cmd_serve(args) -> None:
    from .lab import run_serve
    run_serve(_settings(args), host=args.host,
              reset_token=args.reset_token or os.environ.get("TUTORIAL_RESET_TOKEN") or None,
              backend_url=args.backend_url, unix_socket=args.unix_socket,
              allowed_hosts=args.allowed_host, reconcile_every=args.reconcile_every,
              roster=read_roster(args.roster), fresh=args.fresh)


def cmd_demo(args) -> None:
    """One order for the instructor to pay in front of the class: no curl, no copying ids."""
    import requests

    from .lab_process import read_lab_state
    settings = _settings(args)
    state = read_lab_state(settings.db_path)
    if state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server serve` (and pass the same --db).")
    url = state["server_url"]
    answer = requests.post(f"{url}/api/orders", json={
        "productId": args.product, "quantity": args.quantity, "customer": args.customer},
        timeout=15)
    if answer.status_code != 201:
        error = answer.json().get("error", {}) if answer.headers.get(
            "Content-Type", "").startswith("application/json") else {}
        raise SystemExit(f"The lab refused the order ({answer.status_code}): "
                         f"{error.get('message', answer.text[:200])}")
    order = answer.json()["order"]
    print(f"Order {order['id']} for {args.customer}: {order['quantity']} x {order['product']}")
    print(f"  Checkout   {url}/checkout/{order['id']}   (pay with 4242 4242 4242 4242, 12/34, 123)")
    print(f"  Follow it  {url}/dashboard#follow={order['id']}   (its journey, large, on the projector)")


def _quiet_or_verbose(verbose: bool) -> None:
    """By default the terminal shows what changes things and what fails; `--verbose` adds
    every request (dashboards poll each 1.5 s) and stripe-python's INFO lines."""
    if verbose:
        logging.getLogger("tutorial_server.requests").setLevel(logging.DEBUG)
    else:
        logging.getLogger("stripe").setLevel(logging.WARNING)


def cmd_lab(args) -> None:
    from .lab import run_lab
    run_lab(_settings(args), open_browser=not args.no_browser)


def cmd_reconcile(args) -> None:
    from .reconcile import describe, reconcile
    app, _ = _attached_app(_settings(args))
    print(f"Reconciled with Stripe: {describe(reconcile(app))}.")


def cmd_reset(args) -> None:
    from .db import connect, init_db, transaction
    from .lab_process import read_lab_state
    from .offline_backend import clear_backend_data
    from .orders import clear_lab
    settings = _settings(args)
    if not args.yes:
        answer = input(f"Delete every order, event and inventory in {settings.db_path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit("Nothing deleted.")
    init_db(settings.db_path)
    db = connect(settings.db_path)
    with transaction(db):
        clear_lab(db)
    db.close()
    state = read_lab_state(settings.db_path)
    if state and state.get("backend_url"):
        clear_backend_data(state["backend_url"])
    print("The lab is empty.")


def _running_lab(settings: Settings):
    """The lab running on this database: its state, the secret its server verifies webhooks
    with, and a gateway to its Stripe (the offline one it uses, or real Stripe in test mode)."""
    from .lab_process import gateway_for, read_lab_state
    state = read_lab_state(settings.db_path)
    if state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server serve` (and pass the same --db).")
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
    import json

    from .webhook_delivery import deliver_event, with_amount
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
    delivery = deliver_event(url, event, secret, timestamp_offset=offset)
    answer = (json.dumps(delivery.answer) if isinstance(delivery.answer, (dict, list))
              else str(delivery.answer)[:500])
    print(f"-> {delivery.status} {answer}")
    if not delivery.accepted:
        raise SystemExit(1)


def cmd_events_resend(args) -> None:
    import stripe

    state, secret, gateway = _running_lab(_settings(args))
    try:
        event = gateway.retrieve_event(args.event_id)  # as Stripe stored it
    except stripe.InvalidRequestError:
        raise SystemExit(f"Stripe has no event {args.event_id!r} (list recent ones in the "
                         "Dashboard, or on the lab's dashboard page).") from None
    except stripe.StripeError as e:
        raise SystemExit(f"Could not reach Stripe: {type(e).__name__}.") from None
    _deliver(state, event, secret, args)


def cmd_trigger(args) -> None:
    import urllib.parse

    import requests
    import stripe

    from .webhook_delivery import payment_intent_event
    state, secret, gateway = _running_lab(_settings(args))
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
        from .webhook_delivery import charge_refunded_event
        if not intent.get("latest_charge"):
            raise SystemExit(f"{payment_intent} has no charge yet: nothing to refund.")
        _deliver(state, charge_refunded_event(gateway, intent), secret, args)
        return
    expected = "succeeded" if args.event_type == "payment_intent.succeeded" else None
    if expected and intent["status"] != expected:
        print(f"Note: Stripe says {payment_intent} is {intent['status']}. The server re-reads "
              "it from Stripe, so this event will not pay the order.")
    _deliver(state, payment_intent_event(intent, args.event_type), secret, args)


def _add_forging_options(parser: argparse.ArgumentParser) -> None:
    forge = parser.add_argument_group("forging on purpose (for lessons: the server must refuse)")
    forge.add_argument("--secret", help="sign with this secret instead of the lab's "
                       "(a forger's, or the wrong whsec_ from `stripe listen`)")
    forge.add_argument("--timestamp-offset", type=int, default=0, metavar="SECONDS",
                       help="sign as of now + SECONDS: -600 is a stale replay, 600 the future")
    forge.add_argument("--amount", type=int, help="change data.object.amount, then sign")
    parser.add_argument("--db", help="the running lab's SQLite file (default $TUTORIAL_DB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorial_server",
                                     description="The Stripe payments lab.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the offline Stripe stand-in and the merchant server")
    serve.add_argument("--port", type=int, help="merchant server port (default 4242, or $PORT; "
                       "0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                       "0.0.0.0 serves a whole class, and prints what that exposes)")
    serve.add_argument("--reset-token", help="let the dashboard reset the lab from other machines "
                       "with this token (default $TUTORIAL_RESET_TOKEN; without one, only from "
                       "this machine)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="also answer requests for this host name (NAME or NAME:PORT; "
                       "repeatable; also $TUTORIAL_ALLOWED_HOSTS, comma-separated). Always "
                       "answered: 127.0.0.1, localhost, [::1]; with --host 0.0.0.0 also this "
                       "machine's names and addresses. Any other name gets 400 (DNS rebinding)")
    serve.add_argument("--reconcile-every", type=float, metavar="SECONDS",
                       help="settle orders whose webhook never came, in the background, every "
                       "SECONDS (default 30, or $TUTORIAL_RECONCILE_SECONDS; 0 turns it off); "
                       "offline, also checks the webhook registration each time")
    serve.add_argument("--db", help="SQLite file (default $TUTORIAL_DB or "
                       "~/.stripe-lab/tutorial.sqlite3)")
    serve.add_argument("--backend-url", metavar="URL",
                       help="attach to an offline Stripe already running at URL (and register "
                       "the webhook there) instead of starting one; it keeps running after")
    serve.add_argument("--unix-socket", metavar="PATH",
                       help="listen on this Unix socket (how jupyter-server-proxy starts the lab "
                       "on JupyterHub), plus a loopback port for webhooks under a secret path")
    serve.add_argument("--roster", metavar="FILE",
                       help="the class: one learner's customer id a line (each learner sets it "
                       "as TUTORIAL_CUSTOMER); the dashboard lists who has not started")
    serve.add_argument("--fresh", action="store_true",
                       help="start with an empty lab (no orders, events or inventories)")
    serve.add_argument("--verbose", action="store_true",
                       help="log every request (dashboard polls included) and Stripe's INFO lines")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="create an order on the running lab for the instructor "
                          "to pay; print its checkout link")
    demo.add_argument("--product", default="prod_coffee_beans",
                      help="product id (default prod_coffee_beans; see GET /api/products)")
    demo.add_argument("--quantity", type=int, default=1)
    demo.add_argument("--customer", default="instructor")
    demo.add_argument("--db", help="the running lab's SQLite file (default $TUTORIAL_DB)")
    demo.set_defaults(func=cmd_demo)

    lab = sub.add_parser("lab", help="serve, plus JupyterLab opened on notebooks/")
    lab.add_argument("--port", type=int)
    lab.add_argument("--db")
    lab.add_argument("--no-browser", action="store_true")
    lab.set_defaults(func=cmd_lab)

    rec = sub.add_parser("reconcile", help="settle orders whose webhook never arrived")
    rec.add_argument("--db")
    rec.set_defaults(func=cmd_reconcile)

    reset = sub.add_parser("reset", help="clear the lab's orders, events and inventories")
    reset.add_argument("--db")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(func=cmd_reset)

    events = sub.add_parser("events", help="Stripe's events (like `stripe events`)")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    resend = events_sub.add_parser("resend", help="deliver one of Stripe's events to the lab's "
                                   "/webhook again (like `stripe events resend`)")
    resend.add_argument("event_id", metavar="EVT_ID")
    _add_forging_options(resend)
    resend.set_defaults(func=cmd_events_resend)

    trigger = sub.add_parser("trigger", help="deliver a new event about an order's PaymentIntent "
                             "to the lab's /webhook (like `stripe trigger`)")
    trigger.add_argument("event_type", choices=["payment_intent.succeeded",
                                                "payment_intent.payment_failed",
                                                "charge.refunded"])
    trigger.add_argument("--order", required=True, metavar="ORDER_ID")
    _add_forging_options(trigger)
    trigger.set_defaults(func=cmd_trigger)

    args = parser.parse_args(argv)
    # The server's own lines (webhook outcomes, fulfilments) next to the request log; they
    # carry ids and outcomes, never keys or secrets.
    # One event per line: request data is escaped, tracebacks are indented under their event.
    from .security import OneLineFormatter
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    _quiet_or_verbose(getattr(args, "verbose", False))
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
