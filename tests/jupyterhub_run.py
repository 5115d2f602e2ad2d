"""One way to run a real JupyterHub for the hub tests (test_hub.py, test_hub_users.py,
test_hub_class.py): its process from `folder/jupyterhub_config.py` (which starts with
HUB_NETWORK_CONFIG), its log in `folder/hub.log`, ready once its API
answers, stopped (SIGTERM, then kill) however the test ends."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.process import stop_process

from .running_lab import wait_for

# What every hub of the tests has, first in its jupyterhub_config.py: loopback only, its ports,
# its proxy (str.format fields: port, hub_port, proxy_api_port, chp, folder).
HUB_NETWORK_CONFIG = """
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {folder!r} + "/proxy.pid"
"""


@contextmanager
def running_jupyterhub(folder: Path, env: dict, port: int) -> Iterator[str]:
    """Start the hub configured in `folder` (listening on `port`); yields its base URL. Stopping
    it allows 60 s: the hub stops the learners' servers, and their labs stop with them."""
    with open(folder / "hub.log", "ab") as log:
        hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if hub.poll() is not None:
            pytest.fail((folder / "hub.log").read_text()[-3000:])
        try:
            return requests.get(f"{base}/hub/api/", timeout=2).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, 60, 0.2, "JupyterHub")
        yield base
    finally:
        stop_process(hub, timeout=60)
