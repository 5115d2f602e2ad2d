"""The notebooks as lessons: each has what a lesson needs, links that work, no stored secret, and
its key passes its check against a lab that already holds what earlier runs left (run twice
where a second run can meet what the first left).

(nbval, configured in pyproject.toml, separately re-runs every notebook in a fresh kernel with
a lab of its own and compares the stored outputs.)
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tutorial_server.course.solutions import SOLUTIONS, STUBS

from .running_lab import ROOT

# tools/exercise_copies.py: the learner's copy and the instructor's key.
_spec = importlib.util.spec_from_file_location("exercise_copies", ROOT / "tools" / "exercise_copies.py")
exercises_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises_tool)

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


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def _check_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and "exercise.check(" in c.source]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_starts_unsolved_and_never_shows_its_solution(path):
    """The committed notebook is the learner's copy: the answer cell holds the stub, Run All
    shows ✗ and a hint, and no solution is in any code cell or output."""
    nb = _read(path)
    number = path.name[:2]
    answers = exercises_tool.answer_cells(nb)
    assert [c.source for c in answers] == [STUBS[number]], "one answer cell, tagged, with the stub"
    raw = path.read_text()
    assert "### BEGIN SOLUTION" not in raw, "the learner's copy holds no solution block"
    code_and_outputs = "\n".join(c.source + _printed(c) for c in nb.cells if c.cell_type == "code")
    for line in SOLUTIONS[number].splitlines():
        line = line.split("#")[0].strip()
        if len(line) > 25:  # lines long enough to be the answer, not `return "done"`
            assert line not in code_and_outputs, f"a solution line is in the notebook: {line}"
    [check_cell] = _check_cells(nb)
    printed = _printed(check_cell)
    assert "✗ Not yet" in printed and "✓" not in printed, printed
    assert "exercise.show_solution()" in "\n".join(_markdown(nb)), "says how to see a solution"


def test_the_key_puts_each_solution_between_nbgrader_markers_and_back(tmp_path):
    for path in NOTEBOOKS:
        number = path.name[:2]
        key = exercises_tool.make_key(_read(path), number)
        [cell] = exercises_tool.answer_cells(key)
        assert cell.source.startswith("### BEGIN SOLUTION\n") and cell.source.endswith("### END SOLUTION")
        assert SOLUTIONS[number].strip() in cell.source
        learner = exercises_tool.make_learner(key, number)
        assert [c.source for c in exercises_tool.answer_cells(learner)] == [STUBS[number]]
    exercises_tool.main(["key", str(tmp_path / "key"), str(NOTEBOOKS[0])])
    assert "### BEGIN SOLUTION" in (tmp_path / "key" / NOTEBOOKS[0].name).read_text()


def test_the_offline_differences_appendix_is_current():
    spec = importlib.util.spec_from_file_location("offline_differences",
                                                  ROOT / "tools" / "offline_differences.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.PAGE.read_text() == tool.page(), "run tools/offline_differences.py"


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
    """Kernels attach to the session's lab (which other tests have already filled) through its
    database's state file, as `make lab`'s JupyterLab does: that file also gives them the
    webhook secret and the key of the lab's offline Stripe (which answers no other key)."""
    monkeypatch_module.setenv("TUTORIAL_DB", str(lab.db_path))
    monkeypatch_module.delenv("TUTORIAL_SERVER_URL", raising=False)
    monkeypatch_module.delenv("TUTORIAL_LAB", raising=False)
    return lab


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# The learner's copy of every notebook already runs to its end under nbval (a lab of its own),
# against the session's lab (tests/test_learner_paths.py, class server) and in JupyterLab
# (tests/test_lab_in_browser.py). Running it here first, so that the key is a second run, proves
# something new only for the notebooks that read or change what the whole lab shares: 00 and 06
# page through all of the offline Stripe's events, 04 and 06 read the dashboard's lists (the
# newest 50), 07 re-points the offline Stripe's webhook and must put it back. The others make a
# customer and orders of their own on every run: a second run meets nothing a first one left.
RUN_TWICE = {"00", "04", "06", "07"}


def test_run_twice_names_notebooks_that_exist():
    assert RUN_TWICE <= {p.name[:2] for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_key_passes_its_check_on_a_lab_that_is_never_reset(path, shared_lab_env):
    """The instructor's key, against one lab that is never reset (which other tests have already
    filled): its solution must pass the check (✓). For RUN_TWICE notebooks the learner's copy
    runs first, top to bottom (its check says ✗), so the key is a second run that must not fail
    on what the first left behind."""
    for solved in (False, True) if path.name[:2] in RUN_TWICE else (True,):
        nb = _read(path)
        if solved:
            nb = exercises_tool.make_key(nb, path.name[:2])
        NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, json.dumps(errors)[:500]
        [check_cell] = _check_cells(nb)
        printed = _printed(check_cell)
        assert printed.startswith("✓" if solved else "✗ Not yet"), (solved, printed)
