"""The dial seam: one TCP connect to one chosen address, classified like Go's dialer.

Rule: this is the only module that opens validation sockets. It connects to the
address the policy chose (never resolving anything), bounded only by the dial
timeout, and turns every connect failure into a :class:`DialFailure` whose
reason is one of the dial reasons of :func:`exporter.policy.may_fall_back`. A
socket that could not be made or connected for want of the exporter's own
resources (``EMFILE``, ``ENOBUFS``, ...: ``exporter.resources``) is no dial
failure of the address: it raises :class:`~exporter.resources.ExporterResourceError`.

Where a connect really goes is a :class:`Router`'s answer: in production the
address as given (:class:`PortMap` can stand other ports in for 80 and 443); the
lab's router (``exporter.lab.routing``) sends documentation-prefix addresses to
loopback endpoints, so that they behave like distinct hosts without privileges.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from exporter.records import Family, Reason
from exporter.resources import check_own

__all__ = ["DialFailure", "Dialer", "PortMap", "Router"]


class DialFailure(Exception):
    """A TCP connect that did not complete (Go: a ``*net.OpError`` with ``Op == "dial"``)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Router(Protocol):
    """Where ``(address, port)`` is really dialled; ``None`` means "connection refused"."""

    def route(self, address: str, port: int) -> tuple[str, int] | None: ...


@dataclass(frozen=True, slots=True)
class PortMap:
    """The production router: every address as given, a port remapped where configured."""

    #: Logical port (80, 443) -> the port to dial instead, for every address.
    ports: Mapping[int, int] = field(default_factory=dict)

    def route(self, address: str, port: int) -> tuple[str, int] | None:
        return address, self.ports.get(port, port)


_UNREACHABLE = {errno.ENETUNREACH}
_REFUSED = {errno.ECONNREFUSED}


class Dialer:
    def __init__(self, router: Router | None = None) -> None:
        self.router: Router = router or PortMap()

    async def dial(self, address: str, port: int, timeout: float) -> socket.socket:
        """Connect to ``address:port`` within ``timeout`` seconds, or raise DialFailure."""
        target = self.router.route(address, port)
        if target is None:
            raise DialFailure(Reason.CONNECTION_REFUSED, f"dial {address}:{port}: refused (lab)")
        host, real_port = target
        family = socket.AF_INET6 if Family.of(host) is Family.IPV6 else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            check_own(exc)
            raise
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (host, real_port))
        except TimeoutError:
            sock.close()
            raise DialFailure(
                Reason.CONNECT_TIMEOUT, f"dial {address}:{port}: i/o timeout"
            ) from None
        except OSError as exc:
            sock.close()
            check_own(exc)
            if exc.errno in _REFUSED:
                reason = Reason.CONNECTION_REFUSED
            elif exc.errno in _UNREACHABLE:
                reason = Reason.NETWORK_UNREACHABLE
            else:
                reason = Reason.CONNECT_ERROR
            raise DialFailure(reason, f"dial {address}:{port}: {exc.strerror}") from None
        except BaseException:
            sock.close()
            raise
        return sock
