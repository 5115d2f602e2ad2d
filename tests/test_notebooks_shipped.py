"""A plain (not editable) install ships the notebooks: a wheel built from this checkout, installed
into a fresh environment, gives them to `python -m tutorial_server.lab notebooks DEST`, which
copies them and never overwrites a learner's edited copy. (The unit-level rules are in
tests/fast/test_class_progress.py.) About half a minute: it builds the wheel."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .running_lab import ROOT


def _python_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TUTORIAL_"))}


def test_a_wheel_ships_the_notebooks_and_the_command_copies_them(tmp_path):
    # Built from a copy: a build writes build/ and *.egg-info beside the sources, and other
    # tests check that nothing appears in the checkout.
    sources = tmp_path / "sources"
    shutil.copytree(ROOT, sources, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "test-artifacts", "__pycache__",
        ".*_cache", ".hypothesis", "client"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "-w", str(wheels), str(sources)], capture_output=True, text=True,
                           timeout=600, env=_python_env())
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("stripe_payments_lab-*.whl"))

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                                "--no-deps", "--quiet", str(wheel)], capture_output=True,
                               text=True, timeout=300, env=_python_env())
    assert installed.returncode == 0, installed.stderr[-2000:]
    # The dependencies from this environment, after the fresh one's own packages.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = subprocess.run([str(python), "-c", "import tutorial_server; print(tutorial_server.__file__)"],
                           capture_output=True, text=True, check=True, env=_python_env(),
                           cwd=tmp_path).stdout.strip()
    assert where.startswith(site)  # the wheel's copy, not this checkout
    shipped = env_dir / "share" / "stripe-payments-lab" / "notebooks"
    assert sorted(p.name for p in shipped.glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))

    command = [str(python), "-m", "tutorial_server.lab", "notebooks"]
    first = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                           env=_python_env(), timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    course = tmp_path / "stripe-payments-lab"  # the default destination
    assert sorted(p.name for p in course.glob("*.ipynb")) == sorted(p.name for p in shipped.glob("*.ipynb"))
    assert f"copied  {len(list(shipped.iterdir()))}:" in first.stdout

    mine = course / "02_the_server_prices_the_order.ipynb"
    mine.write_text(json.dumps({"cells": [], "metadata": {}, "my": "work"}))
    (course / "README.md").unlink()
    second = subprocess.run([*command, str(course)], capture_output=True, text=True,
                            cwd=tmp_path, env=_python_env(), timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads(mine.read_text())["my"] == "work"
    assert "copied  1: README.md" in second.stdout
    assert "kept yours" in second.stdout and mine.name in second.stdout
