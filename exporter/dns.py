"""The DNS seam: A, AAAA and CAA lookups, as Let's Encrypt's resolver client sees them.

Rule: this is the only module that talks DNS. It sends one query at a time to
the configured resolver and answers with the records in answer order, or a
classified failure; what the answers mean (fatal or not, which address is
dialled, whether CAA permits issuance) is ``exporter.policy``'s and
``exporter.caa``'s business.

Like Let's Encrypt (``bdns``):

* every record of the asked type in the answer section is taken, whatever its
  owner name; CNAMEs are followed by the recursive resolver queried;
* a query goes out with EDNS0 and a 4096-byte buffer; a truncated UDP answer is
  asked again over TCP;
* only a timeout is retried (on the next nameserver, within the lifetime); an
  answer, SERVFAIL included, is final: there is no second opinion;
* a failure carries the rcode as Let's Encrypt's DNS library names it and the
  first Extended DNS Error (RFC 8914) of the answer, if any;
* names are sent as they are, label by label in UTF-8, never converted to
  punycode (Go's resolver does no IDNA either).

Every answer is read once, by :func:`exporter.dnswire.read`; one that is not a
well-formed message is a server failure. CAA answers are read leniently: a record
with a tag that is not alphanumeric is kept as it is, as Let's Encrypt's library does.
With ``nameservers`` configured, the system resolver configuration
(``/etc/resolv.conf``) is never read.

A query the exporter could not send for want of its own resources (no descriptor
for the socket, no buffer: ``exporter.resources``) is no answer about the name: it
raises :class:`~exporter.resources.ExporterResourceError`, never a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import dns.ipv4
import dns.ipv6
import dns.resolver

from exporter import dnswire
from exporter.caa import CaaAnswer, CaaRecord
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind, rcode_text
from exporter.records import Family
from exporter.resources import check_own

__all__ = ["DnspythonResolver", "Resolver", "is_validating"]

#: Each family's record type, and its addresses' text (dnspython's, as it always was).
_FAMILY: dict[Family, tuple[int, Callable[[bytes], str]]] = {
    Family.IPV4: (dnswire.A, dns.ipv4.inet_ntoa),
    Family.IPV6: (dnswire.AAAA, dns.ipv6.inet_ntoa),
}
#: Each attempt waits at most this long before the next nameserver is tried.
_ATTEMPT_TIMEOUT = 2.0


class Resolver(Protocol):
    async def lookup(self, host: str, family: Family) -> DnsAnswer: ...

    async def lookup_caa(self, name: str) -> CaaAnswer: ...

    async def validating(self, probe: str = ".") -> bool | None: ...


async def _udp(wire: bytes, server: str, port: int) -> bytes:
    """Send ``wire`` from a new socket (a new source port per query) connected to the
    server, so that only the server's datagrams arrive; wait for the one with our ID."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if Family.of(server) is Family.IPV6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((server, port))  # an IP address (config): no lookup, no packet
        await loop.sock_sendall(sock, wire)
        while True:
            data = await loop.sock_recv(sock, 65535)
            if data[:2] == wire[:2]:
                return data
    finally:
        sock.close()


