"""A notebook's private lab: what a notebook starts when no lab is running (plain Jupyter,
VS Code, nbconvert). `python -m tutorial_server.lab.private FOLDER KERNEL_PID`

It is `serve` on a free port with its database in FOLDER (a `stripe-lab-*` temporary folder),
and it lives exactly as long as the kernel that started it: when that process is gone, however
it ended (shut down, restarted, killed), the lab stops and deletes FOLDER, which holds the
database, the log and `lab.json` with the webhook secret.

Why a process of its own and a watch on the kernel's pid rather than the kernel's atexit: a
killed or restarted kernel runs no atexit handler, and Jupyter kills the kernel's whole process
group, so the lab runs in its own session and notices the kernel's end by itself.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from ..config import PROJECT_ROOT
from .cli import settings_from_environment
from .launcher import run_serve

FOLDER_PREFIX = "stripe-lab-"
OWNER_FILE = "kernel.pid"  # the pid of the kernel that owns the folder
DATABASE = "notebook.sqlite3"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:  # Linux: a zombie (dead, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def make_folder() -> Path:
    """A new private-lab folder, owned by this process (the kernel)."""
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    return folder


def remove_stale_folders(older_than: float = 60.0) -> list[Path]:
    """Delete private-lab folders whose kernel is gone (left by an older version, or by a lab
    that was itself killed with SIGKILL). Folders of running kernels are left alone."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            if not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            owner = folder / OWNER_FILE
            if owner.exists():
                if _alive(int(owner.read_text().strip() or 0)):
                    continue
            elif time.time() - folder.stat().st_mtime < older_than:
                continue  # being created right now, or by a version without the owner file
            else:
                state = folder / f"{DATABASE}.lab.json"
                if state.exists() and _alive(_state_pid(state)):
                    continue
        except (OSError, ValueError):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _state_pid(path: Path) -> int:
    return int(json.loads(path.read_text()).get("pid", 0))


def _stop_when_gone(pid: int) -> None:
    # The kernel started this lab, so it is our parent: when it dies we are handed to another
    # parent at once (even while the dead kernel waits, a zombie, to be reaped).
    while os.getppid() == pid and _alive(pid):
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # run_serve turns it into a clean stop


def main(argv: list[str]) -> None:
    folder, kernel_pid = Path(argv[0]), int(argv[1])
    keep = False
    try:
        # A learner's test-mode keys, from the project's .env as `serve` reads them.
        settings = replace(settings_from_environment(PROJECT_ROOT / ".env"), db_path=folder / DATABASE, port=0)
        threading.Thread(target=_stop_when_gone, args=(kernel_pid,), daemon=True).start()
        run_serve(settings)
    except SystemExit as e:
        # It could not start, and said why in one line naming a log in FOLDER: keep the folder
        # for the learner to read; the kernel deletes it when it ends (connect.py).
        keep = isinstance(e.code, str)
        raise
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
