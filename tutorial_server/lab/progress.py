"""GET /api/progress: what this lab's learner has done, for the instructor's class view on a
hub (class_progress.py asks every running learner's lab for it through the hub's proxy).

    {"exercises": {"02": {"checks": 3, "first_passed_at": ..., ...}},   # course/progress.py
     "passed": ["00", "02"], "orders": {"total": 4, "paid": 2, "by_status": {...}},
     "last_activity": 1765000000}

Counts and times only: no order id, client secret, key or customer's data leaves here.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .. import orders
from ..course.progress import progress_file, read_progress
from ..db import get_db, snapshot

bp = Blueprint("progress", __name__)


def lab_progress(db, db_path: str) -> dict:
    recorded = read_progress(progress_file(db_path))
    exercises = recorded["exercises"]
    by_status: dict[str, int] = {}
    for row in orders.count_by_status(db):
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    times = db.execute("SELECT MAX(created_at) AS created, MAX(paid_at) AS paid"
                       " FROM orders").fetchone()
    stamps = [times["created"], times["paid"],
              *(e.get("last_checked_at") for e in exercises.values() if isinstance(e, dict))]
    stamps = [int(s) for s in stamps if isinstance(s, (int, float))]
    return {
        "exercises": exercises,
        "passed": sorted(n for n, e in exercises.items()
                         if isinstance(e, dict) and e.get("first_passed_at")),
        "orders": {"total": sum(by_status.values()),
                   "paid": sum(by_status.get(s, 0) for s in orders.PAID_STATUSES),
                   "by_status": by_status},
        "last_activity": max(stamps) if stamps else None,
    }


@bp.get("/api/progress")
def api_progress():
    with snapshot(get_db()) as db:
        data = lab_progress(db, current_app.config["DATABASE"])
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response
