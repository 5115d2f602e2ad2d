"""Write tutorial_server/notebook/skipped_cells.json: for every cell that skips itself on a class
server (it calls signing_possible or stripe_account_possible), the text it printed in the
published notebook, so the skip line can show it (tutorial_server/notebook/skipped.py).

    .venv/bin/python tools/skipped_cells.py     # after tools/run_notebooks.py
"""
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutorial_server.notebook.skipped import SAMPLES, cell_key  # noqa: E402

SKIPPING = ("signing_possible(lab)", "stripe_account_possible(lab)")


def _printed(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"] + "\n")
    return "".join(parts)


def skippable_cells() -> dict[str, dict]:
    samples = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and any(s in cell.source for s in SKIPPING):
                samples[cell_key(cell.source)] = {"notebook": path.name, "text": _printed(cell)}
    return samples


def main() -> None:
    SAMPLES.write_text(json.dumps(skippable_cells(), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    print(f"{SAMPLES.relative_to(ROOT)}: {len(skippable_cells())} cells")


if __name__ == "__main__":
    main()
