"""A DNSSEC-signed DNS hierarchy on loopback, for a real validating resolver to walk.

Rule: test infrastructure, like the rest of ``exporter.lab``. Every zone is served
by its own small authoritative server (UDP and TCP, asyncio, dnspython) on its own
loopback address ``127.0.0.N`` and a free high port; nothing needs privileges and
nothing here sends a query anywhere. A resolver finds the servers through stub zones
(``exporter.lab.unbound``), not through glue, because glue carries no port.

A test declares zones and records, then starts the hierarchy::

    dns = Hierarchy()
    dns.zone("com.")
    good = dns.zone("good.com.")
    good.a("www", await lab.host(4, L.serve(), L.serve()))
    dns.zone("bad.com.", ds="wrong").a("www", "192.0.2.9")
    dns.zone("plain.com.", signed=False).a("www", "192.0.2.10")
    async with dns:  # keys made, zones signed (DS in the parents), servers started
        ...

Each zone's parent is the nearest declared ancestor (the root at least); the parent
gets the delegation (NS, glue, and the DS unless ``ds="none"`` or the child is
unsigned). Faults are declared per (owner, type): an expired or not yet valid RRSIG,
a missing RRSIG, a forced RCODE (``servfail``); and per zone: a DS of another key
(``ds="wrong"``), a DS with a corrupted digest (``ds="digest"``), no DS.

The servers implement what a validating resolver needs (RFC 1034 §4.3.2, RFC 4035
§3.1): authoritative answers with RRSIGs when DO is set, in-zone CNAME chains,
referrals with DS or the NSEC that proves there is none, NODATA and NXDOMAIN with
their NSEC proofs, empty non-terminals, DS answered from the parent side of a cut.
No wildcards, no NSEC3, no zone transfers. Keys are ECDSA P-256 (algorithm 13), DS
digests SHA-256.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

from cryptography.utils import CryptographyDeprecationWarning

# dnspython's dns.dnssec imports every algorithm it knows at import time, DSA among them, and
# cryptography 51 deprecates DSA with a warning on first touch. The lab signs with ECDSA
# P-256 only and never uses DSA; this filter covers that one import and that one warning.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning
    )
    import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.transaction
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssecalgs.base import GenericPrivateKey
from dns.dnssectypes import Algorithm, DSDigest
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.dnskeybase import Flag

from exporter.lab.servers import bind_dns, close_dns, serve_dns_over_tcp

__all__ = [
    "AuthServer",
    "DsMode",
    "Hierarchy",
    "LabZone",
    "caa_rdata",
]

IN = dns.rdataclass.IN
T = dns.rdatatype.RdataType
Name = dns.name.Name

DAY = 86400
ALGORITHM = Algorithm.ECDSAP256SHA256
DIGEST = DSDigest.SHA256
#: The EDNS payload the servers advertise (and the most they send over UDP).
PAYLOAD = 1232

#: How a parent publishes a child's DS: the child's KSK ("good"), another key's
#: ("wrong": no DNSKEY matches), the child KSK's tag and algorithm with a corrupted
#: digest ("digest"), or none at all ("none": an insecure delegation).
DsMode = Literal["good", "wrong", "digest", "none"]

#: (inception, expiration) of a signature, UNIX seconds.
Window = tuple[int, int]
_Key = tuple[ec.EllipticCurvePrivateKey | GenericPrivateKey, DNSKEY]


def _key(ksk: bool) -> _Key:
    private = ec.generate_private_key(ec.SECP256R1())
    flags = Flag.ZONE | (Flag.SEP if ksk else 0)
    return private, dns.dnssec.make_dnskey(private.public_key(), ALGORITHM, flags=flags)


def caa_rdata(flags: int, tag: bytes, value: bytes) -> dns.rdata.Rdata:
    """A CAA record with any tag and value bytes, even those dnspython refuses to build
    (non-alphanumeric or empty tags): generic RDATA, served as sent."""
    if len(tag) > 255:
        raise ValueError("a CAA tag has at most 255 bytes")
    wire = bytes([flags, len(tag)]) + tag + value
    return dns.rdata.GenericRdata(IN, T.CAA, wire)


# ------------------------------------------------------------------ declaring zones


@dataclass
class _Faults:
    windows: dict[tuple[Name, T], Window] = field(default_factory=dict)
    unsigned: set[tuple[Name, T]] = field(default_factory=set)
    rcodes: dict[tuple[Name, T], dns.rcode.Rcode] = field(default_factory=dict)


class LabZone:
    """One zone of a :class:`Hierarchy`: its records and faults, declared before start.

    Owners are relative to the zone (``"www"``, ``"@"`` for the apex) or absolute
    (``"www.good.com."``). Every method returns the zone, so declarations chain.
    """

    def __init__(self, origin: str, address: str, *, signed: bool, ds: DsMode) -> None:
        self.origin = dns.name.from_text(origin)
        #: The loopback address its server listens on (the ``from <IP>`` of Unbound's texts).
        self.address = address
        #: The server's port, known once the hierarchy runs.
        self.port = 0
        self.signed = signed
        self.ds: DsMode = ds if signed else "none"
        self._records: list[tuple[Name, int, dns.rdata.Rdata]] = []
        self._faults = _Faults()
        self.ns = dns.name.from_text(
            "a.lab-root." if self.origin == dns.name.root else "ns", self.origin
        )

    def __repr__(self) -> str:
        return f"LabZone({self.origin.to_text()!r}, {self.address})"

    def name(self, owner: str = "@") -> Name:
        return dns.name.from_text(owner, self.origin)

    def fqdn(self, owner: str = "@") -> str:
        """The owner as the exporter is given a domain: no trailing dot."""
        return self.name(owner).to_text(omit_final_dot=True)

    # -- records -----------------------------------------------------------------------

    def add(self, owner: str, rdtype: str, *values: str, ttl: int = 300) -> LabZone:
        """Records in master-file syntax, e.g. ``add("www", "CAA", '0 issue "ca.example"')``."""
        for value in values:
            rdata = dns.rdata.from_text(IN, rdtype, value, origin=self.origin, relativize=False)
            self._records.append((self.name(owner), ttl, rdata))
        return self

    def add_rdata(self, owner: str, rdata: dns.rdata.Rdata, ttl: int = 300) -> LabZone:
        """A record given as RDATA (e.g. :func:`caa_rdata` for tags dnspython refuses)."""
        self._records.append((self.name(owner), ttl, rdata))
        return self

    def a(self, owner: str, *addresses: str, ttl: int = 300) -> LabZone:
        return self.add(owner, "A", *addresses, ttl=ttl)

    def aaaa(self, owner: str, *addresses: str, ttl: int = 300) -> LabZone:
        return self.add(owner, "AAAA", *addresses, ttl=ttl)

    def cname(self, owner: str, target: str, ttl: int = 300) -> LabZone:
        """``target`` is relative to this zone unless it ends with a dot."""
        return self.add(owner, "CNAME", self.name(target).to_text(), ttl=ttl)

    def caa(self, owner: str, tag: str, value: str, flags: int = 0, ttl: int = 300) -> LabZone:
        """A well-formed CAA record, e.g. ``caa("@", "issue", "letsencrypt.org")``."""
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return self.add(owner, "CAA", f'{flags} {tag} "{escaped}"', ttl=ttl)

    def caa_raw(
        self, owner: str, tag: bytes, value: bytes, flags: int = 0, ttl: int = 300
    ) -> LabZone:
        """A CAA record with raw tag and value bytes (odd tags, malformed values)."""
        return self.add_rdata(owner, caa_rdata(flags, tag, value), ttl)

    # -- faults --------------------------------------------------------------------------

    def _signed_fault(self, owner: str, rdtype: str) -> tuple[Name, T]:
        if not self.signed:
            raise ValueError(f"{self.origin}: an unsigned zone has no signatures to break")
        return self.name(owner), T.make(rdtype)

    def expire(self, owner: str, rdtype: str) -> LabZone:
        """The RRset's RRSIG expired ten days ago (beyond any resolver's clock skew)."""
        key = self._signed_fault(owner, rdtype)
        self._faults.windows[key] = (-60 * DAY, -10 * DAY)
        return self

    def not_yet_valid(self, owner: str, rdtype: str) -> LabZone:
        """The RRset's RRSIG becomes valid in ten days."""
        key = self._signed_fault(owner, rdtype)
        self._faults.windows[key] = (10 * DAY, 40 * DAY)
        return self

    def unsign(self, owner: str, rdtype: str) -> LabZone:
        """The RRset has no RRSIG at all."""
        self._faults.unsigned.add(self._signed_fault(owner, rdtype))
        return self

    def rcode(self, owner: str, rdtype: str, rcode: str) -> LabZone:
        """Queries for (owner, type) get ``rcode`` (e.g. ``"SERVFAIL"``) instead of data."""
        self._faults.rcodes[(self.name(owner), T.make(rdtype))] = dns.rcode.from_text(rcode)
        return self

    def servfail(self, owner: str, rdtype: str) -> LabZone:
        return self.rcode(owner, rdtype, "SERVFAIL")


