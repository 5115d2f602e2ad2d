"""pytest's settings for the notebooks, kept out of notebooks/ (the folder learners open).

When pytest collects a notebook (nbval), each notebook starts a lab of its own, so stored
outputs never depend on a learner's lab running on the same machine; and that lab is offline
unless test-mode keys are in the environment itself (a developer's .env does not count:
variables set here, even empty, are not overridden by it). nbval's output masks live in
tests/nbval_sanitize.cfg.

To run the notebooks against a lab you started yourself (real Stripe test mode, say), set
TUTORIAL_SERVER_URL: they then attach to it instead (see README, "Tests").

Also for the whole run: the order files are handed out in, and SIGINT for what the tests start."""
import os
import signal
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# `make test` spreads the run over processes (pytest-xdist, --dist loadfile): each file goes whole
# to one worker, in the order collected. The files that take longest go first, so that none of
# them starts last and keeps the run going on one worker while the others sit idle. (Measured
# with --durations=0; the rest keep their order. The other Pythons' runs go first of all: set-ups
# and runs that mostly wait, side by side with everything else.)
LONGEST_FIRST = ["tests/test_python_versions.py", "tests/test_hub.py", "tests/test_hub_users.py", "tests/test_lab_in_browser.py", "tests/test_notebooks.py",
                 "tests/test_cli_events.py", "tests/test_jupyter_proxy.py",
                 "tests/test_trust_boundaries.py", "tests/test_notebooks_test_mode.py",
                 "tests/test_learner_paths.py", "tests/test_pages_browser.py",
                 "tests/test_accessibility_browser.py", "tests/test_class_demo.py",
                 "tests/test_server_killed.py", "tests/test_book.py"]


def pytest_configure(config):
    # Every process the tests start (labs, kernels, JupyterLab) must take Ctrl-C as it does in a
    # learner's terminal. A pytest started in the background by a non-interactive shell (a CI
    # script, `nohup make test &`) ignores SIGINT, and an ignored signal stays ignored in every
    # child: a lab would then never stop on SIGINT (tests/test_lab.py). Python's own handling
    # here (each xdist worker runs this too) is reset to the default in each child.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items):
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}

    def place(item) -> int:
        path = Path(str(item.fspath))
        return rank.get(path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else "",
                        len(rank))
    items.sort(key=place)  # stable: a file's own tests keep their order


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb":
        if not os.environ.get("TUTORIAL_SERVER_URL"):
            os.environ["TUTORIAL_LAB"] = "own"
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            os.environ.setdefault(name, "")
    return None  # nbval collects the notebook itself
