"""Fakes for the validator's three seams: DNS, the HTTP fetch, and the TCP dial.

Each fake answers from a table a test writes, and records what it was asked, in order,
so that a test can say what the driver did, not only what it concluded ("the redirect
hop was resolved again", "no AAAA was asked for an IP literal", "the IPv4 address was
never requested"). None of them opens a listening server for the test's sake; the dial
fake alone makes sockets, a connected pair on loopback per dial.

* :class:`FakeResolver` is an ``exporter.dns.Resolver``: names to :class:`Host` answers
  (addresses, a failure per family, CAA records, a delay). A name that is not in the
  table is NXDOMAIN for A and AAAA, and has no CAA records (as most names and every TLD).
* :class:`FakeFetcher` is an ``exporter.http01.Fetch``: ``(url, address)`` to a
  :data:`Reply` (a ``Response``, a ``Failed``, a ``BodyError``, an
  ``ExporterResourceError``, or a :class:`Hang` that waits for the validation's deadline).
  A request that is not in the table is a test error (``AssertionError``), never an
  answer. Give it to ``Validator(..., fetcher=)``.
* :class:`FakeDialer` is an ``exporter.dial.Dialer``: ``(address, port)`` to a
  ``DialFailure`` it raises, or a :class:`Peer`, the script of the far end of a real
  connected socket (bytes to send, then close, reset or hang). It knows nothing of the
  code that reads the socket; use it as ``async with FakeDialer(...) as dialer:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, NamedTuple

from exporter.caa import CaaAnswer, CaaRecord
from exporter.dial import Dialer, DialFailure
from exporter.fetch import BodyError, Failed, Progress, Response
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind, Phase
from exporter.records import Family
from exporter.resources import ExporterResourceError

__all__ = [
    "NXDOMAIN",
    "SERVFAIL",
    "TIMEOUT",
    "Call",
    "Dialled",
    "FakeDialer",
    "FakeFetcher",
    "FakeResolver",
    "Hang",
    "Host",
    "Peer",
    "Query",
    "Reply",
    "page",
    "redirect",
    "status",
]

# ------------------------------------------------------------------------------- DNS

NXDOMAIN = DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN")
SERVFAIL = DnsFailure(DnsFailureKind.RCODE, "SERVFAIL")
TIMEOUT = DnsFailure(DnsFailureKind.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Host:
    """One name's answers. An address tuple is the answer section in order (empty: no
    records of that type); a ``DnsFailure`` is that lookup's failure."""

    a: tuple[str, ...] | DnsFailure = ()
    aaaa: tuple[str, ...] | DnsFailure = ()
    caa: tuple[CaaRecord, ...] | DnsFailure = ()
    #: Seconds each lookup of this name takes (a deadline can fire meanwhile).
    delay: float = 0.0


class Query(NamedTuple):
    """One question asked of the fake resolver: the name and "A", "AAAA", "CAA" or "SOA"."""

    name: str
    type: str


_UNKNOWN = Host(a=NXDOMAIN, aaaa=NXDOMAIN)


class FakeResolver:
    """The DNS seam from a table of names; ``queries`` lists every question in order."""

    def __init__(
        self, hosts: Mapping[str, Host] | None = None, *, validating: bool | None = None
    ) -> None:
        self.hosts: dict[str, Host] = dict(hosts or {})
        self.queries: list[Query] = []
        self._validating = validating

    def asked(self, name: str) -> list[str]:
        """The types asked for ``name``, in order."""
        return [q.type for q in self.queries if q.name == name]

    async def _host(self, name: str, rrtype: str) -> Host:
        self.queries.append(Query(name, rrtype))
        host = self.hosts.get(name, _UNKNOWN)
        await asyncio.sleep(host.delay)  # 0: still a turn of the loop, as a real query
        return host

    async def lookup(self, host: str, family: Family) -> DnsAnswer:
        found = await self._host(host, "A" if family is Family.IPV4 else "AAAA")
        answer = found.a if family is Family.IPV4 else found.aaaa
        if isinstance(answer, DnsFailure):
            return DnsAnswer(family, failure=answer)
        return DnsAnswer(family, answer)

    async def lookup_caa(self, name: str) -> CaaAnswer:
        found = await self._host(name, "CAA")
        if name not in self.hosts:
            return CaaAnswer(name)
        if isinstance(found.caa, DnsFailure):
            return CaaAnswer(name, failure=found.caa)
        return CaaAnswer(name, found.caa)

    async def validating(self, probe: str = ".") -> bool | None:
        self.queries.append(Query(probe, "SOA"))
        return self._validating


# ----------------------------------------------------------------------------- fetch


@dataclass(frozen=True, slots=True)
class Hang:
    """No answer at all: the request sits in ``phase`` until the caller's deadline
    cancels it (the driver reads the phase to word the timeout as Let's Encrypt does)."""

    phase: Phase = Phase.WAIT


#: What the fake fetcher does for one request.
Reply = Response | Failed | BodyError | ExporterResourceError | Hang


def page(body: bytes | str) -> Response:
    """A 200 response with ``body``."""
    return Response(200, None, body.encode() if isinstance(body, str) else body)


