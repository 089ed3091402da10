"""NSEC3 (RFC 5155) denials through a real Unbound, as Let's Encrypt resolves them.

The DNSSEC suite (``test_unbound``) denies with NSEC; most signed zones, ``com.``
among them, deny with NSEC3: hashed owner names, and opt-out for the delegations that
have no DS. Each test declares a small hierarchy whose ``com.`` is NSEC3 with opt-out
(as the real one), a zone ``hashed.com.`` with a salt and extra iterations, starts a
real ``unbound`` over it and validates with the exporter's own resolver and validator.
Where the verdict cannot tell a validated denial from an insecure one, the raw answer
(its AD bit) and the proof the lab served (each NSEC3's relation to the name, computed
here from RFC 5155's hash) are checked too.

The EXTRA-TEXTs are Unbound 1.17.1's (Debian 12), measured. That Unbound knows no EDE
27 ("Unsupported NSEC3 Iterations Value"): above its limit (``val-nsec3-keysize-
iterations``, 150 for every key size by default) a denial is insecure, not bogus, and
carries no EDE.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from dns.rdtypes.ANY.NSEC3 import NSEC3

from exporter.lab import servers as L
from exporter.lab.dnssec import Hierarchy, LabZone, Nsec3
from exporter.lab.unbound import Unbound
from exporter.records import Family, ValidationResult
from tests.integration.test_unbound import (
    Signed,
    _unbound_installed,  # noqa: F401  (autouse: skip without unbound, fail under CI)
    ede,
    healthy_hosts,
    hidden,
    problem,
    query,
    validate,
)

SALT = b"\xab\xcd"
NXDOMAIN = (
    "DNS problem: NXDOMAIN looking up {t} for {name} - check that a DNS record exists for this "
    "domain"
)


class Hashed(Signed):
    """A hierarchy whose ``com.`` denies with NSEC3 and opt-out; Unbound with ``extra``."""

    def __init__(self) -> None:
        self.dns = Hierarchy()
        self.tld = self.dns.zone("com.", nsec3=Nsec3(opt_out=True))
        self.unbound: Unbound | None = None
        self.extra: tuple[str, ...] = ()
        #: The web hosts of ``hashed.com.``'s names: (IPv6, IPv4).
        self.hosts = ("", "")

    async def start(self) -> Unbound:
        await self.dns.start()
        self.unbound = Unbound(self.dns, extra=self.extra)
        await self.unbound.start()
        return self.unbound

    async def validate(self, lab: L.Lab, name: str) -> ValidationResult:
        """The exporter's verdict on ``name`` through this Unbound (started if need be)."""
        unbound = self.unbound or await self.start()
        return await validate(lab, unbound.address, name)

    async def raw(self, name: str, rdtype: str) -> tuple[str, bool, list[Any], int]:
        """Unbound's answer as a client sees it: rcode, AD, EDEs, answer RRsets."""
        assert self.unbound is not None
        response = await query(self.unbound.address, name, rdtype)
        ad = bool(response.flags & dns.flags.AD)
        return dns.rcode.to_text(response.rcode()), ad, ede(response), len(response.answer)

    async def hashed(self, lab: L.Lab, iterations: int = 5) -> LabZone:
        """``hashed.com.``, the same names in every test (so the same hash chain)."""
        self.hosts = v6, v4 = await healthy_hosts(lab)
        zone = self.zone("hashed.com.", nsec3=Nsec3(salt=SALT, iterations=iterations))
        zone.a("www", v4).aaaa("www", v6).a("v4only", v4)
        return zone.a("www.team", v4).aaaa("www.team", v6)  # team: an empty non-terminal


@pytest.fixture
async def signed() -> AsyncIterator[Hashed]:
    hierarchy = Hashed()
    try:
        yield hierarchy
    finally:
        await hierarchy.stop()


def nxdomain(name: str) -> tuple[str, str, str]:
    texts = [NXDOMAIN.format(t=t, name=name) for t in ("A", "AAAA")]
    return ("dns", "dns_nxdomain", "; ".join(texts))


