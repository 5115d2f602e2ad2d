"""The course's own files around the package, for `python -m tutorial_server.lab lab` without
make: the notebooks JupyterLab opens, JupyterLab's settings override, the React shop's build.

`make lab` (and `pip install -e .`) runs the package from the course's folder itself. A plain
`pip install .` copies the package into the environment without the notebooks, the shop's
sources or its build: the lab then uses the course's folder it is started in (the clone).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..config import PROJECT_ROOT

SETTINGS_OVERRIDE = "stripe-payments-lab.json"
COPY_FOLDER = "stripe-payments-lab"  # where `python -m tutorial_server.lab notebooks` copies them
SHOP_BUILD_HINT = ("The React shop (/shop/) is not built: it needs Node.js 20.19+ and npm "
                   "(make client, or in client/: npm ci, then npm run build). The lab starts "
                   "without it.")


def course_folder() -> Path | None:
    """The folder with the course's notebooks: the package's own (a clone, an editable install),
    else the current folder if it is a copy of the course."""
    for folder in (PROJECT_ROOT, Path.cwd()):
        if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return None


def notebook_folder() -> Path:
    """The notebooks JupyterLab opens: the course folder's, else the learner's own copy
    (`python -m tutorial_server.lab notebooks [DEST]` makes one) in the current folder or in
    ./stripe-payments-lab, its default."""
    folder = course_folder()
    if folder is not None:
        return folder / "notebooks"
    for copy in (Path.cwd(), Path.cwd() / COPY_FOLDER):
        if any(copy.glob("00_*.ipynb")):
            return copy
    raise SystemExit("No notebooks here: start the lab in the course's folder (a clone of the "
                     "repository), or copy the notebooks first with `python -m tutorial_server.lab "
                     f"notebooks` (into ./{COPY_FOLDER}) and start the lab again.")


def install_settings_override(prefix: str = sys.prefix) -> None:
    """What `make lab` installs beside JupyterLab: the course's settings override (the "get
    notified about official Jupyter news?" prompt off). A plain `pip install .` ships it already;
    an editable one does not. A read-only environment keeps JupyterLab's default (the prompt)."""
    target = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / SETTINGS_OVERRIDE
    folder = course_folder()
    source = folder / "jupyterlab-settings" / SETTINGS_OVERRIDE if folder else None
    if target.exists() or source is None or not source.is_file():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError:
        pass


def build_shop(run=subprocess.run) -> str | None:
    """`make client`, once: the React shop built from the course's client/ with npm (and the
    Mermaid library the dashboard draws traces with copied beside it), if it is not built yet.
    Returns None when there is nothing to do (an installed course brings its build), else a line
    saying how to build it."""
    folder = course_folder()
    client = folder / "client" if folder else None
    if client is None or not (client / "package.json").is_file() or (client / "dist" / "index.html").is_file():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return SHOP_BUILD_HINT
    print("  React shop       not built yet: building it with npm, once (client/)...", flush=True)
    for step in ([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                 [npm, "run", "--silent", "build", "--", "--logLevel", "warn"]):
        try:
            if run(step, cwd=client).returncode != 0:
                return SHOP_BUILD_HINT
        except OSError:
            return SHOP_BUILD_HINT
    mermaid = client / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if mermaid.is_file():
        (client / "dist" / "vendor").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mermaid, client / "dist" / "vendor" / mermaid.name)
    return None
