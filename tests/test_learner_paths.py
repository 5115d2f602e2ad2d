"""Two of the four ways a learner runs the notebooks (README: "Which path are you on?"):

- plain Jupyter, VS Code or nbconvert with no lab running: the notebook starts a private lab,
  says so in one line, and leaves no `stripe-lab-*` folder behind when its kernel ends, also
  when the kernel is killed;
- a class server (TUTORIAL_SERVER_URL): a lab elsewhere whose webhook secret is not known here;
  every notebook still reaches its last cell without an error output.

(`make lab` is tests/test_lab_in_browser.py; Stripe test mode is tests/test_notebooks_test_mode.py.)
Kernels are real ipykernel processes, labs are real `python -m tutorial_server.lab` processes.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
import requests
from jupyter_client.manager import KernelManager

from .notebook_runs import (NOTEBOOK_DIR, NOTEBOOKS, kernel_env, printed, problems,
                            run_notebook, run_notebooks)
from .running_lab import wait_for

ANNOUNCEMENT = re.compile(r"^No lab was running, so this notebook started a private one "
                          r"\(offline\); it stops and deletes its files when this kernel ends\. "
                          r"Dashboard: (http://127\.0\.0\.1:\d+/dashboard)$", re.M)


@pytest.fixture
def no_lab(tmp_path):
    """A learner's machine with no lab running: TUTORIAL_DB names a database no lab uses (never
    the developer's instance/), and temporary folders go to a folder of the test's own."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return temp, kernel_env(TUTORIAL_DB=str(tmp_path / "no-lab-here.sqlite3"), TMPDIR=str(temp))


def lab_folders(temp):
    return sorted(temp.glob("stripe-lab-*"))


def test_plain_jupyter_starts_a_private_lab_says_so_once_and_leaves_nothing(no_lab):
    temp, env = no_lab
    check_link = ("import requests\nfrom tutorial_server.notebook import connect_lab\n"
                  "print('dashboard answers', requests.get(connect_lab().public_url('/dashboard'),"
                  " timeout=10).status_code)")
    started = time.monotonic()
    nb, seconds = run_notebook(NOTEBOOK_DIR / "01_the_client_asks.ipynb", env,
                               extra_cells=[check_link])
    assert problems(nb) == []
    text = printed(nb)
    assert len(ANNOUNCEMENT.findall(text)) == 1, text[:1000]
    first_output = next(c for c in nb.cells if c.cell_type == "code" and c.outputs).outputs[0]
    assert ANNOUNCEMENT.search(first_output.text), "said where the lab comes from, at once"
    assert "dashboard answers 200" in text, "the link works while the kernel lives"
    # nbclient has shut the kernel down: the lab and its folder (secret included) are gone.
    wait_for(lambda: not lab_folders(temp), 15, message="the private lab's folder to go")
    url = ANNOUNCEMENT.search(text).group(1)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    print(f"plain Jupyter, 01 with a private lab: {seconds:.1f} s "
          f"(test {time.monotonic() - started:.1f} s)")


def test_a_killed_kernel_leaves_no_lab_and_no_folder(no_lab):
    temp, env = no_lab
    stale = temp / "stripe-lab-left-by-an-old-version"  # no owner, an hour old: removed
    stale.mkdir()
    (stale / "notebook.sqlite3").write_text("")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(NOTEBOOK_DIR))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            "from tutorial_server.notebook import connect_lab\nlab = connect_lab()", timeout=60)
        assert reply["content"]["status"] == "ok"
        [folder] = lab_folders(temp)
        assert (folder / "notebook.sqlite3.lab.json").exists()
        url = next(line for line in (folder / "notebook.sqlite3.lab.json").read_text().split(",")
                   if "server_url" in line).split('"')[3]
        assert requests.get(url + "/api/config", timeout=5).status_code == 200
        # What Jupyter does to a kernel that will not stop: SIGKILL to its process group.
        os.killpg(os.getpgid(km.provisioner.process.pid), signal.SIGKILL)
        wait_for(lambda: not lab_folders(temp), 15, message="the killed kernel's lab folder to go")
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/api/config", timeout=5)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def class_server_runs(lab):
    """Every notebook, four at a time, with TUTORIAL_SERVER_URL naming the session's lab, as a
    learner's names the instructor's machine; its webhook secret is NOT given to the kernels."""
    started = time.monotonic()
    runs = run_notebooks(NOTEBOOKS, kernel_env(TUTORIAL_SERVER_URL=lab.url))
    print(f"\nclass server, all {len(NOTEBOOKS)} notebooks: {time.monotonic() - started:.1f} s")
    return runs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_class_server_every_notebook_reaches_its_end(path, lab, class_server_runs):
    nb, seconds = class_server_runs[path.name]
    assert problems(nb) == [], "\n".join(problems(nb))
    assert lab.webhook_secret not in printed(nb)
    assert "No lab was running" not in printed(nb), "the class server was used"
    # A skipped cell shows what it prints on a lab of your own (its published output).
    text = printed(nb)
    skipped = text.count("Skipped: this cell signs") + text.count("Skipped: this cell uses the lab's")
    assert text.count(f"On a lab of your own it prints (as published in {path.name}") == skipped
    print(f"class server, {path.name}: {seconds:.1f} s, {skipped} cells skipped")