def bogus(name: str, code: str, why: str) -> tuple[str, str, str]:
    texts = [
        f"DNS problem: looking up {t} for {name}: DNSSEC: {code}: "
        f"validation failure <{name}. {t} IN>: {why}"
        for t in ("A", "AAAA")
    ]
    return ("dns", "dns_dnssec", "; ".join(texts))


def break_nope(zone: LabZone, fault: str) -> None:
    """Break the NSEC3 that covers ``nope`` (``withhold`` it, or break its RRSIG)."""
    if fault == "withhold":
        zone.withhold("nope")
    else:
        getattr(zone, fault)("nope", "NSEC3")


def nope_nsec3(zone: LabZone) -> str:
    """The owner of the NSEC3 covering ``nope``, checked to play no other part in its
    NXDOMAIN proof (it matches no closest encloser, covers no wildcard)."""
    nsec3 = zone.nsec3_owner("nope")
    assert nsec3 not in {zone.nsec3_owner("@"), zone.nsec3_owner("*")}
    return nsec3


async def served(zone: LabZone, name: str, rdtype: str) -> dns.message.Message:
    """What ``zone``'s own server answers to a validator (DO set)."""
    message = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
    return await dns.asyncquery.udp(message, zone.address, port=zone.port, timeout=2)


def nsec3_hash(name: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5, written out: SHA-1 over the canonical wire name and the salt, then
    ``iterations`` more times over the digest and the salt."""
    wire = dns.name.from_text(name).canonicalize().to_wire()
    assert wire is not None
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def nsec3s(message: dns.message.Message) -> list[tuple[bytes, NSEC3]]:
    """The NSEC3s of the authority section: (the owner's hash, the record)."""
    return [
        (base64.b32hexdecode(rrset.name.labels[0].upper()), rdata)
        for rrset in message.authority
        if rrset.rdtype == dns.rdatatype.NSEC3
        for rdata in rrset
        if isinstance(rdata, NSEC3)
    ]


def relation(nsec3: tuple[bytes, NSEC3], name: str) -> str:
    """ "matches", "covers" or "-": the NSEC3 against ``name`` (RFC 5155 §5, §8.3)."""
    owner, rdata = nsec3
    assert rdata.algorithm == 1  # SHA-1
    hashed = nsec3_hash(name, rdata.salt, rdata.iterations)
    if hashed == owner:
        return "matches"
    if owner < rdata.next:
        return "covers" if owner < hashed < rdata.next else "-"
    return "covers" if hashed > owner or hashed < rdata.next else "-"  # the ring's last


def relations(message: dns.message.Message, name: str) -> list[tuple[str, int, str]]:
    """Each NSEC3 of the authority section against ``name``: (relation, flags, bitmap)."""
    out = []
    for nsec3 in nsec3s(message):
        bitmap = nsec3[1].to_text().split(" ", 5)[5:]
        out.append((relation(nsec3, name), nsec3[1].flags, bitmap[0] if bitmap else ""))
    return sorted(out)


# ------------------------------------------------------------------ denials that validate


@pytest.mark.parametrize(
    ("owner", "encloser", "next_closer"),
    [
        ("nope", "hashed.com.", "nope.hashed.com."),
        ("deep.inner.www", "www.hashed.com.", "inner.www.hashed.com."),
        ("old.team", "team.hashed.com.", "old.team.hashed.com."),
    ],
    ids=["under-the-apex", "next-closer-is-not-the-name", "under-an-empty-non-terminal"],
)
async def test_a_name_that_does_not_exist(
    lab: L.Lab, signed: Hashed, owner: str, encloser: str, next_closer: str
) -> None:
    zone = await signed.hashed(lab)
    name = zone.fqdn(owner)
    result = await signed.validate(lab, name)
    assert problem(result) == nxdomain(name)
    assert result.records == ()
    # The closest encloser proof, as served: three NSEC3s (the names are chosen so that
    # no one record plays two parts, so leaving out any of them breaks the proof) ...
    proof = await served(zone, name + ".", "A")
    assert proof.rcode() == dns.rcode.NXDOMAIN
    assert not any(r.rdtype == dns.rdatatype.NSEC for r in proof.authority)
    parts = [
        tuple(relation(nsec3, n) for n in (encloser, next_closer, "*." + encloser))
        for nsec3 in nsec3s(proof)
    ]
    assert sorted(parts) == [("-", "-", "covers"), ("-", "covers", "-"), ("matches", "-", "-")]
    # ... and validated: AD, not an insecure NXDOMAIN.
    assert await signed.raw(name + ".", "AAAA") == ("NXDOMAIN", True, [], 0)


async def test_aaaa_nodata_beside_an_a_record(lab: L.Lab, signed: Hashed) -> None:
    zone = await signed.hashed(lab)
    name = zone.fqdn("v4only")
    result = await signed.validate(lab, name)
    assert result.success, result.problem
    assert [r.address_used for r in result.records] == [signed.hosts[1]]
    assert result.dns_addresses == {Family.IPV4: 1, Family.IPV6: 0}
    assert hidden(result) == []  # an empty AAAA answer hides no failure
    proof = await served(zone, name + ".", "AAAA")
    assert relations(proof, name + ".") == [("matches", 0, "A RRSIG")]
    assert await signed.raw(name + ".", "AAAA") == ("NOERROR", True, [], 0)


async def test_caa_nodata_up_the_tree_permits(lab: L.Lab, signed: Hashed) -> None:
    zone = await signed.hashed(lab)
    name = zone.fqdn("www.team")
    result = await signed.validate(lab, name)
    assert result.success, result.problem
    assert result.caa is not None
    assert (result.caa.permitted, result.caa.relevant_name, result.caa.ignored_errors) == (
        True,
        None,
        (),
    )
    # Every name up to the TLD answered NODATA, each proven by its matching NSEC3 (the
    # empty non-terminal team.hashed.com. and the opt-out com. apex included).
    assert result.caa.names == (name, "team.hashed.com", "hashed.com", "com")
    for caa_name in result.caa.names:
        assert await signed.raw(caa_name + ".", "CAA") == ("NOERROR", True, [], 0)
    proof = await served(zone, "team.hashed.com.", "CAA")
    assert relations(proof, "team.hashed.com.") == [("matches", 0, "")]


@pytest.mark.parametrize("opt_out", [True, False], ids=["opt-out-covers", "nsec3-matches"])
async def test_an_insecure_delegation_proven_by_nsec3(
    lab: L.Lab, signed: Hashed, opt_out: bool
) -> None:
    """Under ``com.`` (opt-out) the delegation has no NSEC3 of its own: the one covering
    its hash, flagged Opt-Out, proves there may be no DS. Under ``hashed.com.`` (no
    opt-out) its own NSEC3 does, its bitmap NS without DS. Either way: insecure, used."""
    parent = signed.tld if opt_out else await signed.hashed(lab)
    v6, v4 = await healthy_hosts(lab)
    child = signed.zone("plain." + parent.origin.to_text(), signed=False)
    child.a("www", v4).aaaa("www", v6)
    name = child.fqdn("www")
    result = await signed.validate(lab, name)
    assert result.success, result.problem
    assert [r.address_used for r in result.records] == [v6]
    assert hidden(result) == []
    referral = await served(parent, name + ".", "A")
    assert not any(r.rdtype == dns.rdatatype.DS for r in referral.authority)
    proof = relations(referral, child.origin.to_text())
    if opt_out:  # the closest provable encloser proof: com. matched, the child covered
        assert [(relation, flags) for relation, flags, _ in proof] == [("-", 1), ("covers", 1)]
        assert [r[0] for r in relations(referral, "com.")] == ["-", "matches"]
    else:
        assert proof == [("matches", 0, "NS")]
    # Insecure, not bogus: the data has no AD. The DS denial itself validates only
    # without opt-out (with it, an unsigned delegation might hide behind the Opt-Out).
    assert await signed.raw(name + ".", "A") == ("NOERROR", False, [], 1)
    ds = await signed.raw(child.origin.to_text(), "DS")
    assert ds == ("NOERROR", not opt_out, [], 0)


# ------------------------------------------------------------------ denials that do not


@pytest.mark.parametrize(
    ("fault", "code", "why"),
    [
        ("withhold", "Bogus", "nameerror proof failed from {ip}"),
        ("corrupt", "Bogus", "signature crypto failed from {ip} for <{nsec3} NSEC3 IN>"),
        ("expire", "Signature Expired", "signature expired from {ip} for <{nsec3} NSEC3 IN>"),
        (
            "unsign",
            "RRSIGs Missing",
            "not all NSEC3 records secure from {ip} for DS {name}. while building chain of trust",
        ),
    ],
)
async def test_a_broken_nxdomain_proof_is_bogus(
    lab: L.Lab, signed: Hashed, fault: str, code: str, why: str
) -> None:
    """The NSEC3 covering the next closer name left out, or its RRSIG broken."""
    zone = await signed.hashed(lab)
    break_nope(zone, fault)
    await signed.start()
    name = zone.fqdn("nope")
    result = await signed.validate(lab, name)
    text = why.format(ip=zone.address, nsec3=nope_nsec3(zone), name=name)
    assert problem(result) == bogus(name, code, text)


async def test_a_broken_nodata_proof_fails_caa(lab: L.Lab, signed: Hashed) -> None:
    """A signer that breaks only empty answers: the AAAA failure is hidden (A works), the
    CAA one fails the validation."""
    zone = await signed.hashed(lab)
    zone.corrupt("v4only", "NSEC3")
    name = zone.fqdn("v4only")
    result = await signed.validate(lab, name)
    why = f"signature crypto failed from {zone.address} for <{zone.nsec3_owner('v4only')} NSEC3 IN>"
    assert problem(result) == (
        "dns",
        "caa_lookup_dnssec",
        f"While processing CAA for {name}: DNS problem: looking up CAA for {name}: "
        f"DNSSEC: Bogus: validation failure <{name}. CAA IN>: {why}",
    )
    assert [r.address_used for r in result.records] == [signed.hosts[1]]  # fetched
    assert [(f, str(r), d) for _hop, _host, f, r, d in hidden(result)] == [
        (
            Family.IPV6,
            "dns_dnssec",
            f"DNS problem: looking up AAAA for {name}: DNSSEC: Bogus: "
            f"validation failure <{name}. AAAA IN>: {why}",
        )
    ]


# ------------------------------------------------------------------ iterations


@pytest.mark.parametrize(
    ("iterations", "limit", "fault", "secure"),
    [
        (150, None, "withhold", True),
        (151, None, "withhold", False),
        (151, None, "corrupt", True),
        (5, "1024 4", "withhold", False),
    ],
    ids=["150-checked", "151-unchecked", "151-signatures-still-checked", "configured-limit"],
)
async def test_iterations_above_the_limit(
    lab: L.Lab, signed: Hashed, iterations: int, limit: str | None, fault: str, secure: bool
) -> None:
    """Up to the limit the hashes are checked: a hole in the proof is bogus. Above it
    Unbound 1.17.1 skips them: the NXDOMAIN is insecure (no AD, no EDE 27) and passes as
    Let's Encrypt's plain NXDOMAIN text, hole or not; the NSEC3s' signatures are still
    verified, so a bad one is still bogus."""
    if limit is not None:
        signed.extra = (f'val-nsec3-keysize-iterations: "{limit}"',)
    zone = await signed.hashed(lab, iterations=iterations)
    break_nope(zone, fault)
    await signed.start()
    name, ip, nsec3 = zone.fqdn("nope"), zone.address, nope_nsec3(zone)
    result = await signed.validate(lab, name)
    if not secure:
        assert problem(result) == nxdomain(name)
        assert await signed.raw(name + ".", "TXT") == ("NXDOMAIN", False, [], 0)
    elif fault == "withhold":
        assert problem(result) == bogus(name, "Bogus", f"nameerror proof failed from {ip}")
    else:
        why = f"signature crypto failed from {ip} for <{nsec3} NSEC3 IN>"
        assert problem(result) == bogus(name, "Bogus", why)
    # A name that exists: its A validates whatever the iterations; its empty AAAA and
    # CAA are proven (or, above the limit, insecure): the validation succeeds.
    www = await signed.validate(lab, zone.fqdn("v4only"))
    assert www.success, www.problem
