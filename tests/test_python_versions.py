"""The course on every Python it supports (pyproject.toml's classifiers: 3.10 to 3.13).

This suite runs on one Python (.venv's). For each other supported version this machine has, that
version's own environment (.venv-3.X, with the package and its test tools; `make other-pythons`,
which `make test` runs for the oldest and the newest found) runs the fast tier and every notebook
under strict nbval (stored outputs compared, tests/nbval_sanitize.cfg's masks only), as
subprocesses, from this checkout. A version the machine does not have, or has not set up, is
skipped with the reason; nothing is skipped inside a run.

tools/pythons.py says which versions are supported and where they are.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
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


def child_env() -> dict:
    """This environment, less what belongs to this pytest run: its xdist worker, its record of
    Stripe requests and the lab settings its conftest set (the other run sets its own)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "TUTORIAL_", "STRIPE_", "VIRTUAL_ENV"))}


def environment_of(version: str):
    """(.venv-3.X's interpreter, None), or (None, why it cannot run here)."""
    venv = ROOT / f".venv-{version}"
    marker = venv / ".test-installed"
    if version == THIS:
        return None, f"Python {version} runs this suite itself: every other test is the check"
    if not marker.exists():
        found = pythons.find(version)
        if found is None:
            return None, (f"no Python {version} on this machine (python{version} on the PATH, "
                          f"or pyenv's versions/{version}.*)")
        return None, (f"Python {version} is here ({found}) but not set up for the tests: "
                      f"make other-pythons OTHER_PYTHONS={version}")
    if marker.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        return None, (f".venv-{version} is older than pyproject.toml: "
                      f"make other-pythons OTHER_PYTHONS={version}")
    return venv / "bin" / "python", None


@dataclass
class Run:
    """One version's pytest, running: its output goes to `log`, its JUnit report to `report`."""
    process: subprocess.Popen
    log: Path
    report: Path
    started: float


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """Every selected, set-up version's run, started at once: each spends most of its time
    waiting on kernels and labs, so side by side they take little longer than one."""
    selected = {item.callspec.params["version"] for item in request.session.items
                if item.module is sys.modules[__name__] and hasattr(item, "callspec")}
    started: dict[str, Run] = {}
    for version in sorted(selected):
        python, _why = environment_of(version)
        if python is None:
            continue
        folder = tmp_path_factory.mktemp(f"python-{version}")
        log, report = folder / "pytest.log", folder / "report.xml"
        with log.open("w") as out:
            # -n 2: each notebook whole on one of two workers (pyproject's --dist loadfile).
            process = subprocess.Popen(
                [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                 f"--junitxml={report}", "tests/fast", "notebooks"],
                cwd=ROOT, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        started[version] = Run(process, log, report, time.monotonic())
    yield started
    for run in started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def outcomes(report) -> dict[str, dict[str, int]]:
    """From a JUnit report: {"notebooks": {"passed": 138}, "tests": {"passed": 327}}."""
    found: dict[str, dict[str, int]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        where = "notebooks" if case.get("classname", "").startswith("notebooks.") else "tests"
        outcome = next((child.tag for child in case if child.tag in
                        ("failure", "error", "skipped")), "passed")
        found.setdefault(where, {}).setdefault(outcome, 0)
        found[where][outcome] += 1
    return found


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_fast_tier_and_the_notebooks_pass_on(version, runs):
    python, why = environment_of(version)
    if python is None:
        pytest.skip(why)
    reported = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert reported == version, f".venv-{version} runs Python {reported}"
    run = runs[version]
    returncode = run.process.wait(timeout=900)
    output = run.log.read_text()
    found = outcomes(run.report) if run.report.exists() else {}
    print(f"Python {version}: {found}, {time.monotonic() - run.started:.0f} s after the start")
    assert returncode == 0, output[-5000:]
    # Every code cell of every notebook compared with its stored outputs, nothing skipped, and
    # the fast tier beside them.
    assert found.get("notebooks") == {"passed": NOTEBOOK_CELLS}, found
    assert list(found.get("tests", {})) == ["passed"], found
