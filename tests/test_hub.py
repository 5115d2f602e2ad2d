"""A class on JupyterHub: one lab per learner, and no learner reaches another's.

- Two Jupyter servers from this one installation, each with its own home and user, as a hub's
  local spawner starts them: each opens its own stripe-lab through jupyter-server-proxy.
- A real JupyterHub (DummyAuthenticator, SimpleLocalProcessSpawner, configurable-http-proxy
  from npm, all on 127.0.0.1) with two learners who each pay an order in Chromium (marked
  `hub`: it takes about a minute; `make test` runs it).
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.hub import under_key
from tutorial_server.notebook.display import Link, link
from tutorial_server.notebook.hub import learner_customer
from tutorial_server.lab.jupyter_proxy import NAME
from tutorial_server.lab.offline_stripe import free_port

from .jupyterhub_run import HUB_NETWORK_CONFIG, running_jupyterhub
from .running_lab import ROOT, lab_env, wait_for

STATE = Path(".stripe-lab") / "tutorial.sqlite3.lab.json"  # inside a learner's home


# --- small pieces --------------------------------------------------------------------------------

def test_the_default_database_is_in_the_learners_home_not_the_installation(tmp_path):
    from tutorial_server.config import load_settings
    settings = load_settings({"HOME": str(tmp_path)})
    assert settings.db_path == tmp_path / ".stripe-lab" / "tutorial.sqlite3"
    assert ROOT not in settings.db_path.parents
    # TUTORIAL_DB still decides when it is set.
    assert load_settings({"HOME": str(tmp_path), "TUTORIAL_DB": "/srv/x.sqlite3"}).db_path \
        == Path("/srv/x.sqlite3")


@pytest.mark.parametrize("user, customer", [("ada", "learner_ada"),
                                            ("ada.lovelace@uni.example", "learner_ada-lovelace-uni-example")])
def test_the_customer_id_comes_from_the_hub_user(monkeypatch, user, customer):
    from tutorial_server.notebook import LabClient
    monkeypatch.delenv("TUTORIAL_CUSTOMER", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", user)
    assert learner_customer() == customer
    # Every kernel of one learner: the same customer, so one inventory.
    assert LabClient(url="http://x", mode="offline", backend_url=None).customer == customer
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert learner_customer() is None
    assert LabClient(url="http://x", mode="offline", backend_url=None).customer.startswith("learner_")


def test_links_are_clickable_and_plain_text_shows_the_address():
    shown = link("/user/ada/stripe-lab/checkout/order_1?x=<1>")
    assert isinstance(shown, Link)
    assert shown._repr_html_() == ('<a href="/user/ada/stripe-lab/checkout/order_1?x=&lt;1&gt;" '
                                   'target="_blank" rel="noopener">'
                                   '/user/ada/stripe-lab/checkout/order_1?x=&lt;1&gt;</a>')
    assert repr(shown) == "/user/ada/stripe-lab/checkout/order_1?x=<1>"
    assert repr(link("/d", "the dashboard")) == "the dashboard: /d"


def test_the_keyed_loopback_answers_only_under_its_key():
    seen = []

    def app(environ, start_response):
        seen.append((environ["SCRIPT_NAME"], environ["PATH_INFO"]))
        start_response("200 OK", [])
        return [b"ok"]

    keyed = under_key(app, "k3y")
    statuses = []
    for path in ["/k3y/api/orders", "/k3y", "/api/orders", "/k3", "/k3yy/webhook", "/", ""]:
        keyed({"PATH_INFO": path, "SCRIPT_NAME": ""}, lambda s, h: statuses.append(s[:3]))
    assert statuses == ["200", "200", "404", "404", "404", "404", "404"]
    assert seen == [("/k3y", "/api/orders"), ("/k3y", "/")]


def test_the_learners_folder_holds_only_notebooks():
    """Test plumbing (nbval's config, pytest's conftest) stays out of the folder learners open."""
    plumbing = {p.name for p in (ROOT / "notebooks").iterdir()
                if p.suffix not in (".ipynb", ".md") and p.name != ".ipynb_checkpoints"}
    assert plumbing == set()  # lessons and their Markdown pages only
    assert (ROOT / "tests" / "nbval_sanitize.cfg").is_file()


# --- two learners' Jupyter servers from one installation ------------------------------------------

def _installation_files() -> set[str]:
    """Every file in the installation (this checkout), but for caches and test outputs."""
    # Also JupyterLab's checkpoints in notebooks/: `make lab`'s path writes them there, and
    # tests/test_lab_in_browser.py drives that path while this file runs on another worker.
    # The hub's learners open their notebooks in their own homes.
    skip = {".git", ".venv", "node_modules", "test-artifacts", "__pycache__", ".pytest_cache",
            ".mypy_cache", ".hypothesis", "stripe_payments_lab.egg-info", ".ipynb_checkpoints"}
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        # Not the other Pythons' environments either (.venv-3.10, ...): under `make test`,
        # tests/test_python_versions.py sets them up while this file runs.
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".venv-")]
        found.update(os.path.relpath(os.path.join(folder, f), ROOT) for f in files)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def learners_jupyter(tmp_path: Path, user: str):
    """A learner's single-user Jupyter server as a hub's local spawner starts it: their own
    HOME and hub variables, nothing that names a database. Yields (base URL, auth, home)."""
    home = tmp_path / user
    home.mkdir()
    port, token = free_port(), "token-" + os.urandom(8).hex()
    env = {k: v for k, v in lab_env(tmp_path / "unused.sqlite3", None).items()
           if not k.startswith(("TUTORIAL_", "JUPYTER"))}
    env.update(HOME=str(home), JUPYTERHUB_USER=user, JUPYTERHUB_SERVICE_PREFIX="/")
    log = open(tmp_path / f"{user}-jupyter.log", "ab")
    jupyter = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={home}"],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}

    def up():
        if jupyter.poll() is not None:
            pytest.fail((tmp_path / f"{user}-jupyter.log").read_text())
        try:
            return requests.get(f"{base}/api/status", headers=auth, timeout=2).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, 60, 0.2, f"{user}'s Jupyter server")
        yield base, auth, home, token
    finally:
        try:
            lab_pid = json.loads((home / STATE).read_text())["pid"]
        except (OSError, ValueError, KeyError):
            lab_pid = None
        jupyter.send_signal(signal.SIGTERM)
        try:
            jupyter.wait(timeout=20)
        except subprocess.TimeoutExpired:
            jupyter.kill()
            jupyter.wait()
        if lab_pid:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(lab_pid):
                time.sleep(0.1)
            if _alive(lab_pid):
                os.kill(lab_pid, signal.SIGTERM)


def _kernel_connects(base: str, token: str, home: Path, user: str) -> dict:
    """What connect_lab() finds in a kernel of this learner (a subprocess with the variables a
    hub gives a kernel): which lab, which links, which customer."""
    code = ("import json; from tutorial_server.notebook import connect_lab\n"
            "lab = connect_lab()\n"
            "print(json.dumps({'url': lab.url, 'link': lab.public_url('/dashboard'),"
            " 'customer': lab.customer, 'signs': lab.can_sign_webhooks}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTORIAL_", "STRIPE_"))}
    env.update(HOME=str(home), JUPYTERHUB_USER=user, JUPYTERHUB_SERVICE_PREFIX="/",
               JUPYTERHUB_SERVICE_URL=base + "/", JUPYTERHUB_API_TOKEN=token,
               STRIPE_SECRET_KEY="", STRIPE_PUBLISHABLE_KEY="")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=home, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_learners_on_one_installation_each_get_their_own_lab(tmp_path):
    before = _installation_files()
    with learners_jupyter(tmp_path, "ada") as (ada, ada_auth, ada_home, ada_token):
        # Ada's kernel starts her stripe-lab through her own Jupyter server, and attaches to it.
        seen = _kernel_connects(ada, ada_token, ada_home, "ada")
        ada_state = json.loads((ada_home / STATE).read_text())
        assert seen == {"url": ada_state["server_url"], "link": f"/{NAME}/dashboard",
                        "customer": "learner_ada", "signs": True}
        assert stat.S_IMODE((ada_home / STATE).stat().st_mode) == 0o600
        assert stat.S_IMODE(os.stat(ada_state["unix_socket"]).st_mode) == 0o600
        first = requests.post(f"{ada}/{NAME}/api/orders", headers=ada_auth, timeout=10,
                              json={"productId": "prod_drip_bags", "quantity": 1,
                                    "customer": "learner_ada"})
        assert first.status_code == 201, first.text
        ada_order = first.json()["order"]["id"]

        with learners_jupyter(tmp_path, "bob") as (bob, bob_auth, bob_home, _):
            page = requests.get(f"{bob}/{NAME}/dashboard", headers=bob_auth, timeout=90)
            assert page.status_code == 200
            bob_state = json.loads((bob_home / STATE).read_text())
            assert bob_state["db"] == str(bob_home / ".stripe-lab" / "tutorial.sqlite3")
            assert bob_state["pid"] != ada_state["pid"]
            second = requests.post(f"{bob}/{NAME}/api/orders", headers=bob_auth, timeout=10,
                                   json={"productId": "prod_drip_bags", "quantity": 2})
            assert second.status_code == 201, second.text
            bob_order = second.json()["order"]["id"]

            # Each dashboard shows its own learner's order, never the other's.
            ada_ids = {o["id"] for o in requests.get(f"{ada}/{NAME}/api/dashboard",
                                                     headers=ada_auth, timeout=10).json()["orders"]}
            bob_ids = {o["id"] for o in requests.get(f"{bob}/{NAME}/api/dashboard",
                                                     headers=bob_auth, timeout=10).json()["orders"]}
            assert ada_order in ada_ids and bob_order not in ada_ids
            assert bob_order in bob_ids and ada_order not in bob_ids
            # Bob's lab starting did not cancel Ada's unpaid order.
            still = requests.get(f"{ada}/{NAME}/api/orders/{ada_order}", headers=ada_auth,
                                 timeout=10).json()["order"]
            assert still["status"] == "created"

            # Bob's server reaches every loopback port, Ada's lab's included: nothing answers
            # there without her lab's key, and her socket is not a port at all.
            ada_port = ada_state["server_url"].split(":")[2].split("/")[0]
            for path in ["/api/dashboard", "/dashboard", "/api/orders/" + ada_order, "/"]:
                stolen = requests.get(f"{bob}/proxy/{ada_port}{path}", headers=bob_auth, timeout=10)
                assert stolen.status_code == 404, (path, stolen.text[:200])
                assert stolen.json()["error"]["message"] == "Not found."  # the lab's refusal
                assert ada_order not in stolen.text
            reset = requests.post(f"{bob}/proxy/{ada_port}/dashboard/reset", headers=bob_auth,
                                  json={"confirm": "reset"}, timeout=10)
            assert reset.status_code == 404
            assert requests.get(f"{ada}/{NAME}/api/orders/{ada_order}", headers=ada_auth,
                                timeout=10).status_code == 200

        # JupyterLab's news prompt is off for learners (the package's settings override).
        settings = requests.get(f"{ada}/lab/api/settings/@jupyterlab/apputils-extension:notification",
                                headers=ada_auth, timeout=30).json()
        assert settings["schema"]["properties"]["fetchNews"]["default"] == "false"

    assert not (ROOT / "instance").exists()
    assert _installation_files() - before == set()


# --- a real JupyterHub ---------------------------------------------------------------------------

HUB_CONFIG = HUB_NETWORK_CONFIG + """
import os, sys
c.JupyterHub.authenticator_class = "dummy"        # any password: a test, not a class
c.Authenticator.allowed_users = {{"ada", "bob"}}
c.JupyterHub.spawner_class = "simple"             # SimpleLocalProcessSpawner: one machine
c.SimpleLocalProcessSpawner.home_dir_template = {folder!r} + "/home/{{username}}"
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.environment = {{"STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": "",
                         "HUB_TEST_MARKER": {marker!r}}}
