"""What a learner has done, kept where their lab keeps its state: which exercises they passed
and how often they checked, in `<database>.progress.json` beside the lab's database (by default
~/.stripe-lab/tutorial.sqlite3.progress.json, mode 600 in a mode 700 folder).

Recorded on a hub only (JUPYTERHUB_USER set), where an instructor reads it through the
learner's own lab (lab/progress.py, GET /api/progress) and the class-progress view
(lab/class_progress.py). TUTORIAL_PROGRESS_FILE names another file (and records off a hub too).
Nothing here may stop an exercise: every failure to record is silent.

    {"exercises": {"02": {"checks": 3, "first_passed_at": 1765000000, "last_checked_at": ...}}}
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ..config import load_settings

ENV_VAR = "TUTORIAL_PROGRESS_FILE"


def progress_file(db_path: Path | str) -> Path:
    """The progress file that goes with the lab's database at `db_path`."""
    return Path(f"{db_path}.progress.json")


def recording_to() -> Path | None:
    """Where this kernel records progress, or None (not on a hub, nothing asked for)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit)
    if not os.environ.get("JUPYTERHUB_USER"):
        return None
    try:
        return progress_file(load_settings().db_path)
    except Exception:  # a configuration error is reported where the lab starts, not here
        return None


def read_progress(path: Path) -> dict:
    """The recorded progress ({"exercises": {}} when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"exercises": {}}
    exercises = data.get("exercises") if isinstance(data, dict) else None
    return {"exercises": exercises if isinstance(exercises, dict) else {}}


def record_check(number: str, passed: bool, path: Path | None = None) -> None:
    """Count one check of exercise `number`; remember when it first and last passed."""
    path = path or recording_to()
    if path is None:
        return
    try:
        data = read_progress(path)
        now = int(time.time())
        entry = data["exercises"].setdefault(number, {"checks": 0})
        entry["checks"] = int(entry.get("checks", 0)) + 1
        entry["last_checked_at"] = now
        if passed:
            entry.setdefault("first_passed_at", now)
            entry["last_passed_at"] = now
        _write_private(path, data)
    except (OSError, ValueError, TypeError):
        pass


def _write_private(path: Path, data: dict) -> None:
    """Replace the file at once (a reader never sees half of it), mode 600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".progress-", dir=path.parent)  # mode 600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
