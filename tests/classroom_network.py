"""A classmate on another address: a network namespace joined to this machine by a veth pair.

The host end gets 10.X.Y.1, the classmate's end 10.X.Y.2 (a /30 of its own per test process,
so parallel workers never collide). A lab served with `--host 10.X.Y.1` is in class mode and
reachable from the namespace and from this machine (whose requests then come from 10.X.Y.1,
not loopback: a learner, not the instructor). Nothing leaves the machine. Needs root and
iproute2; `classroom()` skips the test with the reason otherwise.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .running_lab import RunningLab, new_webhook_secret

# What the classmate runs inside the namespace: requests from stdin (JSON), answers to stdout.
CLASSMATE = r"""
import json, sys, urllib.request, urllib.error, socket
answers = []
for r in json.load(sys.stdin):
    if r.get("connect"):
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect(tuple(r["connect"]))
            answers.append({"connected": True})
        except OSError as e:
            answers.append({"connected": False, "error": type(e).__name__})
        finally:
            s.close()
        continue
    data = json.dumps(r["json"]).encode() if "json" in r else None
    headers = dict(r.get("headers", {}))
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(r["url"], data=data, headers=headers, method=r["method"])
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answers.append({"status": answer.status, "body": answer.read().decode()})
    except urllib.error.HTTPError as e:
        answers.append({"status": e.code, "body": e.read().decode()})
    except OSError as e:
        answers.append({"status": None, "body": type(e).__name__})
print(json.dumps(answers))
"""


@dataclass
class Classroom:
    namespace: str
    host_address: str  # this machine's end: serve the lab here
    classmate_address: str

    def classmate(self, requests: list[dict]) -> list[dict]:
        """Send `requests` ({"method", "url", "json"?, "headers"?} or {"connect": [host,
        port]}) from the classmate's namespace; their answers, in order."""
        done = subprocess.run(["ip", "netns", "exec", self.namespace, sys.executable, "-c",
                               CLASSMATE], input=json.dumps(requests), capture_output=True,
                              text=True, timeout=120, check=True)
        return json.loads(done.stdout)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def classroom() -> Iterator[Classroom]:
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a classmate on another address needs root (a network namespace)")
    if shutil.which("ip") is None:
        pytest.skip("a classmate on another address needs iproute2's `ip`")
    pid = os.getpid()
    name, host_end, far_end = f"classmate{pid}", f"vc{pid}a", f"vc{pid}b"
    subnet = f"10.{200 + pid % 50}.{(pid // 50) % 250}"
    host, mate = f"{subnet}.1", f"{subnet}.2"
    try:
        _run("ip", "netns", "add", name)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot make a network namespace here: {e.stderr.decode().strip()}")
    try:
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", far_end)
        _run("ip", "link", "set", far_end, "netns", name)
        _run("ip", "addr", "add", f"{host}/30", "dev", host_end)
        _run("ip", "link", "set", host_end, "up")
        _run("ip", "netns", "exec", name, "ip", "addr", "add", f"{mate}/30", "dev", far_end)
        _run("ip", "netns", "exec", name, "ip", "link", "set", far_end, "up")
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield Classroom(name, host, mate)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


# --- fixtures for the class tests (test_class_walls.py, test_class_notebooks.py) -------------

RESET_TOKEN = "instructor-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def room():
    with classroom() as room:
        yield room


@pytest.fixture(scope="module")
def class_lab(room, tmp_path_factory):
    folder = tmp_path_factory.mktemp("class-lab")
    lab = RunningLab(folder / "class.sqlite3", new_webhook_secret(), folder / "lab.log",
                     args=["--host", room.host_address, "--reset-token", RESET_TOKEN,
                           "--reconcile-every", "0"]).start()
    yield lab
    lab.stop()