c.JupyterHub.db_url = "sqlite:///" + {folder!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {folder!r} + "/cookie_secret"
c.JupyterHub.pid_file = {folder!r} + "/jupyterhub.pid"
"""


def _processes_with(marker: str) -> dict[int, dict]:
    """Processes whose environment carries the test's marker: pid -> user, name, memory, CPU."""
    found = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"HUB_TEST_MARKER={marker}".encode() not in environ:
                continue
            user = next((v.split(b"=", 1)[1].decode() for v in environ
                         if v.startswith(b"JUPYTERHUB_USER=")), "?")
            rollup = (entry / "smaps_rollup").read_text()
            kib = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            found[int(entry.name)] = {
                "user": user, "what": " ".join(a.decode() for a in argv[:4]).replace(
                    os.path.dirname(sys.executable) + "/", ""),
                "pss_mib": kib["Pss"] / 1024, "rss_mib": kib["Rss"] / 1024,
                "cpu_s": (int(fields[11]) + int(fields[12])) / tick}
        except (OSError, StopIteration, KeyError, IndexError, ValueError):
            continue
    return found


@contextmanager
def real_jupyterhub(tmp_path: Path):
    chp = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if not chp.exists():
        pytest.fail("configurable-http-proxy is missing: run `npm ci` (make test does)")
    folder, marker = tmp_path / "hub", "hub-test-" + os.urandom(6).hex()
    for user in ("ada", "bob"):
        (folder / "home" / user).mkdir(parents=True)
    port = free_port()
    (folder / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        port=port, hub_port=free_port(), proxy_api_port=free_port(), chp=str(chp),
        folder=str(folder), marker=marker))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTORIAL_", "STRIPE_", "JUPYTER"))}
    env.update(HUB_TEST_MARKER=marker, PATH=os.path.dirname(sys.executable) + ":" + env["PATH"])
    try:
        with running_jupyterhub(folder, env, port) as base:
            yield base, folder, marker
    finally:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _processes_with(marker):
            time.sleep(0.2)
        for pid in _processes_with(marker):  # a leftover would outlive the test: never
            os.kill(pid, signal.SIGKILL)


