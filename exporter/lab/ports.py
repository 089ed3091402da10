"""Ports for servers a test or a benchmark starts in a child process.

Rule: a port handed to a child process is picked outside the kernel's ephemeral range.
Between the pick and the child's bind the port is free for anyone; a port from the
ephemeral range (``net.ipv4.ip_local_port_range``) can be taken meanwhile by any
outgoing connection or ``bind(0)`` on the machine (a resolver query, a lab server), and
the child then dies with "address already in use". Below that range only an explicit
bind takes a port, so the pick is random among those and checked free for TCP and UDP
(the lab's Unbound, which binds a random source port per query, is kept out of them).
Where the range leaves fewer than :data:`MINIMUM_SPAN` ports below it, the kernel's own
``bind(0)`` pick is used instead. Servers the lab binds in this process keep ``bind(0)``:
they hold their socket from the start, so nothing can take their port.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from exporter.records import Family

__all__ = ["MINIMUM_SPAN", "ephemeral_range", "free_port"]

#: The lowest port picked (well-known and registered exporter ports stay untouched).
FLOOR = 10000
#: Fewer ports than this between :data:`FLOOR` and the ephemeral range: use ``bind(0)``.
MINIMUM_SPAN = 1000

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_random = random.SystemRandom()


def ephemeral_range(path: Path = _RANGE) -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if Family.of(host) is Family.IPV6 else socket.AF_INET


def _free_for_both(host: str, port: int) -> bool:
    family = _family(host)
    with (
        socket.socket(family, socket.SOCK_STREAM) as tcp,
        socket.socket(family, socket.SOCK_DGRAM) as udp,
    ):
        try:
            tcp.bind((host, port))
            udp.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` now, outside the ephemeral range."""
    low, _ = ephemeral_range()
    if low - FLOOR >= MINIMUM_SPAN:
        for _ in range(200):
            port = _random.randrange(FLOOR, low)
            if _free_for_both(host, port):
                return port
    for _ in range(50):
        with socket.socket(_family(host), socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
        if _free_for_both(host, port):
            return port
    raise OSError(f"no free port on {host}")
