"""JupyterHub and Binder: the merchant server is registered with jupyter-server-proxy,
and the URLs the notebooks print go through the proxy when a hub says where it is.

The last test runs a real Jupyter server on 127.0.0.1 with jupyter-server-proxy, as a Binder
container would, and opens the dashboard through it.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
import re
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests
from jupyter_server_proxy.config import ServerProcess

from tutorial_server.lab.jupyter_proxy import NAME, setup_merchant_server
from tutorial_server.lab.proxied import PROXY_SECRET_ENV, PROXY_SECRET_HEADER
from tutorial_server.notebook import LabClient
from tutorial_server.lab.offline_stripe import free_port

from .running_lab import ROOT, lab_env, wait_for


def test_pip_install_registers_the_server_with_jupyter_server_proxy():
    found = {ep.name: ep for ep in entry_points(group="jupyter_serverproxy_servers")}
    assert found[NAME].value == "tutorial_server.lab.jupyter_proxy:setup_merchant_server"
    assert found[NAME].load() is setup_merchant_server


def test_the_proxy_starts_serve_on_a_unix_socket_and_offers_the_dashboard(short_home, monkeypatch):
    monkeypatch.setenv("HOME", str(short_home))  # the learner's home
    config = setup_merchant_server()
    # A socket in the learner's private folder (not a port every learner's /proxy/<port>/
    # could reach, and not in a /tmp every learner shares).
    folder = short_home / ".stripe-lab"
    assert config["unix_socket"] == str(folder / f"jupyter-{os.getpid()}.sock")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert config["command"][1:] == ["-m", "tutorial_server.lab", "serve",
                                     "--unix-socket", "{unix_socket}"]
    assert Path(config["command"][0]).name.startswith("python")
    assert config["absolute_url"] is False  # the server sees /dashboard, not the hub's prefix
    assert config["timeout"] >= 30  # the offline Stripe has to start first
    # A per-start secret: the proxy adds it to every request, the lab gets it in its
    # environment, and only requests carrying it count as proxied (lab/proxied.py).
    secret = config["environment"][PROXY_SECRET_ENV]
    assert len(secret) >= 40 and config["request_headers_override"] == {PROXY_SECRET_HEADER: secret}
    assert config["environment"]["TUTORIAL_BEHIND_PROXY"] == "1"
    assert setup_merchant_server()["environment"][PROXY_SECRET_ENV] != secret
    process = ServerProcess(name=NAME, **config)  # what jupyter-server-proxy itself builds
    assert process.request_headers_override == {PROXY_SECRET_HEADER: secret}
    assert process.launcher_entry.title == "Stripe lab dashboard"
    assert process.launcher_entry.path_info == "stripe-lab/dashboard"
    assert Path(process.launcher_entry.icon_path).is_file()


@pytest.fixture
def short_home():
    """A home with a short path, as /home/<name> is (pytest's tmp_path under xdist is too long
    for a socket address, and then the socket rightly falls back to the proxy's own folder)."""
    with tempfile.TemporaryDirectory(prefix="sl-") as home:
        yield Path(home)


def test_the_socket_falls_back_to_the_proxys_own_folder_when_home_is_not_private(short_home):
    from tutorial_server.lab.jupyter_proxy import socket_path
    tmp_path = short_home
    (tmp_path / "open" / ".stripe-lab").mkdir(parents=True, mode=0o755)
    (tmp_path / "open" / ".stripe-lab").chmod(0o755)
    assert socket_path(tmp_path / "open") is True  # a folder others can list: no
    assert socket_path(tmp_path / ("x" * 120)) is True  # too long for a socket address
    assert socket_path(tmp_path / "new") == str(tmp_path / "new" / ".stripe-lab" /
                                                f"jupyter-{os.getpid()}.sock")
    assert stat.S_IMODE((tmp_path / "new" / ".stripe-lab").stat().st_mode) == 0o700


def test_binder_installs_the_package_after_environment_yml():
    post_build = ROOT / "postBuild"  # repo2docker runs it after installing environment.yml
    assert os.access(post_build, os.X_OK)
    lines = [line for line in post_build.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "set -euo pipefail"
    # Installed, not linked: a hub mounts each learner's home over the repository's folder.
    assert lines[1] == "python -m pip install --no-deps ."
    start = ROOT / "start"  # repo2docker runs it at every container start
    assert os.access(start, os.X_OK)
    assert start.read_text().rstrip().endswith('exec "$@"')


@pytest.mark.parametrize("prefix", ["/user/ada/", "/user/ada"])
def test_notebook_urls_go_through_the_hub_proxy(monkeypatch, tmp_path, prefix):
    monkeypatch.setenv("HOME", str(tmp_path))  # no lab of the learner's own is running
    monkeypatch.delenv("TUTORIAL_DB", raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", prefix)
    lab = LabClient(url="http://127.0.0.1:4242", mode="offline", backend_url=None)
    assert lab.public_url("/dashboard") == "/user/ada/proxy/4242/dashboard"
    assert lab.public_url("checkout/order_1") == "/user/ada/proxy/4242/checkout/order_1"
    # The instructor's class server is not inside this container: link to it directly.
    shared = LabClient(url="http://classroom.example:4242", mode="offline", backend_url=None)
    assert shared.public_url("/dashboard") == "http://classroom.example:4242/dashboard"


def test_notebook_urls_are_plain_outside_a_hub(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    lab = LabClient(url="http://127.0.0.1:4242", mode="offline", backend_url=None)
    assert lab.public_url("/dashboard") == "http://127.0.0.1:4242/dashboard"


@contextmanager
def jupyter_server(tmp_path, db: Path, extra_env: dict | None = None):
    """A real Jupyter server on 127.0.0.1 (like a Binder container) with this package's
    jupyter-server-proxy entry; yields (base URL, auth headers, token). Stops Jupyter, and the
    lab the proxy started, afterwards."""
    port, token = free_port(), "test-token-" + os.urandom(8).hex()
    env = lab_env(db, None, {"JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
                             "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
                             **(extra_env or {})})
    log = open(tmp_path / "jupyter.log", "ab")
    jupyter = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={ROOT}"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"token {token}"}

    def jupyter_up():
        if jupyter.poll() is not None:
            pytest.fail((tmp_path / "jupyter.log").read_text())
        try:
            return requests.get(f"{base}/api/status", headers=auth, timeout=2).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(jupyter_up, 60, 0.2, "Jupyter server")
        yield base, auth, token
    finally:
        lab_pid = None
        try:
            lab_pid = json.loads(Path(f"{db}.lab.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            pass
        jupyter.send_signal(signal.SIGTERM)
        try:
            jupyter.wait(timeout=20)
        except subprocess.TimeoutExpired:
            jupyter.kill()
            jupyter.wait()
        if lab_pid:  # the lab the proxy started, if Jupyter left it running
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(lab_pid):
                time.sleep(0.1)
            if _alive(lab_pid):
                os.kill(lab_pid, signal.SIGTERM)



def test_dashboard_through_a_real_jupyter_server_proxy(tmp_path, monkeypatch):
    """Like a Binder container: Jupyter on 127.0.0.1, the lab started by the proxy on demand."""
    db = tmp_path / "hub.sqlite3"
    with jupyter_server(tmp_path, db) as (base, auth, _token):
        # First visit: jupyter-server-proxy starts `serve --port {port}` and waits for it.
        page = requests.get(f"{base}/{NAME}/dashboard", headers=auth, timeout=90)
        assert page.status_code == 200, page.text[:500]
        assert "instructor dashboard" in page.text
        # The page's relative links resolve under the proxy's prefix.
        assert 'src="dashboard/static/dashboard.js"' in page.text
        assert requests.get(f"{base}/{NAME}/dashboard/static/dashboard.js", headers=auth,
                            timeout=10).status_code == 200
        data = requests.get(f"{base}/{NAME}/api/dashboard", headers=auth, timeout=10).json()
        assert data["mode"] == "offline"

        # The lab the proxy started is the one notebooks find, and their links work too.
        state = json.loads(Path(f"{db}.lab.json").read_text())
        lab = LabClient(url=state["server_url"], mode="offline", backend_url=state["backend_url"])
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/")  # Jupyter's base_url here
        monkeypatch.setenv("TUTORIAL_DB", str(db))
        path = lab.public_url("/api/dashboard")
        assert path == f"/{NAME}/api/dashboard"
        assert requests.get(base + path, headers=auth, timeout=10).json()["mode"] == "offline"

        # Reset through the proxy: the browser's Origin is Jupyter's, and the proxy passes the
        # Host header on, so the same-origin check holds.
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        reset = requests.post(f"{base}/{NAME}/dashboard/reset", json={"confirm": "reset"},
                              headers={**auth, "Origin": base, "X-CSRF-Token": csrf}, timeout=10)
        assert reset.status_code == 200, reset.text
        forged = requests.post(f"{base}/{NAME}/dashboard/reset", json={"confirm": "reset"},
                               headers={**auth, "Origin": "http://attacker.test",
                                        "X-CSRF-Token": csrf}, timeout=10)
        assert forged.status_code == 403


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_checkout_links_follow_the_proxy_prefix(tmp_path, monkeypatch):
    """Behind jupyter-server-proxy the checkout page's url_for() links carry the proxy's
    X-Forwarded-Prefix; outside a hub container, or without the proxy's secret header, the
    header is ignored."""
    from dataclasses import replace

    from tutorial_server.lab.app import create_lab_app
    from tutorial_server.config import load_settings

    settings = replace(load_settings({}), db_path=tmp_path / "db.sqlite3")
    prefix = {"X-Forwarded-Prefix": "/user/ada/proxy/4242"}
    plain = create_lab_app(settings, backend_url="http://127.0.0.1:9").test_client()
    assert 'href="/static/checkout.css"' in plain.get("/checkout/order_x", headers=prefix).text
    monkeypatch.setenv("TUTORIAL_BEHIND_PROXY", "1")
    monkeypatch.setenv(PROXY_SECRET_ENV, "s3cret-of-this-lab")
    proxied = create_lab_app(settings, backend_url="http://127.0.0.1:9").test_client()
    assert PROXY_SECRET_ENV not in os.environ  # taken: the lab's children do not inherit it
    page = proxied.get("/checkout/order_x",
                       headers={**prefix, PROXY_SECRET_HEADER: "s3cret-of-this-lab"}).text
    assert 'href="/user/ada/proxy/4242/static/checkout.css"' in page
    for headers in (prefix, {**prefix, PROXY_SECRET_HEADER: "s3cret-of-another-lab"}):
        page = proxied.get("/checkout/order_x", headers=headers).text
        assert 'href="/static/checkout.css"' in page


def test_checkout_pays_through_the_proxy_as_on_binder(tmp_path, browser):
    """On JupyterHub or Binder the browser reaches nothing but Jupyter: the checkout page, the
    mock Stripe.js and the mock's calls to the offline Stripe all go through
    jupyter-server-proxy, and a card payment still ends paid."""
    db = tmp_path / "hub.sqlite3"
    # Jupyter's base_url is "/" here; on Binder it is /user/<name>/.
    with jupyter_server(tmp_path, db, {"JUPYTERHUB_SERVICE_PREFIX": "/"}) as (base, auth, token):
        assert requests.get(f"{base}/{NAME}/api/products", headers=auth, timeout=90).ok
        state = json.loads(Path(f"{db}.lab.json").read_text())
        order = requests.post(f"{state['server_url']}/api/orders",
                              json={"productId": "prod_drip_bags", "quantity": 2},
                              timeout=10).json()["order"]

        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/{NAME}/checkout/{order['id']}?token={token}")
        # The mock Stripe.js comes through the merchant server, under the proxy's prefix.
        assert page.locator(f'script[src="/{NAME}/offline-stripe/js.stripe.com/v3/"]').count() == 1
        page.get_by_label("Card number").fill("4242424242424242")
        page.get_by_label("Expiry month (MM)").fill("12")
        page.get_by_label("Expiry year (YY)").fill("34")
        page.get_by_label("CVC").fill("123")
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
        page.wait_for_url(re.compile(rf"/{NAME}/checkout/{order['id']}/complete$"))
        page.get_by_text("Payment confirmed: your order is paid").wait_for(timeout=15_000)
        page.screenshot(path=str(ROOT / "test-artifacts" / "screenshots" / "binder-paid.png"))
        order_now = requests.get(f"{state['server_url']}/api/orders/{order['id']}", timeout=10)
        assert order_now.json()["order"]["status"] == "paid"
