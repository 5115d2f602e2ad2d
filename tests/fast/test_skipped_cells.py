"""On a class server a cell that signs webhooks or uses the lab's Stripe account skips itself;
its skip line shows what the cell prints on a lab of your own (running it replaced the
published output), from tutorial_server/notebook/skipped_cells.json."""
from __future__ import annotations

import importlib.util
import json
import types

import nbformat
import pytest

from tutorial_server.notebook import connect, skipped

from ..running_lab import ROOT

pytestmark = pytest.mark.fast

_spec = importlib.util.spec_from_file_location("skipped_cells", ROOT / "tools" / "skipped_cells.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

CLASS_LAB = types.SimpleNamespace(can_sign_webhooks=False, mode="offline", _backend_key=None)


def test_every_skippable_cell_has_its_published_output():
    stored = json.loads(skipped.SAMPLES.read_text(encoding="utf-8"))
    assert set(stored) == set(tool.skippable_cells()), "run tools/skipped_cells.py"
    assert all(sample["text"].strip() for sample in stored.values())


@pytest.mark.parametrize("possible", [connect.signing_possible, connect.stripe_account_possible])
def test_the_skip_line_shows_what_the_cell_would_print(capsys, monkeypatch, possible):
    key, sample = next(iter(tool.skippable_cells().items()))
    source = next(c.source for c in _cells() if skipped.cell_key(c.source) == key)
    monkeypatch.setattr(skipped, "current_cell_source", lambda: source)
    assert possible(CLASS_LAB) is False
    printed = capsys.readouterr().out
    assert printed.startswith("Skipped: ") and "stored output shows" not in printed
    assert f"as published in {sample['notebook']}" in printed
    assert "    " + sample["text"].splitlines()[0] in printed


def test_an_edited_cell_says_where_to_look(capsys, monkeypatch):
    monkeypatch.setattr(skipped, "current_cell_source", lambda: "if signing_possible(lab): pass")
    connect.signing_possible(CLASS_LAB)
    assert "published notebook (the project's notebooks/ folder" in capsys.readouterr().out


def _cells():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        yield from nbformat.read(path, as_version=4).cells
