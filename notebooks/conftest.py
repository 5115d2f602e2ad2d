"""When pytest runs the notebooks (nbval), each notebook starts a lab of its own, so stored
outputs never depend on a learner's lab running on the same machine; and that lab is offline
unless test-mode keys are in the environment itself (a developer's .env does not count:
variables set here, even empty, are not overridden by it).

To run the notebooks against a lab you started yourself (real Stripe test mode, say), set
TUTORIAL_SERVER_URL: they then attach to it instead (see README, "Tests")."""
import os

if not os.environ.get("TUTORIAL_SERVER_URL"):
    os.environ["TUTORIAL_LAB"] = "own"
for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
    os.environ.setdefault(name, "")
