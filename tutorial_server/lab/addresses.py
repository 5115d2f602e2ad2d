"""Which addresses only this machine can reach, and the ones a class types to reach a lab."""
from __future__ import annotations

import ipaddress
import socket

from ..security import is_loopback


def url_from_here(host: str, port: int) -> str:
    """The lab's URL as this machine reaches it: every interface (0.0.0.0, ::) includes
    loopback; one address (a classroom's, say) does not."""
    reach = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{f'[{reach}]' if ':' in reach else reach}:{port}"


def shared_lab_warning(host: str, port: int, reset_token: bool) -> list[str]:
    """What `serve --host 0.0.0.0` exposes, said once at start (empty on a loopback address)."""
    if is_loopback(host):
        return []
    reset = ("from this machine (http://127.0.0.1:{port}/dashboard) or with the reset token "
             "you chose (--reset-token)" if reset_token else
             "only from this machine (http://127.0.0.1:{port}/dashboard)").format(port=port)
    return [
        f"  WARNING: listening on {host}, not only on this machine. Anyone who can reach "
        f"port {port} here can:",
        "    - create orders and pay them with test cards (no real money: test mode or offline),",
        "    - read the dashboard: every order, payment, customer id and webhook delivery",
        "      (never a client secret),",
        "    - send webhooks to /webhook (only ones signed with the lab's secret are accepted).",
        "  Only an order's owner can cancel, refund or sync it, or open its checkout page: the",
        "  learner whose key made it (POST /api/class/join, then TUTORIAL_LEARNER_KEY), whoever",
        "  holds its checkout link, or you (this machine, or Bearer <reset token>).",
        f"  Resetting the lab from the dashboard works {reset}.",
        f"  Learners set TUTORIAL_SERVER_URL=http://{socket.gethostname()}:{port} (or this "
        "machine's IP address). Use a trusted classroom network; Ctrl-C ends the class.",
    ]


def machine_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback, for the banner of a class lab
    (learners type an address; a hostname does not resolve on every classroom network).
    Read from the system, nothing is sent: resolving our own name, and a UDP socket
    `connect`, which only asks the kernel for a route."""
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, no packet is sent
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    return sorted({a for a in found if not ipaddress.ip_address(a).is_loopback
                   and not ipaddress.ip_address(a).is_unspecified})


def class_addresses(host: str, port: int) -> list[str]:
    """The URLs learners can type to reach a class lab: its hostname and its IP addresses."""
    if is_loopback(host):
        return []
    names = [socket.gethostname()] + machine_addresses()
    if host not in ("0.0.0.0", "::", ""):
        names = [host]
    return [f"http://{name}:{port}" for name in dict.fromkeys(names)]
