"""Running notebooks the way a learner's Jupyter does, for the tests of the four paths
(tests/test_learner_paths.py, tests/test_lab_in_browser.py, tests/test_notebooks_test_mode.py).

A kernel gets exactly the environment given here (as a kernel gets JupyterLab's environment),
never the test process's own TUTORIAL_* or STRIPE_* variables by accident.
"""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tutorial_server.lab.stripe_http import ENV_VAR as RECORD_STRIPE_REQUESTS

from .running_lab import ROOT

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def kernel_env(**settings: str) -> dict:
    """The environment of a learner's Jupyter: no lab settings but the ones given; empty
    Stripe keys (so a developer's .env cannot switch a test to real Stripe) unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TUTORIAL_"))}
    env.update(STRIPE_SECRET_KEY="", STRIPE_PUBLISHABLE_KEY="", STRIPE_WEBHOOK_SECRET="",
               PYTHONUNBUFFERED="1")
    if os.environ.get(RECORD_STRIPE_REQUESTS):  # every Stripe request is checked at the end
        env[RECORD_STRIPE_REQUESTS] = os.environ[RECORD_STRIPE_REQUESTS]
    env.update(settings)
    return env


def run_notebook(path: Path, env: dict, timeout: int = 120, extra_cells: list[str] = ()):
    """Run All in a fresh kernel with `env`; errors are kept as outputs (not raised), so a test
    can say which cells failed. Returns the executed notebook and the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in extra_cells]
    started = time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
                   ).execute(env=env)
    return nb, time.monotonic() - started


def run_notebooks(paths: list[Path], env: dict, parallel: int = 4,
                  timeout: int = 120) -> dict[str, tuple]:
    """Run All for several notebooks at once (each in its own kernel, at most `parallel` at a
    time): most of a notebook's time is spent waiting (kernel start, webhooks), so this is much
    faster than one after another. Returns {notebook name: (executed notebook, seconds)}."""
    async def run_all():
        gate = asyncio.Semaphore(parallel)

        async def run_one(path: Path):
            async with gate:
                nb = nbformat.read(path, as_version=4)
                started = time.monotonic()
                await NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     record_timing=False, allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}}
                                     ).async_execute(env=env)
                return path.name, (nb, time.monotonic() - started)

        return dict(await asyncio.gather(*(run_one(p) for p in paths)))

    return asyncio.run(run_all())


def text_of(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return str(output.get("data", {}).get("text/plain", ""))


def problems(nb) -> list[str]:
    """Error outputs, tracebacks printed to stderr, and cells that never ran."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            found.append(f"cell {index} did not run")
        for output in cell.outputs:
            if output.output_type == "error":
                found.append(f"cell {index}: {output.ename}: {output.evalue}"[:400])
            elif (output.output_type == "stream" and output.name == "stderr"
                  and "Traceback" in output.text):
                found.append(f"cell {index}: a traceback on stderr: {output.text[-300:]}")
    return found


def printed(nb) -> str:
    """Everything the notebook's code cells printed or displayed as text. A print can reach
    the notebook as several stream outputs on a busy machine ("dashboard answers", " 200\n"):
    one stream's pieces are joined as they were printed, everything else a line apart."""
    parts: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        previous = None
        for output in cell.outputs:
            stream = output.get("name") if output.output_type == "stream" else None
            if stream is not None and stream == previous and parts:
                parts[-1] += output.text
            else:
                parts.append(text_of(output))
            previous = stream
    return "\n".join(parts)
