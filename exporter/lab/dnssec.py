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
a missing RRSIG, an RRSIG whose signature does not verify (``corrupt``), a forced
RCODE (``servfail``); and per zone: a DS of another key (``ds="wrong"``), a DS with a
corrupted digest (``ds="digest"``), no DS.

Denial of existence is NSEC (RFC 4034) unless a zone is declared with
``nsec3=Nsec3(...)`` (RFC 5155): hashed owner names (SHA-1, the salt and iterations
given), NSEC3PARAM at the apex, empty non-terminals in the chain, and with
``opt_out=True`` the insecure delegations left out of it (every NSEC3 of such a zone
carries the Opt-Out flag)::

    dns.zone("com.", nsec3=Nsec3(opt_out=True))  # as the real com.
    dns.zone("hashed.com.", nsec3=Nsec3(salt=bytes.fromhex("abcd"), iterations=5))

An NSEC3 is named in faults by a name it matches or covers: ``expire("nope",
"NSEC3")`` expires the NSEC3 an NXDOMAIN for ``nope`` uses for its next closer name;
``withhold("nope")`` leaves that NSEC3 out of every answer (a proof with a hole).
:meth:`LabZone.nsec3_owner` gives its owner name (Unbound's texts name it).

The servers implement what a validating resolver needs (RFC 1034 §4.3.2, RFC 4035
§3.1, RFC 5155 §7.2): authoritative answers with RRSIGs when DO is set, in-zone CNAME
chains, referrals with DS or the proof that there is none (the delegation's NSEC or
NSEC3; under opt-out, the closest provable encloser proof), NODATA (the name's NSEC or
matching NSEC3) and NXDOMAIN (the covering NSECs; with NSEC3 the closest encloser
proof: the NSEC3 matching the closest encloser, those covering the next closer name
and the wildcard at the closest encloser), empty non-terminals, DS answered from the
parent side of a cut. No wildcards, no zone transfers. Keys are ECDSA P-256
(algorithm 13), DS digests SHA-256.
"""

from __future__ import annotations

import asyncio
import base64
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
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.dnskeybase import Flag

from exporter.lab.servers import bind_dns, close_dns, serve_dns_over_tcp

__all__ = [
    "AuthServer",
    "DsMode",
    "Hierarchy",
    "LabZone",
    "Nsec3",
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

#: RFC 5155's one hash algorithm, SHA-1.
NSEC3_SHA1 = 1
#: The Opt-Out flag of an NSEC3 (RFC 5155 §3.1.2).
OPT_OUT = 0x01

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


@dataclass(frozen=True)
class Nsec3:
    """A zone's NSEC3 parameters (RFC 5155): SHA-1 with ``iterations`` extra rounds over
    the name and ``salt``. The defaults are RFC 9276's advice: no salt, no extra rounds.
    ``opt_out``: insecure delegations (no DS) get no NSEC3 of their own."""

    salt: bytes = b""
    iterations: int = 0
    opt_out: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.iterations <= 0xFFFF:
            raise ValueError("NSEC3 iterations are 0..65535")
        if len(self.salt) > 255:
            raise ValueError("an NSEC3 salt has at most 255 bytes")

    def fields(self, flags: int) -> str:
        """The fields NSEC3 and NSEC3PARAM share, in master-file syntax."""
        return f"{NSEC3_SHA1} {flags} {self.iterations} {self.salt.hex() or '-'}"

    def hash(self, name: Name) -> bytes:
        """The raw hash of ``name`` (RFC 5155 §5)."""
        text = dns.dnssec.nsec3_hash(name, self.salt, self.iterations, NSEC3_SHA1)
        return base64.b32hexdecode(text)


#: An NSEC3 chain in hash order: (raw hash, the NSEC3's owner name).
_Chain = list[tuple[bytes, Name]]


def _chain_at(chain: _Chain, hashed: bytes) -> tuple[Name, bool]:
    """The owner of the NSEC3 that matches (True) or covers (False) ``hashed``; before
    the first hash, the last NSEC3 covers it (the chain is a ring)."""
    index = bisect.bisect_right(chain, hashed, key=lambda link: link[0]) - 1
    return chain[index][1], chain[index][0] == hashed


@dataclass
class _Faults:
    windows: dict[tuple[Name, T], Window] = field(default_factory=dict)
    unsigned: set[tuple[Name, T]] = field(default_factory=set)
    corrupt: set[tuple[Name, T]] = field(default_factory=set)
    rcodes: dict[tuple[Name, T], dns.rcode.Rcode] = field(default_factory=dict)
    #: Names whose matching or covering NSEC3 the server never sends.
    withheld: set[Name] = field(default_factory=set)

    def hashed(self, owner: Callable[[Name], Name]) -> _Faults:
        """The same faults, an NSEC3's named by its owner (``owner`` maps a name to the
        NSEC3 that matches or covers it) instead of by a name it matches or covers."""

        def key(item: tuple[Name, T]) -> tuple[Name, T]:
            return (owner(item[0]), item[1]) if item[1] == T.NSEC3 else item

        return _Faults(
            windows={key(k): w for k, w in self.windows.items()},
            unsigned={key(k) for k in self.unsigned},
            corrupt={key(k) for k in self.corrupt},
            rcodes=dict(self.rcodes),
            withheld={owner(name) for name in self.withheld},
        )


class LabZone:
    """One zone of a :class:`Hierarchy`: its records and faults, declared before start.

    Owners are relative to the zone (``"www"``, ``"@"`` for the apex) or absolute
    (``"www.good.com."``). Every method returns the zone, so declarations chain.
    """

    def __init__(
        self, origin: str, address: str, *, signed: bool, ds: DsMode, nsec3: Nsec3 | None = None
    ) -> None:
        if nsec3 is not None and not signed:
            raise ValueError(f"{origin}: an unsigned zone has no NSEC3")
        self.origin = dns.name.from_text(origin)
        #: The loopback address its server listens on (the ``from <IP>`` of Unbound's texts).
        self.address = address
        #: The server's port, known once the hierarchy runs.
        self.port = 0
        self.signed = signed
        self.ds: DsMode = ds if signed else "none"
        #: NSEC3 parameters, or None: NSEC.
        self.nsec3 = nsec3
        self._records: list[tuple[Name, int, dns.rdata.Rdata]] = []
        self._faults = _Faults()
        self._chain: _Chain = []
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

    def nsec3_owner(self, owner: str) -> str:
        """The owner name (absolute) of the NSEC3 that matches or covers ``owner``, once
        the hierarchy runs: the record a fault on ``(owner, "NSEC3")`` breaks."""
        if not self._chain:
            raise RuntimeError(f"{self.origin}: no NSEC3 chain (not NSEC3, or not started)")
        return self._nsec3_at(self.name(owner)).to_text()

    def _nsec3_at(self, name: Name) -> Name:
        assert self.nsec3 is not None
        return _chain_at(self._chain, self.nsec3.hash(name))[0]

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
        """(owner, type); for ``NSEC3`` the owner is a name the NSEC3 matches or covers."""
        if not self.signed:
            raise ValueError(f"{self.origin}: an unsigned zone has no signatures to break")
        if T.make(rdtype) == T.NSEC3 and self.nsec3 is None:
            raise ValueError(f"{self.origin}: an NSEC zone has no NSEC3 to break")
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

    def corrupt(self, owner: str, rdtype: str) -> LabZone:
        """The RRset's RRSIG is in date but its signature does not verify."""
        self._faults.corrupt.add(self._signed_fault(owner, rdtype))
        return self

    def withhold(self, owner: str) -> LabZone:
        """The server leaves out the NSEC3 that matches or covers ``owner`` wherever a
        proof needs it (a denial with a hole)."""
        self._faults.withheld.add(self._signed_fault(owner, "NSEC3")[0])
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


