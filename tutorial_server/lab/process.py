"""A lab as a process: start `python -m tutorial_server.lab serve`, wait until it is ready, read its
state, get a gateway to its Stripe, and stop it cleanly.

    with LabProcess(db_path, env=...) as lab:     # or lab.start() ... lab.stop()
        requests.get(lab.url + "/api/products")

The notebooks' private lab, the CLI's `reconcile`/`sync`, the tests and the benchmarks all go
through here. A running lab writes `<db>.lab.json` (readable only by its owner) when it is
ready: its pid, its URLs and, offline, the webhook secret it generated. Also here: starting a
helper process that cannot outlive the lab (spawn_child) and stopping one (stop_process).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from ..config import OFFLINE_SECRET_KEY, PROJECT_ROOT, Settings, load_settings, offline_settings
from ..gateway import StripeGateway, make_gateway
from .stripe_http import lab_http_client


class LabDidNotStart(RuntimeError):
    """The lab's process exited, or wrote no state file in time."""


def state_file_for(db_path: Path | str) -> Path:
    return Path(f"{db_path}.lab.json")


def read_lab_state(db_path: Path | str) -> dict | None:
    """The running lab for this database, or None (a stale file from a killed lab is ignored)."""
    try:
        state = json.loads(state_file_for(db_path).read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def gateway_for(state: dict, settings: Settings | None = None) -> StripeGateway:
    """A gateway to the Stripe a running lab uses: its offline stand-in (from the state file),
    or real Stripe in test mode (keys from `settings`, else the environment). Its requests are
    recorded when the tests ask for it (stripe_http). Offline, it sends the lab's own key for
    its stand-in (`backend_key` in the state file; the placeholder for a plain localstripe)."""
    if state.get("mode") == "offline":
        settings = offline_settings(secret_key=state.get("backend_key") or OFFLINE_SECRET_KEY)
        return make_gateway(settings, state["backend_url"], lab_http_client(settings))
    settings = settings or load_settings()
    return make_gateway(settings, http_client=lab_http_client(settings))


def last_line(log) -> str:
    """The last non-empty line of an open binary log (a stand-in's last error), shortened."""
    try:
        log.flush()
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 8192))
        lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    except (OSError, ValueError):
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM,
                 timeout: float = 15.0) -> int:
    """Ask a process to stop (SIGTERM: the lab stops its stand-in and removes its state file),
    wait, and kill it if it does not stop in time. Returns its exit code."""
    if process.poll() is None:
        try:
            process.send_signal(sig)
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the lab process dies,
    even if the lab is killed with SIGKILL and gets no chance to clean up."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn_child(argv: list[str], **kwargs) -> subprocess.Popen:
    """Start a helper process that cannot outlive the lab."""
    if sys.platform.startswith("linux"):
        return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kwargs)
    child = subprocess.Popen(argv, **kwargs)
    # Elsewhere, a tiny watcher process stops the child when the lab disappears.
    subprocess.Popen([sys.executable, "-m", "tutorial_server.lab.reaper", str(os.getpid()),
                      str(child.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return child


class LabProcess:
    """One lab process on a database of its own.

    `argv` replaces the command (the notebooks' private lab runs `tutorial_server.lab.private`);
    by default it is `serve --port 0 --db DB` plus `args`. `env` is the whole environment of the
    process (None: this process's). `log` is a path (appended to) or an open binary file.
    """

    def __init__(self, db_path: Path | str, *, args: list[str] | tuple = (),
                 argv: list[str] | None = None, env: dict | None = None,
                 log: Path | IO[bytes] | None = None, start_new_session: bool = False) -> None:
        self.db_path = Path(db_path)
        self.argv = argv or [sys.executable, "-m", "tutorial_server.lab", "serve", "--port", "0",
                             "--db", str(self.db_path), *args]
        self.env = env
        self.log = log
        self.start_new_session = start_new_session
        self.process: subprocess.Popen | None = None
        self.state: dict = {}

    # --- what the state file says ----------------------------------------------------------
    @property
    def url(self) -> str:
        return self.state["server_url"]

    @property
    def backend_url(self) -> str | None:
        return self.state.get("backend_url")

    @property
    def mode(self) -> str:
        return self.state.get("mode", "offline")

    @property
    def webhook_secret(self) -> str | None:
        return self.state.get("webhook_secret")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def gateway(self, settings: Settings | None = None) -> StripeGateway:
        return gateway_for(self.state, settings)

    # --- starting and stopping -------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> dict:
        """Start the process and wait for its state file (written once it serves). Returns the
        state; raises LabDidNotStart (with the log's text when it has one) otherwise."""
        state_file_for(self.db_path).unlink(missing_ok=True)
        log = open(self.log, "ab") if isinstance(self.log, (str, Path)) else self.log
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=PROJECT_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log if log is not None else subprocess.DEVNULL, stderr=subprocess.STDOUT,
                start_new_session=self.start_new_session)
        finally:
            if isinstance(self.log, (str, Path)) and log is not None:
                log.close()  # the child has its own copy
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                why = self._last_log_line()
                raise LabDidNotStart(f"the lab exited with {self.process.returncode}"
                                     + (f": {why}" if why else ""))
            state = read_lab_state(self.db_path)
            if state and state.get("pid") == self.process.pid:
                self.state = state
                return state
            if time.monotonic() > deadline:
                self.stop()
                raise LabDidNotStart(f"the lab did not start within {timeout:g} s")
            time.sleep(0.05)

    def _last_log_line(self) -> str:
        """The last line the lab wrote (a lab that cannot start says why in it), if readable."""
        try:
            if isinstance(self.log, (str, Path)):
                with open(self.log, "rb") as f:
                    return last_line(f)
            return last_line(self.log) if self.log is not None else ""
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stop the lab (terminate, wait, kill as a last resort). Returns its exit code."""
        if self.process is None:
            return 0
        code = stop_process(self.process, sig, timeout)
        self.process = None
        return code

    def __enter__(self) -> "LabProcess":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