async def _tcp(wire: bytes, server: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(server, port)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        data = await reader.readexactly(length)
        if data[:2] != wire[:2]:
            raise EOFError("an answer to another query")
        return data
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class DnspythonResolver:
    """A stub resolver client, no cache (fresh data): dnspython reads the system's resolver
    configuration, :mod:`exporter.dnswire` builds each question's query once (kept per
    name, type and flags; each query goes with a fresh random ID) and reads each answer."""

    #: Query wires kept (about six names per domain); past this the cache starts again.
    QUERY_CACHE = 500_000

    def __init__(self, nameservers: Sequence[str] | None, port: int, timeout: float) -> None:
        if nameservers:
            self.nameservers = list(nameservers)
        else:
            system = dns.resolver.Resolver(configure=True)
            self.nameservers = [str(ns) for ns in system.nameservers]
        self.port = port
        self.timeout = timeout
        self._queries: dict[tuple[str, int, int], bytes] = {}

    def _query(self, name: str, rdtype: int, flags: int) -> bytes:
        """The query's wire with ID 0, built once (:class:`~exporter.dnswire.Unsendable`)."""
        key = (name, rdtype, flags)
        wire = self._queries.get(key)
        if wire is None:
            wire = dnswire.query(name, rdtype, flags)
            if len(self._queries) >= self.QUERY_CACHE:
                self._queries.clear()
            self._queries[key] = wire
        return wire

    async def _exchange(self, wire: bytes) -> bytes | DnsFailure:
        """The answer of the first nameserver that answers in time, or why none did."""
        deadline = time.monotonic() + self.timeout
        failure = DnsFailure(DnsFailureKind.TIMEOUT)
        servers = list(self.nameservers)  # a server that errors is not asked again
        attempt = 0
        while servers and (remaining := deadline - time.monotonic()) > 0:
            server = servers[attempt % len(servers)]
            attempt += 1
            try:
                async with asyncio.timeout(min(remaining, _ATTEMPT_TIMEOUT)):
                    data = await _udp(wire, server, self.port)
                    if len(data) > 2 and data[2] & dnswire.TC >> 8:  # ask again over TCP
                        data = await _tcp(wire, server, self.port)
                return data
            except TimeoutError:
                failure = DnsFailure(DnsFailureKind.TIMEOUT)
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                check_own(exc)  # out of descriptors or buffers: not the server's doing
                failure = DnsFailure(DnsFailureKind.NETWORK)
                servers.remove(server)
        return failure

    async def _ask(self, name: str, rdtype: int, flags: int = 0) -> dnswire.Reply | DnsFailure:
        """The NOERROR answer to one question, or the failure: a name that cannot be sent
        or a malformed answer is the server's; an answer still truncated over TCP is a
        failure for CAA only (bdns checks TC before the rcode); then the rcode's."""
        try:
            template = self._query(name, rdtype, flags)
        except dnswire.Unsendable:
            return DnsFailure(DnsFailureKind.SERVER)
        data = await self._exchange(os.urandom(2) + template[2:])  # a random ID per query
        if isinstance(data, DnsFailure):
            return data
        try:
            reply = dnswire.read(data)
        except dnswire.Malformed:
            return DnsFailure(DnsFailureKind.SERVER)
        if rdtype == dnswire.CAA and reply.flags & dnswire.TC:
            return DnsFailure(DnsFailureKind.TRUNCATED)
        if reply.rcode:
            return DnsFailure(DnsFailureKind.RCODE, rcode_text(reply.rcode), reply.ede)
        return reply

    async def lookup(self, host: str, family: Family) -> DnsAnswer:
        rdtype, text = _FAMILY[family]
        reply = await self._ask(host, rdtype)
        if isinstance(reply, DnsFailure):
            return DnsAnswer(family, failure=reply)
        return DnsAnswer(family, tuple(text(rd) for kind, rd in reply.answers if kind == rdtype))

    async def lookup_caa(self, name: str) -> CaaAnswer:
        """The CAA records of ``name`` (answer section, any owner), or the failure."""
        reply = await self._ask(name, dnswire.CAA)
        if isinstance(reply, DnsFailure):
            return CaaAnswer(name, failure=reply)
        records = (
            CaaRecord(flags=rd[0], tag=rd[2 : 2 + rd[1]], value=rd[2 + rd[1] :])
            for kind, rd in reply.answers
            if kind == dnswire.CAA
        )
        return CaaAnswer(name, tuple(records))

    async def validating(self, probe: str = ".") -> bool | None:
        """Whether the resolver validates DNSSEC: the AD bit on the signed ``probe`` name's
        SOA (any other answer: no). ``None`` when it did not answer."""
        reply = await self._ask(probe, dnswire.SOA, dnswire.AD)
        if isinstance(reply, DnsFailure):
            return False if reply.kind is DnsFailureKind.RCODE else None
        return bool(reply.flags & dnswire.AD)


async def is_validating(
    nameservers: Sequence[str] | None, port: int, timeout: float, probe_name: str = "."
) -> bool | None:
    """Whether the resolver at ``nameservers`` validates DNSSEC (see
    :meth:`DnspythonResolver.validating`)."""
    return await DnspythonResolver(nameservers, port, timeout).validating(probe_name)
