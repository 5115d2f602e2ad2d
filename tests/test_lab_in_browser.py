"""The learner's main path, end to end: `make lab`, then every notebook, Run All, in the
JupyterLab it starts, in real Chromium.

The lab is started exactly as `make lab` starts it (`python -m tutorial_server lab`, from the
project folder, with the learner's environment), plus `--no-browser`. What the test adds keeps
it off the developer's own things: a temporary database (TUTORIAL_DB), free ports (PORT=0 for
the lab, JUPYTER_PORT for JupyterLab), its own JupyterLab token, settings (autosave off, so the
notebooks on disk are never rewritten), workspaces and runtime folders.

Each notebook: open it, wait for its kernel, Edit > Clear Outputs of All Cells, Run > Run All
Cells, wait until every code cell has run and the kernel is idle; fail on any error output or a
traceback on stderr; save a screenshot of the notebook's end in test-artifacts/.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tutorial_server.offline_backend import free_port

from .conftest import ROOT, wait_for
from .notebook_runs import NOTEBOOK_DIR, NOTEBOOKS, kernel_env

ARTIFACTS = ROOT / "test-artifacts"

# Every code cell shows an execution count (cells whose input is collapsed, like a hidden
# solution, show no prompt at all) and the notebook's kernel indicator says idle.
ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .map(e => e.textContent.trim()).filter(t => t !== '');
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t))
        && indicator !== null && indicator.dataset.status === 'idle';
}"""

KERNEL_IDLE = """() => {
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return indicator !== null && indicator.dataset.status === 'idle';
}"""

PROBLEMS = """() => {
    const errors = [...document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')];
    const stderr = [...document.querySelectorAll(
        '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
        .filter(e => e.textContent.includes('Traceback'));
    return [...errors, ...stderr].map(e => e.textContent.slice(0, 400));
}"""


def _digest() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOK_DIR.iterdir()
            if p.is_file()}


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("make-lab")
    settings = tmp / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    news = tmp / "settings" / "@jupyterlab" / "apputils-extension"  # no "Jupyter news?" toast
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token = secrets.token_hex(16)
    jupyter_port = free_port()
    db = tmp / "lab.sqlite3"
    env = kernel_env(TUTORIAL_DB=str(db), PORT="0", JUPYTER_PORT=str(jupyter_port),
                     JUPYTER_TOKEN=token, JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
                     JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
                     JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_DATA_DIR=str(tmp / "data"))
    before = _digest()
    started = time.monotonic()
    log = open(tmp / "lab.log", "wb")
    # The Makefile's `lab` target: $(BIN)/python -m tutorial_server lab
    process = subprocess.Popen([sys.executable, "-m", "tutorial_server", "lab", "--no-browser"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{jupyter_port}"

    def jupyter_answers():
        if process.poll() is not None:
            pytest.fail("`python -m tutorial_server lab` exited:\n"
                        + (tmp / "lab.log").read_text(errors="replace")[-3000:])
        try:
            return requests.get(f"{base}/api/status", params={"token": token},
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(jupyter_answers, 90, interval=0.2, message="the lab's JupyterLab")
        state = json.loads(Path(f"{db}.lab.json").read_text())
        print(f"\n`make lab` up (lab + JupyterLab) in {time.monotonic() - started:.1f} s")
        yield {"base": base, "token": token, "state": state, "log": tmp / "lab.log"}
    finally:
        process.send_signal(signal.SIGTERM)  # what Ctrl-C does: the lab stops JupyterLab too
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    assert _digest() == before, "running the notebooks in JupyterLab changed files in notebooks/"


def _session(make_lab, name: str) -> dict | None:
    sessions = requests.get(f"{make_lab['base']}/api/sessions",
                            params={"token": make_lab["token"]}, timeout=10).json()
    return next((s for s in sessions if s["path"] == name), None)


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.get_by_role("menuitem", name=item, exact=True).first.click()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_run_all_in_the_jupyterlab_make_lab_starts(path, make_lab, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    started = time.monotonic()
    try:
        # A workspace of its own per notebook: JupyterLab reopens nothing else.
        page.goto(f"{make_lab['base']}/lab/workspaces/test-{path.stem[:2]}/tree/{path.name}"
                  f"?token={make_lab['token']}")
        wait_for(lambda: (s := _session(make_lab, path.name))
                 and s["kernel"]["execution_state"] == "idle", 60, interval=0.25,
                 message=f"the kernel of {path.name}")
        page.wait_for_function(KERNEL_IDLE)
        if page.locator(".jp-Dialog").count():  # "Select Kernel", if JupyterLab asks
            page.locator(".jp-Dialog button", has_text="Select").click()
        _menu(page, "Edit", "Clear Outputs of All Cells")
        _menu(page, "Run", "Run All Cells")
        try:
            # Idle for a whole second: between two queued cells the kernel is idle for a moment.
            deadline = time.monotonic() + 240
            settled = 0
            while settled < 4:
                settled = settled + 1 if page.evaluate(ALL_CELLS_RAN) else 0
                assert time.monotonic() < deadline, f"{path.name}: Run All did not finish"
                time.sleep(0.25)
        finally:
            seconds = time.monotonic() - started
            page.locator(".jp-Cell").last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"make-lab-{path.stem}.png"))
        found = page.evaluate(PROBLEMS)
        assert found == [], f"{path.name}: error output in JupyterLab:\n" + "\n---\n".join(found)
        text = page.locator(".jp-Notebook").first.inner_text()
        assert make_lab["state"]["webhook_secret"] not in text
        assert "No lab was running" not in text, "the notebook used the lab make lab started"
        print(f"make lab, {path.name}: Run All {seconds:.1f} s (open + run)")
    finally:
        session = _session(make_lab, path.name)
        if session is not None:  # one kernel at a time: shut this one down
            requests.delete(f"{make_lab['base']}/api/sessions/{session['id']}",
                            params={"token": make_lab["token"]}, timeout=30)
        context.close()
