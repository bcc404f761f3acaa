"""Start-up warning for listeners reachable from other hosts without authentication.

Every listener binds 127.0.0.1 unless told otherwise (listenHost, --host). A process told to bind
elsewhere logs one warning naming each listener that lets anyone in: the remoting and VIP ports
(no ACL), the HA port, the Kafka listeners (without SASL) and the admin API (without adminToken).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

log = logging.getLogger("ferrymq.security")


@dataclass(frozen=True, slots=True)
class OpenListener:
    name: str  # "remoting", "kafka PLAINTEXT", "admin", ...
    host: str
    port: int
    authenticated: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or "" (all interfaces): assume reachable


def open_listeners(listeners: list[OpenListener]) -> list[OpenListener]:
    """Those reachable from other hosts that let anyone in."""
    return [lst for lst in listeners if not lst.authenticated and not is_loopback(lst.host)]


def warn_open_listeners(listeners: list[OpenListener]) -> None:
    exposed = open_listeners(listeners)
    if exposed:
        log.warning(
            "listening beyond loopback without authentication, anyone who reaches these can use them: %s"
            ' (bind 127.0.0.1 with listenHost/--host, or turn authentication on: README "Security")',
            ", ".join(f"{lst.name} {lst.host}:{lst.port}" for lst in exposed),
        )
