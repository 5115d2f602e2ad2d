"""pytest's settings for the notebooks, kept out of notebooks/ (the folder learners open).

When pytest collects a notebook (nbval), each notebook starts a lab of its own, so stored
outputs never depend on a learner's lab running on the same machine; and that lab is offline
unless test-mode keys are in the environment itself (a developer's .env does not count:
variables set here, even empty, are not overridden by it). nbval's output masks live in
tests/nbval_sanitize.cfg.

To run the notebooks against a lab you started yourself (real Stripe test mode, say), set
TUTORIAL_SERVER_URL: they then attach to it instead (see README, "Tests")."""
import os


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb":
        if not os.environ.get("TUTORIAL_SERVER_URL"):
            os.environ["TUTORIAL_LAB"] = "own"
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            os.environ.setdefault(name, "")
    return None  # nbval collects the notebook itself
