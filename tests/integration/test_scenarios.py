"""Scenario suite: the engine against the loopback lab, asserting whole results.

Each test builds its own lab hosts (real DNS server, real HTTP/HTTPS servers on
[::1] and 127.0.0.1, blackholed and refusing ports) and checks the verdict,
the problem (type, reason, Let's Encrypt's exact detail text), every record,
the fallback flag, the failed hop and the AAAA-mismatch comparison.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from exporter.dial import PortMap
from exporter.lab import servers as L
from exporter.policy import AddressPolicy
from exporter.records import (
    FallbackPolicy,
    Family,
    Mode,
    ProblemType,
    Reason,
    ValidationResult,
)
from tests.integration.lab_validation import (
    FAILED,
    KA,
    PATH,
    REDIR,
    REFUSED_REDIR,
    RESP,
    dual_site,
    problem,
    records,
    site,
    url,
    validate,
)

CT, REFUSED = Reason.CONNECT_TIMEOUT, Reason.CONNECTION_REFUSED
TO_HTTPS = L.redirect("https://{host}{path}")  # the same URL over HTTPS


def summary(result: ValidationResult) -> dict[str, Any]:
    return {
        "success": result.success,
        "ipv4_fallback": result.ipv4_fallback,
        "failed_hop": result.failed_hop,
        "redirects": result.redirects,
        "aaaa_mismatch": result.aaaa_mismatch,
    }


def ok(fallback: bool = False, mismatch: bool = False, redirects: int = 0) -> dict[str, Any]:
    return {
        "success": True,
        "ipv4_fallback": fallback,
        "failed_hop": None,
        "redirects": redirects,
        "aaaa_mismatch": mismatch,
    }


def failed(
    hop: int, fallback: bool = False, mismatch: bool = False, redirects: int = 0
) -> dict[str, Any]:
    return {
        "success": False,
        "ipv4_fallback": fallback,
        "failed_hop": hop,
        "redirects": redirects,
        "aaaa_mismatch": mismatch,
    }


# ------------------------------------------------------------------ addresses and fallback


async def test_dual_stack_healthy(lab: L.Lab) -> None:
    v6, v4 = await dual_site(lab, "healthy.example.com", L.serve(), L.serve())
    result = await validate(lab, "healthy.example.com")
    assert summary(result) == ok()
    assert problem(result) is None
    assert records(result) == [(0, url("healthy.example.com"), v6, RESP, 200, None)]
    assert result.records[0].addresses_resolved == (v6, v4)
    assert result.dns_addresses == {Family.IPV4: 1, Family.IPV6: 1}
    assert [(f.family, f.address, f.status, f.body_matches) for f in result.families] == [
        (Family.IPV6, v6, 200, True),
        (Family.IPV4, v4, 200, True),
    ]
    assert result.other_policy is None


@pytest.mark.parametrize(
    ("family", "record"), [(Family.IPV4, "a"), (Family.IPV6, "aaaa")], ids=["ipv4", "ipv6"]
)
async def test_one_family_only(lab: L.Lab, family: Family, record: str) -> None:
    address = await lab.host(4 if family is Family.IPV4 else 6, L.serve(), L.serve())
    name = f"{record}-only.example.com"
    lab.zone.add(name, **{record: [address]})
    result = await validate(lab, name)
    assert summary(result) == ok()
    assert records(result) == [(0, url(name), address, RESP, 200, None)]
    assert [f.family for f in result.families] == [family]
    assert result.dns_addresses == {f: int(f is family) for f in Family}


async def test_only_first_address_of_each_family_is_used(lab: L.Lab) -> None:
    dead6 = await lab.host(6, "timeout", "timeout")
    good6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    dead4 = await lab.host(4, "refused", "refused")
    lab.zone.add("multi.example.com", a=[v4, dead4], aaaa=[dead6, good6])
    result = await validate(lab, "multi.example.com")
    # The second AAAA (which works) is never tried: the first A is the fallback.
    assert records(result) == [
        (0, url("multi.example.com"), dead6, FAILED, None, CT),
        (0, url("multi.example.com"), v4, RESP, 200, None),
    ]
    assert result.records[0].addresses_resolved == (dead6, good6, v4, dead4)


async def test_wrong_aaaa_answering_404_fails_without_fallback(lab: L.Lab) -> None:
    v6, _ = await dual_site(lab, "wrong.example.com", L.status(404), L.status(404))
    result = await validate(lab, "wrong.example.com")
    assert summary(result) == failed(0, mismatch=True)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{v6}: Invalid response from {url('wrong.example.com')}: 404",
    )
    assert records(result) == [(0, url("wrong.example.com"), v6, RESP, 404, None)]
    assert [(f.family, f.status) for f in result.families] == [
        (Family.IPV6, 404),
        (Family.IPV4, 200),
    ]


async def test_aaaa_connect_timeout_falls_back_to_working_a(lab: L.Lab) -> None:
    v6, v4 = await dual_site(lab, "slow6.example.com", "timeout", "timeout")
    started = time.monotonic()
    result = await validate(lab, "slow6.example.com", dial=3.0, budget=20.0)
    elapsed = time.monotonic() - started
    assert summary(result) == ok(fallback=True, mismatch=True)
    assert records(result) == [
        (0, url("slow6.example.com"), v6, FAILED, None, CT),
        (0, url("slow6.example.com"), v4, RESP, 200, None),
    ]
    assert result.families[0].error is CT and result.families[1].status == 200
    assert 2.95 < elapsed < 5.5  # one dial timeout (3 s), then the fallback; not two


async def test_aaaa_refused_falls_back(lab: L.Lab) -> None:
    v6, v4 = await dual_site(lab, "refused6.example.com", "refused", "refused")
    result = await validate(lab, "refused6.example.com")
    assert summary(result) == ok(fallback=True, mismatch=True)
    assert records(result) == [
        (0, url("refused6.example.com"), v6, FAILED, None, REFUSED),
        (0, url("refused6.example.com"), v4, RESP, 200, None),
    ]


async def test_aaaa_timeout_and_https_redirect_fails_on_hop_1(lab: L.Lab) -> None:
    name = "redir.example.com"
    v6, v4 = await dual_site(lab, name, "timeout", "timeout", TO_HTTPS)
    result = await validate(lab, name)
    assert summary(result) == failed(1, fallback=True, mismatch=True, redirects=1)
    assert problem(result) == (
        ProblemType.CONNECTION,
        CT,
        f"{v6}: Fetching {url(name, 'https')}: Timeout during connect (likely firewall problem)",
    )
    assert records(result) == [
        (0, url(name), v6, FAILED, None, CT),
        (0, url(name), v4, REDIR, 301, None),
        (1, url(name, "https"), v6, FAILED, None, CT),
    ]
    assert result.records[2].port == 443 and result.records[2].hostname == name
    # Under the proposed per-hop policy the HTTPS hop would fall back and pass.
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.PER_HOP, True)


async def test_ipv6_dead_on_443_boulder_replays_into_redirect_loop(lab: L.Lab) -> None:
    name = "dead443.example.com"
    v6, v4 = await dual_site(lab, name, TO_HTTPS, "timeout", TO_HTTPS)
    result = await validate(lab, name, policy=FallbackPolicy.BOULDER)
    assert summary(result) == failed(1, fallback=True, redirects=1)
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.REDIRECT_LOOP,
        f"{v4}: Fetching {url(name, 'https')}: Redirect loop detected",
    )
    assert records(result) == [
        (0, url(name), v6, REDIR, 301, None),
        (1, url(name, "https"), v6, FAILED, None, CT),
        (0, url(name), v4, REFUSED_REDIR, 301, Reason.REDIRECT_LOOP),
    ]
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.PER_HOP, True)


async def test_ipv6_dead_on_443_per_hop_succeeds(lab: L.Lab) -> None:
    name = "dead443.example.com"
    v6, v4 = await dual_site(lab, name, TO_HTTPS, "timeout", TO_HTTPS)
    result = await validate(lab, name, policy=FallbackPolicy.PER_HOP)
    assert summary(result) == ok(fallback=True, redirects=1)
    assert records(result) == [
        (0, url(name), v6, REDIR, 301, None),
        (1, url(name, "https"), v6, FAILED, None, CT),
        (1, url(name, "https"), v4, RESP, 200, None),
    ]
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.BOULDER, False)


async def test_broken_ipv6_on_hop_of_ipv4_only_host_has_no_fallback(lab: L.Lab) -> None:
    first = await lab.host(4, L.redirect("http://hop.example.net/x"), "refused")
    hop6 = await lab.host(6, "timeout", "timeout")
    hop4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("start.example.com", a=[first])
    lab.zone.add("hop.example.net", a=[hop4], aaaa=[hop6])
    result = await validate(lab, "start.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        CT,
        f"{hop6}: Fetching http://hop.example.net/x: "
        "Timeout during connect (likely firewall problem)",
    )
    assert records(result) == [
        (0, url("start.example.com"), first, REDIR, 301, None),
        (1, "http://hop.example.net/x", hop6, FAILED, None, CT),
    ]
    assert summary(result) == failed(1, redirects=1)


async def validate_on_loopback(lab: L.Lab, port: int) -> ValidationResult:
    """Validate loop.example.com (A 127.0.0.1, AAAA ::1), real loopback addresses whose
    port 80 is dialled as ``port``."""
    lab.zone.add("loop.example.com", a=["127.0.0.1"], aaaa=["::1"])
    return await validate(
        lab,
        "loop.example.com",
        addresses=AddressPolicy(allow_loopback=True),
        routes=PortMap(ports={80: port}),
    )


async def test_real_ipv6_loopback_socket_refused_falls_back_to_ipv4(lab: L.Lab) -> None:
    # Boulder's "Dual homed w/ broken IPv6, working IPv4": a real [::1] that refuses.
    server = L.WebServer(L.serve(), "127.0.0.1")
    await server.start()
    try:
        probe = socket.socket(socket.AF_INET6)
        try:
            probe.bind(("::1", server.port))  # keep [::1]:port bound but not listening
            result = await validate_on_loopback(lab, server.port)
        finally:
            probe.close()
    finally:
        await server.stop()
    assert summary(result) == ok(fallback=True, mismatch=True)
    assert records(result) == [
        (0, url("loop.example.com"), "::1", FAILED, None, REFUSED),
        (0, url("loop.example.com"), "127.0.0.1", RESP, 200, None),
    ]


async def test_real_ipv6_loopback_socket_answers(lab: L.Lab) -> None:
    server6 = L.WebServer(L.serve(), "::1")
    await server6.start()
    server4 = L.WebServer(L.status(500), "127.0.0.1")
    try:
        await server4.start(server6.port)
    except OSError:
        await server6.stop()
        pytest.fail("could not bind 127.0.0.1 on the port of [::1]")
    try:
        result = await validate_on_loopback(lab, server6.port)
    finally:
        await server6.stop()
        await server4.stop()
    assert summary(result) == ok(mismatch=True)
    assert records(result) == [(0, url("loop.example.com"), "::1", RESP, 200, None)]
    assert [(f.family, f.status) for f in result.families] == [
        (Family.IPV6, 200),
        (Family.IPV4, 500),
    ]


# --------------------------------------------------------------------------- redirects


#: A redirect Let's Encrypt refuses: (the host, the redirect it sends, the problem type and
#: reason, the detail after "<ip>: Fetching ").
REFUSED_REDIRECTS = [
    pytest.param(
        "port.example.com",
        L.redirect("http://{host}:8080/x"),
        ProblemType.CONNECTION,
        Reason.BAD_REDIRECT_PORT,
        "http://port.example.com:8080/x: Invalid port in redirect target. "
        "Only ports 80 and 443 are supported, not 8080",
        id="port-8080",
    ),
    pytest.param(
        "see.example.com",
        L.redirect("/x", 303),
        ProblemType.CONNECTION,
        Reason.BAD_REDIRECT_STATUS,
        "/x: received disallowed redirect status code",
        id="303",
    ),
    pytest.param(
        "loop.example.com",
        L.redirect("{path}"),
        ProblemType.CONNECTION,
        Reason.REDIRECT_LOOP,
        f"{PATH}: Redirect loop detected",
        id="loop",
    ),
    pytest.param(
        "private.example.com",
        L.redirect("http://10.0.0.1/x"),
        ProblemType.CONNECTION,
        Reason.REDIRECT_RESERVED_IP,
        "http://10.0.0.1/x: Invalid host in redirect target: "
        "IP address is in a reserved address block: [RFC1918]: Private-Use",
        id="reserved-ip-literal",
    ),
    pytest.param(
        "tld.example.com",
        L.redirect("http://foo.internal/x"),
        ProblemType.CONNECTION,
        Reason.REDIRECT_BAD_TLD,
        "http://foo.internal/x: Invalid host in redirect target, must end in IANA registered TLD",
        id="non-icann-tld",
    ),
    pytest.param(
        "nxhop.example.com",
        L.redirect("http://gone.example.com/x"),
        ProblemType.DNS,
        Reason.DNS_NXDOMAIN,
        "http://gone.example.com/x: "
        "DNS problem: NXDOMAIN looking up A for gone.example.com - check that a DNS record "
        "exists for this domain; DNS problem: NXDOMAIN looking up AAAA for gone.example.com - "
        "check that a DNS record exists for this domain",
        id="target-nxdomain-a-dns-problem-with-prefix",
    ),
]


@pytest.mark.parametrize(("name", "handler", "kind", "reason", "detail"), REFUSED_REDIRECTS)
async def test_refused_redirect(
    lab: L.Lab, name: str, handler: L.Handler, kind: ProblemType, reason: Reason, detail: str
) -> None:
    v4 = await site(lab, name, handler, L.serve())
    result = await validate(lab, name)
    assert problem(result) == (kind, reason, f"{v4}: Fetching {detail}")
    status = 303 if reason is Reason.BAD_REDIRECT_STATUS else 301
    assert records(result) == [(0, url(name), v4, REFUSED_REDIR, status, reason)]
    assert summary(result) == failed(1)


async def test_eleven_redirects_are_followed(lab: L.Lab) -> None:
    v4 = await site(lab, "eleven.example.com", L.chain(11), L.serve())
    result = await validate(lab, "eleven.example.com")
    assert summary(result) == ok(redirects=11)
    assert len(result.records) == 12
    assert records(result)[-1] == (11, "http://eleven.example.com/hop/11", v4, RESP, 200, None)


async def test_twelfth_redirect_is_too_many(lab: L.Lab) -> None:
    v4 = await site(lab, "twelve.example.com", L.chain(12), L.serve())
    result = await validate(lab, "twelve.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.TOO_MANY_REDIRECTS,
        f"{v4}: Fetching /hop/12: Too many redirects",
    )
    assert len(result.records) == 12
    assert records(result)[-1] == (
        11,
        "http://twelve.example.com/hop/11",
        v4,
        REFUSED_REDIR,
        302,
        Reason.TOO_MANY_REDIRECTS,
    )
    assert summary(result) == failed(12, redirects=11)


async def test_redirect_to_public_ip_literal_is_followed(lab: L.Lab) -> None:
    # IP literals are allowed (here a lab-mapped address stands in for a public one).
    target = await lab.host(4, L.serve(), L.serve())
    v4 = await site(lab, "literal.example.com", L.redirect(f"http://{target}{PATH}"), L.serve())
    result = await validate(lab, "literal.example.com")
    assert summary(result) == ok(redirects=1)
    assert records(result)[1] == (1, f"http://{target}{PATH}", target, RESP, 200, None)
    assert result.records[1].hostname == target
    assert records(result)[0][2] == v4


async def test_plain_http_on_the_https_hop(lab: L.Lab) -> None:
    v4 = await lab.host(4, TO_HTTPS, L.plain(L.serve()))
    lab.zone.add("plain.example.com", a=[v4])
    result = await validate(lab, "plain.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.TLS_ERROR,
        f"{v4}: Fetching {url('plain.example.com', 'https')}: Error getting validation data",
    )
    assert records(result) == [
        (0, url("plain.example.com"), v4, REDIR, 301, None),
        (1, url("plain.example.com", "https"), v4, FAILED, None, Reason.TLS_ERROR),
    ]
    assert summary(result) == failed(1, redirects=1)


async def test_https_hop_succeeds(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.redirect("https://{host}{path}", 308), L.serve())
    lab.zone.add("tls.example.com", a=[v4])
    result = await validate(lab, "tls.example.com")
    assert summary(result) == ok(redirects=1)
    assert records(result)[1] == (1, url("tls.example.com", "https"), v4, RESP, 200, None)


# ----------------------------------------------------------------------------- DNS


NX_HINT = " - check that a DNS record exists for this domain"
SERVFAIL_HINT = " - the domain's nameservers may be malfunctioning"


@pytest.mark.parametrize(
    ("name", "zone", "reason", "detail"),
    [
        pytest.param(
            "missing.example.com",
            None,
            Reason.DNS_NXDOMAIN,
            f"DNS problem: NXDOMAIN looking up A for missing.example.com{NX_HINT}; "
            f"DNS problem: NXDOMAIN looking up AAAA for missing.example.com{NX_HINT}",
            id="nxdomain",
        ),
        pytest.param(
            "sf2.example.com",
            {"servfail": {"A", "AAAA"}},
            Reason.DNS_SERVFAIL,
            f"DNS problem: SERVFAIL looking up A for sf2.example.com{SERVFAIL_HINT}; "
            f"DNS problem: SERVFAIL looking up AAAA for sf2.example.com{SERVFAIL_HINT}",
            id="both-servfail",
        ),
        pytest.param(
            "private.example.com",
            {"a": ["10.1.2.3"], "aaaa": ["fe80::1"]},
            Reason.DNS_NO_ADDRESSES,
            "no valid A records found for private.example.com; "
            "no valid AAAA records found for private.example.com",
            id="only-reserved-addresses",
        ),
    ],
)
async def test_both_families_failing_is_a_dns_problem(
    lab: L.Lab, name: str, zone: dict[str, Any] | None, reason: Reason, detail: str
) -> None:
    if zone is not None:
        lab.zone.add(name, **zone)
    result = await validate(lab, name)
    assert problem(result) == (ProblemType.DNS, reason, detail)
    assert result.records == ()
    assert summary(result) == {**failed(0), "failed_hop": None}


@pytest.mark.parametrize(
    "aaaa",
    [{"servfail": {"AAAA"}}, {"aaaa": ["fc00::1", "::ffff:192.0.2.1"]}],
    ids=["aaaa-servfail", "reserved-aaaa-filtered"],
)
async def test_a_failing_aaaa_beside_a_good_a_is_dropped(lab: L.Lab, aaaa: dict[str, Any]) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("sf.example.com", a=[v4], **aaaa)
    result = await validate(lab, "sf.example.com")
    assert summary(result) == ok()
    assert records(result) == [(0, url("sf.example.com"), v4, RESP, 200, None)]
    assert result.records[0].addresses_resolved == (v4,)


async def test_cname_chain(lab: L.Lab) -> None:
    v6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("www.example.com", cname="mid.example.net")
    lab.zone.add("mid.example.net", cname="target.example.org")
    lab.zone.add("target.example.org", a=[v4], aaaa=[v6])
    result = await validate(lab, "www.example.com")
    assert summary(result) == ok()
    assert records(result) == [(0, url("www.example.com"), v6, RESP, 200, None)]
    assert result.records[0].hostname == "www.example.com"
    assert result.records[0].addresses_resolved == (v6, v4)


# --------------------------------------------------------------------------- the body


async def body_site(lab: L.Lab, payload: bytes) -> str:
    v4 = await lab.host(4, L.body(payload), L.serve())
    lab.zone.add("body.example.com", a=[v4])
    return v4


async def test_oversize_body(lab: L.Lab) -> None:
    v4 = await body_site(lab, b"x" * 100_000)
    result = await validate(lab, "body.example.com")
    quoted = '"' + "x" * 128 + '"'
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_TOO_LARGE,
        f"{v4}: Invalid response from {url('body.example.com')}: {quoted}",
    )
    assert summary(result) == failed(0)


async def test_body_of_127_bytes_is_read_in_full(lab: L.Lab) -> None:
    await body_site(lab, b"y" * 127)
    result = await validate(lab, "body.example.com")
    assert result.problem is not None
    assert result.problem.reason is Reason.KEY_AUTHORIZATION_MISMATCH
    assert result.problem.detail.endswith('(got "' + "y" * 127 + '")')


async def test_trailing_whitespace_is_trimmed(lab: L.Lab) -> None:
    await body_site(lab, KA.encode() + b" \r\n\t\xc2\xa0")
    result = await validate(lab, "body.example.com")
    assert summary(result) == ok()


@pytest.mark.parametrize(
    ("payload", "got"),
    [
        (b" " + KA.encode(), f" {KA}"),
        (b'wrong "token"\n\x00\xff', 'wrong \\"token\\"\\n\\x00\\xff'),
    ],
    ids=["leading-whitespace", "wrong-body"],
)
async def test_a_body_that_is_not_the_key_authorization_is_a_mismatch(
    lab: L.Lab, payload: bytes, got: str
) -> None:
    await body_site(lab, payload)
    result = await validate(lab, "body.example.com")
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.KEY_AUTHORIZATION_MISMATCH,
        "The key authorization file from the server did not match this challenge. "
        f'Expected "{KA}" (got "{got}")',
    )
    assert summary(result) == failed(0)


async def test_reachability_mode_accepts_404(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("reach.example.com", a=[v4])
    result = await validate(lab, "reach.example.com", canary=False)
    assert result.mode is Mode.REACHABILITY
    assert summary(result) == ok()
    assert result.records[0].status == 404
    assert result.records[0].url.startswith("http://reach.example.com/.well-known/acme-challenge/")
    assert result.records[0].url != url("reach.example.com")  # a random token


async def test_reachability_mode_rejects_500(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.status(500), L.serve())
    lab.zone.add("reach.example.com", a=[v4])
    result = await validate(lab, "reach.example.com", canary=False)
    assert result.problem is not None
    assert (result.problem.type, result.problem.reason) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
    )


# -------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("name", "v6", "options", "reason"),
    [
        ("hang.example.com", L.hang(), {"budget": 1.0}, Reason.READ_TIMEOUT),
        ("budget.example.com", "timeout", {"dial": 5.0, "budget": 0.5}, Reason.VALIDATION_TIMEOUT),
    ],
    ids=["read-timeout", "budget-shorter-than-one-dial"],
)
async def test_the_deadline_is_a_timeout_after_connect_without_fallback(
    lab: L.Lab, name: str, v6: Any, options: dict[str, float], reason: Reason
) -> None:
    address, _ = await dual_site(lab, name, v6, v6)
    started = time.monotonic()
    result = await validate(lab, name, **options)
    elapsed = time.monotonic() - started
    assert problem(result) == (
        ProblemType.CONNECTION,
        reason,
        f"{address}: Fetching {url(name)}: "
        "Timeout after connect (your server may be slow or overloaded)",
    )
    assert records(result) == [(0, url(name), address, FAILED, None, reason)]
    assert summary(result) == failed(0, mismatch=True)
    assert elapsed < options["budget"] + 2.0  # the deadline ends it, not the server or a dial
