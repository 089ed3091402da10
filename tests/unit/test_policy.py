"""Table tests for the pure Let's Encrypt policy: one row per rule, named by ``ids``."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from exporter import policy
from exporter.gocompat import go_quote
from exporter.iana import reserved_block
from exporter.policy import (
    AddressPolicy,
    DnsAnswer,
    DnsFailure,
    DnsFailureKind,
    FallbackAction,
    RedirectRefusal,
    RedirectTarget,
)
from exporter.records import FallbackPolicy, Family, Problem, ProblemType, Reason

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ the module rule


# (The module rule, no I/O imports, is checked with the other pure modules in
# tests/unit/test_structure.py.)


# --------------------------------------------------------------------- reserved blocks


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", "[RFC1918]: Private-Use"),
        ("172.16.5.4", "[RFC1918]: Private-Use"),
        ("192.168.1.1", "[RFC1918]: Private-Use"),
        ("127.0.0.1", "[RFC1122], Section 3.2.1.3: Loopback"),
        ("0.0.0.0", '[RFC1122], Section 3.2.1.3: "This host on this network"'),
        ("0.1.2.3", '[RFC791], Section 3.2: "This network"'),
        ("169.254.169.254", "[RFC3927]: Link Local"),
        ("100.64.0.1", "[RFC6598]: Shared Address Space"),
        ("192.0.0.9", "[RFC7723]: Port Control Protocol Anycast"),
        ("192.0.0.100", "[RFC6890], Section 2.1: IETF Protocol Assignments"),
        ("192.0.2.1", "[RFC5737]: Documentation (TEST-NET-1)"),
        ("224.0.0.1", None),  # multicast: in neither registry (erratum 21)
        ("239.255.255.255", None),
        ("240.0.0.0", "[RFC1112], Section 4: Reserved"),
        ("255.255.255.255", "[RFC8190] [RFC919], Section 7: Limited Broadcast"),
        ("8.8.8.8", None),
        ("::1", "[RFC4291]: Loopback Address"),
        ("::ffff:8.8.8.8", "[RFC4291]: IPv4-mapped Address"),
        ("2001:db8::1", "[RFC3849]: Documentation"),
        ("2001::1", "[RFC4380] [RFC8190]: TEREDO"),
        ("2001:1::1", "[RFC7723]: Port Control Protocol Anycast"),
        ("2002::1", "[RFC3056]: 6to4"),
        ("fc00::1", "[RFC4193] [RFC8190]: Unique-Local"),
        ("fe80::1", "[RFC4291]: Link-Local Unicast"),
        ("ff02::1", None),  # multicast: in neither registry (erratum 21)
        ("ff0e::1", None),
        ("ff00::", None),
        ("3fff::1", "[RFC9637]: Documentation"),
        ("2606:4700::1111", None),
    ],
    ids=lambda v: str(v),
)
def test_reserved_block(address: str, expected: str | None) -> None:
    assert reserved_block(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize(
    ("flags", "address", "accepted"),
    [
        ({}, "8.8.8.8", True),
        ({}, "127.0.0.1", False),
        ({"allow_loopback": True}, "127.0.0.1", True),
        ({"allow_loopback": True}, "::1", True),
        ({"allow_loopback": True}, "10.0.0.1", False),
        ({"allow_reserved": True}, "10.0.0.1", True),
        ({"lab_addresses": frozenset({"2001:db8::1"})}, "2001:db8::1", True),
        ({"lab_addresses": frozenset({"2001:db8::1"})}, "2001:db8::2", False),
    ],
    ids=[
        "public",
        "loopback-refused",
        "loopback-lab",
        "ipv6-loopback-lab",
        "private-with-loopback-flag",
        "private-with-reserved-flag",
        "mapped",
        "unmapped",
    ],
)
def test_address_policy(flags: dict[str, object], address: str, accepted: bool) -> None:
    result = AddressPolicy(**flags).refusal(ipaddress.ip_address(address))  # type: ignore[arg-type]
    assert (result is None) is accepted


# ------------------------------------------------------------------------------ DNS

NX = DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN")
SERVFAIL = DnsFailure(DnsFailureKind.RCODE, "SERVFAIL")
REFUSED = DnsFailure(DnsFailureKind.RCODE, "REFUSED")
TIMEOUT = DnsFailure(DnsFailureKind.TIMEOUT)
H = "x.example"


def a(*addresses: str, failure: DnsFailure | None = None) -> DnsAnswer:
    return DnsAnswer(Family.IPV4, addresses, failure)


def aaaa(*addresses: str, failure: DnsFailure | None = None) -> DnsAnswer:
    return DnsAnswer(Family.IPV6, addresses, failure)


#: (A answer, AAAA answer, the addresses dialled in order, every usable address, the
#: families whose failure or refused addresses are hidden by the other family's answer)
ADDRESS_CHOICE = [
    pytest.param(
        a("1.1.1.1"),
        aaaa("2606::1"),
        ("2606::1", "1.1.1.1"),
        ("2606::1", "1.1.1.1"),
        (),
        id="dual-stack",
    ),
    pytest.param(
        a("1.1.1.1", "1.0.0.1"), aaaa(), ("1.1.1.1",), ("1.1.1.1", "1.0.0.1"), (), id="v4-only"
    ),
    pytest.param(
        a(), aaaa("2606::1", "2606::2"), ("2606::1",), ("2606::1", "2606::2"), (), id="v6-only"
    ),
    pytest.param(
        a("1.1.1.1", "1.0.0.1"),
        aaaa("2606::1", "2606::2"),
        ("2606::1", "1.1.1.1"),
        ("2606::1", "2606::2", "1.1.1.1", "1.0.0.1"),
        (),
        id="first-of-each",
    ),
    pytest.param(
        a("10.0.0.1", "1.1.1.1"),
        aaaa("fc00::1"),
        ("1.1.1.1",),
        ("1.1.1.1",),
        (Family.IPV6,),
        id="reserved-dropped",
    ),
    pytest.param(
        a("1.1.1.1"),
        aaaa("::ffff:1.1.1.1"),
        ("1.1.1.1",),
        ("1.1.1.1",),
        (Family.IPV6,),
        id="mapped-aaaa-dropped",
    ),
    pytest.param(
        a("1.1.1.1"),
        aaaa(failure=SERVFAIL),
        ("1.1.1.1",),
        ("1.1.1.1",),
        (Family.IPV6,),
        id="aaaa-servfail-ignored",
    ),
    pytest.param(
        a(failure=TIMEOUT),
        aaaa("2606::1"),
        ("2606::1",),
        ("2606::1",),
        (Family.IPV4,),
        id="a-timeout-ignored",
    ),
    pytest.param(
        a("2606::9", "1.1.1.1"),
        aaaa("1.1.1.2", "2606::1"),
        ("2606::1", "1.1.1.1"),
        ("2606::1", "1.1.1.1"),
        (),
        id="wrong-family",
    ),
]


@pytest.mark.parametrize(
    ("a_answer", "aaaa_answer", "reason", "detail"),
    [
        (
            a(failure=NX),
            aaaa(failure=NX),
            Reason.DNS_NXDOMAIN,
            "DNS problem: NXDOMAIN looking up A for x.example - check that a DNS record exists "
            "for this domain; DNS problem: NXDOMAIN looking up AAAA for x.example - check that "
            "a DNS record exists for this domain",
        ),
        (
            a(failure=SERVFAIL),
            aaaa(),
            Reason.DNS_SERVFAIL,
            "DNS problem: SERVFAIL looking up A for x.example - the domain's nameservers may be "
            "malfunctioning; no valid AAAA records found for x.example",
        ),
        (
            a(failure=REFUSED),
            aaaa(failure=TIMEOUT),
            Reason.DNS_ERROR,
            "DNS problem: REFUSED looking up A for x.example; "
            "DNS problem: query timed out looking up AAAA for x.example",
        ),
        (
            a(failure=TIMEOUT),
            aaaa(failure=DnsFailure(DnsFailureKind.NETWORK)),
            Reason.DNS_TIMEOUT,
            "DNS problem: query timed out looking up A for x.example; "
            "DNS problem: networking error looking up AAAA for x.example",
        ),
        (
            a(),
            aaaa(),
            Reason.DNS_NO_ADDRESSES,
            "no valid A records found for x.example; no valid AAAA records found for x.example",
        ),
        (
            a("127.0.0.1"),
            aaaa("::1"),
            Reason.DNS_NO_ADDRESSES,
            "no valid A records found for x.example; no valid AAAA records found for x.example",
        ),
        (
            a(failure=DnsFailure(DnsFailureKind.SERVER)),
            aaaa("fe80::1"),
            Reason.DNS_ERROR,
            "DNS problem: server failure at resolver looking up A for x.example; "
            "no valid AAAA records found for x.example",
        ),
    ],
    ids=[
        "nxdomain",
        "servfail-and-nodata",
        "refused-and-timeout",
        "timeout-and-network",
        "nodata",
        "only-reserved",
        "server-failure",
    ],
)
def test_dns_verdict_fatal_only_when_both_fail(
    a_answer: DnsAnswer, aaaa_answer: DnsAnswer, reason: Reason, detail: str
) -> None:
    assert policy.resolve_verdict(H, a_answer, aaaa_answer, AddressPolicy()) == Problem(
        ProblemType.DNS, reason, detail
    )


# ------------------------------------------------- erratum 21: multicast is dialled

MULTICAST = ["224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1"]

#: The special-purpose blocks erratum 21 names as still dropped before any dial.
STILL_RESERVED = [
    ("::ffff:203.0.113.7", "[RFC4291]: IPv4-mapped Address"),
    ("::", "[RFC4291]: Unspecified Address"),
    ("0.0.0.0", '[RFC1122], Section 3.2.1.3: "This host on this network"'),
    ("169.254.1.1", "[RFC3927]: Link Local"),
    ("fe80::1", "[RFC4291]: Link-Local Unicast"),
    ("64:ff9b::808:808", "[RFC6052]: IPv4-IPv6 Translat."),
    ("2002:808:808::1", "[RFC3056]: 6to4"),
    ("192.31.196.1", "[RFC7535]: AS112-v4"),
    ("2001:4:112::1", "[RFC7535]: AS112-v6"),
    ("192.0.0.9", "[RFC7723]: Port Control Protocol Anycast"),
]


@pytest.mark.parametrize("address", MULTICAST)
def test_multicast_is_not_reserved(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert AddressPolicy().refusal(ip) is None
    assert policy.usable_address(AddressPolicy(), address, ip.version) == address


@pytest.mark.parametrize(("address", "block"), STILL_RESERVED, ids=[a for a, _ in STILL_RESERVED])
def test_other_special_purpose_blocks_are_still_dropped(address: str, block: str) -> None:
    ip = ipaddress.ip_address(address)
    assert AddressPolicy().refusal(ip) == f"IP address is in a reserved address block: {block}"
    answers = (a(address), aaaa()) if ip.version == 4 else (a(), aaaa(address))
    assert policy.resolve_verdict(H, *answers, AddressPolicy()) == Problem(
        ProblemType.DNS,
        Reason.DNS_NO_ADDRESSES,
        f"no valid A records found for {H}; no valid AAAA records found for {H}",
    )
    assert isinstance(
        redirect(f"http://{address}/x" if ip.version == 4 else f"http://[{address}]/x"),
        RedirectRefusal,
    )


#: Multicast answers are dialled like any other (none of them is hidden).
MULTICAST_CHOICE = [
    pytest.param(a("224.0.0.1"), aaaa(), ("224.0.0.1",), ("224.0.0.1",), (), id="only-a-multicast"),
    pytest.param(a(), aaaa("ff0e::1"), ("ff0e::1",), ("ff0e::1",), (), id="only-aaaa-multicast"),
    pytest.param(
        a("1.1.1.1"),
        aaaa("ff0e::1"),
        ("ff0e::1", "1.1.1.1"),
        ("ff0e::1", "1.1.1.1"),
        (),
        id="multicast-aaaa-then-a",
    ),
    pytest.param(
        a("1.1.1.1"),
        aaaa("ff0e::1", "2606::1"),
        ("ff0e::1", "1.1.1.1"),
        ("ff0e::1", "2606::1", "1.1.1.1"),
        (),
        id="first-aaaa-multicast-second-never-used",
    ),
    pytest.param(
        a("239.1.2.3", "1.1.1.1"),
        aaaa(),
        ("239.1.2.3",),
        ("239.1.2.3", "1.1.1.1"),
        (),
        id="first-a-multicast",
    ),
]


@pytest.mark.parametrize(
    ("a_answer", "aaaa_answer", "candidates", "addresses", "hidden"),
    ADDRESS_CHOICE + MULTICAST_CHOICE,
)
def test_address_choice(
    a_answer: DnsAnswer,
    aaaa_answer: DnsAnswer,
    candidates: tuple[str, ...],
    addresses: tuple[str, ...],
    hidden: tuple[Family, ...],
) -> None:
    result = policy.resolve_verdict(H, a_answer, aaaa_answer, AddressPolicy())
    assert isinstance(result, policy.Resolution)
    assert (result.candidates, result.addresses) == (candidates, addresses)
    assert result.fallback == (candidates[1] if len(candidates) == 2 else None)
    assert tuple(h.family for h in result.hidden) == hidden


@pytest.mark.parametrize(
    ("location", "host"),
    [("http://224.0.0.1/x", "224.0.0.1"), ("https://[FF0E::1]/x", "ff0e::1")],
    ids=["ipv4", "ipv6"],
)
def test_redirect_to_a_multicast_literal_is_followed(location: str, host: str) -> None:
    target = redirect(location)
    assert isinstance(target, RedirectTarget)
    assert (target.host, target.is_ip) == (host, True)


def test_multicast_with_a_zone_is_refused_for_the_zone() -> None:
    assert redirect("http://[ff02::1%25eth0]/x") == RedirectRefusal(
        Reason.BAD_REDIRECT_HOST, "Invalid host in redirect target: contains scope zone"
    )


def test_the_kernels_refusal_is_a_dial_failure_that_falls_back() -> None:
    # The kernel refuses a TCP connect to multicast with ENETUNREACH: the dial seam's
    # NETWORK_UNREACHABLE, a fallback error, worded as Let's Encrypt words it.
    assert policy.may_fall_back(Reason.NETWORK_UNREACHABLE)
    problem = policy.transport_problem(
        Reason.NETWORK_UNREACHABLE, ip="224.0.0.1", url="http://x.example/p"
    )
    assert (problem.type, problem.detail) == (
        ProblemType.CONNECTION,
        "224.0.0.1: Fetching http://x.example/p: Network unreachable",
    )


# ------------------------------------------------------------------------ fallback


@pytest.mark.parametrize(
    ("reason", "falls_back"),
    [
        (Reason.CONNECT_TIMEOUT, True),
        (Reason.CONNECTION_REFUSED, True),
        (Reason.NETWORK_UNREACHABLE, True),
        (Reason.CONNECT_ERROR, True),
        (Reason.VALIDATION_TIMEOUT, False),  # the overall deadline fired during the dial
        (Reason.READ_TIMEOUT, False),
        (Reason.CONNECTION_RESET, False),
        (Reason.TLS_HANDSHAKE_TIMEOUT, False),
        (Reason.TLS_ALERT, False),
        (Reason.TLS_ERROR, False),
        (Reason.PROTOCOL_ERROR, False),
        (Reason.HTTP2_OVER_HTTP, False),
        (Reason.BAD_STATUS, False),
        (Reason.BODY_TOO_LARGE, False),
        (Reason.KEY_AUTHORIZATION_MISMATCH, False),
        (Reason.REDIRECT_LOOP, False),
        (Reason.BAD_REDIRECT_PORT, False),
        (Reason.DNS_NXDOMAIN, False),
        (Reason.DNS_SERVFAIL, False),
    ],
    ids=lambda v: str(v),
)
def test_fallback_predicate(reason: Reason, falls_back: bool) -> None:
    assert policy.may_fall_back(reason) is falls_back


@pytest.mark.parametrize(
    ("chosen", "reason", "initial_unused", "hop_unused", "action"),
    [
        (FallbackPolicy.BOULDER, Reason.CONNECT_TIMEOUT, True, True, FallbackAction.REPLAY_INITIAL),
        (FallbackPolicy.BOULDER, Reason.CONNECT_TIMEOUT, False, False, FallbackAction.FAIL),
        (
            FallbackPolicy.BOULDER,
            Reason.CONNECTION_REFUSED,
            True,
            False,
            FallbackAction.REPLAY_INITIAL,
        ),
        (FallbackPolicy.BOULDER, Reason.CONNECT_TIMEOUT, True, True, FallbackAction.REPLAY_INITIAL),
        (FallbackPolicy.BOULDER, Reason.CONNECT_TIMEOUT, False, True, FallbackAction.FAIL),
        (FallbackPolicy.PER_HOP, Reason.CONNECT_TIMEOUT, True, True, FallbackAction.RETRY_HOP),
        (FallbackPolicy.PER_HOP, Reason.CONNECT_TIMEOUT, True, False, FallbackAction.FAIL),
        (FallbackPolicy.PER_HOP, Reason.NETWORK_UNREACHABLE, False, True, FallbackAction.RETRY_HOP),
        (FallbackPolicy.BOULDER, Reason.READ_TIMEOUT, True, True, FallbackAction.FAIL),
        (FallbackPolicy.PER_HOP, Reason.CONNECTION_RESET, True, True, FallbackAction.FAIL),
        (FallbackPolicy.BOULDER, Reason.VALIDATION_TIMEOUT, True, True, FallbackAction.FAIL),
    ],
    ids=[
        "boulder-initial",
        "boulder-used-up",
        "boulder-hop-replays",
        "boulder-hop-ignores-hop-v4",
        "boulder-after-fallback",
        "per-hop-initial",
        "per-hop-hop-without-v4",
        "per-hop-hop-with-v4",
        "boulder-not-a-dial-failure",
        "per-hop-not-a-dial-failure",
        "deadline-during-dial",
    ],
)
def test_fallback_action(
    chosen: FallbackPolicy,
    reason: Reason,
    initial_unused: bool,
    hop_unused: bool,
    action: FallbackAction,
) -> None:
    assert (
        policy.fallback_action(
            chosen,
            reason=reason,
            initial_has_unused_fallback=initial_unused,
            hop_has_unused_fallback=hop_unused,
        )
        is action
    )


# ------------------------------------------------------------------------ redirects

CURRENT = "http://example.com/.well-known/acme-challenge/t"


def redirect(
    location: str,
    status: int = 301,
    followed: int = 0,
    seen: frozenset[str] = frozenset({CURRENT}),
    current: str = CURRENT,
) -> RedirectTarget | RedirectRefusal:
    return policy.check_redirect(
        current_url=current,
        status=status,
        location=location,
        redirects_followed=followed,
        seen_urls=seen,
        addresses=AddressPolicy(),
    )


@pytest.mark.parametrize(
    ("location", "kwargs", "expected"),
    [
        ("https://example.com/x", {}, ("https://example.com/x", "example.com", 443)),
        ("/x?y=1", {}, ("http://example.com/x?y=1", "example.com", 80)),
        ("//other.example.org/x", {}, ("http://other.example.org/x", "other.example.org", 80)),
        ("https://Example.COM:80/x", {}, ("https://example.com:80/x", "example.com", 80)),
        ("http://example.com:443/x", {}, ("http://example.com:443/x", "example.com", 443)),
        ("http://1.1.1.1/x", {}, ("http://1.1.1.1/x", "1.1.1.1", 80)),
        ("http://[2606:4700::1111]/x", {}, ("http://[2606:4700::1111]/x", "2606:4700::1111", 80)),
        ("x", {}, ("http://example.com/.well-known/acme-challenge/x", "example.com", 80)),
        ("/a b", {}, ("http://example.com/a%20b", "example.com", 80)),
        ("/x", {"status": 302}, ("http://example.com/x", "example.com", 80)),
        ("/x", {"status": 307}, ("http://example.com/x", "example.com", 80)),
        ("/x", {"status": 308}, ("http://example.com/x", "example.com", 80)),
        ("/x", {"followed": 10}, ("http://example.com/x", "example.com", 80)),
        ("http://example.co.uk/x", {}, ("http://example.co.uk/x", "example.co.uk", 80)),
        ("http://Example.com:80/x", {}, ("http://example.com:80/x", "example.com", 80)),
        ("https://example.com:443/x", {}, ("https://example.com:443/x", "example.com", 443)),
        (
            "http://B%C3%9Ccher.example.com/x",
            {},
            ("http://b%C3%BCcher.example.com/x", "bücher.example.com", 80),
        ),
        (
            "http://BÜCHER.example.com/x",
            {},
            ("http://b%C3%BCcher.example.com/x", "bücher.example.com", 80),
        ),
        ("/a/./b/../c", {}, ("http://example.com/a/c", "example.com", 80)),
        (
            "http://[2606:4700:0::1111]/x",
            {},
            ("http://[2606:4700:0::1111]/x", "2606:4700::1111", 80),
        ),
        ("/x#top", {}, ("http://example.com/x#top", "example.com", 80)),
    ],
    ids=[
        "https",
        "relative-with-query",
        "protocol-relative",
        "lowercased-explicit-80",
        "http-on-443",
        "ipv4-literal",
        "ipv6-literal",
        "relative-path",
        "escaped-space",
        "302",
        "307",
        "308",
        "eleventh",
        "multi-label-suffix",
        "explicit-80-kept",
        "explicit-443-kept",
        "percent-encoded-unicode-host",
        "raw-unicode-host",
        "dot-segments",
        "ipv6-literal-as-written",
        "fragment-kept",
    ],
)
def test_redirect_accepted(
    location: str, kwargs: dict[str, int], expected: tuple[object, ...]
) -> None:
    result = redirect(location, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, RedirectTarget)
    assert (result.url, result.host, result.port) == expected


@pytest.mark.parametrize(
    ("location", "kwargs", "reason", "message"),
    [
        ("/x", {"followed": 11}, Reason.TOO_MANY_REDIRECTS, "Too many redirects"),
        (
            "/x",
            {"status": 303},
            Reason.BAD_REDIRECT_STATUS,
            "received disallowed redirect status code",
        ),
        ("/x", {"status": 303, "followed": 11}, Reason.TOO_MANY_REDIRECTS, "Too many redirects"),
        (
            "gopher://example.com/x",
            {},
            Reason.BAD_REDIRECT_SCHEME,
            'Invalid protocol scheme in redirect target. Only "http" and "https" protocol schemes '
            'are supported, not "gopher"',
        ),
        (
            "http://example.com:8080/x",
            {},
            Reason.BAD_REDIRECT_PORT,
            "Invalid port in redirect target. Only ports 80 and 443 are supported, not 8080",
        ),
        (
            "https://example.com:99999/x",
            {},
            Reason.BAD_REDIRECT_PORT,
            "Invalid port in redirect target. Only ports 80 and 443 are supported, not 99999",
        ),
        ("http:///x", {}, Reason.BAD_REDIRECT_HOST, "Invalid empty host in redirect target"),
        (
            "http://example.com.well-known/acme-challenge/t",
            {},
            Reason.BAD_REDIRECT_HOST,
            'Invalid host in redirect target "example.com.well-known". Check webserver config '
            "for missing '/' in redirect target.",
        ),
        (
            "http://[fe80::1%25eth0]/x",
            {},
            Reason.BAD_REDIRECT_HOST,
            "Invalid host in redirect target: contains scope zone",
        ),
        (
            "http://10.0.0.1/x",
            {},
            Reason.REDIRECT_RESERVED_IP,
            "Invalid host in redirect target: IP address is in a reserved address block: "
            "[RFC1918]: Private-Use",
        ),
        (
            "http://169.254.169.254/latest",
            {},
            Reason.REDIRECT_RESERVED_IP,
            "Invalid host in redirect target: IP address is in a reserved address block: "
            "[RFC3927]: Link Local",
        ),
        (
            "http://[::1]/x",
            {},
            Reason.REDIRECT_RESERVED_IP,
            "Invalid host in redirect target: IP address is in a reserved address block: "
            "[RFC4291]: Loopback Address",
        ),
        (
            "http://foo.internal/x",
            {},
            Reason.REDIRECT_BAD_TLD,
            "Invalid host in redirect target, must end in IANA registered TLD",
        ),
        (
            "http://foo.test/x",
            {},
            Reason.REDIRECT_BAD_TLD,
            "Invalid host in redirect target, must end in IANA registered TLD",
        ),
        (
            "http://localhost/x",
            {},
            Reason.REDIRECT_BAD_TLD,
            "Invalid host in redirect target, must end in IANA registered TLD",
        ),
        ("/" + "a" * 2000, {}, Reason.REDIRECT_PATH_TOO_LONG, "Redirect target too long"),
        (CURRENT, {}, Reason.REDIRECT_LOOP, "Redirect loop detected"),
        ("/.well-known/acme-challenge/t", {}, Reason.REDIRECT_LOOP, "Redirect loop detected"),
        (
            "http://host.example.com./x",
            {},
            Reason.REDIRECT_BAD_TLD,
            "Invalid host in redirect target, must end in IANA registered TLD",
        ),
        (
            "http://example.com:99999999999999999999/x",
            {},
            Reason.BAD_REDIRECT_LOCATION,
            "Error getting validation data",
        ),
    ],
    ids=[
        "twelfth",
        "303",
        "count-before-status",
        "scheme",
        "port-8080",
        "port-99999",
        "empty-host",
        "missing-slash",
        "zone",
        "rfc1918",
        "metadata",
        "loopback",
        "internal",
        "test-tld",
        "localhost",
        "path-too-long",
        "loop-absolute",
        "loop-relative",
        "trailing-dot",
        "port-beyond-go-int",
    ],
)
def test_redirect_refused(
    location: str, kwargs: dict[str, int], reason: Reason, message: str
) -> None:
    assert redirect(location, **kwargs) == RedirectRefusal(reason, message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "location",
    [
        "/x\x01",
        "/x\tb",
        "http://example.com:abc/x",
        "http://exa mple.com/x",
        "http://%41.example.com/x",
        "http://[1.2.3.4]/x",
        "http://[::1/x",
        "http://example.com:80:80/x",
        ":x",
        "/%zz",
    ],
    ids=[
        "control",
        "tab",
        "port-not-numeric",
        "space-in-host",
        "ascii-escape-in-host",
        "ipv4-in-brackets",
        "missing-bracket",
        "two-colons",
        "missing-scheme",
        "bad-escape",
    ],
)
@pytest.mark.parametrize(("status", "followed"), [(301, 0), (303, 0), (302, 11)])
def test_unparsable_location_names_the_request(location: str, status: int, followed: int) -> None:
    # Go parses the Location before the redirect policy runs: neither the count nor the
    # status is checked, and the detail names the request that received it.
    assert redirect(location, status=status, followed=followed) == RedirectRefusal(
        Reason.BAD_REDIRECT_LOCATION, "Error getting validation data", fetching=CURRENT
    )
    problem = policy.redirect_problem(
        ip="192.0.2.1",
        location=location,
        refusal=RedirectRefusal(
            Reason.BAD_REDIRECT_LOCATION, "Error getting validation data", fetching=CURRENT
        ),
    )
    assert problem.detail == f"192.0.2.1: Fetching {CURRENT}: Error getting validation data"


def test_redirect_hosts_go_accepts_reach_dns() -> None:
    # Go's URL parser accepts < > " in a host; the name then fails at DNS, not here.
    result = redirect('http://a<b>"c.example.com/x')
    assert isinstance(result, RedirectTarget)
    assert result.host == 'a<b>"c.example.com'


def test_empty_location_is_a_final_response() -> None:
    assert not policy.is_followed_redirect(301, "")
    assert not policy.is_followed_redirect(301, None)
    assert policy.is_followed_redirect(303, "/x")
    assert not policy.is_followed_redirect(300, "/x")


def test_unicode_hosts_cannot_be_dialled() -> None:
    assert policy.is_dialable_host("example.com")
    assert not policy.is_dialable_host("bücher.example.com")


def test_redirect_problem_replaces_bytes_that_are_not_utf8() -> None:
    refusal = RedirectRefusal(Reason.REDIRECT_LOOP, "Redirect loop detected")
    problem = policy.redirect_problem(ip="192.0.2.1", location="/\udcff", refusal=refusal)
    assert problem.detail == "192.0.2.1: Fetching /\ufffd: Redirect loop detected"


#: Bytes -> what an ACME client reads. Measured by running Boulder 2d00c8e's own path on
#: Go 1.26: va/utf8filter.go filterProblemDetails, protobuf to the RA, encoding/json into
#: the SA's column and back, encoding/json in the WFE. Go's range over a string gives
#: one U+FFFD per invalid byte, so a truncated sequence gives one per byte.
GO_UTF8 = [
    (b"a\xe2\x82b", "a\ufffd\ufffdb"),
    (b"\xff\xfe", "\ufffd\ufffd"),
    (b"a\xc3", "a\ufffd"),
    (b"x\xf0\x9f\x98y", "x\ufffd\ufffd\ufffdy"),
    (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # an encoded surrogate
    (b"\xc3\xa9", "\u00e9"),
    (b"\xe2\x82\xe2\x82\xac", "\ufffd\ufffd\u20ac"),
    (b"plain", "plain"),
]


@pytest.mark.parametrize(("raw", "shown"), GO_UTF8, ids=[go_quote(r) for r, _ in GO_UTF8])
def test_valid_utf8_as_go_prints_it(raw: bytes, shown: str) -> None:
    assert policy.valid_utf8(raw.decode("utf-8", errors="surrogateescape")) == shown


def test_valid_utf8_replaces_a_surrogate_that_is_no_byte() -> None:
    assert policy.valid_utf8("a\ud800b\udc41") == "a\ufffdb\ufffd"


def test_redirect_problem_replaces_each_invalid_byte() -> None:
    refusal = RedirectRefusal(Reason.REDIRECT_LOOP, "Redirect loop detected")
    location = b"http://example.com/a\xe2\x82b".decode("utf-8", errors="surrogateescape")
    problem = policy.redirect_problem(ip="192.0.2.1", location=location, refusal=refusal)
    assert problem.detail == (
        "192.0.2.1: Fetching http://example.com/a\ufffd\ufffdb: Redirect loop detected"
    )


def test_dns_problem_replaces_each_invalid_byte_of_the_extra_text() -> None:
    extra = b"bad \xe2\x82 sig".decode("utf-8", errors="surrogateescape")
    bogus = DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(6, extra))
    result = policy.resolve_verdict(H, a(failure=bogus), aaaa(), AddressPolicy())
    assert result == Problem(
        ProblemType.DNS,
        Reason.DNS_DNSSEC,
        f"DNS problem: looking up A for {H}: DNSSEC: Bogus: bad \ufffd\ufffd sig; "
        f"no valid AAAA records found for {H}",
    )


def test_path_of_exactly_2000_is_accepted() -> None:
    assert isinstance(redirect("/" + "a" * 1999), RedirectTarget)


def test_path_length_counts_the_decoded_path() -> None:
    assert isinstance(redirect("/" + "%61" * 1999), RedirectTarget)
    assert redirect("/" + "%61" * 2000) == RedirectRefusal(
        Reason.REDIRECT_PATH_TOO_LONG, "Redirect target too long"
    )


def test_loop_compares_exact_strings() -> None:
    # http://h/x and http://h:80/x are different URLs to Let's Encrypt.
    seen = frozenset({"http://example.com/x"})
    assert isinstance(redirect("http://example.com:80/x", seen=seen), RedirectTarget)
    assert isinstance(redirect("http://example.com/x", seen=seen), RedirectRefusal)


def test_challenge_url() -> None:
    assert policy.challenge_url("example.com", "tok") == (
        "http://example.com/.well-known/acme-challenge/tok"
    )


# ------------------------------------------------------------------------- response

KA = "token.thumb"
URL = "http://example.com/.well-known/acme-challenge/token"


@pytest.mark.parametrize(
    ("status", "body", "ka", "expected"),
    [
        (200, b"token.thumb", KA, None),
        (200, b"token.thumb\n", KA, None),
        (200, b"token.thumb \t\r\n\x0b\x0c", KA, None),
        (200, "token.thumb\u00a0\u2003\u3000".encode(), KA, None),
        (
            200,
            b" token.thumb",
            KA,
            (
                Reason.KEY_AUTHORIZATION_MISMATCH,
                "The key authorization file from the server did not match this challenge. "
                'Expected "token.thumb" (got " token.thumb")',
            ),
        ),
        (
            200,
            b"token.thumb\x1c",
            KA,
            (
                Reason.KEY_AUTHORIZATION_MISMATCH,
                "The key authorization file from the server did not match this challenge. "
                'Expected "token.thumb" (got "token.thumb\\x1c")',
            ),
        ),
        (
            # Boulder quotes the payload with %q as it came (va/http.go): an invalid byte is
            # a \x escape, so filterProblemDetails finds nothing to replace.
            200,
            b"a\xe2\x82b\xff",
            KA,
            (
                Reason.KEY_AUTHORIZATION_MISMATCH,
                "The key authorization file from the server did not match this challenge. "
                'Expected "token.thumb" (got "a\\xe2\\x82b\\xff")',
            ),
        ),
        (
            201,
            b"token.thumb",
            KA,
            (Reason.BAD_STATUS, f"1.2.3.4: Invalid response from {URL}: 201"),
        ),
        (404, b"", KA, (Reason.BAD_STATUS, f"1.2.3.4: Invalid response from {URL}: 404")),
        (
            200,
            b"z" * 128,
            KA,
            (Reason.BODY_TOO_LARGE, f'1.2.3.4: Invalid response from {URL}: "{"z" * 128}"'),
        ),
        (
            200,
            b"z" * 127,
            KA,
            (
                Reason.KEY_AUTHORIZATION_MISMATCH,
                "The key authorization file from the server did not match this challenge. "
                f'Expected "token.thumb" (got "{"z" * 127}")',
            ),
        ),
        (404, b"", None, None),
        (204, b"", None, None),
        (200, b"anything at all", None, None),
        (403, b"", None, (Reason.BAD_STATUS, f"1.2.3.4: Invalid response from {URL}: 403")),
        (301, b"", None, (Reason.BAD_STATUS, f"1.2.3.4: Invalid response from {URL}: 301")),
    ],
    ids=[
        "exact",
        "newline",
        "ascii-spaces",
        "unicode-spaces",
        "leading-space",
        "file-separator-is-not-space",
        "invalid-utf8-quoted-as-sent",
        "201",
        "404",
        "128-bytes",
        "127-bytes",
        "reach-404",
        "reach-204",
        "reach-200",
        "reach-403",
        "reach-3xx-no-location",
    ],
)
def test_response_verdict(
    status: int, body: bytes, ka: str | None, expected: tuple[Reason, str] | None
) -> None:
    result = policy.check_response(
        status=status, body=body, key_authorization=ka, url=URL, ip="1.2.3.4"
    )
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert (result.type, result.reason, result.detail) == (ProblemType.UNAUTHORIZED, *expected)


@pytest.mark.parametrize(
    ("data", "quoted"),
    [
        (b"plain", '"plain"'),
        (b'a"b\\c', '"a\\"b\\\\c"'),
        (b"\x00\x07\x08\t\n\x0b\x0c\r\x1b\x7f", '"\\x00\\a\\b\\t\\n\\v\\f\\r\\x1b\\x7f"'),
        (b"\xff\xfe", '"\\xff\\xfe"'),
        ("héllo ✓".encode(), '"héllo ✓"'),
        ("\u00a0\u200b".encode(), '"\\u00a0\\u200b"'),
        ("\U0001f600".encode(), '"\U0001f600"'),
        ("\U000e0001".encode(), '"\\U000e0001"'),
    ],
    ids=[
        "ascii",
        "quote-backslash",
        "controls",
        "invalid-utf8",
        "printable-unicode",
        "unicode-spaces",
        "emoji",
        "non-printable-astral",
    ],
)
def test_go_quote(data: bytes, quoted: str) -> None:
    assert go_quote(data) == quoted


def test_every_reason_has_a_type() -> None:
    assert set(policy.REASON_TYPES) == set(Reason)


@pytest.mark.parametrize(
    ("reason", "text", "detail"),
    [
        (
            Reason.CONNECT_TIMEOUT,
            "",
            "::1: Fetching u: Timeout during connect (likely firewall problem)",
        ),
        (Reason.CONNECTION_REFUSED, "", "::1: Fetching u: Connection refused"),
        (Reason.NETWORK_UNREACHABLE, "", "::1: Fetching u: Network unreachable"),
        (Reason.CONNECT_ERROR, "", "::1: Fetching u: Error getting validation data"),
        (Reason.CONNECTION_RESET, "", "::1: Fetching u: Connection reset by peer"),
        (
            Reason.READ_TIMEOUT,
            "",
            "::1: Fetching u: Timeout after connect (your server may be slow or overloaded)",
        ),
        (
            Reason.TLS_ALERT,
            "remote error: tls: handshake failure",
            "::1: Fetching u: remote error: tls: handshake failure",
        ),
        (Reason.HTTP2_OVER_HTTP, "", "::1: Fetching u: Server is speaking HTTP/2 over HTTP"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_transport_problem_wording(reason: Reason, text: str, detail: str) -> None:
    problem = policy.transport_problem(reason, ip="::1", url="u", text=text)
    assert problem.detail == detail
    assert problem.type is policy.REASON_TYPES[reason]


# ------------------------------------------------------- DNS texts as Let's Encrypt's


@pytest.mark.parametrize(
    ("rcode", "text"),
    [(1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (5, "REFUSED"), (16, "BADSIG"), (11, "")],
)
def test_rcode_names_are_miekgs(rcode: int, text: str) -> None:
    assert policy.rcode_text(rcode) == text


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (
            DnsFailure(DnsFailureKind.RCODE, "SERVFAIL"),
            "DNS problem: SERVFAIL looking up CAA for h.example - the domain's nameservers "
            "may be malfunctioning",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "REFUSED"),
            "DNS problem: REFUSED looking up CAA for h.example",
        ),
        (
            DnsFailure(DnsFailureKind.TRUNCATED),
            "DNS problem: response was truncated looking up CAA for h.example",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(6, "")),
            "DNS problem: looking up CAA for h.example: DNSSEC: Bogus",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(1, "oh no")),
            "DNS problem: looking up CAA for h.example: DNSSEC: Unsupported DNSKEY Algorithm: "
            "oh no",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN", ede=(15, "")),
            "DNS problem: looking up CAA for h.example: Blocked",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(1337, "mysterious")),
            "DNS problem: looking up CAA for h.example: Unknown Extended DNS Error code 1337: "
            "mysterious",
        ),
    ],
    ids=["servfail", "refused", "truncated", "bogus", "ede-text", "ede-nxdomain", "ede-unknown"],
)
def test_dns_error_texts(failure: DnsFailure, text: str) -> None:
    assert policy.dns_error_text("h.example", "CAA", failure) == text


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(7, "x")), Reason.DNS_DNSSEC),
        (DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(12, "")), Reason.DNS_DNSSEC),
        (DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(22, "")), Reason.DNS_SERVFAIL),
        (DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN", ede=(15, "")), Reason.DNS_NXDOMAIN),
        (DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(3, "")), Reason.DNS_SERVFAIL),
        (None, Reason.DNS_NO_ADDRESSES),
    ],
)
def test_dns_reasons(failure: DnsFailure | None, reason: Reason) -> None:
    assert policy.dns_reason(failure) is reason


@pytest.mark.parametrize(
    ("a_answer", "aaaa_answer", "hidden"),
    [
        (a("1.1.1.1"), aaaa(), ()),
        (
            a("1.1.1.1"),
            aaaa(failure=SERVFAIL),
            (
                policy.HiddenError(
                    Family.IPV6,
                    Reason.DNS_SERVFAIL,
                    f"DNS problem: SERVFAIL looking up AAAA for {H} - the domain's nameservers "
                    "may be malfunctioning",
                ),
            ),
        ),
        (
            a("1.1.1.1"),
            aaaa("fc00::1"),
            (
                policy.HiddenError(
                    Family.IPV6, Reason.DNS_NO_ADDRESSES, f"no valid AAAA records found for {H}"
                ),
            ),
        ),
        (
            a(failure=TIMEOUT),
            aaaa("2606::1"),
            (
                policy.HiddenError(
                    Family.IPV4,
                    Reason.DNS_TIMEOUT,
                    f"DNS problem: query timed out looking up A for {H}",
                ),
            ),
        ),
    ],
    ids=["plain-nodata-is-normal", "aaaa-servfail", "aaaa-reserved-only", "a-timeout"],
)
def test_hidden_one_family_errors(
    a_answer: DnsAnswer, aaaa_answer: DnsAnswer, hidden: tuple[policy.HiddenError, ...]
) -> None:
    result = policy.resolve_verdict(H, a_answer, aaaa_answer, AddressPolicy())
    assert isinstance(result, policy.Resolution)
    assert result.hidden == hidden


def test_both_families_failing_with_dnssec_errors() -> None:
    bogus = DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(7, "sig expired"))
    result = policy.resolve_verdict(H, a(failure=bogus), aaaa(failure=bogus), AddressPolicy())
    assert result == Problem(
        ProblemType.DNS,
        Reason.DNS_DNSSEC,
        f"DNS problem: looking up A for {H}: DNSSEC: Signature Expired: sig expired; "
        f"DNS problem: looking up AAAA for {H}: DNSSEC: Signature Expired: sig expired",
    )
