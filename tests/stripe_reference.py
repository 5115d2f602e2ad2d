"""Real Stripe's resource examples (stripe-openapi-fixtures3.json, in a shared/reference/ folder
beside the clone): the shapes the fidelity tests, the refund and dispute tests and the mock of
Stripe's API compare with."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES_NAME = "stripe-openapi-fixtures3.json"


def find_reference_dir() -> Path | None:
    """shared/reference beside the repo (here: ../shared/reference; in CI the clone lives
    elsewhere with a copy of shared/ beside it): searched upward from the repo."""
    for folder in [ROOT, *ROOT.parents]:
        candidate = folder / "shared" / "reference"
        if (candidate / FIXTURES_NAME).is_file():
            return candidate
    return None
