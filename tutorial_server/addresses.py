"""Which addresses only this machine can reach (the lab's trust boundary starts there)."""
from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True if only this machine can reach a server listening on `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or 0.0.0.0 / :: (every interface)