_Signer = Callable[[dns.transaction.Transaction, dns.rrset.RRset], None]


def _signer(origin: Name, keys: _Keys, now: int, faults: _Faults) -> _Signer:
    default: Window = (now - DAY, now + 30 * DAY)

    def sign(txn: dns.transaction.Transaction, rrset: dns.rrset.RRset) -> None:
        key = (rrset.name.derelativize(origin), T(rrset.rdtype))
        if key in faults.unsigned:
            return
        window = faults.windows.get(key)
        inception, expiration = default if window is None else (now + window[0], now + window[1])
        dns.dnssec.default_rrset_signer(
            txn,
            rrset,
            signer=origin,
            ksks=[keys.ksk],
            zsks=[keys.zsk],
            inception=inception,
            expiration=expiration,
            origin=origin,
        )

    return sign


def _nsec3_names(built: dns.zone.Zone, params: Nsec3) -> set[Name]:
    """The names an NSEC3 chain covers (RFC 5155 §7.1): every authoritative name, the
    delegations, the empty non-terminals above them; under opt-out, not the insecure
    delegations (their empty non-terminals stay)."""
    origin = built.origin
    assert origin is not None
    cuts = {
        name
        for name, node in built.nodes.items()
        if name != origin and node.get_rdataset(IN, T.NS) is not None
    }
    names = {
        name
        for name in built.nodes
        if not any(name != cut and name.is_subdomain(cut) for cut in cuts)
    }
    for name in list(names):
        while name != origin:
            name = name.parent()
            names.add(name)
    if params.opt_out:
        names -= {cut for cut in cuts if built.nodes[cut].get_rdataset(IN, T.DS) is None}
    return names


