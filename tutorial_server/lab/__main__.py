"""`python -m tutorial_server.lab COMMAND`: the lab's command line (cli.py)."""
from .cli import main

main()
