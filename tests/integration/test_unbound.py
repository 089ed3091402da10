"""DNS as Let's Encrypt sees it: a real Unbound, validating a signed hierarchy on loopback.

Let's Encrypt resolves every name itself, recursively from the root, with DNSSEC
validation, using Unbound. Each test declares a small signed hierarchy
(``exporter.lab.dnssec``: a root, ``com.`` and child zones, each served on its own
127.0.0.N), starts a real ``unbound`` over it (``exporter.lab.unbound``: stub zones,
the lab root's key as the trust anchor, ``ede: yes``) and points the exporter's own
validator at that Unbound. Web servers are the loopback lab's (``lab.host``).

The EXTRA-TEXTs below are Unbound 1.17.1's (Debian 12), measured, not invented; each
test starts its own Unbound because a cached failure loses its text (EDE 6, empty).
Without the ``unbound`` binary these tests skip, or fail under ``CI``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

import exporter.dns
from exporter.compose import build_validator
from exporter.config import parse
from exporter.lab import servers as L
from exporter.lab.dnssec import Hierarchy, LabZone
from exporter.lab.ports import free_port
from exporter.lab.showcase import lab_config
from exporter.lab.unbound import Unbound, UnboundNotFound, find_unbound, render_config
from exporter.records import Family, Reason, ValidationResult

TOKEN, KA = L.CANARY_TOKEN, L.CANARY_KA
PATH = f"/.well-known/acme-challenge/{TOKEN}"


def url(name: str) -> str:
    return f"http://{name}{PATH}"


@pytest.fixture(autouse=True)
def _unbound_installed() -> None:
    try:
        find_unbound()
    except UnboundNotFound as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: required in CI")
        pytest.skip(str(exc))


class Signed:
    """A test's signed hierarchy (root and ``com.`` declared) and, once started, its Unbound."""

    def __init__(self) -> None:
        self.dns = Hierarchy()
        self.tld = self.dns.zone("com.")
        self.unbound: Unbound | None = None

    def zone(self, name: str, **kwargs: Any) -> LabZone:
        return self.dns.zone(name, **kwargs)

    async def start(self) -> Unbound:
        await self.dns.start()
        self.unbound = Unbound(self.dns)
        await self.unbound.start()
        return self.unbound

    async def stop(self) -> None:
        if self.unbound is not None:
            await self.unbound.stop()
        await self.dns.stop()


@pytest.fixture
async def signed() -> AsyncIterator[Signed]:
    hierarchy = Signed()
    try:
        yield hierarchy
    finally:
        await hierarchy.stop()


async def validate(lab: L.Lab, nameserver: tuple[str, int], name: str) -> ValidationResult:
    """The exporter's validator, as ``compose`` builds it, resolving through ``nameserver``."""
    host, port = nameserver
    document = lab_config(
        lab,
        [name],
        resolver={"nameservers": [host], "port": port, "timeout": "2s"},
    )
    validator = build_validator(parse(document, "<test>"))
    return await validator.validate(name, token=TOKEN, key_authorization=KA)


def problem(result: ValidationResult) -> tuple[str, str, str] | None:
    p = result.problem
    return None if p is None else (str(p.type), str(p.reason), p.detail)


def hidden(result: ValidationResult) -> list[tuple[Any, ...]]:
    return [(e.hop, e.host, e.family, e.reason, e.detail) for e in result.dns_family_errors]


async def healthy_hosts(lab: L.Lab) -> tuple[str, str]:
    """A dual-stack pair of lab addresses serving the canary."""
    return (
        await lab.host(6, L.serve(), L.serve()),
        await lab.host(4, L.serve(), L.serve()),
    )


# ------------------------------------------------------------------ the exporter through Unbound


async def test_signed_and_valid(lab: L.Lab, signed: Signed) -> None:
    v6, v4 = await healthy_hosts(lab)
    zone = signed.zone("signed.com.").a("www", v4).aaaa("www", v6)
    unbound = await signed.start()
    result = await validate(lab, unbound.address, zone.fqdn("www"))
    assert result.success, result.problem
    assert [(r.address_used, r.status) for r in result.records] == [(v6, 200)]
    assert result.dns_addresses == {Family.IPV4: 1, Family.IPV6: 1}
    assert hidden(result) == []