def _log_in(browser, base: str, user: str):
    """A learner's browser, logged in; their server spawned (the hub opens JupyterLab)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{base}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "any password")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"))
    return page


def _order_in_browser(page, user: str, quantity: int) -> dict:
    status, body = page.evaluate(
        """async ([url, body]) => {
             const r = await fetch(url, {method: 'POST', body: JSON.stringify(body),
                                         headers: {'Content-Type': 'application/json'}});
             return [r.status, await r.json()]; }""",
        [f"/user/{user}/{NAME}/api/orders",
         {"productId": "prod_drip_bags", "quantity": quantity, "customer": f"learner_{user}"}])
    assert status == 201, body
    return body["order"]


def _pay_in_browser(page, base: str, user: str, order_id: str) -> None:
    """Pay as a learner would; every request the page makes (the mock Stripe.js and its calls
    included) goes to the learner's own stripe-lab, nothing to a port or another origin."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{base}/user/{user}/{NAME}/checkout/{order_id}")
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(rf"/user/{user}/{NAME}/checkout/{order_id}/complete$"))
    page.get_by_text("Payment confirmed: your order is paid").wait_for(timeout=30_000)
    elsewhere = [url for url in asked if not url.startswith(f"{base}/user/{user}/{NAME}/")]
    assert elsewhere == []
    assert any("/offline-stripe/" in url for url in asked)


