"""The class on a hub, for the instructor: every learner, whether their server runs, and how far
they got (the exercises they passed, their orders, their last activity).

Read through JupyterHub with a token that may list the users and reach their servers (the
`class-progress` service's own token, or an admin's): the hub's REST API says who the learners
are and whose server runs; each running learner's own lab answers GET /api/progress
(lab/progress.py) through the hub's proxy, at <hub>/user/<name>/stripe-lab/api/progress.
A learner whose server is stopped shows what was seen last (kept in `remembered`), marked as
such. Only counts, exercise numbers and times are kept or shown: never an order id, a client
secret or a key. Served as a page by class_progress_service.py; printed by
`python -m tutorial_server.lab class-progress`.
"""
from __future__ import annotations

import html
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import requests

from ..course.solutions import STUBS
from .jupyter_proxy import NAME

EXERCISES = tuple(sorted(STUBS))  # "00", "01", ...: one exercise per notebook
PAGE = 200  # users per request to the hub's API (its api_page_default_limit)
ASK_TIMEOUT = 30  # seconds: a learner's lab that is not running yet starts on this request


def _clean(progress: dict) -> dict:
    """Only what the view shows, whatever a lab answered."""
    exercises = progress.get("exercises") if isinstance(progress.get("exercises"), dict) else {}
    passed = [n for n in EXERCISES if isinstance(exercises.get(n), dict)
              and exercises[n].get("first_passed_at")]
    checks = {n: int(e.get("checks", 0)) for n, e in exercises.items()
              if n in EXERCISES and isinstance(e, dict)}
    orders = progress.get("orders") if isinstance(progress.get("orders"), dict) else {}
    last = progress.get("last_activity")
    return {"passed": passed, "checks": checks,
            "orders_total": int(orders.get("total") or 0), "orders_paid": int(orders.get("paid") or 0),
            "last_activity": int(last) if isinstance(last, (int, float)) else None}


def _server_state(user: dict) -> str:
    if user.get("pending"):
        return "starting" if user["pending"] == "spawn" else "stopping"
    return "running" if user.get("server") else "stopped"


def _ask_lab(hub_url: str, user: dict, token: str) -> tuple[dict | None, str]:
    url = f"{hub_url.rstrip('/')}{user['server']}{NAME}/api/progress"
    try:
        answer = requests.get(url, headers={"Authorization": f"token {token}"},
                              timeout=ASK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as e:
        return None, f"lab did not answer ({type(e).__name__})"
    if answer.status_code != 200:
        return None, f"lab answered {answer.status_code}"
    try:
        return _clean(answer.json()), ""
    except (ValueError, AttributeError, TypeError):
        return None, "lab answered something else than its progress"


def _hub_users(api: str, token: str) -> list[dict]:
    """Every user of the hub: its API answers a page at a time (at most its
    api_page_max_limit, 200 by default), until a page comes back empty."""
    users: list[dict] = []
    while True:
        page = requests.get(f"{api}/users", params={"offset": len(users), "limit": PAGE},
                            headers={"Authorization": f"token {token}"}, timeout=30)
        page.raise_for_status()
        if not page.json():
            return users
        users.extend(page.json())


def class_progress(hub_url: str, token: str, *, api_url: str | None = None,
                   remembered: dict | None = None) -> list[dict]:
    """One row per hub user, by name. `hub_url`: the hub's public address (its proxy);
    `api_url`: its REST API (default <hub_url>/hub/api). `remembered` (name -> row) keeps what
    was last seen of each learner, so a stopped server still shows its learner's progress."""
    api = (api_url or f"{hub_url.rstrip('/')}/hub/api").rstrip("/")
    users = sorted(_hub_users(api, token), key=lambda u: u["name"])
    remembered = {} if remembered is None else remembered

    def row_for(user: dict) -> dict:
        row = {"name": user["name"], "admin": bool(user.get("admin")),
               "server": _server_state(user), "hub_last_activity": user.get("last_activity"),
               "progress": None, "seen_at": None, "note": ""}
        if row["server"] == "running":
            progress, row["note"] = _ask_lab(hub_url, user, token)
            if progress is not None:
                row.update(progress=progress, seen_at=int(time.time()))
                remembered[user["name"]] = {"progress": progress, "seen_at": row["seen_at"]}
        if row["progress"] is None and user["name"] in remembered:
            row.update(remembered[user["name"]])
            row["note"] = row["note"] or "last seen while the server ran"
        elif row["progress"] is None and not row["note"]:
            row["note"] = "not seen running yet" if row["server"] == "stopped" else ""
        return row

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(row_for, users))


# --- showing it ---------------------------------------------------------------------------------

def _when(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # the hub's ISO 8601 times
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _cells(row: dict) -> list[str]:
    progress = row["progress"] or {}
    passed = set(progress.get("passed", []))
    ticks = " ".join(n if n in passed else "··" for n in EXERCISES) if progress else "-"
    orders = (f"{progress['orders_paid']}/{progress['orders_total']}" if progress else "-")
    last = progress.get("last_activity")
    return [row["name"] + (" (admin)" if row["admin"] else ""), row["server"],
            f"{len(passed)}/{len(EXERCISES)}" if progress else "-", ticks, orders,
            _when(last), _when(row["hub_last_activity"]), row["note"]]


HEADINGS = ["learner", "server", "passed", "exercises", "orders paid", "last in the lab",
            "last on the hub", "note"]


def as_text(rows: list[dict]) -> str:
    table = [HEADINGS] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADINGS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in table) + "\n"


def as_html(rows: list[dict], refresh_seconds: int = 30) -> str:
    head = "".join(f"<th scope=col>{html.escape(h)}</th>" for h in HEADINGS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
                   for r in rows)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=refresh content={refresh_seconds}>"
            "<title>Class progress: Stripe payments lab</title><style>"
            "body{font:18px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}"
            "th,td{padding:.3rem .8rem;border-bottom:1px solid #999;text-align:left}"
            "td:nth-child(4){font-family:monospace}</style></head><body>"
            "<h1>Class progress</h1><p>Every learner on this hub: whether their server runs, "
            "the exercises they passed (00 to 08, one per notebook), their paid and total "
            f"orders, and when they were last active. Refreshes every {refresh_seconds} s.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")
