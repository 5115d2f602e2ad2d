"""A class on a real JupyterHub, as docs/jupyterhub.md sets it up: a Unix user per learner
(LocalProcessSpawner, homes mode 700), the course reaching a learner through an nbgitpuller link,
what a learner's server costs with one notebook open and with six, and the instructor's
class-progress view (a hub-managed service) seeing the whole class.

- Ada opens an nbgitpuller link (the shape the book's launch links have) to a bare clone of this
  checkout, by file path, no network: the course lands in her home and JupyterLab opens the
  notebook, which starts its kernel.
- Her kernels run what the notebooks run first (connect_lab()); her processes' PSS is summed
  from /proc/<pid>/smaps_rollup with one kernel, then with notebooks 01-06 open.
- She passes two exercises and pays an order; Bob never starts his server.
- The class-progress service, asked with the instructor's (an admin's) token, shows Ada running
  with her progress and Bob stopped; Ada's own token gets 403; after Ada's server stops, the
  view still shows what it last saw of her. The `class-progress` command shows the same.
- Her server starts again: JupyterLab restores her six notebook tabs and starts six kernels at
  once (timed and measured).

Needs root, useradd, a system python3 of this version (as tests/test_hub_users.py) and
nbgitpuller (the `hub` extra); skipped with the reason otherwise. About three minutes.
"""
from __future__ import annotations

import importlib.util
import json
import os
import runpy
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from tutorial_server.lab.class_progress import EXERCISES
from tutorial_server.lab.offline_stripe import free_port

from .jupyterhub_run import HUB_NETWORK_CONFIG, running_jupyterhub
from .running_lab import ROOT, wait_for
from .test_hub import _log_in
from .test_hub_users import _pids_of, _why_skip as _why_no_unix_users, learners_python, unix_users

COURSE = "stripe-payments-lab"  # the bare clone's folder name: nbgitpuller's folder in the home
FIRST, OPEN_TOO = "01_the_client_asks.ipynb", ["02_the_server_prices_the_order.ipynb",
                                              "03_stripe_creates_the_payment.ipynb",
                                              "04_the_server_answers_the_client.ipynb",
                                              "05_the_customer_pays.ipynb",
                                              "06_the_webhook_closes_the_loop.ipynb"]


def _nbgitpuller_site() -> Path | None:
    spec = importlib.util.find_spec("nbgitpuller")
    return Path(spec.origin).parent.parent if spec and spec.origin else None


def _why_skip() -> str | None:
    reason = _why_no_unix_users()
    if reason:
        return reason
    if _nbgitpuller_site() is None:
        return "nbgitpuller is not installed: pip install '.[hub]' (pinned in pyproject.toml)"
    if shutil.which("git") is None:
        return "git is missing (nbgitpuller pulls with it)"
    return None


pytestmark = [pytest.mark.hub, pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))]


def launch_link(hub_url: str, repository: str, branch: str, notebook: str) -> str:
    """An nbgitpuller link in the shape of the book's launch links, built by hand; where the
    book's own launch_url (book/theme/launch.py) is there, it must make the same link."""
    link = (f"{hub_url.rstrip('/')}/hub/user-redirect/git-pull?repo={quote(repository, safe='')}"
            f"&branch={quote(branch, safe='')}"
            f"&urlpath={quote(f'lab/tree/{COURSE}/notebooks/{notebook}', safe='/')}")
    book = ROOT / "book" / "theme" / "launch.py"
    if book.is_file():
        theirs = runpy.run_path(str(book))["launch_url"](hub_url, repository, branch,
                                                         f"notebooks/{notebook}")
        assert urlsplit(theirs)[:3] == urlsplit(link)[:3]
        assert parse_qs(urlsplit(theirs).query) == parse_qs(urlsplit(link).query)
    return link