# A kernel started in the learner's browser session, as JupyterLab starts one, running `code`
# (the Jupyter messaging protocol over the kernel's WebSocket); returns what it printed.
RUN_IN_A_KERNEL = """async ([user, code]) => {
  const xsrf = (document.cookie.split('; ').find(c => c.startsWith('_xsrf=')) || '=').split('=')[1];
  const started = await fetch(`/user/${user}/api/kernels`, {method: 'POST', body: '{}',
      headers: {'X-XSRFToken': decodeURIComponent(xsrf), 'Content-Type': 'application/json'}});
  if (started.status !== 201) return {error: `kernel: ${started.status}`};
  const kernel = await started.json();
  return await new Promise(resolve => {
    const ws = new WebSocket(`ws://${location.host}/user/${user}/api/kernels/${kernel.id}/channels`);
    const msg_id = 'hub-test-' + Math.random();
    let out = '';
    ws.onopen = () => ws.send(JSON.stringify({channel: 'shell', buffers: [], metadata: {},
      parent_header: {}, header: {msg_id, msg_type: 'execute_request', username: user,
        session: 'hub-test', version: '5.3', date: new Date().toISOString()},
      content: {code, silent: false, store_history: false, user_expressions: {},
                allow_stdin: false, stop_on_error: true}}));
    ws.onmessage = event => {
      const msg = JSON.parse(event.data);
      if (msg.parent_header.msg_id !== msg_id) return;
      if (msg.msg_type === 'stream') out += msg.content.text;
      if (msg.msg_type === 'error') resolve({error: `${msg.content.ename}: ${msg.content.evalue}`});
      if (msg.msg_type === 'status' && msg.content.execution_state === 'idle') resolve({out});
    };
    ws.onerror = () => resolve({error: 'websocket'});
  });
}"""