async def test_expired_signatures_are_bogus(lab: L.Lab, signed: Signed) -> None:
    v6, v4 = await healthy_hosts(lab)
    zone = signed.zone("expired.com.").a("www", v4).aaaa("www", v6)
    zone.expire("www", "A").expire("www", "AAAA")
    unbound = await signed.start()
    name, ip = zone.fqdn("www"), zone.address
    result = await validate(lab, unbound.address, name)
    assert not result.success and result.records == ()
    assert problem(result) == (
        "dns",
        "dns_dnssec",
        f"DNS problem: looking up A for {name}: DNSSEC: Signature Expired: "
        f"validation failure <{name}. A IN>: signature expired from {ip}; "
        f"DNS problem: looking up AAAA for {name}: DNSSEC: Signature Expired: "
        f"validation failure <{name}. AAAA IN>: signature expired from {ip}",
    )
    assert hidden(result) == []  # both families failed: the errors are in the problem


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        (
            "wrong",
            "no keys have a DS with algorithm ECDSAP256SHA256 from {ip} for key {zone}. "
            "while building chain of trust",
        ),
        (
            "digest",
            "DS hash mismatches key from {ip} for key {zone}. while building chain of trust",
        ),
    ],
    ids=["ds-of-another-key", "ds-digest-corrupted"],
)
async def test_wrong_ds_is_bogus(lab: L.Lab, signed: Signed, mode: str, text: str) -> None:
    v6, v4 = await healthy_hosts(lab)
    zone = signed.zone("wrongds.com.", ds=mode).a("www", v4).aaaa("www", v6)
    unbound = await signed.start()
    name = zone.fqdn("www")
    why = text.format(ip=zone.address, zone=zone.fqdn())
    result = await validate(lab, unbound.address, name)
    # Boulder asks A and AAAA at once: each gets its own code-9 text (asked one after
    # the other, the second would be EDE 6 "key ... is marked as invalid ...").
    assert problem(result) == (
        "dns",
        "dns_dnssec",
        f"DNS problem: looking up A for {name}: DNSSEC: DNSKEY Missing: "
        f"validation failure <{name}. A IN>: {why}; "
        f"DNS problem: looking up AAAA for {name}: DNSSEC: DNSKEY Missing: "
        f"validation failure <{name}. AAAA IN>: {why}",
    )


async def test_unsigned_delegation_is_insecure_and_used(lab: L.Lab, signed: Signed) -> None:
    v6, v4 = await healthy_hosts(lab)
    zone = signed.zone("unsigned.com.", signed=False).a("www", v4).aaaa("www", v6)
    unbound = await signed.start()
    result = await validate(lab, unbound.address, zone.fqdn("www"))
    assert result.success, result.problem
    assert [r.address_used for r in result.records] == [v6]
    assert hidden(result) == []


async def test_split_horizon_unbound_sees_the_public_view(lab: L.Lab, signed: Signed) -> None:
    """The internal DNS answers an address that works; the public one, which Let's
    Encrypt uses, an old server without the challenge file."""
    public = await lab.host(4, L.status(404, b"old server\n"), "refused")
    internal = await lab.host(4, L.serve(), L.serve())
    zone = signed.zone("split.com.").a("www", public)
    name = zone.fqdn("www")
    lab.zone.add(name, a=[internal])
    unbound = await signed.start()

    through_unbound = await validate(lab, unbound.address, name)
    assert problem(through_unbound) == (
        "unauthorized",
        "bad_status",
        f"{public}: Invalid response from {url(name)}: 404",
    )
    assert [r.address_used for r in through_unbound.records] == [public]

    through_plain = await validate(lab, lab.nameserver, name)
    assert through_plain.success, through_plain.problem
    assert [r.address_used for r in through_plain.records] == [internal]


