"""Every notebook as a learner of a class: Run All with TUTORIAL_SERVER_URL naming a class lab on
a classroom address (tests/classroom_network.py), in a module of its own (the notebooks' event
loops cannot run beside the browser tests' Playwright loop in test_class_walls.py).
"""
from __future__ import annotations

import json
import sqlite3

from .classroom_network import class_lab, room  # noqa: F401 (fixtures)
from .notebook_runs import NOTEBOOKS, kernel_env, printed, problems, run_notebooks


def test_every_notebook_reaches_its_end_as_a_learner_of_a_class(class_lab, tmp_path):
    """Run All for every notebook, four at a time, with TUTORIAL_SERVER_URL naming a class lab
    on a classroom address: each kernel joins the class by itself (a learner key of its own,
    kept in its home) and plays the customer through the merchant server."""
    lab = class_lab
    runs = run_notebooks(NOTEBOOKS, kernel_env(TUTORIAL_SERVER_URL=lab.url, HOME=str(tmp_path)))
    for path in NOTEBOOKS:
        nb, _seconds = runs[path.name]
        assert problems(nb) == [], f"{path.name}:\n" + "\n".join(problems(nb))
        assert "lk_" not in printed(nb), f"{path.name} shows a learner key"
        assert "No lab was running" not in printed(nb), "the class lab was used"
    keys = json.loads((tmp_path / ".stripe-lab" / "learner-keys.json").read_text())
    assert keys and all(key.startswith("lk_") for key in keys.values())
    assert oct((tmp_path / ".stripe-lab" / "learner-keys.json").stat().st_mode & 0o777) == "0o600"
    joined = sqlite3.connect(lab.db_path).execute("SELECT COUNT(*) FROM learners").fetchone()[0]
    assert joined >= len(NOTEBOOKS)  # each kernel joined as a customer of its own