KERNEL_CODE = """
import json
from tutorial_server.notebook import connect_lab
lab = connect_lab()
print(json.dumps({"url": lab.url, "link": lab.public_url("/dashboard"), "customer": lab.customer,
                  "mine": lab.order(%r)["status"], "other": lab.get("/api/orders/%s").status_code}))
"""


@pytest.mark.hub
def test_a_class_on_a_real_jupyterhub(tmp_path, browser):
    """Two learners log in to a real JupyterHub, each pays an order through their own
    /user/<name>/stripe-lab/ in Chromium, and neither reaches the other's lab."""
    started = time.monotonic()
    timings: dict[str, dict] = {}
    with real_jupyterhub(tmp_path) as (base, folder, marker):
        pages, orders = {}, {}
        for user, quantity in (("ada", 1), ("bob", 3)):  # one at a time, as on 2 cores
            t0 = time.monotonic()
            pages[user] = page = _log_in(browser, base, user)
            t_login = time.monotonic() - t0
            dashboard = page.goto(f"{base}/user/{user}/{NAME}/dashboard")  # starts the lab
            assert dashboard.status == 200
            t_dashboard = time.monotonic() - t0
            orders[user] = _order_in_browser(page, user, quantity)
            _pay_in_browser(page, base, user, orders[user]["id"])
            timings[user] = {"login_s": round(t_login, 1), "dashboard_live_s": round(t_dashboard, 1),
                             "paid_s": round(time.monotonic() - t0, 1)}

        home = {user: folder / "home" / user for user in pages}
        state = {user: json.loads((home[user] / STATE).read_text()) for user in pages}
        for user, other in (("ada", "bob"), ("bob", "ada")):
            page = pages[user]
            data = page.evaluate("async url => (await fetch(url)).json()",
                                 f"/user/{user}/{NAME}/api/dashboard")
            ids = {o["id"]: o["status"] for o in data["orders"]}
            assert ids == {orders[user]["id"]: "paid"}  # own order, paid; not the other's
            # The other's lab through the hub: refused by the hub (403), nothing of theirs shown.
            answer = page.goto(f"{base}/user/{other}/{NAME}/api/dashboard")
            assert answer.status == 403
            assert orders[other]["id"] not in page.content()
            # The other's loopback port through one's own proxy: the lab's 404, without its key.
            port = state[other]["server_url"].split(":")[2].split("/")[0]
            answer = page.goto(f"{base}/user/{user}/proxy/{port}/api/dashboard")
            assert answer.status == 404
            assert orders[other]["id"] not in page.content()
            # A notebook's kernel attaches to the learner's own lab: the one the browser used.
            page.goto(f"{base}/user/{user}/lab")
            t0 = time.monotonic()
            ran = page.evaluate(RUN_IN_A_KERNEL, [user, KERNEL_CODE % (orders[user]["id"],
                                                                       orders[other]["id"])])
            timings[user]["kernel_connect_lab_s"] = round(time.monotonic() - t0, 1)
            assert "error" not in ran, ran
            assert json.loads(ran["out"].strip().splitlines()[-1]) == {
                "url": state[user]["server_url"], "link": f"/user/{user}/{NAME}/dashboard",
                "customer": f"learner_{user}", "mine": "paid", "other": 404}

        processes = _processes_with(marker)
        for user in pages:
            pages[user].context.close()

    per_user = {}
    for user in ("ada", "bob"):
        mine = [p for p in processes.values() if p["user"] == user]
        per_user[user] = {
            "processes": len(mine),
            "pss_mib": round(sum(p["pss_mib"] for p in mine)),
            "rss_mib": round(sum(p["rss_mib"] for p in mine)),
            "cpu_s": round(sum(p["cpu_s"] for p in mine), 1),
            "each": sorted(((p["what"], round(p["pss_mib"])) for p in mine), key=str),
            **timings[user]}
    shared = [p for p in processes.values() if p["user"] == "?"]  # the hub and its proxy
    report = {"learners": per_user,
              "hub_and_proxy": {"processes": len(shared),
                                "pss_mib": round(sum(p["pss_mib"] for p in shared)),
                                "rss_mib": round(sum(p["rss_mib"] for p in shared))},
              "test_s": round(time.monotonic() - started, 1)}
    out = ROOT / "test-artifacts" / "hub-measurements.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print("\nPer learner on a real JupyterHub (one kernel open):", json.dumps(report, indent=2))
    assert all(per_user[u]["processes"] >= 4 for u in per_user)  # server, lab, Stripe, kernel


