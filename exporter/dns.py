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

CAA answers are read leniently: a record with a tag that is not alphanumeric
(which dnspython refuses) is kept as it is, as Let's Encrypt's library does.
With ``nameservers`` configured, the system resolver configuration
(``/etc/resolv.conf``) is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from exporter.caa import CaaAnswer, CaaRecord
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind, rcode_text
from exporter.records import Family

__all__ = ["DnspythonResolver", "Resolver", "is_validating"]

_RDTYPE = {Family.IPV4: dns.rdatatype.A, Family.IPV6: dns.rdatatype.AAAA}
#: Each attempt waits at most this long before the next nameserver is tried.
_ATTEMPT_TIMEOUT = 2.0
#: Let's Encrypt's resolver sets EDNS0 with a 4096-byte buffer.
_EDNS_PAYLOAD = 4096


class Resolver(Protocol):
    async def lookup(self, host: str, family: Family) -> DnsAnswer: ...

    async def lookup_caa(self, name: str) -> CaaAnswer: ...

    async def validating(self, probe: str = ".") -> bool | None: ...


def _name(host: str) -> dns.name.Name:
    """``host`` as a DNS name, each label's UTF-8 bytes as they are (no IDNA)."""
    stripped = host.rstrip(".")
    labels = [label.encode() for label in stripped.split(".")] if stripped else []
    return dns.name.Name([*labels, b""])


@dataclass(frozen=True, slots=True)
class _Reply:
    message: dns.message.Message
    wire: bytes


class _Datagram(asyncio.DatagramProtocol):
    """Waits for the one datagram that answers ``query_id`` (others are ignored)."""

    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.query_id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _udp(wire: bytes, server: str, port: int) -> bytes:
    loop = asyncio.get_running_loop()
    protocol = _Datagram(wire[:2])
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, remote_addr=(server, port))
    try:
        transport.sendto(wire)
        return await protocol.reply
    finally:
        transport.close()


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
    """A stub resolver client on dnspython's message codec; no cache (fresh data)."""

    def __init__(self, nameservers: Sequence[str] | None, port: int, timeout: float) -> None:
        if nameservers:
            self.nameservers = list(nameservers)
        else:
            system = dns.resolver.Resolver(configure=True)
            self.nameservers = [str(ns) for ns in system.nameservers]
        self.port = port
        self.timeout = timeout

    async def _exchange(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, flags: int = 0
    ) -> _Reply | DnsFailure:
        """One question, answered by the first nameserver that answers in time."""
        query = dns.message.make_query(
            qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD, id=secrets.randbelow(65536)
        )
        query.flags |= flags
        try:
            wire = query.to_wire()
        except dns.exception.DNSException:
            return DnsFailure(DnsFailureKind.SERVER)
        deadline = time.monotonic() + self.timeout
        failure = DnsFailure(DnsFailureKind.TIMEOUT)
        servers = list(self.nameservers)  # a server that errors is not asked again
        attempt = 0
        while servers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            server = servers[attempt % len(servers)]
            attempt += 1
            try:
                async with asyncio.timeout(min(remaining, _ATTEMPT_TIMEOUT)):
                    data = await _udp(wire, server, self.port)
                    if len(data) > 2 and data[2] & 0x02:  # TC: ask again over TCP
                        data = await _tcp(wire, server, self.port)
            except TimeoutError:
                failure = DnsFailure(DnsFailureKind.TIMEOUT)
                continue
            except (OSError, EOFError, asyncio.IncompleteReadError):
                failure = DnsFailure(DnsFailureKind.NETWORK)
                servers.remove(server)
                continue
            try:
                message = dns.message.from_wire(data, continue_on_error=rdtype == dns.rdatatype.CAA)
            except dns.exception.DNSException:
                return DnsFailure(DnsFailureKind.SERVER)
            return _Reply(message, data)
        return failure

    @staticmethod
    def _rcode_failure(message: dns.message.Message) -> DnsFailure | None:
        rcode = message.rcode()
        if rcode == dns.rcode.NOERROR:
            return None
        ede = None
        errors = message.extended_errors()
        if errors:
            ede = (int(errors[0].code), errors[0].text or "")
        return DnsFailure(DnsFailureKind.RCODE, rcode_text(rcode), ede)

    async def lookup(self, host: str, family: Family) -> DnsAnswer:
        rdtype = _RDTYPE[family]
        try:
            qname = _name(host)
        except dns.exception.DNSException:
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.SERVER))
        reply = await self._exchange(qname, rdtype)
        if isinstance(reply, DnsFailure):
            return DnsAnswer(family, failure=reply)
        failure = self._rcode_failure(reply.message)
        if failure is not None:
            return DnsAnswer(family, failure=failure)
        addresses: list[str] = []
        for rrset in reply.message.answer:
            if rrset.rdtype == rdtype:
                addresses.extend(rdata.address for rdata in rrset)
        return DnsAnswer(family, tuple(addresses))

    async def lookup_caa(self, name: str) -> CaaAnswer:
        """The CAA records of ``name`` (answer section, any owner), or the failure."""
        try:
            qname = _name(name)
        except dns.exception.DNSException:
            return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.SERVER))
        reply = await self._exchange(qname, dns.rdatatype.CAA)
        if isinstance(reply, DnsFailure):
            return CaaAnswer(name, failure=reply)
        if reply.message.flags & dns.flags.TC:
            return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.TRUNCATED))
        failure = self._rcode_failure(reply.message)
        if failure is not None:
            return CaaAnswer(name, failure=failure)
        try:
            records = _caa_records(reply.wire)
        except (IndexError, struct.error, dns.exception.DNSException):
            return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.SERVER))
        return CaaAnswer(name, records)

    async def validating(self, probe: str = ".") -> bool | None:
        """Whether the resolver validates DNSSEC: the AD bit on the signed ``probe`` name's
        SOA (any other answer: no). ``None`` when it did not answer."""
        try:
            qname = _name(probe)
        except dns.exception.DNSException:
            return None
        reply = await self._exchange(qname, dns.rdatatype.SOA, flags=dns.flags.AD)
        if isinstance(reply, DnsFailure):
            return None
        return reply.message.rcode() == dns.rcode.NOERROR and bool(
            reply.message.flags & dns.flags.AD
        )


async def is_validating(
    nameservers: Sequence[str] | None, port: int, timeout: float, probe_name: str = "."
) -> bool | None:
    """Whether the resolver at ``nameservers`` validates DNSSEC (see
    :meth:`DnspythonResolver.validating`)."""
    return await DnspythonResolver(nameservers, port, timeout).validating(probe_name)


# ------------------------------------------------------------------- reading CAA answers


def _skip_name(wire: bytes, offset: int) -> int:
    """The offset after the (possibly compressed) name at ``offset``."""
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def _caa_records(wire: bytes) -> tuple[CaaRecord, ...]:
    """Every CAA record of the answer section, read from the wire without judging its tag."""
    qdcount, ancount = struct.unpack_from("!HH", wire, 4)
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(wire, offset) + 4
    records: list[CaaRecord] = []
    for _ in range(ancount):
        offset = _skip_name(wire, offset)
        rdtype, rdclass, _ttl, rdlength = struct.unpack_from("!HHIH", wire, offset)
        offset += 10
        rdata = wire[offset : offset + rdlength]
        offset += rdlength
        if rdtype != dns.rdatatype.CAA or rdclass != dns.rdataclass.IN or len(rdata) < 2:
            continue
        tag_length = rdata[1]
        records.append(
            CaaRecord(flags=rdata[0], tag=rdata[2 : 2 + tag_length], value=rdata[2 + tag_length :])
        )
    return tuple(records)
