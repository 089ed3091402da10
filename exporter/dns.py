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
from collections.abc import Sequence
from typing import Protocol

import dns.exception
import dns.flags
import dns.ipv4
import dns.ipv6
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from exporter.caa import CaaAnswer, CaaRecord
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind, rcode_text
from exporter.records import Family
from exporter.resources import check_own

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


def _query_wire(host: str, rdtype: dns.rdatatype.RdataType, flags: int) -> bytes | None:
    """dnspython's query for ``host``/``rdtype`` (EDNS0, 4096 bytes, RD), with ID 0."""
    try:
        query = dns.message.make_query(_name(host), rdtype, use_edns=0, payload=_EDNS_PAYLOAD, id=0)
        query.flags |= flags
        return bytes(query.to_wire())
    except dns.exception.DNSException:
        return None


_ADDRESS_TEXT = {dns.rdatatype.A: dns.ipv4.inet_ntoa, dns.rdatatype.AAAA: dns.ipv6.inet_ntoa}


async def _udp(wire: bytes, server: str, port: int) -> bytes:
    """Send ``wire`` from a new socket (a new source port per query) connected to the
    server, so that only the server's datagrams arrive; wait for the one with our ID."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
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
    """A stub resolver client on dnspython's message codec; no cache (fresh data).

    Each question's query is built once (dnspython's wire, kept per name and type; each
    query gets a fresh random ID). An answer of the usual shape (NOERROR, the question
    echoed, only address, CNAME and CAA records in the answer section, SOA or NS in the
    authority section, at most an option-less OPT) is read straight off the wire; any
    other answer is parsed by dnspython, which then decides, as it always has.
    """

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
        self._queries: dict[tuple[str, int, int], bytes | None] = {}

    def _query(self, host: str, rdtype: dns.rdatatype.RdataType, flags: int = 0) -> bytes | None:
        """The query's wire with ID 0, or ``None`` if the name cannot be sent."""
        key = (host, rdtype, flags)
        wire = self._queries.get(key, b"")
        if wire == b"":
            wire = _query_wire(host, rdtype, flags)
            if len(self._queries) >= self.QUERY_CACHE:
                self._queries.clear()
            self._queries[key] = wire
        return wire

    async def _exchange(self, template: bytes) -> bytes | DnsFailure:
        """One question, answered by the first nameserver that answers in time."""
        wire = os.urandom(2) + template[2:]  # a random ID per query
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
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                check_own(exc)  # out of descriptors or buffers: not the server's doing
                failure = DnsFailure(DnsFailureKind.NETWORK)
                servers.remove(server)
                continue
            return data
        return failure

    @staticmethod
    def _parse(data: bytes, rdtype: dns.rdatatype.RdataType) -> dns.message.Message | DnsFailure:
        try:
            return dns.message.from_wire(data, continue_on_error=rdtype == dns.rdatatype.CAA)
        except dns.exception.DNSException:
            return DnsFailure(DnsFailureKind.SERVER)

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
        template = self._query(host, rdtype)
        if template is None:
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.SERVER))
        data = await self._exchange(template)
        if isinstance(data, DnsFailure):
            return DnsAnswer(family, failure=data)
        quick = quick_answer(data, template)
        if quick is not None:
            return DnsAnswer(
                family, tuple(_ADDRESS_TEXT[rdtype](rd) for kind, rd in quick if kind == rdtype)
            )
        message = self._parse(data, rdtype)
        if isinstance(message, DnsFailure):
            return DnsAnswer(family, failure=message)
        failure = self._rcode_failure(message)
        if failure is not None:
            return DnsAnswer(family, failure=failure)
        addresses: list[str] = []
        for rrset in message.answer:
            if rrset.rdtype == rdtype:
                addresses.extend(rdata.address for rdata in rrset)
        return DnsAnswer(family, tuple(addresses))

    async def lookup_caa(self, name: str) -> CaaAnswer:
        """The CAA records of ``name`` (answer section, any owner), or the failure."""
        template = self._query(name, dns.rdatatype.CAA)
        if template is None:
            return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.SERVER))
        data = await self._exchange(template)
        if isinstance(data, DnsFailure):
            return CaaAnswer(name, failure=data)
        if quick_answer(data, template) is None:
            message = self._parse(data, dns.rdatatype.CAA)
            if isinstance(message, DnsFailure):
                return CaaAnswer(name, failure=message)
            if message.flags & dns.flags.TC:
                return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.TRUNCATED))
            failure = self._rcode_failure(message)
            if failure is not None:
                return CaaAnswer(name, failure=failure)
        try:
            records = _caa_records(data)
        except (IndexError, struct.error, dns.exception.DNSException):
            return CaaAnswer(name, failure=DnsFailure(DnsFailureKind.SERVER))
        return CaaAnswer(name, records)

    async def validating(self, probe: str = ".") -> bool | None:
        """Whether the resolver validates DNSSEC: the AD bit on the signed ``probe`` name's
        SOA (any other answer: no). ``None`` when it did not answer."""
        template = self._query(probe, dns.rdatatype.SOA, dns.flags.AD)
        if template is None:
            return None
        data = await self._exchange(template)
        if isinstance(data, DnsFailure):
            return None
        message = self._parse(data, dns.rdatatype.SOA)
        if isinstance(message, DnsFailure):
            return None
        return message.rcode() == dns.rcode.NOERROR and bool(message.flags & dns.flags.AD)


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


