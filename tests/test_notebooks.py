"""The notebooks as lessons: each has what a lesson needs, links that work, no stored secret,
and runs again, top to bottom, against a lab that already holds what earlier runs left.

(nbval, configured in pyproject.toml, separately re-runs every notebook in a fresh kernel with
a lab of its own and compares the stored outputs.)
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SECRET = re.compile(r"\b(sk|rk)_(test|live)_[0-9A-Za-z]{8,}|\bwhsec_[0-9A-Za-z]{8,}|\bpk_live_[0-9A-Za-z]{8,}")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def _nav_targets(text: str) -> list[str]:
    return [target for _label, target in LINK.findall(text)]


def test_there_is_an_overview_and_a_notebook_per_step():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers[:7] == ["00", "01", "02", "03", "04", "05", "06"], numbers
    contents = (NOTEBOOK_DIR / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"({path.name})" in contents, f"{path.name} is missing from notebooks/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_is_a_whole_lesson(path):
    nb = _read(path)
    markdown = _markdown(nb)
    text = "\n".join(markdown)
    first, last = markdown[0], markdown[-1]
    assert first.lstrip().startswith("[") and "# " in first, "starts with a nav line and a title"
    assert "Objectives" in first or "Objectives" in markdown[1], "objectives come first"
    assert "Questions this notebook answers" in first, "the questions it answers come first"
    assert "## Key points" in last, "key points come last"
    assert "```mermaid" in text, "a diagram of where this step sits in the flow"
    assert "tutorial_server/" in text, "names the server code it teaches"
    assert re.search(r"^## Exercise", text, re.M), "has an exercise"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nav_links_top_and_bottom_point_to_the_neighbours(path):
    nb = _read(path)
    markdown = _markdown(nb)
    index = NOTEBOOKS.index(path)
    expected = []
    if index > 0:
        expected.append(NOTEBOOKS[index - 1].name)
    expected.append("README.md")
    if index + 1 < len(NOTEBOOKS):
        expected.append(NOTEBOOKS[index + 1].name)
    top = _nav_targets(markdown[0].strip().splitlines()[0])
    bottom = _nav_targets(markdown[-1].strip().splitlines()[-1])
    assert top == expected, f"top nav {top}"
    assert bottom == expected, f"bottom nav {bottom}"
    for target in top:
        assert (NOTEBOOK_DIR / target).exists(), target


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_has_a_check_and_a_hidden_solution_that_passes_it(path):
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    answer = [c for c in code if re.search(r"^my_\w+ = None", c.source, re.M)]
    assert answer, "a cell where the learner writes their answer (`my_... = None`)"
    solution = [c for c in code if "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source]
    assert solution, "a solution between BEGIN/END SOLUTION markers"
    for cell in solution:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, "solution hidden"
        printed = "".join(o.get("text", "") for o in cell.outputs)
        assert "✓" in printed, "the stored run shows the solution passing its check"
    checks = [c for c in code if "check(" in c.source and c not in solution]
    assert any("Not yet" in "".join(o.get("text", "") for o in c.outputs) for c in checks), \
        "the check tells a learner who has not answered yet what to do"
    assert any("<details>" in m and "Solution" in m for m in _markdown(nb)), "a solution to reveal"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stored_from_one_clean_run_and_hold_no_secret(path):
    raw = path.read_text()
    assert not SECRET.search(raw), f"a secret-looking value is stored: {SECRET.search(raw).group(0)[:12]}..."
    nb = _read(path)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "run top to bottom in one fresh kernel"
    assert any(c.outputs for c in nb.cells if c.cell_type == "code"), "outputs are stored"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], "a stored error"


@pytest.fixture(scope="module")
def shared_lab_env(lab, monkeypatch_module):
    """Kernels attach to the session's lab (which other tests have already filled)."""
    monkeypatch_module.setenv("TUTORIAL_SERVER_URL", lab.url)
    monkeypatch_module.setenv("STRIPE_WEBHOOK_SECRET", lab.webhook_secret)
    monkeypatch_module.delenv("TUTORIAL_LAB", raising=False)
    return lab


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_again_without_a_reset(path, shared_lab_env):
    """Top to bottom twice against one lab that is never reset: re-running must not fail on
    what the first run (or another notebook, or another test) left behind."""
    for _ in range(2):
        nb = _read(path)
        NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, json.dumps(errors)[:500]