# ------------------------------------------------------------------ building zones


@dataclass
class _Keys:
    ksk: _Key
    zsk: _Key


def _signer(
    zone: LabZone, keys: _Keys, now: int
) -> Callable[[dns.transaction.Transaction, dns.rrset.RRset], None]:
    default: Window = (now - DAY, now + 30 * DAY)

    def sign(txn: dns.transaction.Transaction, rrset: dns.rrset.RRset) -> None:
        key = (rrset.name.derelativize(zone.origin), T(rrset.rdtype))
        if key in zone._faults.unsigned:
            return
        window = zone._faults.windows.get(key)
        inception, expiration = default if window is None else (now + window[0], now + window[1])
        dns.dnssec.default_rrset_signer(
            txn,
            rrset,
            signer=zone.origin,
            ksks=[keys.ksk],
            zsks=[keys.zsk],
            inception=inception,
            expiration=expiration,
            origin=zone.origin,
        )

    return sign


def _build(
    zone: LabZone, children: list[LabZone], keys: dict[Name, _Keys], now: int
) -> dns.zone.Zone:
    origin = zone.origin
    built = dns.zone.Zone(origin, relativize=False)
    hostmaster = dns.name.from_text("hostmaster", origin)
    with built.writer() as txn:
        txn.add(
            origin,
            3600,
            dns.rdata.from_text(IN, T.SOA, f"{zone.ns} {hostmaster} 1 1800 900 604800 300"),
        )
        txn.add(origin, 3600, dns.rdata.from_text(IN, T.NS, zone.ns.to_text()))
        txn.add(zone.ns, 3600, dns.rdata.from_text(IN, T.A, zone.address))
        for owner, ttl, rdata in zone._records:
            txn.add(owner, ttl, rdata)
        for child in children:
            txn.add(child.origin, 3600, dns.rdata.from_text(IN, T.NS, child.ns.to_text()))
            txn.add(child.ns, 3600, dns.rdata.from_text(IN, T.A, child.address))
            if child.ds == "none":
                continue
            dnskey = keys[child.origin].ksk[1] if child.ds != "wrong" else _key(ksk=True)[1]
            ds = dns.dnssec.make_ds(child.origin, dnskey, DIGEST)
            if child.ds == "digest":
                ds = cast(DS, ds.replace(digest=bytes(b ^ 0xFF for b in ds.digest)))
            txn.add(child.origin, 3600, ds)
    if zone.signed:
        zone_keys = keys[origin]
        dns.dnssec.sign_zone(
            built,
            keys=[zone_keys.ksk, zone_keys.zsk],
            dnskey_ttl=3600,
            rrset_signer=_signer(zone, zone_keys, now),
        )
    return built


