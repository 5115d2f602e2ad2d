"""Command line: `python -m tutorial_server COMMAND`.

  serve      start the offline Stripe stand-in (offline mode) and the merchant server
  lab        the same, plus JupyterLab on notebooks/
  reconcile  settle orders whose webhook never arrived, by asking Stripe
  reset      clear the lab's orders, inventories and events
"""
from __future__ import annotations

import argparse
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
    from .lab import read_lab_state
    state = read_lab_state(settings.db_path)
    if settings.offline and state is None:
        raise SystemExit(f"No lab is running on {settings.db_path}. Start it first with "
                         "`python -m tutorial_server serve`: in offline mode the payments live "
                         "in the running lab's offline Stripe.")
    return create_app(settings, backend_url=state["backend_url"] if state else None), state


def cmd_serve(args) -> None:
    from .lab import run_serve
    run_serve(_settings(args), host=args.host)


def cmd_lab(args) -> None:
    from .lab import run_lab
    run_lab(_settings(args), open_browser=not args.no_browser)


def cmd_reconcile(args) -> None:
    from .reconcile import describe, reconcile
    app, _ = _attached_app(_settings(args))
    print(f"Reconciled with Stripe: {describe(reconcile(app))}.")


def cmd_reset(args) -> None:
    from .db import connect, init_db, transaction
    from .lab import read_lab_state
    from .offline_backend import clear_backend_data
    settings = _settings(args)
    if not args.yes:
        answer = input(f"Delete every order, event and inventory in {settings.db_path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit("Nothing deleted.")
    init_db(settings.db_path)
    db = connect(settings.db_path)
    with transaction(db):
        for table in ("inventory", "idempotency_keys", "webhook_events", "orders"):
            db.execute(f"DELETE FROM {table}")
    db.close()
    state = read_lab_state(settings.db_path)
    if state and state.get("backend_url"):
        clear_backend_data(state["backend_url"])
    print("The lab is empty.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorial_server",
                                     description="The Stripe payments lab.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the offline Stripe stand-in and the merchant server")
    serve.add_argument("--port", type=int, help="merchant server port (default 4242, or $PORT; "
                       "0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--db", help="SQLite file (default $TUTORIAL_DB or instance/tutorial.sqlite3)")
    serve.set_defaults(func=cmd_serve)

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

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
