"""Stops a lab helper process when the lab itself is gone (used where Linux's
parent-death signal is not available, e.g. macOS): `python -m tutorial_server.reaper LAB CHILD`."""
import os
import signal
import sys
import time


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main() -> None:
    lab, child = int(sys.argv[1]), int(sys.argv[2])
    while _alive(child):
        if not _alive(lab):
            os.kill(child, signal.SIGTERM)
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
