"""The course on every Python it supports (pyproject.toml's classifiers: 3.10 to 3.13).

This suite runs on one Python (.venv's). For each other supported version, that version's own
environment (.venv-3.X: the package and its test tools) runs the fast tier and every notebook
under strict nbval (stored outputs compared, with tests/nbval_sanitize.cfg's masks only), as a
subprocess, from this checkout. `make test` names the versions in TEST_OTHER_PYTHONS (the oldest
and the newest found, by default), and this test sets them up itself if need be, while the other
test files run. Any other version runs if it is already set up (`make other-pythons`), and is
skipped, with the reason, if not or if the machine does not have it. Nothing is skipped inside a
run. tools/pythons.py says which versions are supported and where they are.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest

from .running_lab import ROOT

_spec = importlib.util.spec_from_file_location("pythons", ROOT / "tools" / "pythons.py")
pythons = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pythons)

SUPPORTED = pythons.supported()
THIS = "%d.%d" % sys.version_info[:2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Each notebook's code cells: one nbval test each.
NOTEBOOK_CELLS = sum(c.cell_type == "code" for p in NOTEBOOKS
                     for c in nbformat.read(p, as_version=4).cells)


# The versions `make test` asks for (OTHER_PYTHONS): set up here, if need be, before they run.
REQUESTED = os.environ.get("TEST_OTHER_PYTHONS", "").split()


def child_env() -> dict:
    """This environment, less what belongs to this pytest run: its xdist worker, its record of
    Stripe requests and the lab settings its conftest set (the other run sets its own)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "TUTORIAL_", "STRIPE_", "VIRTUAL_ENV", "TEST_OTHER"))}


def environment_of(version: str):
    """(.venv-3.X's interpreter, None), or (None, why it cannot run here)."""
    python = ROOT / f".venv-{version}" / "bin" / "python"
    if version == THIS:
        return None, f"Python {version} runs this suite itself: every other test is the check"
    if pythons.is_set_up(version) or version in REQUESTED:
        return python, None
    found = pythons.find(version)
    if found is None:
        return None, (f"no Python {version} on this machine (python{version} on the PATH, "
                      f"or pyenv's versions/{version}.*)")
    state = "out of date" if python.exists() else "not set up"
    return None, (f"Python {version} is here ({found}) but .venv-{version} is {state}: "
                  f"make other-pythons OTHER_PYTHONS={version}, or make test "
                  f"OTHER_PYTHONS='{' '.join(REQUESTED + [version])}'")


@dataclass
class Run:
    """One version: its set-up (if needed), then its pytest run; all output goes to `log`."""
    version: str
    python: Path
    log: Path
    report: Path
    returncode: int | None = None
    setup_seconds: float = 0.0
    test_seconds: float = 0.0
    process: subprocess.Popen | None = None

    def __call__(self) -> None:
        with self.log.open("w") as out:
            started = time.monotonic()
            self.returncode = subprocess.call(
                [sys.executable, str(ROOT / "tools" / "pythons.py"), "setup", self.version],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.setup_seconds = time.monotonic() - started
            if self.returncode:
                return
            started = time.monotonic()
            # -n 2: each notebook whole on one of two workers (pyproject's --dist loadfile).
            self.process = subprocess.Popen(
                [str(self.python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                 f"--junitxml={self.report}", "tests/fast", "notebooks"],
                cwd=ROOT, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
            self.returncode = self.process.wait(timeout=900)
            self.test_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Ctrl-C for a run still going (this session ends first): its labs and kernels stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """Every selected version's run, all started at once: a set-up mostly downloads and
    unpacks, a run mostly waits on kernels and labs, so side by side they take little longer
    than one (and under `make test` the other test files run meanwhile)."""
    selected = {item.callspec.params["version"] for item in request.session.items
                if getattr(item, "module", None) is sys.modules[__name__]
                and hasattr(item, "callspec")}
    started: dict[str, tuple[Run, threading.Thread]] = {}
    for version in sorted(selected):
        python, _why = environment_of(version)
        if python is not None:
            folder = tmp_path_factory.mktemp(f"python-{version}")
            run = Run(version, python, folder / "output.log", folder / "report.xml")
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            started[version] = (run, thread)
    yield started
    for run, _thread in started.values():
        run.stop()


def outcomes(report) -> dict[str, dict[str, int]]:
    """From a JUnit report: {"notebooks": {"passed": 138}, "tests": {"passed": 327}}."""
    found: dict[str, dict[str, int]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        where = "notebooks" if case.get("classname", "").startswith("notebooks.") else "tests"
        outcome = next(("xfailed" if child.get("type") == "pytest.xfail" else child.tag
                        for child in case if child.tag in ("failure", "error", "skipped")),
                       "passed")
        found.setdefault(where, {}).setdefault(outcome, 0)
        found[where][outcome] += 1
    return found


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_fast_tier_and_the_notebooks_pass_on(version, runs):
    python, why = environment_of(version)
    if python is None:
        pytest.skip(why)
    run, thread = runs[version]
    thread.join(timeout=1500)
    output = run.log.read_text() if run.log.exists() else ""
    assert not thread.is_alive(), f"Python {version} still running after 25 minutes: {output[-3000:]}"
    found = outcomes(run.report) if run.report.exists() else {}
    print(f"Python {version}: set up in {run.setup_seconds:.0f} s, {found} in "
          f"{run.test_seconds:.0f} s")
    assert run.returncode == 0, output[-5000:]
    reported = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert reported == version, f".venv-{version} runs Python {reported}"
    # Every code cell of every notebook compared with its stored outputs, nothing skipped, and
    # the fast tier beside them.
    assert found.get("notebooks") == {"passed": NOTEBOOK_CELLS}, found
    assert set(found.get("tests", {})) <= {"passed", "xfailed"}, found  # an expected failure
    assert found["tests"]["passed"] > 0, found                            # is the suite's own