# ------------------------------------------------------------------ answering


class _Served:
    """A built zone as its server answers from it."""

    def __init__(self, zone: dns.zone.Zone, rcodes: dict[tuple[Name, T], dns.rcode.Rcode]) -> None:
        assert zone.origin is not None
        self.zone = zone
        self.origin: Name = zone.origin
        self.rcodes = rcodes
        self.nsec_owners = sorted(
            name for name, node in zone.nodes.items() if node.get_rdataset(IN, T.NSEC) is not None
        )

    @property
    def signed(self) -> bool:
        return bool(self.nsec_owners)

    def rdataset(self, name: Name, rdtype: T, covers: T = T.NONE) -> dns.rdataset.Rdataset | None:
        node = self.zone.get_node(name)
        return None if node is None else node.get_rdataset(IN, rdtype, covers)

    def delegation(self, qname: Name, qtype: T) -> Name | None:
        """The zone cut at or above ``qname``; a DS query at the cut is answered here."""
        for depth in range(len(self.origin) + 1, len(qname) + 1):
            name = qname.split(depth)[1]
            if name == qname and qtype == T.DS:
                return None
            if self.rdataset(name, T.NS) is not None:
                return name
        return None

    def exists(self, name: Name) -> bool:
        """``name`` owns records or is an empty non-terminal."""
        return self.zone.get_node(name) is not None or any(
            owner.is_subdomain(name) for owner in self.zone.nodes
        )

    def covering_nsec(self, name: Name) -> Name | None:
        if not self.nsec_owners:
            return None
        # index -1 wraps to the last NSEC, which covers names after it (canonical order)
        return self.nsec_owners[bisect.bisect_right(self.nsec_owners, name) - 1]

    def closest_encloser(self, name: Name) -> Name:
        for depth in range(len(name) - 1, len(self.origin) - 1, -1):
            candidate = name.split(depth)[1]
            if self.exists(candidate):
                return candidate
        return self.origin


