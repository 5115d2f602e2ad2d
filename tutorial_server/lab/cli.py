"""Command line: `python -m tutorial_server.lab COMMAND`.

  serve      start the offline Stripe stand-in (offline mode) and the merchant server
  lab        the same, plus JupyterLab on notebooks/
  demo       create an order for the instructor on the running lab; print its checkout link
  reconcile  settle orders whose webhook never arrived, by asking Stripe
  reset      clear the lab's orders, inventories and events
  events resend EVT                 deliver one of Stripe's events to the lab's /webhook again
  trigger TYPE --order ORDER_ID     deliver a new event about the order's PaymentIntent
  notebooks [DEST]                  copy the course's notebooks into DEST (cli_course.py)
  class-progress --hub URL          the class on a JupyterHub, for the instructor (cli_course.py)
(the last two are the offline equivalents of `stripe events resend` and `stripe trigger`)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import requests
from dotenv import load_dotenv

from ..config import ConfigError, Settings, load_settings
from ..db import connect, init_db
from ..parsing import CUSTOMER_ID
from ..reconcile import describe, reconcile
from ..security import OneLineFormatter
from . import cli_course, cli_events
from .app import create_lab_app
from .course_folder import build_shop, install_settings_override, notebook_folder
from .proxied import secret_from_environment
from .launcher import run_lab, run_serve
from .process import read_lab_state
from .reset import clear_lab, reset_running_lab


def settings_from_environment(env_file: Path) -> Settings:
    """The settings `serve` and the private lab run with: the environment, after the learner's
    keys from `env_file` (a .env made from .env.example), if there is one."""
    load_dotenv(env_file)
    try:
        return load_settings()
    except ConfigError as e:
        raise SystemExit(f"Configuration error: {e}") from None


def _settings(args) -> Settings:
    settings = settings_from_environment(Path.cwd() / ".env")
    if getattr(args, "port", None) is not None:
        settings = replace(settings, port=args.port)
    if getattr(args, "db", None):
        settings = replace(settings, db_path=Path(args.db))
    return settings


def _attached_app(settings: Settings):
    """An app talking to the same Stripe backend as the lab running on this database."""
    state = read_lab_state(settings.db_path)
    if settings.offline and state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server.lab serve`: in offline mode the payments live "
                         "in the running lab's offline Stripe.")
    if settings.offline and state and state.get("backend_key"):
        settings = replace(settings, secret_key=state["backend_key"])  # its stand-in's key
    return create_lab_app(settings, backend_url=state["backend_url"] if state else None), state


def read_roster(path: str | None) -> dict[str, str | None]:
    """The class roster: one learner's customer id a line (what each learner sets as
    TUTORIAL_CUSTOMER), optionally followed by that learner's join code (`learner07 k3y`: they
    join with it, POST /api/class/join); blank lines and # comments skipped."""
    if not path:
        return {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SystemExit(f"Cannot read the roster {path}: {e.strerror}.") from None
    entries = [line.split("#", 1)[0].split() for line in lines]
    entries = [e for e in entries if e]
    bad = [" ".join(e) for e in entries if not CUSTOMER_ID.match(e[0]) or len(e) > 2]
    if bad:
        raise SystemExit(f"Roster {path}: each line is a customer id (1 to 64 letters, digits, "
                         f"'_' or '-') and optionally a join code: "
                         f"{', '.join(repr(b) for b in bad[:5])}")
    roster: dict[str, str | None] = {}
    for entry in entries:
        roster.setdefault(entry[0], entry[1] if len(entry) == 2 else None)
    return roster


def cmd_serve(args) -> None:
    secret_from_environment()  # out of the environment before the offline Stripe starts
    run_serve(_settings(args), host=args.host,
              reset_token=args.reset_token or os.environ.get("TUTORIAL_RESET_TOKEN") or None,
              backend_url=args.backend_url, unix_socket=args.unix_socket,
              allowed_hosts=args.allowed_host, reconcile_every=args.reconcile_every,
              roster=read_roster(args.roster), fresh=args.fresh)


def cmd_demo(args) -> None:
    """One order for the instructor to pay in front of the class: no curl, no copying ids."""
    settings = _settings(args)
    state = read_lab_state(settings.db_path)
    if state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server.lab serve` (and pass the same --db).")
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
    if args.jupyter_port is not None:  # JupyterLab reads its port from JUPYTER_PORT
        os.environ["JUPYTER_PORT"] = str(args.jupyter_port)
    settings = _settings(args)
    notebook_folder()  # says where to start it if the notebooks are not there
    # Without make (pip alone, Windows): what `make lab` does around the lab (course_folder.py).
    install_settings_override()
    if not args.no_shop_build:
        note = build_shop()
        if note:
            print(note, flush=True)
    run_lab(settings, open_browser=not args.no_browser)


def cmd_reconcile(args) -> None:
    app, _ = _attached_app(_settings(args))
    print(f"Reconciled with Stripe: {describe(reconcile(app))}.")


def cmd_reset(args) -> None:
    """The dashboard's reset: a running lab is asked to reset itself (its offline Stripe, its
    database, its deliveries); a database with no lab running is emptied here."""
    settings = _settings(args)
    if not args.yes:
        answer = input(f"Delete every order, event and inventory in {settings.db_path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit("Nothing deleted.")
    state = read_lab_state(settings.db_path)
    if state is not None:
        try:
            reset_running_lab(state["server_url"])
        except (RuntimeError, requests.RequestException) as e:
            raise SystemExit(f"The running lab did not reset: {e}") from None
    else:
        init_db(settings.db_path)
        db = connect(settings.db_path)
        try:
            clear_lab(db)
        finally:
            db.close()
    print("The lab is empty.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorial_server.lab",
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
                       "as TUTORIAL_CUSTOMER), optionally followed by their join code; only "
                       "these ids may join; the dashboard lists who has not started")
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
    lab.add_argument("--port", type=int, help="merchant server port (default 4242, or $PORT); "
                     "JupyterLab's port is --jupyter-port")
    lab.add_argument("--jupyter-port", type=int, metavar="PORT",
                     help="JupyterLab's port (default $JUPYTER_PORT, else 8888 or the next free "
                     "one)")
    lab.add_argument("--db")
    lab.add_argument("--no-browser", action="store_true")
    lab.add_argument("--no-shop-build", action="store_true",
                     help="do not build the React shop with npm when it is not built (make lab "
                     "builds it first)")
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
    cli_events.add_forging_options(resend)
    resend.set_defaults(func=lambda a: cli_events.cmd_events_resend(a, _settings(a)))

    trigger = sub.add_parser("trigger", help="deliver a new event about an order's PaymentIntent "
                             "to the lab's /webhook (like `stripe trigger`)")
    trigger.add_argument("event_type", choices=["payment_intent.succeeded",
                                                "payment_intent.payment_failed",
                                                "charge.refunded", "refund.failed",
                                                *cli_events.DISPUTE_EVENTS])
    trigger.add_argument("--order", required=True, metavar="ORDER_ID")
    trigger.add_argument("--dispute-status", choices=["needs_response", "warning_needs_response",
                                                      "won", "lost", "warning_closed"],
                         help="the Dispute's status (default: needs_response when created, "
                         "won when closed)")
    cli_events.add_forging_options(trigger)
    trigger.set_defaults(func=lambda a: cli_events.cmd_trigger(a, _settings(a)))
    cli_course.add_commands(sub)

    args = parser.parse_args(argv)
    # The server's own lines (webhook outcomes, fulfilments) next to the request log; they
    # carry ids and outcomes, never keys or secrets.
    # One event per line: request data is escaped, tracebacks are indented under their event.
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    _quiet_or_verbose(getattr(args, "verbose", False))
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