def status(code: int) -> Response:
    """A response with status ``code`` and no Location (a body is read for 200 only)."""
    return Response(code, None, b"")


def redirect(location: str, code: int = 301) -> Response:
    """A redirect to ``location``, as sent (relative or absolute)."""
    return Response(code, location, b"")


class Call(NamedTuple):
    """One request the fake fetcher was asked for: the URL and the address dialled."""

    url: str
    address: str


class FakeFetcher:
    """The fetch seam from a table keyed by ``(url, address)``; ``calls`` lists every
    request in the order it was made (the AAAA-vs-A probe's too)."""

    def __init__(self, replies: Mapping[tuple[str, str], Reply]) -> None:
        self.replies: dict[tuple[str, str], Reply] = dict(replies)
        self.calls: list[Call] = []

    def addresses(self, url: str) -> list[str]:
        """The addresses ``url`` was requested from, in order."""
        return [c.address for c in self.calls if c.url == url]

    async def fetch(self, url: str, address: str, progress: Progress) -> Response:
        self.calls.append(Call(url, address))
        reply = self.replies.get((url, address))
        if reply is None:
            raise AssertionError(f"the fake fetcher has no reply for {url} via {address}")
        progress.phase = Phase.WAIT
        await asyncio.sleep(0)  # a turn of the loop, as a real request takes
        if isinstance(reply, Hang):
            progress.phase = reply.phase
            await asyncio.Event().wait()  # until cancelled
        if isinstance(reply, Failed | BodyError | ExporterResourceError):
            raise reply
        assert isinstance(reply, Response)
        if reply.status == 200:
            progress.phase = Phase.BODY
        return reply


# ------------------------------------------------------------------------------ dial


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end of one faked connection: it reads the request head (unless
    ``read_request`` is false: a TLS ClientHello has no blank line), sends ``send``, then
    ``end``\\s: ``close`` (FIN), ``reset`` (RST), or ``hang`` (stays open, reading, until
    the client closes)."""

    send: bytes = b""
    end: Literal["close", "reset", "hang"] = "close"
    read_request: bool = True


@dataclass(slots=True)
class Dialled:
    """One dial the fake dialer was asked for; ``received`` is what the client wrote on
    the connection (empty for a dial that failed)."""

    address: str
    port: int
    timeout: float
    received: bytearray = field(default_factory=bytearray)


def _loopback_pair(address: str) -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback (the family of ``address``): ``socket.socketpair``
    gives AF_UNIX on Linux, which cannot be reset and has no ports to name."""
    family, host = (socket.AF_INET6, "::1") if ":" in address else (socket.AF_INET, "127.0.0.1")
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.socket(family, socket.SOCK_STREAM)
        try:
            client.connect(listener.getsockname())
            far, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    client.setblocking(False)
    far.setblocking(False)
    return client, far


class FakeDialer(Dialer):
    """The dial seam from a table keyed by ``(address, port)``; ``dials`` lists every dial.

    A ``DialFailure`` in the table is raised as it is; a :class:`Peer` gets a connected
    loopback socket whose far end plays the script. A dial that is not in the table
    raises ``AssertionError`` and is kept in ``unexpected``, which must be empty when the
    ``async with`` block ends; leaving it also ends every far end still running.
    """

    def __init__(self, table: Mapping[tuple[str, int], Peer | DialFailure]) -> None:
        super().__init__()
        self.table: dict[tuple[str, int], Peer | DialFailure] = dict(table)
        self.dials: list[Dialled] = []
        self.unexpected: list[tuple[str, int]] = []
        self._peers: list[asyncio.Task[None]] = []

    async def dial(self, address: str, port: int, timeout: float) -> socket.socket:
        dialled = Dialled(address, port, timeout)
        self.dials.append(dialled)
        entry = self.table.get((address, port))
        if entry is None:
            self.unexpected.append((address, port))
            raise AssertionError(f"the fake dialer has no entry for {address}:{port}")
        if isinstance(entry, DialFailure):
            raise entry
        client, far = _loopback_pair(address)
        self._peers.append(asyncio.create_task(_play(far, entry, dialled.received)))
        return client

    async def __aenter__(self) -> FakeDialer:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task in self._peers:
            task.cancel()
        for task in self._peers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if kind is None:
            assert not self.unexpected, f"dials the table does not have: {self.unexpected}"


async def _play(far: socket.socket, peer: Peer, received: bytearray) -> None:
    """The far end's script; ``received`` collects what the client sends."""
    loop = asyncio.get_running_loop()

    async def read() -> bool:
        """One read into ``received``; false at EOF or when the client reset."""
        try:
            data = await loop.sock_recv(far, 65536)
        except ConnectionError:
            return False
        received.extend(data)
        return bool(data)

    try:
        if peer.read_request:
            while b"\r\n\r\n" not in received and await read():
                pass
        if peer.send:
            with contextlib.suppress(ConnectionError):
                await loop.sock_sendall(far, peer.send)
        if peer.end == "hang":
            while await read():
                pass
        elif peer.end == "reset":
            far.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        far.close()
