"""The learner's main path, end to end: `make lab`, then every notebook, Run All, in the
JupyterLab it starts, in real Chromium.

The lab is started exactly as `make lab` starts it (`python -m tutorial_server.lab lab --no-shop-build`, from the
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
import secrets
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.process import LabDidNotStart, LabProcess
from tutorial_server.lab.offline_stripe import free_port

from .notebook_runs import NOTEBOOK_DIR, NOTEBOOKS, kernel_env
from .running_lab import ROOT, wait_for

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
    # The Makefile's `lab` target: $(BIN)/python -m tutorial_server.lab lab --no-shop-build
    lab = LabProcess(db, argv=[sys.executable, "-m", "tutorial_server.lab", "lab", "--no-browser",
                               "--no-shop-build"],
                     env=env, log=tmp / "lab.log")
    try:
        lab.start(timeout=60)  # the lab's state file: its server is up; JupyterLab comes next
    except LabDidNotStart as e:
        pytest.fail(f"`python -m tutorial_server.lab lab`: {e}:\n"
                    + (tmp / "lab.log").read_text(errors="replace")[-3000:])
    base = f"http://127.0.0.1:{jupyter_port}"

    def jupyter_answers():
        if not lab.running:
            pytest.fail("`python -m tutorial_server.lab lab` exited:\n"
                        + (tmp / "lab.log").read_text(errors="replace")[-3000:])
        try:
            return requests.get(f"{base}/api/status", params={"token": token},
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(jupyter_answers, 90, interval=0.2, message="the lab's JupyterLab")
        print(f"\n`make lab` up (lab + JupyterLab) in {time.monotonic() - started:.1f} s")
        yield {"base": base, "token": token, "state": lab.state, "log": tmp / "lab.log"}
    finally:
        lab.stop(signal.SIGTERM, timeout=30)  # what Ctrl-C does: the lab stops JupyterLab too
    assert _digest() == before, "running the notebooks in JupyterLab changed files in notebooks/"


def _session(make_lab, name: str) -> dict | None:
    sessions = requests.get(f"{make_lab['base']}/api/sessions",
                            params={"token": make_lab["token"]}, timeout=10).json()
    return next((s for s in sessions if s["path"] == name), None)


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.get_by_role("menuitem", name=item, exact=True).first.click()


# Notebooks that run alone, after all the others: 07 re-points the lab's webhooks for a while,
# which would make another notebook's payment lose its webhook.
ALONE = {"07_when_things_go_wrong.ipynb"}
PARALLEL = 4  # notebooks open at once (each its own page and kernel); most time is waiting


class NotebookRun:
    """One notebook in its own browser page: open, wait for the kernel, Run All, wait, look."""

    def __init__(self, path: Path, make_lab: dict, browser) -> None:
        self.path, self.lab = path, make_lab
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.started = time.monotonic()
        self.deadline = self.started + 240
        self.state, self.settled, self.seconds, self.problems = "opening", 0, 0.0, []
        # A workspace of its own per notebook: JupyterLab reopens nothing else.
        self.page.goto(f"{make_lab['base']}/lab/workspaces/test-{path.stem[:2]}/tree/"
                       f"{path.name}?token={make_lab['token']}")

    def step(self) -> None:
        """Move on if the page is ready for the next step (called every quarter second)."""
        if time.monotonic() > self.deadline:
            self.finish([f"{self.path.name}: no end after 240 s ({self.state})"])
        elif self.state == "opening":
            session = _session(self.lab, self.path.name)
            if (session and session["kernel"]["execution_state"] == "idle"
                    and self.page.evaluate(KERNEL_IDLE)):
                if self.page.locator(".jp-Dialog").count():  # "Select Kernel", if it asks
                    self.page.locator(".jp-Dialog button", has_text="Select").click()
                _menu(self.page, "Edit", "Clear Outputs of All Cells")
                _menu(self.page, "Run", "Run All Cells")
                self.state = "running"
        elif self.state == "running":
            # Done when it holds for a whole second: between two queued cells the kernel is
            # idle for a moment.
            self.settled = self.settled + 1 if self.page.evaluate(ALL_CELLS_RAN) else 0
            if self.settled >= 4:
                self.finish(self.page.evaluate(PROBLEMS))

    def finish(self, problems: list[str]) -> None:
        self.seconds = time.monotonic() - self.started
        self.state, self.problems = "done", problems
        page = self.page
        try:
            page.locator(".jp-Cell").last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"make-lab-{self.path.stem}.png"))
            self.text = page.locator(".jp-Notebook").first.inner_text()
        finally:
            session = _session(self.lab, self.path.name)
            if session is not None:  # its kernel is not needed any more
                requests.delete(f"{self.lab['base']}/api/sessions/{session['id']}",
                                params={"token": self.lab["token"]}, timeout=30)
            self.context.close()


@pytest.fixture(scope="module")
def runs_in_jupyterlab(make_lab, browser) -> dict[str, NotebookRun]:
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    pending = sorted(NOTEBOOKS, key=lambda p: p.name in ALONE)  # the loners last
    active: list[NotebookRun] = []
    done: dict[str, NotebookRun] = {}
    while pending or active:
        while pending and len(active) < PARALLEL and not (
                active and (pending[0].name in ALONE or active[0].path.name in ALONE)):
            active.append(NotebookRun(pending.pop(0), make_lab, browser))
        for run in active:
            run.step()
        for run in [r for r in active if r.state == "done"]:
            active.remove(run)
            done[run.path.name] = run
        time.sleep(0.25)
    print(f"\nmake lab: all {len(done)} notebooks run in JupyterLab in "
          f"{time.monotonic() - started:.1f} s ({PARALLEL} at a time)")
    return done


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_run_all_in_the_jupyterlab_make_lab_starts(path, make_lab, runs_in_jupyterlab):
    run = runs_in_jupyterlab[path.name]
    assert run.problems == [], (f"{path.name}: error output in JupyterLab:\n"
                                + "\n---\n".join(run.problems))
    assert make_lab["state"]["webhook_secret"] not in run.text
    assert "No lab was running" not in run.text, "the notebook used the lab make lab started"
    print(f"make lab, {path.name}: open + Run All {run.seconds:.1f} s")
