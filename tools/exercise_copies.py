"""The instructor's key and the learner's copy of the notebooks (nbgrader's convention).

    .venv/bin/python tools/exercise_copies.py key OUT_DIR         # with the solutions
    .venv/bin/python tools/exercise_copies.py learner OUT_DIR KEY_NOTEBOOKS...

The committed notebooks are the learner's copy: the cell tagged `answer` holds only the stub
from tutorial_server/course/solutions.py. `key` fills each answer cell with its solution between
`### BEGIN SOLUTION` and `### END SOLUTION` (outputs cleared: run the key to see them).
`learner` does the reverse: it replaces every marked block by the stub, so an instructor who
edits a key can hand out a copy without the answers.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutorial_server.course.solutions import SOLUTIONS, STUBS  # noqa: E402

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_BLOCK = re.compile(rf"^{BEGIN}\n.*?^{END}\n?", re.M | re.S)


def notebook_number(path: Path) -> str:
    return path.name[:2]


def answer_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and "answer" in c.metadata.get("tags", [])]


def make_key(nb, number: str):
    """The notebook with its solution in the answer cell, between nbgrader's markers."""
    for cell in answer_cells(nb):
        cell.source = f"{BEGIN}\n{SOLUTIONS[number].rstrip()}\n{END}"
        cell.outputs, cell.execution_count = [], None
    return nb


def make_learner(nb, number: str):
    """The notebook with every marked solution replaced by the learner's stub."""
    for cell in nb.cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = _BLOCK.sub(STUBS[number] + "\n", cell.source).rstrip("\n")
            cell.outputs, cell.execution_count = [], None
    return nb


def main(args: list[str]) -> None:
    if len(args) < 2 or args[0] not in ("key", "learner"):
        raise SystemExit(__doc__)
    command, out = args[0], Path(args[1])
    out.mkdir(parents=True, exist_ok=True)
    sources = [Path(a) for a in args[2:]] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        make = make_key if command == "key" else make_learner
        nbformat.write(make(nb, notebook_number(path)), out / path.name)
        print(f"{command}: {out / path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
