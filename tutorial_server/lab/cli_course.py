"""Two commands about the course rather than the payments (cli.py registers them):

  notebooks [DEST]         copy the shipped notebooks into DEST, never over a learner's file
  class-progress --hub URL the class on a JupyterHub: every learner, their server, their
                           progress (needs a token allowed to list users and reach servers, in
                           $JUPYTERHUB_API_TOKEN: an admin's, or the class-progress service's)
"""
from __future__ import annotations

import json
import os

import requests

from .class_progress import as_text, class_progress
from .notebooks import DEFAULT_DESTINATION, cmd_notebooks


def cmd_class_progress(args) -> None:
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise SystemExit("Set JUPYTERHUB_API_TOKEN to a hub token that may list the users and "
                         "reach their servers (an admin's: <hub>/hub/token).")
    try:
        rows = class_progress(args.hub, token)
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise SystemExit(f"The hub refused ({status}): this token may not list the users "
                         "(it needs the scopes list:users, read:users and access:servers).") from None
    except requests.RequestException as e:
        raise SystemExit(f"Cannot reach the hub at {args.hub}: {e}") from None
    print(json.dumps({"learners": rows}, indent=2) if args.json else as_text(rows), end="")


def add_commands(sub) -> None:
    notebooks = sub.add_parser("notebooks", help="copy the course's notebooks into a folder "
                               "(never over your own edited copy)")
    notebooks.add_argument("destination", nargs="?", default=DEFAULT_DESTINATION, metavar="DEST",
                           help=f"where (default ./{DEFAULT_DESTINATION})")
    notebooks.set_defaults(func=cmd_notebooks)

    progress = sub.add_parser("class-progress", help="on a JupyterHub: every learner, whether "
                              "their server runs, the exercises they passed, their orders")
    progress.add_argument("--hub", required=True, metavar="URL",
                          help="the hub's address, e.g. https://class.example.edu")
    progress.add_argument("--json", action="store_true", help="print JSON instead of a table")
    progress.set_defaults(func=cmd_class_progress)
