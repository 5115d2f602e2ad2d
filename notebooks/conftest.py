"""When pytest runs the notebooks (nbval), each notebook starts a lab of its own, so stored
outputs never depend on a learner's lab running on the same machine; and the lab is offline
unless test-mode keys are in the environment itself (a developer's .env does not count:
variables set here, even empty, are not overridden by it)."""
import os

os.environ["TUTORIAL_LAB"] = "own"
for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
    os.environ.setdefault(name, "")
