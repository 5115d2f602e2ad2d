"""A learner's progress on a hub: what the exercises record, what their lab answers at
GET /api/progress, and what the instructor's class view keeps of it (never a secret).
The class view on a real JupyterHub is tests/test_hub_class.py."""
from __future__ import annotations

import http.server
import json
import stat
import threading
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tutorial_server.course.exercises import start_exercise
from tutorial_server.course.progress import progress_file, read_progress, record_check
from tutorial_server.lab.class_progress import (EXERCISES, PAGE, _clean, as_html, as_text,
                                                class_progress)
from tutorial_server.lab.notebooks import copy_notebooks, shipped_notebooks


def test_a_check_on_a_hub_is_recorded_in_the_learners_private_folder(tmp_path, monkeypatch,
                                                                       capsys):
    for name in ("TUTORIAL_DB", "TUTORIAL_PROGRESS_FILE", "STRIPE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    exercise = start_exercise("02")
    exercise.check("¥6,000")  # not yet
    exercise.check("¥5,400")
    assert "✓" in capsys.readouterr().out
    recorded = tmp_path / ".stripe-lab" / "tutorial.sqlite3.progress.json"
    assert recorded == progress_file(tmp_path / ".stripe-lab" / "tutorial.sqlite3")
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    assert stat.S_IMODE(recorded.parent.stat().st_mode) == 0o700
    entry = read_progress(recorded)["exercises"]["02"]
    assert entry["checks"] == 2 and entry["first_passed_at"] <= entry["last_checked_at"]


def test_off_a_hub_nothing_is_recorded(tmp_path, monkeypatch, capsys):
    for name in ("JUPYTERHUB_USER", "TUTORIAL_PROGRESS_FILE", "TUTORIAL_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    start_exercise("02").check("¥5,400")
    assert not (tmp_path / ".stripe-lab").exists()


def test_a_broken_progress_file_never_stops_an_exercise(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "progress.json"
    broken.write_text("{not json")
    monkeypatch.setenv("TUTORIAL_PROGRESS_FILE", str(broken))
    start_exercise("02").check("¥5,400")
    assert "✓" in capsys.readouterr().out
    assert read_progress(broken)["exercises"]["02"]["checks"] == 1  # started over
    (tmp_path / "a-file").write_text("")
    record_check("02", True, path=tmp_path / "a-file" / "under-a-file.json")  # cannot: silent


def test_the_lab_answers_its_learners_progress_without_secrets(client, settings):
    record_check("01", False, path=progress_file(settings.db_path))
    record_check("02", True, path=progress_file(settings.db_path))
    made = client.post("/api/orders", json={"productId": "prod_drip_bags", "quantity": 1,
                                            "customer": "learner_ada"})
    assert made.status_code == 201
    answer = client.get("/api/progress")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    data = answer.get_json()
    assert data["passed"] == ["02"] and data["exercises"]["01"]["checks"] == 1
    assert data["orders"] == {"total": 1, "paid": 0, "by_status": {"created": 1}}
    assert data["last_activity"] >= made.get_json()["order"]["created_at"]
    text = answer.get_data(as_text=True)
    for secret in (made.get_json()["client_secret"], made.get_json()["order"]["id"],
                   made.get_json()["order"]["payment_intent"], settings.webhook_secret):
        assert secret not in text


def test_the_class_view_keeps_only_counts_and_escapes_names():
    answered = {"exercises": {"00": {"checks": 2, "first_passed_at": 1},
                              "05": {"checks": 1}, "99": {"first_passed_at": 1},
                              "03": "not a dict"},
                "orders": {"total": 3, "paid": 1, "client_secret": "pi_1_secret_2"},
                "last_activity": 1765000000, "client_secret": "pi_1_secret_2", "key": "sk_x"}
    kept = _clean(answered)
    assert kept == {"passed": ["00"], "checks": {"00": 2, "05": 1}, "orders_total": 3,
                    "orders_paid": 1, "last_activity": 1765000000}
    rows = [{"name": "<script>alert(1)</script>", "admin": False, "server": "running",
             "hub_last_activity": "2026-12-06T19:00:00.000000Z", "progress": kept,
             "seen_at": 1, "note": ""},
            {"name": "bob", "admin": False, "server": "stopped", "hub_last_activity": None,
             "progress": None, "seen_at": None, "note": "not seen running yet"}]
    page = as_html(rows)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "secret" not in page and "sk_x" not in page
    text = as_text(rows)
    assert f"1/{len(EXERCISES)}" in text and "00 ·· ··" in text and "1/3" in text
    assert "bob" in text.splitlines()[2] and "stopped" in text.splitlines()[2]


def test_copying_the_notebooks_never_overwrites_a_learners_copy(tmp_path):
    source = shipped_notebooks()
    assert source is not None
    first = copy_notebooks(tmp_path / "course")
    assert "01_the_client_asks.ipynb" in first["copied"] and not first["kept"]
    mine = tmp_path / "course" / "01_the_client_asks.ipynb"
    mine.write_text(json.dumps({"cells": [], "mine": True}))
    (tmp_path / "course" / "02_the_server_prices_the_order.ipynb").unlink()
    again = copy_notebooks(tmp_path / "course")
    assert again["copied"] == ["02_the_server_prices_the_order.ipynb"]
    assert again["kept"] == ["01_the_client_asks.ipynb"]
    assert json.loads(mine.read_text())["mine"] is True


@contextmanager
def fake_hub(users: list[dict], labs: dict[str, tuple[int, dict]], token: str):
    """A hub's REST API (users, a page at a time) and the learners' labs behind its proxy."""
    asked: list[str] = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            asked.append(self.path)
            if self.headers.get("Authorization") != f"token {token}":
                return self._send(403, {"status": 403})
            url = urlsplit(self.path)
            if url.path == "/hub/api/users":
                query = parse_qs(url.query)
                offset, limit = int(query["offset"][0]), int(query["limit"][0])
                return self._send(200, users[offset:offset + limit])
            name = url.path.split("/")[2]
            status, body = labs[name]
            return self._send(status, body)

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_class_view_asks_the_hub_page_by_page_and_each_running_lab():
    progress = {"exercises": {"01": {"checks": 1, "first_passed_at": 5}},
                "orders": {"total": 2, "paid": 1}, "last_activity": 7}
    def running(name: str) -> dict:
        return {"name": name, "server": f"/user/{name}/", "pending": None}

    users = ([running("ada"), running("cy"), {"name": "bob", "server": None, "pending": None},
              {"name": "dee", "server": None, "pending": "spawn"}]
             + [{"name": f"z{i:03d}", "server": None, "pending": None} for i in range(PAGE)])
    labs = {"ada": (200, progress), "cy": (503, {"error": "starting"})}
    remembered = {"bob": {"progress": _clean(progress), "seen_at": 3}}
    with fake_hub(users, labs, "t0ken") as (hub, asked):
        rows = {r["name"]: r for r in class_progress(hub, "t0ken", remembered=remembered)}
        assert [p for p in asked if p.startswith("/hub/api/users")] == [
            f"/hub/api/users?offset=0&limit={PAGE}", f"/hub/api/users?offset={PAGE}&limit={PAGE}",
            f"/hub/api/users?offset={PAGE + 4}&limit={PAGE}"]
        assert "/user/ada/stripe-lab/api/progress" in asked
        assert not any(p.startswith(("/user/bob/", "/user/dee/")) for p in asked)
        with pytest.raises(requests.HTTPError, match="403"):  # the hub refuses that token
            class_progress(hub, "a learner's token")
    assert len(rows) == PAGE + 4
    assert rows["ada"]["server"] == "running" and rows["ada"]["progress"]["passed"] == ["01"]
    assert remembered["ada"]["progress"] == rows["ada"]["progress"]  # kept for when she stops
    assert rows["cy"]["progress"] is None and rows["cy"]["note"] == "lab answered 503"
    assert rows["bob"]["server"] == "stopped" and rows["bob"]["progress"]["passed"] == ["01"]
    assert rows["bob"]["note"] == "last seen while the server ran"
    assert rows["dee"]["server"] == "starting" and rows["dee"]["progress"] is None
    assert rows["z000"]["note"] == "not seen running yet"