def test_the_readmes_class_config_sets_limits_and_culling(tmp_path):
    """The jupyterhub_config.py in the hub guide (docs/jupyterhub.md) loads as JupyterHub
    loads it: the measured memory limit, kernel and server culling, the class-progress view."""
    from traitlets.config.loader import PyFileConfigLoader
    readme = (ROOT / "docs" / "jupyterhub.md").read_text()
    block = readme.split("# jupyterhub_config.py: a class", 1)[1].split("```", 1)[0]
    (tmp_path / "jupyterhub_config.py").write_text("# jupyterhub_config.py: a class" + block)
    c = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()
    assert c.Spawner.mem_limit == "1G"  # six notebooks open measured 702 MiB RSS
    for arg in ("--MappingKernelManager.cull_idle_timeout=1200",
                "--MappingKernelManager.cull_interval=120",
                "--MappingKernelManager.cull_connected=True"):
        assert arg in c.Spawner.args
    services = {s["name"]: s for s in c.JupyterHub.services}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "jupyterhub_idle_culler" in services["idle-culler"]["command"]
    assert roles["idle-culler"]["services"] == ["idle-culler"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    progress = services["class-progress"]
    assert "tutorial_server.lab.class_progress_service" in progress["command"]
    assert progress["url"].startswith("http://127.0.0.1:")
    assert set(roles["class-progress"]["scopes"]) == {"list:users", "read:users",
                                                      "read:servers", "access:servers"}
    assert roles["class-progress"]["services"] == ["class-progress"]


def test_the_image_installs_outside_the_home_and_gives_each_learner_the_notebooks(tmp_path):
    """repo2docker runs postBuild once at build time and `start` at every container start. Run
    both with a stand-in `python` (it records pip's arguments and names a fake environment), so
    nothing is installed here."""
    prefix, home, stub = tmp_path / "env", tmp_path / "home", tmp_path / "bin"
    for folder in (prefix, home, stub):
        folder.mkdir()
    (stub / "python").write_text(
        "#!/bin/bash\n"
        f'if [ "$1" = "-c" ]; then echo {prefix}; else echo "$@" >> {tmp_path}/pip-args; fi\n')
    (stub / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "HOME": str(home)}
    subprocess.run(["bash", str(ROOT / "postBuild")], cwd=ROOT, env=env, check=True, timeout=60)
    assert (tmp_path / "pip-args").read_text() == "-m pip install --no-deps .\n"  # not -e
    shipped = prefix / "share" / "stripe-payments-lab" / "notebooks"
    assert sorted(p.name for p in shipped.glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))

    ran = subprocess.run([str(ROOT / "start"), "echo", "jupyterhub-singleuser"], env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    assert ran.stdout == "jupyterhub-singleuser\n"  # then it runs the server it was given
    assert (home / "notebooks" / "00_how_a_stripe_payment_works.ipynb").is_file()
    # A learner's own edits survive the next start.
    (home / "notebooks" / "00_how_a_stripe_payment_works.ipynb").write_text("my work")
    subprocess.run([str(ROOT / "start"), "true"], env=env, check=True, timeout=60)
    assert (home / "notebooks" / "00_how_a_stripe_payment_works.ipynb").read_text() == "my work"
    assert not (home / "notebooks" / "notebooks").exists()
