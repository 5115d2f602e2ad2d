"""What a skipped cell would have printed on a lab of your own.

On a class server, cells that sign webhooks or use the lab's Stripe account skip themselves
(connect.signing_possible, connect.stripe_account_possible). Running such a cell replaces the
output the notebook was published with, so the skip line shows that output itself: a copy of it
is kept in skipped_cells.json, one entry per skippable cell, keyed by the cell's source
(`tools/skipped_cells.py` writes it from the notebooks' stored outputs).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

SAMPLES = Path(__file__).with_name("skipped_cells.json")
MAX_LINES = 24


def cell_key(source: str) -> str:
    """The key of a cell in skipped_cells.json: a short hash of its source."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def current_cell_source() -> str | None:
    """The source of the cell running now, in a Jupyter kernel (None elsewhere)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return None
    history = shell.history_manager.input_hist_raw
    return history[-1] if history else None


def expected_output(source: str | None) -> tuple[str, str] | None:
    """(notebook name, what the cell printed there) for a published cell, or None."""
    if not source:
        return None
    try:
        samples = json.loads(SAMPLES.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sample = samples.get(cell_key(source))
    return (sample["notebook"], sample["text"]) if sample else None


def what_it_would_print() -> str:
    """The lines a skip message ends with: the published output, indented, or where to find it."""
    found = expected_output(current_cell_source())
    if found is None:
        return ("On a lab of your own it prints what this cell shows in the published notebook "
                "(the project's notebooks/ folder, as committed).")
    notebook, text = found
    lines = text.rstrip("\n").splitlines() or ["(nothing)"]
    more = len(lines) - MAX_LINES
    shown = lines[:MAX_LINES] + ([f"... ({more} more lines)"] if more > 0 else [])
    return (f"On a lab of your own it prints (as published in {notebook}; ids differ each run):\n"
            + "\n".join("    " + line for line in shown))