async def test_aaaa_servfail_is_hidden_by_lets_encrypt_but_shown(
    lab: L.Lab, signed: Signed
) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    zone = signed.zone("signed.com.").a("v6fail", v4).aaaa("v6fail", "2001:db8::dead")
    zone.servfail("v6fail", "AAAA")
    unbound = await signed.start()
    name = zone.fqdn("v6fail")
    result = await validate(lab, unbound.address, name)
    # Let's Encrypt goes on with IPv4 and drops the AAAA error: success, no fallback.
    assert result.success and not result.ipv4_fallback and result.problem is None
    assert [r.address_used for r in result.records] == [v4]
    assert result.dns_addresses == {Family.IPV4: 1, Family.IPV6: 0}
    # Unbound 1.17.1 attaches no EDE to an upstream SERVFAIL: the plain form.
    assert hidden(result) == [
        (
            0,
            name,
            Family.IPV6,
            Reason.DNS_SERVFAIL,
            f"DNS problem: SERVFAIL looking up AAAA for {name} - "
            "the domain's nameservers may be malfunctioning",
        )
    ]


async def test_bogus_aaaa_alone_is_hidden_but_shown(lab: L.Lab, signed: Signed) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    zone = signed.zone("signed.com.").a("www", v4).aaaa("www", "2001:db8::dead")
    zone.expire("www", "AAAA")
    unbound = await signed.start()
    name = zone.fqdn("www")
    result = await validate(lab, unbound.address, name)
    assert result.success and not result.ipv4_fallback
    assert [r.address_used for r in result.records] == [v4]
    assert [(e.family, str(e.reason), e.detail) for e in result.dns_family_errors] == [
        (
            Family.IPV6,
            "dns_dnssec",
            f"DNS problem: looking up AAAA for {name}: DNSSEC: Signature Expired: "
            f"validation failure <{name}. AAAA IN>: signature expired from {zone.address}",
        )
    ]


# ------------------------------------------------------------------ the validating-resolver check


async def query(
    server: tuple[str, int], name: str, rdtype: str, flags: int = dns.flags.RD | dns.flags.AD
) -> dns.message.Message:
    """One query as a client sets it: RD and AD, EDNS without DO."""
    message = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, flags=flags)
    return await dns.asyncquery.udp(message, server[0], port=server[1], timeout=2)


async def test_ad_flag_tells_a_validating_resolver(lab: L.Lab, signed: Signed) -> None:
    zone = signed.zone("signed.com.").a("@", "192.0.2.1").a("www", "192.0.2.1")
    for owner in ("@", "www"):
        lab.zone.add(zone.fqdn(owner), a=["192.0.2.1"])
    unbound = await signed.start()

    for owner in ("@", "www"):
        validated = await query(unbound.address, zone.fqdn(owner) + ".", "A")
        plain = await query(lab.nameserver, zone.fqdn(owner) + ".", "A")
        assert validated.rcode() == plain.rcode() == dns.rcode.NOERROR
        assert validated.flags & dns.flags.AD
        assert not plain.flags & dns.flags.AD

    async def check(nameserver: tuple[str, int], timeout: float = 2.0) -> bool | None:
        host, port = nameserver
        return await exporter.dns.is_validating([host], port, timeout, zone.fqdn())

    assert await check(unbound.address) is True
    assert await check(lab.nameserver) is False
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))  # bound, never read: nothing answers
    try:
        assert await check(("127.0.0.1", closed.getsockname()[1]), timeout=0.3) is None
    finally:
        closed.close()


# ------------------------------------------------------------------ Unbound's answers, measured


def ede(message: dns.message.Message) -> list[tuple[int, str | None]]:
    return [(int(o.code), o.text) for o in message.options if isinstance(o, dns.edns.EDEOption)]


