"""A class on JupyterHub as a plain install runs it: one Unix user per learner (made here with
`useradd`, homes mode 700, removed afterwards), JupyterHub's LocalProcessSpawner starting each
learner's server as that user, one /tmp for everybody, and a /tmp/localstripe.pickle left
there by someone else (mode 600, another owner) before the hub starts.

- Every learner's lab starts: the dashboard through the hub, and a notebook's `connect_lab()`
  run as the learner.
- No learner reaches another's lab, stand-in, files or socket: not through the hub, not
  through their own `/user/<me>/proxy/<port>/`, not on the machine.
- Nothing of a learner's lab lands in the shared /tmp (or /var/tmp, /dev/shm).

Needs root (it makes Unix users) and `useradd`; skipped with the reason otherwise. The
learners run this checkout with a throwaway venv made from the system's python3 (the
project's venv lives on an interpreter under root's home, which they cannot run), whose
site-packages point at this checkout and the project venv's packages.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.jupyter_proxy import NAME
from tutorial_server.lab.offline_stripe import free_port

from .jupyterhub_run import HUB_NETWORK_CONFIG, running_jupyterhub
from .running_lab import ROOT, wait_for

STATE = Path(".stripe-lab") / "tutorial.sqlite3.lab.json"  # inside a learner's home
PICKLE = Path("/tmp/localstripe.pickle")
SHARED = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
NOBODY = 65534


def _system_python() -> str | None:
    """A python3 of this interpreter's version that every user can run."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.access(candidate, os.X_OK):
            continue
        out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True)
        if out.stdout.strip() == str(tuple(sys.version_info[:2])):
            return candidate
    return None


def _world_can_enter(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


def _why_skip() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: it makes a Unix user per learner and runs the hub's spawner as them"
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: cannot make or act as learners' Unix users"
    if _system_python() is None:
        return f"no system python3 {sys.version_info[0]}.{sys.version_info[1]} that learners can run"
    site = Path(sysconfig.get_paths()["purelib"])
    for path in (ROOT, site):
        if not _world_can_enter(path):
            return f"{path} is not readable by other users (a learner could not import from it)"
    if not (ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        return "configurable-http-proxy is missing: run `npm ci` (make test does)"
    return None


pytestmark = [pytest.mark.hub, pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))]


# --- the machine: learners' Unix users, their python, a leftover pickle -------------------------

def _pids_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@contextmanager
def unix_users(count: int):
    """`count` new Unix users with private homes (mode 700), removed afterwards with their
    homes and any process they left, even when the test fails."""
    tag = secrets.token_hex(3)
    names = [f"lrn{tag}{chr(ord('a') + i)}" for i in range(count)]
    made: list[str] = []
    try:
        for name in names:
            subprocess.run(["useradd", "--create-home", "--key", "HOME_MODE=0700",
                            "--shell", "/bin/false", name], check=True, capture_output=True)
            made.append(name)
        yield [pwd.getpwnam(name) for name in names]
    finally:
        for name in made:
            user = pwd.getpwnam(name)
            for pid in _pids_of(user.pw_uid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: not _pids_of(user.pw_uid), 10, 0.1, f"{name}'s processes to end")
            subprocess.run(["userdel", "--remove", name], capture_output=True)
            shutil.rmtree(user.pw_dir, ignore_errors=True)


@contextmanager
def learners_python():
    """A venv from the system's python3 (mode 755, outside any private folder) whose
    site-packages name this checkout first, then the project venv's packages; JupyterLab's
    and jupyter-server-proxy's Jupyter config and data linked from the project venv."""
    # Not "stripe-lab-...": a private lab started by root (another test) removes /tmp/stripe-lab-*
    # folders of root's that have no owner file once they are a minute old (lab/private.py).
    folder = Path(tempfile.mkdtemp(prefix="hub-test-learners-python-"))
    try:
        folder.chmod(0o755)
        subprocess.run([_system_python(), "-m", "venv", "--without-pip", str(folder)],
                       check=True, capture_output=True)
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        (folder / "lib" / version / "site-packages" / "stripe_lab_hub_test.pth").write_text(
            f"{ROOT}\n{sysconfig.get_paths()['purelib']}\n")
        for part in ("etc/jupyter", "share/jupyter"):
            (folder / part).parent.mkdir(parents=True, exist_ok=True)
            (folder / part).symlink_to(Path(sys.prefix) / part)
        subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
        yield folder / "bin" / "python"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def leftover_pickle():
    """/tmp/localstripe.pickle as the first learner's old stand-in left it: another owner,
    mode 600. An existing file keeps its content; its owner and mode come back afterwards."""
    before = PICKLE.stat() if PICKLE.exists() else None
    if before is None:
        PICKLE.write_bytes(b"another learner's offline Stripe store")
    os.chown(PICKLE, NOBODY, NOBODY)
    PICKLE.chmod(0o600)
    try:
        yield PICKLE.stat()
    finally:
        if before is None:
            PICKLE.unlink(missing_ok=True)
        elif PICKLE.exists():
            os.chown(PICKLE, before.st_uid, before.st_gid)
            PICKLE.chmod(stat.S_IMODE(before.st_mode))


