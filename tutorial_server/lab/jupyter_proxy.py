"""JupyterHub and Binder: let jupyter-server-proxy start the merchant server and serve it
through Jupyter, so the checkout page and the dashboard open in the learner's browser although
the server only listens on 127.0.0.1 inside the container.

Registered in pyproject.toml under [project.entry-points.jupyter_serverproxy_servers]; after
`pip install -e .` the JupyterLab launcher shows "Stripe lab dashboard", and
<your server>/stripe-lab/dashboard starts the lab on first visit. On a hub, notebooks attach to
that same lab (notebook/hub.py, start_learners_lab) and print links through it (LabClient.public_url).
The lab's database is the learner's own (~/.stripe-lab/), so each learner has their own lab.
"""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from .proxied import PROXY_SECRET_ENV, PROXY_SECRET_HEADER

NAME = "stripe-lab"  # the entry point's name, so also the URL path: <server>/stripe-lab/
START_TIMEOUT_SECONDS = 60  # offline Stripe start-up plus the start-up check; a busy hub is slow
SOCKET_PATH_MAX = 100  # bytes: a Unix socket's address holds 108 on Linux, 104 on macOS


def socket_path(home: Path | None = None) -> str | bool:
    """Where the lab's Unix socket goes: the learner's own ~/.stripe-lab/ (made mode 700), so
    nothing of the lab lands in a /tmp that every learner shares. True (jupyter-server-proxy's
    own private folder under $TMPDIR) if that folder is not private or the path is too long."""
    folder = (home or Path.home()) / ".stripe-lab"
    path = folder / f"jupyter-{os.getpid()}.sock"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return True
    private = info.st_uid == os.getuid() and not info.st_mode & 0o077
    if not private or len(os.fsencode(path)) > SOCKET_PATH_MAX:
        return True
    return str(path)


def setup_merchant_server() -> dict:
    """jupyter-server-proxy's server process description (see its ServerProcess options).
    Called once per Jupyter server start: a new proxy secret each time (lab/proxied.py)."""
    secret = secrets.token_urlsafe(32)  # letters, digits, '-' and '_': no {template} braces
    icon = Path(__file__).parent.parent / "static" / "lab-icon.svg"
    return {
        # A Unix socket in the learner's private folder (mode 600 in a 700 folder), not a TCP
        # port: on a hub with local spawners every learner can reach every loopback port
        # through their own /proxy/<port>/, but only this Jupyter server reaches this socket.
        "unix_socket": socket_path(),
        "command": [sys.executable, "-m", "tutorial_server.lab", "serve",
                    "--unix-socket", "{unix_socket}"],
        "timeout": START_TIMEOUT_SECONDS,
        # The server sees /dashboard, not /user/<name>/stripe-lab/dashboard: its pages use
        # relative links, so they work under the prefix without knowing it.
        "absolute_url": False,
        # ...and the checkout page's url_for() links follow the proxy's X-Forwarded-Prefix.
        # The proxy adds the secret header to every request it passes on (replacing any a
        # browser sent); the lab trusts Jupyter's Host and the prefix only with it (or on its
        # socket), so a page that reaches the lab another way gets the plain Host allow-list.
        "environment": {"TUTORIAL_BEHIND_PROXY": "1", PROXY_SECRET_ENV: secret},
        "request_headers_override": {PROXY_SECRET_HEADER: secret},
        "new_browser_tab": True,  # the pages refuse to be framed (CSP frame-ancestors 'none')
        "launcher_entry": {
            "enabled": True,
            "title": "Stripe lab dashboard",
            "path_info": f"{NAME}/dashboard",
            "icon_path": str(icon) if icon.exists() else "",
            "category": "Other",
        },
    }