async def test_unbound_answers_as_measured(signed: Signed) -> None:
    """The raw answers the exporter's texts are built from (Unbound 1.17.1)."""
    good = signed.zone("good.com.").a("www", "192.0.2.1").aaaa("www", "2001:db8::1")
    good.a("v6fail", "192.0.2.2").aaaa("v6fail", "2001:db8::2").servfail("v6fail", "AAAA")
    good.cname("alias", "www").caa("@", "issue", "letsencrypt.org")
    bad = signed.zone("bad.com.").a("expired", "192.0.2.3").expire("expired", "A")
    bad.a("future", "192.0.2.4").not_yet_valid("future", "A")
    bad.a("nosig", "192.0.2.5").unsign("nosig", "A")
    bad.a("nodata", "192.0.2.6").expire("nodata", "NSEC")
    wrong = signed.zone("wrongds.com.", ds="wrong").a("www", "192.0.2.7")
    plain = signed.zone("plain.com.", signed=False).a("www", "192.0.2.8")
    unbound = await signed.start()
    g, b, w = good.address, bad.address, wrong.address
    cases: list[tuple[str, str, str, bool, list[tuple[int, str | None]], list[str]]] = [
        ("www.good.com.", "A", "NOERROR", True, [], ["www.good.com. 300 IN A 192.0.2.1"]),
        (
            "alias.good.com.",
            "A",
            "NOERROR",
            True,
            [],
            ["alias.good.com. 300 IN CNAME www.good.com.", "www.good.com. 300 IN A 192.0.2.1"],
        ),
        (
            "good.com.",
            "CAA",
            "NOERROR",
            True,
            [],
            ['good.com. 300 IN CAA 0 issue "letsencrypt.org"'],
        ),
        ("nope.good.com.", "A", "NXDOMAIN", True, [], []),
        ("www.good.com.", "CAA", "NOERROR", True, [], []),
        ("v6fail.good.com.", "A", "NOERROR", True, [], ["v6fail.good.com. 300 IN A 192.0.2.2"]),
        ("v6fail.good.com.", "AAAA", "SERVFAIL", False, [], []),
        (
            "expired.bad.com.",
            "A",
            "SERVFAIL",
            False,
            [(7, f"validation failure <expired.bad.com. A IN>: signature expired from {b}")],
            [],
        ),
        (
            "future.bad.com.",
            "A",
            "SERVFAIL",
            False,
            [
                (
                    8,
                    "validation failure <future.bad.com. A IN>: "
                    f"signature before inception date from {b}",
                )
            ],
            [],
        ),
        (
            "nosig.bad.com.",
            "A",
            "SERVFAIL",
            False,
            [(10, f"validation failure <nosig.bad.com. A IN>: no signatures from {b}")],
            [],
        ),
        (
            "nodata.bad.com.",
            "CAA",
            "SERVFAIL",
            False,
            [
                (
                    7,
                    "validation failure <nodata.bad.com. CAA IN>: signature expired from "
                    f"{b} and {b} for <nodata.bad.com. NSEC IN>",
                )
            ],
            [],
        ),
        (
            "www.wrongds.com.",
            "A",
            "SERVFAIL",
            False,
            [
                (
                    9,
                    "validation failure <www.wrongds.com. A IN>: no keys have a DS with "
                    f"algorithm ECDSAP256SHA256 from {w} for key wrongds.com. "
                    "while building chain of trust",
                )
            ],
            [],
        ),
        ("www.plain.com.", "A", "NOERROR", False, [], ["www.plain.com. 300 IN A 192.0.2.8"]),
        ("example.com.", "A", "NXDOMAIN", True, [], []),  # the lab root denies the Internet
    ]
    assert g != b != w != plain.address
    for name, rdtype, rcode, ad, codes, answer in cases:
        response = await query(unbound.address, name, rdtype)
        got = (
            dns.rcode.to_text(response.rcode()),
            bool(response.flags & dns.flags.AD),
            ede(response),
            sorted(rrset.to_text() for rrset in response.answer),
        )
        assert got == (rcode, ad, codes, sorted(answer)), (name, rdtype)

    # Asked again, a failure comes from the cache: EDE 6 without a text.
    again = await query(unbound.address, "expired.bad.com.", "A")
    assert (again.rcode(), ede(again)) == (dns.rcode.SERVFAIL, [(6, None)])