class _Response:
    """One response being built; RRSIGs are added when the query set DO."""

    def __init__(self, zone: _Served, message: dns.message.Message, dnssec: bool) -> None:
        self.zone = zone
        self.message = message
        self.dnssec = dnssec

    def add(
        self, section: list[dns.rrset.RRset], name: Name, rdtype: T, *, sign: bool = True
    ) -> bool:
        rdataset = self.zone.rdataset(name, rdtype)
        if rdataset is None:
            return False
        self._put(section, name, rdataset)
        if sign and self.dnssec:
            rrsig = self.zone.rdataset(name, T.RRSIG, rdtype)
            if rrsig is not None:
                self._put(section, name, rrsig)
        return True

    @staticmethod
    def _put(section: list[dns.rrset.RRset], name: Name, rdataset: dns.rdataset.Rdataset) -> None:
        for rrset in section:
            if (rrset.name, rrset.rdtype, rrset.covers) == (name, rdataset.rdtype, rdataset.covers):
                return
        section.append(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))

    def negative(self, proofs: Iterable[Name | None]) -> None:
        """The SOA with the negative TTL (RFC 2308, RFC 9077) and the NSEC proofs."""
        origin = self.zone.origin
        soa = self.zone.rdataset(origin, T.SOA)
        assert soa is not None
        ttl = min(soa.ttl, cast(SOA, soa[0]).minimum)
        self.message.authority.append(dns.rrset.from_rdata_list(origin, ttl, list(soa)))
        if not self.dnssec:
            return
        sig = self.zone.rdataset(origin, T.RRSIG, T.SOA)
        if sig is not None:
            self._put(self.message.authority, origin, sig)
        for owner in sorted({p for p in proofs if p is not None}):
            self.add(self.message.authority, owner, T.NSEC)


def _answer(zone: _Served, query: dns.message.Message) -> dns.message.Message:
    message = dns.message.make_response(query, our_payload=PAYLOAD)
    dnssec = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
    if dnssec:
        message.ednsflags |= dns.flags.DO  # RFC 3225: DO is copied into the response
    if len(query.question) != 1:
        message.set_rcode(dns.rcode.FORMERR)
        return message
    question = query.question[0]
    qname, qtype = question.name, T(question.rdtype)
    if question.rdclass != IN or not qname.is_subdomain(zone.origin):
        message.set_rcode(dns.rcode.REFUSED)
        return message
    out = _Response(zone, message, dnssec)

    cut = zone.delegation(qname, qtype)
    if cut is not None:  # a referral: not authoritative
        ns = zone.rdataset(cut, T.NS)
        assert ns is not None
        out.add(message.authority, cut, T.NS, sign=False)
        if dnssec and zone.signed and not out.add(message.authority, cut, T.DS):
            out.add(message.authority, cut, T.NSEC)  # proves there is no DS: insecure
        for rdata in ns:
            host = cast(NS, rdata).target
            if host.is_subdomain(zone.origin):
                out.add(message.additional, host, T.A, sign=False)
        return message

    message.flags |= dns.flags.AA
    name = qname
    for _ in range(8):  # an in-zone CNAME chain, bounded
        forced = zone.rcodes.get((name, qtype))
        if forced is not None:
            message.set_rcode(forced)
            message.answer.clear()
            return message
        if zone.zone.get_node(name) is None:
            if zone.exists(name):  # an empty non-terminal: NODATA
                out.negative([zone.covering_nsec(name)])
                return message
            message.set_rcode(dns.rcode.NXDOMAIN)
            wildcard = Name((b"*",)).concatenate(zone.closest_encloser(name))
            out.negative([zone.covering_nsec(name), zone.covering_nsec(wildcard)])
            return message
        if out.add(message.answer, name, qtype):
            return message
        if qtype != T.CNAME and out.add(message.answer, name, T.CNAME):
            cname = zone.rdataset(name, T.CNAME)
            assert cname is not None
            target = cast(CNAME, cname[0]).target
            if not target.is_subdomain(zone.origin) or zone.delegation(target, qtype):
                return message  # out of zone: the resolver follows it
            name = target
            continue
        out.negative([name] if zone.signed else [])  # NODATA
        return message
    return message


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not isinstance-checkable on every Python (3.11: a _SelectorDatagramTransport)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        response = self.server.respond(query, addr[0], "udp")
        limit = max(512, query.payload if query.edns >= 0 else 512)
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query, our_payload=PAYLOAD)
            truncated.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
            wire = truncated.to_wire()
        if self.transport is not None:
            self.transport.sendto(wire, addr)