def _sign_nsec3(
    built: dns.zone.Zone, zone: LabZone, keys: _Keys, now: int
) -> tuple[_Chain, _Faults]:
    """Sign ``built`` and deny with NSEC3: dnspython signs (it knows no NSEC3), its NSEC
    chain is dropped unsigned and the NSEC3 chain added in its place."""
    params, origin = zone.nsec3, zone.origin
    assert params is not None
    originals = {params.hash(name): name for name in _nsec3_names(built, params)}
    chain: _Chain = [
        (hashed, Name((base64.b32hexencode(hashed).lower(),)).concatenate(origin))
        for hashed in sorted(originals)
    ]
    faults = zone._faults.hashed(lambda name: _chain_at(chain, params.hash(name))[0])
    sign = _signer(origin, keys, now, faults)

    def sign_all_but_nsec(txn: dns.transaction.Transaction, rrset: dns.rrset.RRset) -> None:
        if rrset.rdtype != T.NSEC:
            sign(txn, rrset)

    dns.dnssec.sign_zone(
        built, keys=[keys.ksk, keys.zsk], dnskey_ttl=3600, rrset_signer=sign_all_but_nsec
    )
    soa = built.get_rdataset(origin, T.SOA)
    assert soa is not None
    ttl = min(soa.ttl, cast(SOA, soa[0]).minimum)
    flags = OPT_OUT if params.opt_out else 0  # on every NSEC3 of the zone, as signers do
    with built.writer() as txn:
        for name in [name for name, node in built.nodes.items() if node.get_rdataset(IN, T.NSEC)]:
            txn.delete(name, T.NSEC)
        for index, (hashed, owner) in enumerate(chain):
            node = built.get_node(originals[hashed])  # None: an empty non-terminal
            types = [] if node is None else [r.rdtype for r in node.rdatasets]
            following = base64.b32hexencode(chain[(index + 1) % len(chain)][0]).decode()
            bitmap = " ".join(T.to_text(t) for t in sorted(set(types) - {T.NSEC}))
            text = f"{params.fields(flags)} {following} {bitmap}"
            rrset = dns.rrset.from_rdata(owner, ttl, dns.rdata.from_text(IN, T.NSEC3, text))
            txn.add(rrset)
            sign(txn, rrset)
    return chain, faults


def _corrupt(built: dns.zone.Zone, broken: set[tuple[Name, T]]) -> None:
    """Every bit of these RRSIGs' signatures flipped: in date, but they do not verify."""
    with built.writer() as txn:
        for name, covered in broken:
            sigs = txn.get(name, T.RRSIG, covered)
            if sigs is None:
                raise ValueError(f"{name} {covered.name}: no RRSIG to corrupt")
            bad = [
                cast(RRSIG, sig).replace(
                    signature=bytes(b ^ 0xFF for b in cast(RRSIG, sig).signature)
                )
                for sig in sigs
            ]
            txn.delete(name, T.RRSIG, covered)
            txn.add(name, sigs.ttl, *bad)


def _build(zone: LabZone, children: list[LabZone], keys: dict[Name, _Keys], now: int) -> _Served:
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
        if zone.nsec3 is not None:
            param = zone.nsec3.fields(flags=0)
            txn.add(origin, 0, dns.rdata.from_text(IN, T.NSEC3PARAM, param))
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
    faults = zone._faults
    if zone.nsec3 is not None:
        zone._chain, faults = _sign_nsec3(built, zone, keys[origin], now)
    elif zone.signed:
        zone_keys = keys[origin]
        dns.dnssec.sign_zone(
            built,
            keys=[zone_keys.ksk, zone_keys.zsk],
            dnskey_ttl=3600,
            rrset_signer=_signer(origin, zone_keys, now, faults),
        )
    _corrupt(built, faults.corrupt)
    return _Served(built, faults, zone.nsec3, zone._chain)


# ------------------------------------------------------------------ answering


