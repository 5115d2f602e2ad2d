"""`python -m tutorial_server COMMAND`: the lab's command line (tutorial_server/lab/cli.py)."""
from .lab.cli import main

main()
