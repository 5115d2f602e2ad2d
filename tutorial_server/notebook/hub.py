"""The notebooks' side of JupyterHub: who the learner is, where their own lab is (started by
jupyter-server-proxy, lab/jupyter_proxy.py), and the address their browser opens for a page.
"""
from __future__ import annotations

import os
import re
import time
from urllib.parse import urlsplit

import requests

from ..config import load_settings
from ..lab.jupyter_proxy import NAME
from ..lab.process import read_lab_state
from ..security import is_loopback

# --- who the learner is, and where their pages are ---------------------------------------------

def on_hub() -> bool:
    """True inside a JupyterHub (or Binder) single-user server and its kernels."""
    return bool(os.environ.get("JUPYTERHUB_SERVICE_PREFIX"))


def learner_customer() -> str | None:
    """The learner's customer id on a hub: one per hub user (`learner_<user>`), so every kernel
    of one learner fills the same inventory. None outside a hub."""
    user = os.environ.get("JUPYTERHUB_USER")
    if not user:
        return None
    # The API takes 1-64 letters, digits, '_' or '-'; hub names may hold '@', '.', etc.
    return "learner_" + (re.sub(r"[^A-Za-z0-9_-]", "-", user)[:55] or "hub")


def public_url(server_url: str, path: str = "/") -> str:
    """The address a learner's browser opens for `path` on the lab at `server_url`.

    - the learner's own hub lab (started by jupyter-server-proxy): <prefix>stripe-lab<path>;
    - another lab on this machine's loopback: <prefix>proxy/<port><path> (plain TCP labs);
    - outside a hub, or a lab elsewhere (an instructor's): the lab's own URL.
    """
    path = path if path.startswith("/") else "/" + path
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return server_url.rstrip("/") + path
    prefix = prefix.rstrip("/") + "/"
    state = learners_lab_state()
    if state and state.get("unix_socket") and state.get("server_url") == server_url.rstrip("/"):
        return f"{prefix}{NAME}{path}"
    address = urlsplit(server_url)
    if address.port and is_loopback(address.hostname or ""):
        return f"{prefix}proxy/{address.port}{path}"
    return server_url.rstrip("/") + path


def learners_lab_state() -> dict | None:
    """The state of the lab on the learner's default database, if it is running."""
    try:
        return read_lab_state(load_settings().db_path)
    except Exception:  # a configuration error is reported where the lab starts, not here
        return None


def start_learners_lab(timeout: float = 90.0) -> dict | None:
    """On a hub, make sure the learner's own stripe-lab runs (jupyter-server-proxy starts it on
    the first request, exactly as when the learner opens the launcher entry) and return its
    state. Notebooks and the browser then share one lab. None outside a hub or if the proxy
    does not answer (the caller then falls back to a lab of the notebook's own)."""
    state = learners_lab_state()
    if state is not None or not on_hub():
        return state
    server = os.environ.get("JUPYTERHUB_SERVICE_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not server or not token:
        return None
    # The server's own token may use the server (scope access:servers!server).
    try:
        requests.get(f"{server.rstrip('/')}/{NAME}/api/config",
                     headers={"Authorization": f"token {token}"}, timeout=timeout)
    except requests.RequestException:
        return None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = learners_lab_state()
        if state is not None:
            return state
        time.sleep(0.1)
    return None