class _Served:
    """A built zone as its server answers from it."""

    def __init__(
        self, zone: dns.zone.Zone, faults: _Faults, nsec3: Nsec3 | None, chain: _Chain
    ) -> None:
        assert zone.origin is not None
        self.zone = zone
        self.origin: Name = zone.origin
        self.rcodes = dict(faults.rcodes)
        self.withheld = set(faults.withheld)
        self.nsec3 = nsec3
        self.chain = chain
        #: The type that denies existence here.
        self.denial = T.NSEC if nsec3 is None else T.NSEC3
        self.signed = self.rdataset(self.origin, T.DNSKEY) is not None
        self.nsec_owners = sorted(
            name for name, node in zone.nodes.items() if node.get_rdataset(IN, T.NSEC) is not None
        )

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

    def nsec3_at(self, name: Name) -> tuple[Name, bool]:
        """The NSEC3 that matches (True) or covers (False) ``name``."""
        assert self.nsec3 is not None
        return _chain_at(self.chain, self.nsec3.hash(name))

    def nxdomain_proof(self, name: Name) -> list[Name | None]:
        """The owners of the records that prove ``name`` does not exist: with NSEC, those
        covering it and the wildcard; with NSEC3, the closest encloser proof and the
        NSEC3 covering the wildcard at the closest encloser (RFC 5155 §7.2.2)."""
        if not self.signed:
            return []
        encloser = self.closest_encloser(name)
        wildcard = Name((b"*",)).concatenate(encloser)
        if self.nsec3 is None:
            return [self.covering_nsec(name), self.covering_nsec(wildcard)]
        next_closer = name.split(len(encloser) + 1)[1]
        return [self.nsec3_at(n)[0] for n in (encloser, next_closer, wildcard)]

    def nodata_proof(self, name: Name) -> list[Name | None]:
        """The owners of the records that prove ``name`` exists without the type asked:
        its NSEC (an empty non-terminal has none: the covering one) or its matching NSEC3
        (RFC 5155 §7.2.3). An opted-out delegation has none: a DS query there gets the
        closest provable encloser proof, the next closer's NSEC3 Opt-Out (§7.2.4)."""
        if not self.signed:
            return []
        if self.nsec3 is None:
            has_nsec = self.rdataset(name, T.NSEC) is not None
            return [name if has_nsec else self.covering_nsec(name)]
        owner, matches = self.nsec3_at(name)
        if matches:
            return [owner]
        encloser = name.parent()
        while not self.nsec3_at(encloser)[1]:  # the apex always matches
            encloser = encloser.parent()
        next_closer = name.split(len(encloser) + 1)[1]
        return [self.nsec3_at(encloser)[0], self.nsec3_at(next_closer)[0]]


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

    def proofs(self, owners: Iterable[Name | None]) -> None:
        """The zone's NSEC or NSEC3 records at ``owners`` (and their RRSIGs)."""
        for owner in sorted({o for o in owners if o is not None} - self.zone.withheld):
            self.add(self.message.authority, owner, self.zone.denial)

    def negative(self, proofs: Iterable[Name | None]) -> None:
        """The SOA with the negative TTL (RFC 2308, RFC 9077) and the denial proofs."""
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
        self.proofs(proofs)


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
            out.proofs(zone.nodata_proof(cut))  # there is no DS: insecure
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
                out.negative(zone.nodata_proof(name))
                return message
            message.set_rcode(dns.rcode.NXDOMAIN)
            out.negative(zone.nxdomain_proof(name))
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
        out.negative(zone.nodata_proof(name))
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
        self.server.source_ports.append(addr[1])
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
        #: The client's source port per query received (UDP and TCP).
        self.source_ports: list[int] = []
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
        peer = writer.get_extra_info("peername")
        client = str(peer[0])
        self.source_ports.append(int(peer[1]))
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

    def zone(
        self, origin: str, *, signed: bool = True, ds: DsMode = "good", nsec3: Nsec3 | None = None
    ) -> LabZone:
        """Declare a zone (``origin`` absolute or not; a trailing dot is implied), its
        denials NSEC unless ``nsec3`` gives NSEC3 parameters."""
        if self.servers:
            raise RuntimeError("declare zones before the hierarchy starts")
        name = dns.name.from_text(origin)
        if name in self.zones:
            return self.zones[name]
        if self._next > 254:
            raise ValueError("too many zones")
        address = f"{self._base}{self._next}"
        zone = LabZone(name.to_text(), address, signed=signed, ds=ds, nsec3=nsec3)
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

    @property
    def source_ports(self) -> list[int]:
        """The source port of every query any server received."""
        return [port for server in self.servers for port in server.source_ports]

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
            origin: _build(zone, children[origin], keys, now) for origin, zone in self.zones.items()
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