class AuthServer:
    """An authoritative server for one built zone on ``host``, UDP and TCP on one port."""

    def __init__(self, zone: _Served, host: str) -> None:
        self.zone = zone
        self.host = host
        self.port = 0
        #: (client address, "udp" or "tcp", question) per query received.
        self.queries: list[tuple[str, str, str]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def respond(
        self, query: dns.message.Message, client: str, transport: str
    ) -> dns.message.Message:
        question = query.question[0].to_text() if query.question else "?"
        self.queries.append((client, transport, question))
        return _answer(self.zone, query)

    async def start(self) -> None:
        """Listen on a free port, the same for UDP and TCP."""
        self._udp, self._tcp, self.port = await bind_dns(
            self.host, 0, lambda: _UDP(self), self._serve_tcp
        )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str(writer.get_extra_info("peername")[0])
        await serve_dns_over_tcp(reader, writer, lambda query: self.respond(query, client, "tcp"))

    async def stop(self) -> None:
        await close_dns(self._udp, self._tcp)


# ------------------------------------------------------------------ the hierarchy


class Hierarchy:
    """A root and the zones a test declares, signed and served on loopback.

    Zone ``k`` (the root is 0) listens on ``127.0.0.{k + 2}``. Declare everything,
    then :meth:`start` (or ``async with``): keys are made and every zone is signed
    at start, children first so that parents carry their DS.
    """

    def __init__(self, *, base: str = "127.0.0.", first: int = 2) -> None:
        self._base = base
        self._next = first
        self.zones: dict[Name, LabZone] = {}
        self.servers: list[AuthServer] = []
        self._root_ksk: DNSKEY | None = None
        #: Seconds spent making keys and signing, and starting the servers.
        self.sign_seconds = 0.0
        self.root = self.zone(".")

    def zone(self, origin: str, *, signed: bool = True, ds: DsMode = "good") -> LabZone:
        """Declare a zone (``origin`` absolute or not; a trailing dot is implied)."""
        if self.servers:
            raise RuntimeError("declare zones before the hierarchy starts")
        name = dns.name.from_text(origin)
        if name in self.zones:
            return self.zones[name]
        if self._next > 254:
            raise ValueError("too many zones")
        zone = LabZone(name.to_text(), f"{self._base}{self._next}", signed=signed, ds=ds)
        self._next += 1
        self.zones[name] = zone
        return zone

    def parent(self, zone: LabZone) -> LabZone | None:
        """The nearest declared ancestor (``None`` for the root)."""
        name = zone.origin
        while name != dns.name.root:
            name = name.parent()
            if name in self.zones:
                return self.zones[name]
        return None

    @property
    def trust_anchor(self) -> str:
        """The root KSK's DS, as a resolver's trust anchor: ``". DS <tag> 13 2 <hex>"``."""
        if self._root_ksk is None:
            raise RuntimeError("the hierarchy is not started")
        return f". DS {dns.dnssec.make_ds(dns.name.root, self._root_ksk, DIGEST).to_text()}"

    @property
    def stubs(self) -> dict[str, tuple[str, int]]:
        """Zone (absolute, e.g. ``"good.com."``) -> its server's (address, port)."""
        return {z.origin.to_text(): (z.address, z.port) for z in self.zones.values()}

    @property
    def queries(self) -> list[tuple[str, str, str]]:
        """Every query any server received: (client address, transport, question)."""
        return [query for server in self.servers for query in server.queries]

    async def start(self) -> None:
        if self.servers:
            return
        started = time.perf_counter()
        now = int(time.time())
        keys = {
            origin: _Keys(_key(ksk=True), _key(ksk=False))
            for origin, zone in self.zones.items()
            if zone.signed
        }
        root_keys = keys.get(dns.name.root)
        if root_keys is None:
            raise ValueError("the root must be signed (it is the trust anchor)")
        self._root_ksk = root_keys.ksk[1]
        children: dict[Name, list[LabZone]] = {origin: [] for origin in self.zones}
        for zone in self.zones.values():
            parent = self.parent(zone)
            if parent is not None:
                children[parent.origin].append(zone)
        served = {
            origin: _Served(_build(zone, children[origin], keys, now), dict(zone._faults.rcodes))
            for origin, zone in self.zones.items()
        }
        try:
            for origin, zone in self.zones.items():
                server = AuthServer(served[origin], zone.address)
                self.servers.append(server)
                await server.start()
                zone.port = server.port
        except BaseException:
            await self.stop()
            raise
        self.sign_seconds = time.perf_counter() - started

    async def stop(self) -> None:
        servers, self.servers = self.servers, []
        await asyncio.gather(*(server.stop() for server in servers))

    async def __aenter__(self) -> Hierarchy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
