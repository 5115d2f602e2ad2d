"""Which lab a notebook talks to: `connect_lab()` (and the cells that need what only some labs
allow: signing_possible, rewiring_possible).

`connect_lab()` looks, in order, for: TUTORIAL_SERVER_URL (a lab someone else runs, e.g. the
instructor's class server; its webhook secret is not known here), a lab running on this machine
on the database TUTORIAL_DB names (`make lab` gives JupyterLab its own; the default is
~/.stripe-lab/tutorial.sqlite3), and otherwise starts a private lab (tutorial_server.lab.private: its
own offline Stripe, its own temporary folder), announced in one line, stopped and deleted with
the kernel.
Set TUTORIAL_LAB=own to always start a fresh one (the notebook tests do, so stored outputs
never depend on what a learner did in their own lab).
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from urllib.parse import urlsplit

import requests

from ..config import load_settings
from ..lab import private
from ..lab.process import LabDidNotStart, LabProcess, read_lab_state
from ..security import is_loopback
from .client import LabClient
from .display import redact
from .hub import on_hub, start_learners_lab
from .skipped import what_it_would_print

_current: LabClient | None = None


def connect_lab() -> LabClient:
    """The lab this notebook talks to (found or started once per kernel)."""
    global _current
    if _current is not None and (not _current.started_here or (
            _current._process is not None and _current._process.running)):
        return _current  # (a private lab that was stopped, or died, is started again)
    _current = _find_lab() or _start_own_lab()
    return _current


def _attach(url: str, started_here: bool = False, webhook_secret: str | None = None,
            process: LabProcess | None = None, backend_key: str | None = None) -> LabClient:
    """`backend_key`: the lab's key for its offline Stripe (from its state file, on this
    machine only); a class server's stays on the instructor's machine."""
    config = requests.get(url.rstrip("/") + "/api/config", timeout=10).json()
    secret = webhook_secret or os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    lab = LabClient(url=url.rstrip("/"), mode=config["mode"],
                    backend_url=backend_seen_from_here(url, config.get("backend_url")),
                    started_here=started_here, _webhook_secret=secret, _process=process,
                    _backend_key=backend_key, class_mode=bool(config.get("class_mode")))
    if lab.class_mode:  # a class server: your orders are yours (learners.py)
        lab.join_class(os.environ.get("TUTORIAL_JOIN_CODE") or None)
    return lab


def backend_seen_from_here(server_url: str, backend_url: str | None) -> str | None:
    """The offline Stripe's address as this machine reaches it.

    It runs next to the merchant server, which reports it as http://127.0.0.1:PORT. On a class
    lab (TUTORIAL_SERVER_URL=http://teacher-laptop:4242) that 127.0.0.1 is the teacher's
    machine, so step 5 goes to the server's host instead (localstripe listens on every
    interface).
    """
    server, backend = urlsplit(server_url), urlsplit(backend_url or "")
    if (not backend_url or not server.hostname or is_loopback(server.hostname)
            or not is_loopback(backend.hostname or "")):
        return backend_url
    host = f"[{server.hostname}]" if ":" in server.hostname else server.hostname
    return backend._replace(netloc=f"{host}:{backend.port}").geturl()


def _find_lab() -> LabClient | None:
    if os.environ.get("TUTORIAL_LAB") == "own":
        return None
    if os.environ.get("TUTORIAL_SERVER_URL"):
        return _attach(os.environ["TUTORIAL_SERVER_URL"])
    try:
        settings = load_settings()
    except Exception:
        return None
    # On a hub: your own stripe-lab, the one your browser opens (started now if need be).
    state = start_learners_lab() if on_hub() else read_lab_state(settings.db_path)
    if state is None:
        return None
    try:
        return _attach(state["server_url"], webhook_secret=state.get("webhook_secret"),
                       backend_key=state.get("backend_key"))
    except requests.RequestException:
        return None


def _start_own_lab(timeout: float = 30.0) -> LabClient:
    """A private lab for this kernel (tutorial_server.lab.private): it stops and deletes its
    temporary folder (database, log, lab.json with the webhook secret) when the kernel ends,
    even when the kernel is killed or restarted."""
    private.remove_stale_folders()  # left behind by kernels that are gone
    folder = private.make_folder()
    db = folder / private.DATABASE
    env = {k: v for k, v in os.environ.items() if k not in ("TUTORIAL_DB", "PORT")}
    # The kernel keeps its own handle on the log: the lab deletes its folder when it exits,
    # and a lab that fails to start must still be able to say why.
    log = tempfile.TemporaryFile()
    # Its own session: Jupyter interrupts (SIGINT) and kills (SIGKILL) the kernel's whole
    # process group; the lab must survive an interrupt and clean up after a kill.
    process = LabProcess(db, argv=[sys.executable, "-m", "tutorial_server.lab.private",
                                   str(folder), str(os.getpid())],
                         env=env, log=log, start_new_session=True)

    def stop_if_running() -> None:
        process.stop(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)  # the notebook's own lab leaves nothing behind

    atexit.register(stop_if_running)
    try:
        state = process.start(timeout)
    except LabDidNotStart as e:
        # One line: the lab's own last word (e.g. the stand-in's last error and where its log
        # is; the folder stays until this kernel ends, so the log can be read).
        process.stop(timeout=10)
        why = redact(str(e))
        said = why.find("The lab did not start")
        raise RuntimeError(why[said:] if said >= 0 else f"The lab did not start ({why}).") from None
    lab = _attach(state["server_url"], started_here=True,
                  webhook_secret=state.get("webhook_secret"), process=process,
                  backend_key=state.get("backend_key"))
    lab._folder = folder
    # One line, so the learner knows; the link works for as long as the kernel runs.
    print(f"No lab was running, so this notebook started a private one ({lab.mode}); "
          "it stops and deletes its files when this kernel ends. Dashboard: "
          + lab.public_url("/dashboard"))
    return lab


# --- cells that need what only some labs allow ------------------------------------------------

def signing_possible(lab: LabClient) -> bool:
    """True if this machine can sign webhooks for the lab. Otherwise prints one line saying why,
    so a cell written `if signing_possible(lab): ...` skips itself and Run All goes on."""
    if lab.can_sign_webhooks and (lab.mode != "offline" or lab._backend_key):
        return True
    # Offline on a class server, even with its secret: the events the cells sign come from the
    # lab's Stripe account, which stays on the instructor's machine too.
    print("Skipped: this cell signs webhooks with the lab's secret, which stays on the machine "
          "running the lab (a class server's is the instructor's).\n" + what_it_would_print())
    return False


def stripe_account_possible(lab: LabClient) -> bool:
    """True if this machine may use the lab's Stripe account itself (its secret key: list every
    event, create PaymentIntents or refunds directly): in test mode with your keys, or offline on
    a lab of this machine. Offline on a class server the account stays on the instructor's
    machine, and a notebook plays the customer only: prints one line on what it skips."""
    if lab.mode != "offline" or lab._backend_key:
        return True
    print("Skipped: this cell uses the lab's Stripe account itself (its secret key), which stays "
          "on the machine running the lab (a class server's is the instructor's).\n"
          + what_it_would_print())
    return False


def rewiring_possible(lab: LabClient) -> bool:
    """True if a cell may re-point the offline Stripe's webhooks (its private /_config route):
    only on an offline lab of your own. Otherwise prints one line on what to do instead."""
    if lab.mode == "offline" and lab.backend_url and lab._backend_key and lab.can_sign_webhooks:
        return True
    if lab.mode != "offline":
        print("Test mode: Stripe's deliveries can't be re-pointed from here. To play this, stop "
              "`stripe listen` (or the lab), pay, start it again, then `stripe events resend "
              "EVT_ID`; `stripe trigger payment_intent.succeeded` makes a fresh event.")
    else:
        print("Skipped: this cell re-points the offline Stripe's webhooks, which would break "
              "them for everyone on a shared lab; run it on a lab of your own (make lab).")
    return False
