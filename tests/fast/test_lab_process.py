"""tutorial_server.lab.process, the one way a lab process is started, found and stopped, on its
own edges (a whole lab started through it is in every test that uses the `lab` fixtures)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import stripe

from tutorial_server.lab.process import (LabDidNotStart, LabProcess, gateway_for,
                                         read_lab_state, state_file_for, stop_process)


def test_a_lab_that_exits_at_once_did_not_start(tmp_path):
    lab = LabProcess(tmp_path / "x.sqlite3", argv=[sys.executable, "-c", "print('no lab here')"],
                     log=tmp_path / "log")
    with pytest.raises(LabDidNotStart, match="exited with 0"):
        lab.start(timeout=10)
    assert "no lab here" in (tmp_path / "log").read_text()


def test_a_lab_that_writes_no_state_in_time_is_stopped(tmp_path):
    lab = LabProcess(tmp_path / "x.sqlite3",
                     argv=[sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(LabDidNotStart, match="within 0.5 s"):
        lab.start(timeout=0.5)
    assert lab.process is None and not lab.running


def test_stop_kills_a_process_that_ignores_sigterm():
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE)
    assert stubborn.stdout.readline() == b"ready\n"
    assert stop_process(stubborn, timeout=0.5) == -signal.SIGKILL
    assert stop_process(stubborn) == -signal.SIGKILL  # already stopped: its code again


def test_the_state_file_is_believed_only_while_its_process_lives(tmp_path):
    db = tmp_path / "lab.sqlite3"
    assert read_lab_state(db) is None
    state_file_for(db).write_text(json.dumps({"pid": os.getpid(), "mode": "offline"}))
    assert read_lab_state(db)["pid"] == os.getpid()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state_file_for(db).write_text(json.dumps({"pid": gone.pid}))
    assert read_lab_state(db) is None
    for junk in ("", "[]", "{}", '{"pid": "x"}', "not json"):
        state_file_for(db).write_text(junk)
        assert read_lab_state(db) is None, junk


def test_a_gateway_for_an_offline_lab_talks_to_its_stand_in(stand_in, stand_in_key):
    gateway = gateway_for({"mode": "offline", "backend_url": stand_in, "backend_key": stand_in_key})
    assert gateway.offline
    with pytest.raises(stripe.InvalidRequestError) as unknown:  # the stand-in answered
        gateway.retrieve_payment_intent("pi_" + "0" * 24)
    assert unknown.value.http_status == 404