# ------------------------------------------------------------------- the usual answer


class _Unusual(Exception):
    """An answer the quick reader leaves to dnspython."""


#: The record types read off the wire: in the answer section (rdata length, or None for
#: one name, or -1 for any) and in the authority section.
_QUICK_ANSWER: dict[int, int | None] = {
    dns.rdatatype.A: 4,
    dns.rdatatype.AAAA: 16,
    dns.rdatatype.CNAME: None,
    dns.rdatatype.CAA: -1,
}
_IN = 1
_OPT_LENGTH = 11  # the query's OPT record: root name, type, payload, flags, no options


def _name_end(wire: bytes, offset: int) -> int:
    """The offset after the name at ``offset``, read as dnspython reads names (labels up
    to 63 bytes, 255 bytes in all, every pointer before the last); anything else is
    unusual."""
    limit, end, total = offset, -1, 1
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1 if end < 0 else end
        if length >= 0xC0:
            target = ((length & 0x3F) << 8) | wire[offset + 1]
            if target >= limit:
                raise _Unusual
            if end < 0:
                end = offset + 2
            limit = offset = target
            continue
        if length > 63:
            raise _Unusual
        total += length + 1
        if total > 255:
            raise _Unusual
        offset += 1 + length


def _records(wire: bytes, offset: int, count: int) -> tuple[int, list[tuple[int, int, int]]]:
    """``count`` records from ``offset``: (type, rdata start, rdata end) each, class IN."""
    records = []
    for _ in range(count):
        offset = _name_end(wire, offset)
        if offset + 10 > len(wire):
            raise _Unusual
        rdtype, rdclass, _ttl, rdlength = struct.unpack_from("!HHIH", wire, offset)
        offset += 10
        if rdclass != _IN or offset + rdlength > len(wire):
            raise _Unusual
        records.append((rdtype, offset, offset + rdlength))
        offset += rdlength
    return offset, records


def quick_answer(data: bytes, query: bytes) -> list[tuple[int, bytes]] | None:
    """The answer records (type, rdata) of a usual NOERROR answer to ``query``, or
    ``None`` for dnspython to read (every other answer, errors and truncation included).

    Usual: the header and question echo the query, no truncation, rcode 0 (extended
    rcode 0), every record well framed and of class IN, the answer section holding A,
    AAAA, CNAME and CAA records only, the authority section SOA or NS records, the
    additional section at most one OPT record without options, nothing after them.
    """
    question = query[12 : len(query) - _OPT_LENGTH]
    qtype = int.from_bytes(question[-4:-2], "big")
    if (
        len(data) < 12 + len(question)
        or data[2] & 0x7A  # opcode other than QUERY, or TC
        or data[3] & 0x0F  # rcode
        or data[4:6] != b"\x00\x01"
        or data[12 : 12 + len(question)] != question
    ):
        return None
    ancount, nscount, arcount = struct.unpack_from("!HHH", data, 6)
    try:
        offset, answers = _records(data, 12 + len(question), ancount)
        out = []
        for rdtype, start, end in answers:
            shape = _QUICK_ANSWER.get(rdtype, 0)  # 0: not read quickly
            if rdtype == dns.rdatatype.CAA and qtype != rdtype:
                raise _Unusual
            if shape is None:
                if _name_end(data, start) != end:
                    raise _Unusual
            elif shape == 0 or (shape > 0 and end - start != shape):
                raise _Unusual
            out.append((rdtype, data[start:end]))
        offset, authority = _records(data, offset, nscount)
        for rdtype, start, end in authority:
            if rdtype == dns.rdatatype.SOA:
                if _name_end(data, _name_end(data, start)) + 20 != end:
                    raise _Unusual
            elif rdtype != dns.rdatatype.NS or _name_end(data, start) != end:
                raise _Unusual
        if arcount > 1:
            return None
        if arcount == 1:
            # An OPT record, as in the query: root name, no extended rcode, no options.
            if data[offset : offset + 3] != b"\x00\x00\x29" or offset + 11 > len(data):
                return None
            if data[offset + 5] != 0 or data[offset + 9 : offset + 11] != b"\x00\x00":
                return None
            offset += 11
    except (_Unusual, IndexError):
        return None
    if offset != len(data):
        return None
    return out