def _shared_files_of(uids: set[int]) -> list[str]:
    found = []
    for folder in SHARED:
        for entry in folder.iterdir() if folder.is_dir() else ():
            try:
                if entry.lstat().st_uid in uids:
                    found.append(str(entry))
            except OSError:
                pass
    return sorted(found)


def _as_learner(user: pwd.struct_passwd, argv: list[str], env: dict, timeout: float = 120):
    return subprocess.run(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--",
         *argv], env=env, cwd=user.pw_dir, capture_output=True, text=True, timeout=timeout)


# --- the hub ---------------------------------------------------------------------------------------

HUB_CONFIG = HUB_NETWORK_CONFIG + """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = "localprocess"   # each learner's server runs as their Unix user
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.Spawner.environment = {{"STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": "",
                         "HUB_TEST_MARKER": {marker!r}, "PATH": {path!r}}}
c.JupyterHub.services = [{{"name": "hub-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "hub-test", "services": ["hub-test"],
                            "scopes": ["admin:users", "admin:servers", "tokens"]}}]
c.JupyterHub.db_url = "sqlite:///" + {folder!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {folder!r} + "/cookie_secret"
c.JupyterHub.pid_file = {folder!r} + "/jupyterhub.pid"
"""


@contextmanager
def jupyterhub_for(folder: Path, users: list[str], python: Path):
    """A real JupyterHub on 127.0.0.1 (run as root, as a plain install runs it); yields its
    URL and an admin API session."""
    folder.mkdir()
    port, token, marker = free_port(), secrets.token_hex(16), "hub-users-" + secrets.token_hex(4)
    (folder / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        port=port, hub_port=free_port(), proxy_api_port=free_port(), folder=str(folder),
        chp=str(ROOT / "node_modules" / ".bin" / "configurable-http-proxy"), users=users,
        python=str(python), marker=marker, token=token,
        path=f"{python.parent}:/usr/local/bin:/usr/bin:/bin"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TUTORIAL_", "STRIPE_", "JUPYTER", "PYTHON"))}
    env["PATH"] = os.path.dirname(sys.executable) + ":" + env["PATH"]
    admin = requests.Session()
    admin.headers["Authorization"] = f"token {token}"
    with running_jupyterhub(folder, env, port) as base:
        yield base, admin


def _start_server(base: str, admin: requests.Session, name: str, folder: Path) -> str:
    """Spawn the learner's server (as their Unix user); return a token of theirs."""
    started = admin.post(f"{base}/hub/api/users/{name}/server", timeout=30)
    assert started.status_code in (201, 202), started.text

    def ready():
        server = admin.get(f"{base}/hub/api/users/{name}", timeout=10).json()["servers"].get("")
        if server is None:  # the spawn failed
            pytest.fail((folder / "hub.log").read_text()[-4000:])
        return server["ready"]

    wait_for(ready, 120, 0.3, f"{name}'s server")
    made = admin.post(f"{base}/hub/api/users/{name}/tokens", timeout=10,
                      json={"note": "hub test", "expires_in": 600})
    assert made.status_code == 201, made.text
    return made.json()["token"]


def _lab_logs(user: pwd.struct_passwd, status: int) -> str:
    """Why a learner's lab did not start: the ends of its logs in their home."""
    logs = sorted((Path(user.pw_dir) / ".stripe-lab").glob("*.log"))
    return f"{user.pw_name}'s lab answered {status} through the hub; " + " | ".join(
        f"{log.name}: {log.read_text(errors='replace')[-600:]}" for log in logs)


def _browser(base: str, name: str) -> requests.Session:
    """A learner's browser, logged in to the hub and to their own server (cookies, and the
    server's XSRF token sent back as JupyterLab's pages do)."""
    browser = requests.Session()
    login = browser.get(f"{base}/hub/login", timeout=30)
    form = {"username": name, "password": "any password"}
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', login.text)
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    assert browser.post(f"{base}/hub/login", data=form, timeout=30).ok
    assert browser.get(f"{base}/user/{name}/lab", timeout=60).ok  # OAuth, then JupyterLab
    server_xsrf = [c.value for c in browser.cookies
                   if c.name == "_xsrf" and c.path.startswith(f"/user/{name}")]
    if server_xsrf:  # (the hub has an _xsrf cookie of its own, on /hub/)
        browser.headers["X-XSRFToken"] = server_xsrf[0]
    return browser


# --- the test ----------------------------------------------------------------------------------

NOTEBOOK_CELL = """
import json, os, sys, tutorial_server
from tutorial_server.notebook import connect_lab
lab = connect_lab()
order = lab.create_order("prod_drip_bags", 1)
print(json.dumps({"package": tutorial_server.__file__, "python": sys.executable,
                  "url": lab.url, "customer": lab.customer, "order": order["order"]["id"],
                  "status": lab.order(order["order"]["id"])["status"]}))
"""

PEEK = """
import json, socket, sys, urllib.error, urllib.request
other_home, other_socket, stand_in = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {}
ask = urllib.request.Request(stand_in + "/v1/payment_intents",
                             headers={"Authorization": "Bearer sk_test_classmate"})
try:
    seen["stand_in"] = urllib.request.urlopen(ask, timeout=10).status
except urllib.error.HTTPError as e:
    seen["stand_in"] = e.code
for what, act in (("home", lambda: __import__("os").listdir(other_home)),
                  ("state", lambda: open(other_home + "/.stripe-lab/tutorial.sqlite3.lab.json").read()),
                  ("socket", lambda: socket.socket(socket.AF_UNIX).connect(other_socket))):
    try:
        act()
        seen[what] = "reached"
    except OSError as e:
        seen[what] = type(e).__name__
print(json.dumps(seen))
"""


def test_a_class_of_unix_users_on_one_machine(tmp_path):
    started = time.monotonic()
    timings: dict[str, float] = {}
    answers: dict[str, int] = {}  # what each attack got (printed with the timings)
    with unix_users(2) as learners, learners_python() as python, leftover_pickle():
        uids = {u.pw_uid for u in learners}
        names = [u.pw_name for u in learners]
        for user in learners:  # useradd -K HOME_MODE=0700: private homes
            assert stat.S_IMODE(os.stat(user.pw_dir).st_mode) == 0o700
        in_shared_before = _shared_files_of(uids)
        assert in_shared_before == []
        # The learners' python imports this checkout (not the project venv's editable copy).
        env = {"PATH": "/usr/bin:/bin", "HOME": learners[0].pw_dir, "LANG": "C.UTF-8"}
        check = _as_learner(learners[0], [str(python), "-c",
                                          "import tutorial_server, jupyterhub, jupyter_server_proxy;"
                                          "print(tutorial_server.__file__)"], env)
        assert check.returncode == 0, check.stderr[-2000:]
        assert check.stdout.strip() == str(ROOT / "tutorial_server" / "__init__.py")
        timings["setup_s"] = round(time.monotonic() - started, 1)

        with jupyterhub_for(tmp_path / "hub", names, python) as (base, admin):
            tokens, states, orders = {}, {}, {}
            for user in learners:  # one at a time, as on 2 cores
                name, t0 = user.pw_name, time.monotonic()
                tokens[name] = _start_server(base, admin, name, tmp_path / "hub")
                auth = {"Authorization": f"token {tokens[name]}"}
                # The lab starts through the hub (jupyter-server-proxy starts it on first visit).
                dashboard = requests.get(f"{base}/user/{name}/{NAME}/api/dashboard",
                                         headers=auth, timeout=120)
                assert dashboard.status_code == 200, _lab_logs(user, dashboard.status_code)
                assert dashboard.json()["mode"] == "offline"
                states[name] = json.loads((Path(user.pw_dir) / STATE).read_text())
                # A notebook's cell, run as the learner with the variables a hub gives a kernel.
                kernel_env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": user.pw_dir,
                              "LANG": "C.UTF-8", "JUPYTERHUB_USER": name,
                              "JUPYTERHUB_SERVICE_PREFIX": f"/user/{name}/",
                              "JUPYTERHUB_SERVICE_URL": f"{base}/user/{name}/",
                              "JUPYTERHUB_API_TOKEN": tokens[name],
                              "STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": ""}
                cell = _as_learner(user, [str(python), "-c", NOTEBOOK_CELL], kernel_env)
                assert cell.returncode == 0, cell.stderr[-3000:]
                seen = json.loads(cell.stdout.strip().splitlines()[-1])
                assert seen["package"] == str(ROOT / "tutorial_server" / "__init__.py")
                assert seen["url"] == states[name]["server_url"]
                assert seen["customer"] == f"learner_{name}" and seen["status"] == "created"
                # An order through the hub as the browser sends it: its client secret is the
                # classmates' target below.
                made = requests.post(f"{base}/user/{name}/{NAME}/api/orders", headers=auth,
                                     json={"productId": "prod_drip_bags", "quantity": 2},
                                     timeout=30)
                assert made.status_code == 201, made.text
                orders[name] = made.json()
                timings[f"{name[-1]}_lab_live_s"] = round(time.monotonic() - t0, 1)

            for me, other in ((learners[0], learners[1]), (learners[1], learners[0])):
                mine, theirs = me.pw_name, other.pw_name
                browser = _browser(base, mine)
                secret = orders[theirs]["client_secret"]
                intent = orders[theirs]["order"]["payment_intent"]
                # Their lab through the hub: the hub refuses.
                r = browser.get(f"{base}/user/{theirs}/{NAME}/api/dashboard", timeout=30)
                assert r.status_code == 403, (r.status_code, r.url)
                answers["their stripe-lab through the hub"] = r.status_code
                assert secret not in r.text
                # Their lab's loopback port through my own proxy: the lab's 404 without its key.
                lab_port = states[theirs]["server_url"].split(":")[2].split("/")[0]
                for path in ("/api/dashboard", "/dashboard", "/"):
                    r = browser.get(f"{base}/user/{mine}/proxy/{lab_port}{path}", timeout=30)
                    assert r.status_code == 404, (path, r.status_code, r.text[:300])
                    answers[f"their lab's port{path} via my /proxy/"] = r.status_code
                    assert secret not in r.text
                # Their stand-in's port through my own proxy, with any key as a Stripe client
                # sends it: nothing of theirs.
                # WAITS FOR the stand-in launcher of issue 22 (lab key on every request -> 401);
                # localstripe itself answers 200 with every client secret.
                stand_in_port = states[theirs]["backend_url"].rsplit(":", 1)[1].split("/")[0]
                stolen = browser.get(
                    f"{base}/user/{mine}/proxy/{stand_in_port}/v1/payment_intents", timeout=30,
                    headers={"Authorization": "Bearer sk_test_classmate"})
                assert stolen.status_code != 200, stolen.text[:300]
                assert secret not in stolen.text and "client_secret" not in stolen.text
                assert "pi_" not in stolen.text
                canceled = browser.post(
                    f"{base}/user/{mine}/proxy/{stand_in_port}/v1/payment_intents/{intent}/cancel",
                    timeout=30, headers={"Authorization": "Bearer sk_test_classmate"})
                assert canceled.status_code != 200, canceled.text[:300]
                answers["their stand-in GET /v1/payment_intents via my /proxy/"] = stolen.status_code
                answers["their stand-in POST .../cancel via my /proxy/"] = canceled.status_code
                # Their home, state file and socket, from my own Unix user.
                peek = _as_learner(me, [str(python), "-c", PEEK, other.pw_dir,
                                        states[theirs]["unix_socket"],
                                        states[theirs]["backend_url"]],
                                   {"PATH": "/usr/bin:/bin", "HOME": me.pw_dir}, timeout=30)
                seen = json.loads(peek.stdout)
                # Their stand-in straight from my Unix user, its own Host, any key: refused.
                # WAITS FOR the stand-in launcher of issue 22 (localstripe answers 200).
                answers["their stand-in, directly, from my Unix user"] = seen["stand_in"]
                assert seen.pop("stand_in") in (401, 403)
                assert seen == {"home": "PermissionError", "state": "PermissionError",
                                "socket": "PermissionError"}, peek.stderr
            for user in learners:  # their payments untouched by all of the above
                name = user.pw_name
                still = requests.get(
                    f"{base}/user/{name}/{NAME}/api/orders/{orders[name]['order']['id']}",
                    headers={"Authorization": f"token {tokens[name]}"}, timeout=30)
                assert still.json()["order"]["status"] == "created"
            in_shared_running = _shared_files_of(uids)
        in_shared_after = _shared_files_of(uids)
        # Nobody's lab wrote the shared store file, nor anything else in the shared folders.
        assert PICKLE.stat().st_uid == NOBODY
        assert in_shared_running == [] and in_shared_after == []
    timings["test_s"] = round(time.monotonic() - started, 1)
    print("\nhub with a Unix user per learner:", json.dumps(timings), json.dumps(answers))
