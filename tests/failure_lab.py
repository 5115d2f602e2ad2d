"""The failure tests' shared pieces: a lab of the test module's own (fuzzing fills it with
junk no other test should see) and the API's error shape."""
from __future__ import annotations

import pytest
import requests

from .running_lab import RunningLab, new_webhook_secret


@pytest.fixture(scope="module")
def failure_lab(tmp_path_factory) -> RunningLab:
    """A lab of this module's own: fuzzing fills it with junk no other test should see."""
    tmp = tmp_path_factory.mktemp("failure-lab")
    running = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    yield running
    running.stop()


def assert_error_shape(r: requests.Response) -> dict:
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        r.status_code, r.headers.get("Content-Type"), r.text[:200])
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert {"type", "message", "param"} <= set(error), error
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert error["param"] is None or isinstance(error["param"], str)
    return error