async def test_odd_caa_tags_are_signed_served_and_validated(signed: Signed) -> None:
    zone = signed.zone("caa.com.").caa_raw("@", b"Is-sue", b"letsencrypt.org")
    zone.caa_raw("@", b"issue", b'\x00"odd')
    unbound = await signed.start()
    wire = dns.message.make_query(
        "caa.com.", "CAA", use_edns=0, flags=dns.flags.RD | dns.flags.AD
    ).to_wire()
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # the lab's servers run on this loop
        await loop.sock_sendto(sock, wire, unbound.address)
        answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 2)
    flags, _qd, ancount = struct.unpack("!HHH", answer[2:8])
    assert flags & 0xF == 0 and flags & dns.flags.AD  # NOERROR, validated
    assert ancount == 2  # the two CAA (dnspython itself would refuse to parse the first)
    assert b"\x00\x06Is-sueletsencrypt.org" in answer
    assert b'\x00\x05issue\x00"odd' in answer


async def test_everything_stays_on_loopback_and_stops(signed: Signed) -> None:
    signed.zone("signed.com.").a("www", "192.0.2.1")
    unbound = await signed.start()
    await query(unbound.address, "www.signed.com.", "A")
    await query(unbound.address, "www.example.org.", "AAAA")
    config = unbound.config_path.read_text()
    assert "forward-zone" not in config and "root-hints" not in config
    assert "local-zone:" not in config  # com. is no zone Unbound answers itself
    # A stub under one of those (RFC 6761's test., say) must be told nodefault.
    special = render_config(
        directory=unbound.directory,
        port=53,
        trust_anchor="",
        stubs={".": ("127.0.0.1", 1), "lab.test.": ("127.0.0.1", 2)},
    )
    assert 'local-zone: "test." nodefault' in special
    assert {client for client, _transport, _question in signed.dns.queries} == {"127.0.0.1"}
    # Unbound answers about 50 ms after its exec; timed from the exec of the attempt that got
    # its port to its first answer, without the signed zones' start or a port taken before.
    assert unbound.start_seconds < 5, unbound.start_seconds
    assert unbound.process is not None
    pid, directory = unbound.process.pid, unbound.directory
    await unbound.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not directory.exists()


async def test_a_port_taken_after_the_pick_is_picked_again(
    signed: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the pick of a port and Unbound's bind another process may take it; the start
    then tries again on a new port instead of failing the test that needed a resolver."""
    signed.zone("signed.com.").a("www", "192.0.2.1")
    await signed.dns.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        held = int(taken.getsockname()[1])
        picks: list[int] = []

        def pick(host: str = "127.0.0.1") -> int:
            picks.append(held if not picks else free_port(host))
            return picks[-1]

        monkeypatch.setattr("exporter.lab.unbound.free_port", pick)
        signed.unbound = Unbound(signed.dns)
        await signed.unbound.start()
        assert len(picks) == 2 and signed.unbound.port == picks[1] != held
        assert "could not open ports" not in signed.unbound.log()
        response = await query(signed.unbound.address, "www.signed.com.", "A")
        assert response.rcode() == dns.rcode.NOERROR


async def test_a_port_always_taken_fails_with_unbound_s_words(
    signed: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    await signed.dns.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        held = int(taken.getsockname()[1])
        monkeypatch.setattr("exporter.lab.unbound.free_port", lambda host="127.0.0.1": held)
        signed.unbound = Unbound(signed.dns)
        with pytest.raises(RuntimeError, match="port taken 3 times") as raised:
            await signed.unbound.start()
    assert f"(last 127.0.0.1:{held})" in str(raised.value)
    assert "fatal error: could not open ports" in str(raised.value)
    assert signed.unbound.process is None
    with pytest.raises(RuntimeError, match="not started"):
        signed.unbound.directory.exists()  # the temporary directory is gone
