"""Run notebooks top to bottom in a fresh kernel and store their outputs (what nbval compares).

    .venv/bin/python tools/run_notebooks.py notebooks/01_*.ipynb
    .venv/bin/python tools/run_notebooks.py            # every notebook

Each notebook starts a lab of its own (TUTORIAL_LAB=own), exactly as under `make test`.
"""
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return time.monotonic() - started


def main(args: list[str]) -> None:
    os.environ["TUTORIAL_LAB"] = "own"
    paths = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    for path in paths:
        print(f"{path.name}: {run(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