@contextmanager
def readable_folder(prefix: str):
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bare_clone(folder: Path) -> tuple[str, str]:
    """The course repository as a hub would pull it: a bare clone of this checkout's commits."""
    repo = folder / COURSE
    subprocess.run(["git", "clone", "--bare", "--quiet", str(ROOT), str(repo)], check=True)
    branch = subprocess.run(["git", "-C", str(repo), "symbolic-ref", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    return str(repo), branch


HUB_CONFIG = HUB_NETWORK_CONFIG + """
import sys
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({users!r})
c.Authenticator.admin_users = {{"teacher"}}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.Spawner.environment = {{
    "STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": "", "PATH": {path!r},
    # nbgitpuller switched on as `pip install nbgitpuller` does (its jupyter_server_config.d)
    "JUPYTER_CONFIG_PATH": {jupyter_config!r},
    # the test's course repository belongs to root (git refuses a repository of another owner
    # unless told it is safe: `safe.directory` in a global config); a hub pulls from https
    "GIT_CONFIG_GLOBAL": {git_config!r}}}
c.JupyterHub.services = [
    {{"name": "hub-test", "api_token": {token!r}}},
    {{"name": "class-progress", "url": "http://127.0.0.1:{service_port}",
      "command": [sys.executable, "-m", "tutorial_server.lab.class_progress_service",
                  "--hub-url", "http://127.0.0.1:{port}", "--remember", {remember!r}],
      "environment": {{"PYTHONPATH": {root!r}}}}},
]
c.JupyterHub.load_roles = [
    {{"name": "hub-test", "services": ["hub-test"],
      "scopes": ["admin:users", "admin:servers", "tokens"]}},
    {{"name": "class-progress", "services": ["class-progress"],
      "scopes": ["list:users", "read:users", "read:servers", "access:servers"]}},
]
c.JupyterHub.db_url = "sqlite:///" + {folder!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {folder!r} + "/cookie_secret"
c.JupyterHub.pid_file = {folder!r} + "/jupyterhub.pid"
"""


@contextmanager
def class_hub(folder: Path, users: list[str], python: Path, jupyter_config: Path):
    folder.mkdir()
    port, token = free_port(), os.urandom(16).hex()
    (folder / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        port=port, hub_port=free_port(), proxy_api_port=free_port(), folder=str(folder),
        chp=str(ROOT / "node_modules" / ".bin" / "configurable-http-proxy"),
        users=[*users, "teacher"], python=str(python), token=token, service_port=free_port(),
        path=f"{python.parent}:/usr/local/bin:/usr/bin:/bin", root=str(ROOT),
        jupyter_config=str(jupyter_config), git_config=str(jupyter_config.parent / "gitconfig"),
        remember=str(folder / "class-progress.json")))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TUTORIAL_", "STRIPE_", "JUPYTER", "PYTHON"))}
    env["PATH"] = os.path.dirname(sys.executable) + ":" + env["PATH"]
    admin = requests.Session()
    admin.headers["Authorization"] = f"token {token}"
    with running_jupyterhub(folder, env, port) as base:
        yield base, admin


# Code run in one of the learner's kernels (JupyterLab's own, by id) over its WebSocket, in her
# browser session; returns what it printed, or the error.
RUN_IN_KERNEL = """async ([user, kernel, code]) => {
  return await new Promise(resolve => {
    const ws = new WebSocket(`ws://${location.host}/user/${user}/api/kernels/${kernel}/channels`);
    const msg_id = 'hub-class-' + Math.random();
    let out = '';
    ws.onopen = () => ws.send(JSON.stringify({channel: 'shell', buffers: [], metadata: {},
      parent_header: {}, header: {msg_id, msg_type: 'execute_request', username: user,
        session: 'hub-class-' + Math.random(), version: '5.3', date: new Date().toISOString()},
      content: {code, silent: false, store_history: false, user_expressions: {},
                allow_stdin: false, stop_on_error: true}}));
    ws.onmessage = event => {
      const msg = JSON.parse(event.data);
      if (msg.parent_header.msg_id !== msg_id) return;
      if (msg.msg_type === 'stream') out += msg.content.text;
      if (msg.msg_type === 'error') { ws.close(); resolve({error: `${msg.content.ename}: ${msg.content.evalue}`}); }
      if (msg.msg_type === 'status' && msg.content.execution_state === 'idle') { ws.close(); resolve({out}); }
    };
    ws.onerror = () => resolve({error: 'websocket'});
  });
}"""

PROGRESS_CODE = """
from tutorial_server.course.exercises import start_exercise
exercise = start_exercise("01")
exercise.check(None)  # a first try that is not right yet
exercise.check(lab.post("/api/orders", json={"productId": "prod_pour_over_kit", "quantity": 3}).json())
exercise = start_exercise("02")
exercise.check("¥5,400")
mugs = lab.create_order("prod_enamel_mug", 2)["order"]
lab.pay(mugs, "success")
print("paid:", lab.wait_for_order(mugs["id"], "paid")["status"])
"""


def _first_code_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def _memory_of(uid: int) -> dict:
    """PSS and RSS (MiB) summed over every process of the Unix user, and what they are."""
    total = {"pss_mib": 0.0, "rss_mib": 0.0, "processes": []}
    for pid in _pids_of(uid):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        kib = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
        total["pss_mib"] += kib["Pss"] / 1024
        total["rss_mib"] += kib["Rss"] / 1024
        what = " ".join(a.decode(errors="replace") for a in argv[1:4])
        total["processes"].append([what[:80], round(kib["Pss"] / 1024)])
    total["pss_mib"], total["rss_mib"] = round(total["pss_mib"]), round(total["rss_mib"])
    total["processes"].sort(key=lambda p: -p[1])
    return total


def _kernels(base: str, name: str, token: str) -> list[dict]:
    return requests.get(f"{base}/user/{name}/api/kernels", timeout=30,
                        headers={"Authorization": f"token {token}"}).json()


def _run(page, name: str, kernel: str, code: str) -> str:
    ran = page.evaluate(RUN_IN_KERNEL, [name, kernel, code])
    assert "error" not in ran, ran
    return ran["out"]


def _class_view(base: str, token: str) -> dict[str, dict]:
    answer = requests.get(f"{base}/services/class-progress/api", timeout=120,
                          headers={"Authorization": f"token {token}"}, allow_redirects=False)
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    for leak in ("secret", "sk_test", "pi_", "whsec_", "order_"):
        assert leak not in answer.text
    return {row["name"]: row for row in answer.json()["learners"]}


def test_a_class_gets_the_course_by_link_and_the_instructor_sees_its_progress(tmp_path, browser):
    started = time.monotonic()
    timings: dict[str, float] = {}
    # Not /tmp/stripe-lab-*: a private lab of root's removes those (see learners_python).
    with unix_users(2) as learners, learners_python() as python, \
            readable_folder("hub-test-course-") as shared:
        ada, bob = learners
        site = python.parent.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        with open(site / "site-packages" / "stripe_lab_hub_test.pth", "a") as pth:
            pth.write(f"{_nbgitpuller_site()}\n")
        config = shared / "jupyter-config" / "jupyter_server_config.d"
        config.mkdir(parents=True)
        (config / "nbgitpuller.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"nbgitpuller": True}}}))
        repository, branch = _bare_clone(shared / "git")
        (shared / "gitconfig").write_text("[safe]\n\tdirectory = *\n")
        subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)

        with class_hub(tmp_path / "hub", [ada.pw_name, bob.pw_name], python,
                       shared / "jupyter-config") as (base, admin):
            name = ada.pw_name
            # The instructor: an admin of the hub, with a token of their own.
            assert admin.post(f"{base}/hub/api/users/teacher", timeout=30).status_code in (201, 409)
            teacher = admin.post(f"{base}/hub/api/users/teacher/tokens", timeout=30,
                                 json={"note": "class view", "expires_in": 900}).json()["token"]

            # Ada logs in, then opens the launch link: the hub pulls the course into her home
            # and JupyterLab opens the notebook (and starts its kernel).
            t0 = time.monotonic()
            page = _log_in(browser, base, name)
            timings["login_s"] = round(time.monotonic() - t0, 1)
            mine = admin.post(f"{base}/hub/api/users/{name}/tokens", timeout=30,
                              json={"note": "hub class test", "expires_in": 900}).json()["token"]
            link = launch_link(base, repository, branch, FIRST)
            assert f"/hub/user-redirect/git-pull?repo={quote(repository, safe='')}&branch=" in link
            t0 = time.monotonic()
            page.goto(link)
            page.wait_for_url(f"**/user/{name}/lab/tree/{COURSE}/notebooks/{FIRST}",
                              timeout=120_000)
            timings["link_to_notebook_s"] = round(time.monotonic() - t0, 1)
            pulled = Path(ada.pw_dir) / COURSE / "notebooks" / FIRST
            assert pulled.is_file() and pulled.stat().st_uid == ada.pw_uid
            assert (Path(ada.pw_dir) / COURSE / ".git").is_dir()
            wait_for(lambda: len(_kernels(base, name, mine)) == 1, 120, 0.5, "the notebook's kernel")
            kernel = _kernels(base, name, mine)[0]["id"]
            t0 = time.monotonic()
            _run(page, name, kernel, _first_code_cell(pulled))  # connect_lab(): her own lab
            timings["first_cell_s"] = round(time.monotonic() - t0, 1)
            time.sleep(3)
            one_kernel = _memory_of(ada.pw_uid)

            # Five more notebooks opened in JupyterLab (tabs of her workspace), each with its
            # kernel, each having run its first cell.
            t0 = time.monotonic()
            for notebook in OPEN_TOO:
                before = {k["id"] for k in _kernels(base, name, mine)}
                page.goto(f"{base}/user/{name}/lab/tree/{COURSE}/notebooks/{notebook}")
                wait_for(lambda: len(_kernels(base, name, mine)) > len(before), 120, 0.5,
                         f"{notebook}'s kernel ({python} there: {python.exists()})")
                new_kernel = ({k["id"] for k in _kernels(base, name, mine)} - before).pop()
                _run(page, name, new_kernel,
                     _first_code_cell(Path(ada.pw_dir) / COURSE / "notebooks" / notebook))
                time.sleep(1.5)  # JupyterLab saves the workspace (its open tabs) on changes
            timings["five_more_notebooks_s"] = round(time.monotonic() - t0, 1)
            time.sleep(3)
            six_kernels = _memory_of(ada.pw_uid)
            assert len(_kernels(base, name, mine)) == 6

            # Progress: two exercises passed (one after a wrong try), one order paid.
            out = _run(page, name, kernel, PROGRESS_CODE)
            assert out.count("✓") == 2 and "paid: paid" in out, out

            # The instructor's view: Ada running with her progress, Bob stopped.
            t0 = time.monotonic()
            seen = _class_view(base, teacher)
            timings["class_view_s"] = round(time.monotonic() - t0, 1)
            assert set(seen) == {name, bob.pw_name, "teacher"}
            assert seen[name]["server"] == "running" and seen[name]["note"] == ""
            progress = seen[name]["progress"]
            assert progress["passed"] == ["01", "02"] and progress["checks"]["01"] == 2
            assert progress["orders_paid"] >= 1 and progress["orders_total"] >= 3
            assert seen[bob.pw_name]["server"] == "stopped"
            assert seen[bob.pw_name]["progress"] is None
            assert seen["teacher"]["admin"] is True
            page_answer = requests.get(f"{base}/services/class-progress/", timeout=120,
                                       headers={"Authorization": f"token {teacher}"})
            assert page_answer.status_code == 200 and name in page_answer.text
            assert "01 02 ··" in page_answer.text
            # A learner's token opens neither the page nor its JSON.
            for path in ("", "api"):
                refused = requests.get(f"{base}/services/class-progress/{path}", timeout=60,
                                       headers={"Authorization": f"token {mine}"},
                                       allow_redirects=False)
                assert refused.status_code == 403, (path, refused.status_code)
            # The same from the command line, with the instructor's token; refused with Ada's.
            cli = [sys.executable, "-m", "tutorial_server.lab", "class-progress", "--hub", base]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTERHUB_API_TOKEN": teacher}
            printed = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
            assert printed.returncode == 0, printed.stderr
            lines = {line.split()[0]: line for line in printed.stdout.splitlines()[1:]}
            assert "running" in lines[name] and f"2/{len(EXERCISES)}" in lines[name]
            assert "stopped" in lines[bob.pw_name]
            env["JUPYTERHUB_API_TOKEN"] = mine
            denied = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
            assert denied.returncode != 0 and "refused (403)" in denied.stderr

            # Ada's server stops: the view still shows what it last saw of her.
            admin.delete(f"{base}/hub/api/users/{name}/server", timeout=60)
            wait_for(lambda: not admin.get(f"{base}/hub/api/users/{name}", timeout=30)
                     .json().get("server"), 60, 0.5, f"{name}'s server to stop")
            later = _class_view(base, teacher)
            assert later[name]["server"] == "stopped"
            assert later[name]["progress"]["passed"] == ["01", "02"]
            assert later[name]["note"] == "last seen while the server ran"
            kept = tmp_path / "hub" / "class-progress.json"  # --remember: for a restart
            assert stat.S_IMODE(kept.stat().st_mode) == 0o600
            assert json.loads(kept.read_text())[name]["progress"]["passed"] == ["01", "02"]
            for leak in ("secret", "sk_test", "pi_", "whsec_", "order_"):
                assert leak not in kept.read_text()

            # Her server starts again and she opens JupyterLab: it restores her six tabs, and
            # every one of them starts its kernel at once.
            assert admin.post(f"{base}/hub/api/users/{name}/server", timeout=30).status_code \
                in (201, 202)
            wait_for(lambda: (admin.get(f"{base}/hub/api/users/{name}", timeout=30).json()
                              .get("servers", {}).get("", {}).get("ready")), 120, 0.5,
                     f"{name}'s server to start again")
            mine = admin.post(f"{base}/hub/api/users/{name}/tokens", timeout=30,
                              json={"note": "hub class test", "expires_in": 900}).json()["token"]
            t0 = time.monotonic()
            page.goto(f"{base}/user/{name}/lab")
            wait_for(lambda: len(_kernels(base, name, mine)) >= 6, 120, 0.5,
                     "the restored notebooks' kernels")
            timings["restored_six_kernels_s"] = round(time.monotonic() - t0, 1)
            wait_for(lambda: all(k["execution_state"] == "idle"
                                 for k in _kernels(base, name, mine)), 60, 0.5, "kernels idle")
            time.sleep(3)
            restored = _memory_of(ada.pw_uid)  # no lab yet: no cell has run
            page.context.close()

    timings["test_s"] = round(time.monotonic() - started, 1)
    report = {"one_kernel": one_kernel, "six_kernels": six_kernels,
              "restored_six_tabs": restored, "timings": timings}
    out = ROOT / "test-artifacts" / "hub-class-measurements.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print("\nA learner on a real JupyterHub (PSS of all her processes):", json.dumps(report, indent=2))
