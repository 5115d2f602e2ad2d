"""When pytest runs the notebooks (nbval), each notebook starts a lab of its own, so stored
outputs never depend on a learner's lab running on the same machine."""
import os

os.environ["TUTORIAL_LAB"] = "own"
