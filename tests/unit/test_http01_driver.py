"""The HTTP-01 driver (``exporter.http01.Validator``) on fake seams: what it asks, in what
order, and the verdict it reaches.

The DNS and fetch seams are the fakes of ``tests.fakes``; no socket is opened (the
dialer is a fake with an empty table). The scenario suite runs the same rules against
real servers; here a test can also say what was *not* done: the second AAAA never
requested, a hop's IPv4 address never tried, an IP literal never looked up. The texts
are the ones the scenario suite asserts (``tests/integration/test_scenarios.py``),
Let's Encrypt's as the shared HTTP-01 reference quotes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from exporter.caa import CaaRecord
from exporter.fetch import BodyError, Failed
from exporter.http01 import Validator
from exporter.policy import AddressPolicy, Phase
from exporter.records import (
    FallbackPolicy,
    Family,
    ProblemType,
    Reason,
    ValidationResult,
)
from exporter.resources import ExporterResourceError, ResourceReason
from tests.fakes import (
    SERVFAIL,
    FakeDialer,
    FakeFetcher,
    FakeResolver,
    Hang,
    Host,
    Query,
    Reply,
    page,
    redirect,
    status,
)
from tests.integration.lab_validation import (
    FAILED,
    KA,
    REDIR,
    REFUSED_REDIR,
    RESP,
    TOKEN,
    problem,
    records,
    settings,
    url,
)

CT = Reason.CONNECT_TIMEOUT
AFTER_CONNECT = "Timeout after connect (your server may be slow or overloaded)"
DURING_CONNECT = "Timeout during connect (likely firewall problem)"

NAME = "www.example.com"
U, HTTPS_U = url(NAME), url(NAME, "https")
V6, V6_SECOND, V4, V4_SECOND = "2001:db8::6", "2001:db8::66", "192.0.2.4", "192.0.2.44"
HOP = "hop.example.net"
HOP_URL = f"http://{HOP}/x"
HOP6, HOP4 = "2001:db8::7", "192.0.2.7"
DUAL = Host(a=(V4, V4_SECOND), aaaa=(V6, V6_SECOND))


#: Documentation addresses, accepted as public here as the lab accepts its own.
LAB = frozenset({V6, V6_SECOND, V4, V4_SECOND, HOP6, HOP4})


async def run(
    hosts: Mapping[str, Host],
    replies: Mapping[tuple[str, str], Reply],
    *,
    name: str = NAME,
    **options: Any,
) -> tuple[ValidationResult, FakeResolver, FakeFetcher]:
    """Validate ``name`` (a canary) on fakes; returns the result and the two fakes, to
    ask what was looked up and what was requested. ``options`` are the settings'."""
    resolver, fetcher = FakeResolver(hosts), FakeFetcher(replies)
    options.setdefault("budget", 5.0)
    options.setdefault("addresses", AddressPolicy(lab_addresses=LAB))
    async with FakeDialer({}) as dialer:  # the fetch is faked: nothing may dial
        engine = Validator(settings(**options), resolver, dialer, fetcher=fetcher)
        result = await engine.validate(name, token=TOKEN, key_authorization=KA)
    return result, resolver, fetcher


def flags(result: ValidationResult) -> tuple[Any, ...]:
    """(success, ipv4_fallback, failed_hop, redirects, aaaa_mismatch)."""
    return (
        result.success,
        result.ipv4_fallback,
        result.failed_hop,
        result.redirects,
        result.aaaa_mismatch,
    )


# ---------------------------------------------------------------- address choice


async def test_the_first_aaaa_is_requested_first_and_no_second_address_ever() -> None:
    # Only V6 and V4 have replies: a request to a second address fails the test.
    result, resolver, fetcher = await run({NAME: DUAL}, {(U, V6): page(KA), (U, V4): page(KA)})
    assert flags(result) == (True, False, None, 0, False)
    assert records(result) == [(0, U, V6, RESP, 200, None)]
    assert result.records[0].addresses_resolved == (V6, V6_SECOND, V4, V4_SECOND)
    assert fetcher.calls[0] == (U, V6)
    assert sorted(fetcher.addresses(U)) == sorted([V6, V4])  # V4: the AAAA-vs-A probe
    assert [(f.family, f.address, f.status, f.body_matches) for f in result.families] == [
        (Family.IPV6, V6, 200, True),
        (Family.IPV4, V4, 200, True),
    ]
    assert sorted(resolver.asked(NAME)) == ["A", "AAAA"]


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (Reason.CONNECT_TIMEOUT, DURING_CONNECT),
        (Reason.CONNECTION_REFUSED, "Connection refused"),
        (Reason.NETWORK_UNREACHABLE, "Network unreachable"),
        (Reason.CONNECT_ERROR, "Error getting validation data"),
    ],
)
async def test_a_dial_failure_of_the_aaaa_falls_back_to_the_first_a(
    reason: Reason, message: str
) -> None:
    result, _, fetcher = await run({NAME: DUAL}, {(U, V6): Failed(reason), (U, V4): page(KA)})
    assert flags(result) == (True, True, None, 0, True)
    assert records(result) == [(0, U, V6, FAILED, None, reason), (0, U, V4, RESP, 200, None)]
    assert result.families[0].error is reason
    # The chain's two requests and the probe's: V4 twice, V6 once, nothing else.
    assert sorted(fetcher.addresses(U)) == sorted([V6, V4, V4])


async def test_a_dial_failure_of_the_only_address_is_the_verdict() -> None:
    result, _, fetcher = await run(
        {NAME: Host(aaaa=(V6,))}, {(U, V6): Failed(Reason.CONNECTION_REFUSED)}
    )
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.CONNECTION_REFUSED,
        f"{V6}: Fetching {U}: Connection refused",
    )
    assert flags(result) == (False, False, 0, 0, False)
    assert fetcher.calls == [(U, V6)]


@pytest.mark.parametrize(
    ("failure", "kind", "message"),
    [
        (Failed(Reason.READ_TIMEOUT), ProblemType.CONNECTION, AFTER_CONNECT),
        (Failed(Reason.CONNECTION_RESET), ProblemType.CONNECTION, "Connection reset by peer"),
        (Failed(Reason.PROTOCOL_ERROR), ProblemType.CONNECTION, "Error getting validation data"),
        (
            Failed(Reason.HTTP2_OVER_HTTP),
            ProblemType.CONNECTION,
            "Server is speaking HTTP/2 over HTTP",
        ),
        (
            Failed(Reason.TLS_ALERT, "remote error: tls: handshake failure"),
            ProblemType.TLS,
            "remote error: tls: handshake failure",
        ),
    ],
    ids=["read-timeout", "reset", "protocol-error", "http2", "tls-alert"],
)
async def test_a_failure_after_connect_never_falls_back(
    failure: Failed, kind: ProblemType, message: str
) -> None:
    result, _, fetcher = await run({NAME: DUAL}, {(U, V6): failure, (U, V4): page(KA)})
    assert problem(result) == (kind, failure.reason, f"{V6}: Fetching {U}: {message}")
    assert records(result) == [(0, U, V6, FAILED, None, failure.reason)]
    assert flags(result) == (False, False, 0, 0, True)
    assert fetcher.addresses(U).count(V4) == 1  # the probe only


async def test_a_body_that_cannot_be_read_never_falls_back() -> None:
    result, _, _ = await run(
        {NAME: DUAL}, {(U, V6): BodyError("unexpected EOF"), (U, V4): page(KA)}
    )
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{V6}: Error reading HTTP response body: unexpected EOF",
    )
    assert records(result) == [(0, U, V6, RESP, None, Reason.BODY_READ_ERROR)]
    assert flags(result) == (False, False, 0, 0, True)


async def test_a_wrong_aaaa_answering_404_never_falls_back() -> None:
    result, _, fetcher = await run({NAME: DUAL}, {(U, V6): status(404), (U, V4): page(KA)})
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{V6}: Invalid response from {U}: 404",
    )
    assert records(result) == [(0, U, V6, RESP, 404, None)]
    assert flags(result) == (False, False, 0, 0, True)
    assert [(f.family, f.status) for f in result.families] == [
        (Family.IPV6, 404),
        (Family.IPV4, 200),
    ]
    assert fetcher.addresses(U).count(V4) == 1  # the probe only


async def test_a_multicast_first_aaaa_is_dialled_then_the_first_a() -> None:
    # Erratum 21: multicast is not reserved; the kernel refuses the connect.
    result, _, fetcher = await run(
        {NAME: Host(a=(V4,), aaaa=("ff0e::1", V6))},
        {(U, "ff0e::1"): Failed(Reason.NETWORK_UNREACHABLE), (U, V4): page(KA)},
    )
    assert records(result) == [
        (0, U, "ff0e::1", FAILED, None, Reason.NETWORK_UNREACHABLE),
        (0, U, V4, RESP, 200, None),
    ]
    assert flags(result) == (True, True, None, 0, True)
    assert V6 not in fetcher.addresses(U)


async def test_the_exporters_own_resource_error_is_no_verdict() -> None:
    # Out of descriptors, say: the driver lets it through (no result about the domain),
    # on the chain's request as on the AAAA-vs-A probe's.
    for replies in (
        {(U, V6): ExporterResourceError(ResourceReason.DESCRIPTORS, "Too many open files")},
        {
            (U, V6): page(KA),
            (U, V4): ExporterResourceError(ResourceReason.DESCRIPTORS, "Too many open files"),
        },
    ):
        with pytest.raises(ExporterResourceError):
            await run({NAME: DUAL}, replies)


# ---------------------------------------------------------------------- redirects


async def test_each_redirect_hop_is_resolved_again_and_its_aaaa_used() -> None:
    result, resolver, fetcher = await run(
        {NAME: DUAL, HOP: Host(a=(HOP4,), aaaa=(HOP6,))},
        {(U, V6): redirect(HOP_URL), (U, V4): redirect(HOP_URL), (HOP_URL, HOP6): page(KA)},
    )
    assert flags(result) == (True, False, None, 1, False)
    assert records(result) == [(0, U, V6, REDIR, 301, None), (1, HOP_URL, HOP6, RESP, 200, None)]
    assert result.records[1].addresses_resolved == (HOP6, HOP4)
    assert sorted(resolver.asked(HOP)) == ["A", "AAAA"]
    assert fetcher.addresses(HOP_URL) == [HOP6]  # the probe follows no redirect


async def test_a_redirect_to_the_same_host_is_looked_up_again() -> None:
    second = f"http://{NAME}/second"
    result, resolver, _ = await run(
        {NAME: Host(a=(V4,))}, {(U, V4): redirect("/second"), (second, V4): page(KA)}
    )
    assert records(result) == [(0, U, V4, REDIR, 301, None), (1, second, V4, RESP, 200, None)]
    assert sorted(resolver.asked(NAME)) == ["A", "A", "AAAA", "AAAA"]


@pytest.mark.parametrize(
    ("location", "address"),
    [(f"http://{HOP4}/x", HOP4), (f"http://[{HOP6}]/x", HOP6)],
    ids=["ipv4", "ipv6"],
)
async def test_an_ip_literal_redirect_target_is_not_looked_up(location: str, address: str) -> None:
    result, resolver, _ = await run(
        {NAME: Host(a=(V4,))}, {(U, V4): redirect(location), (location, address): page(KA)}
    )
    assert records(result) == [
        (0, U, V4, REDIR, 301, None),
        (1, location, address, RESP, 200, None),
    ]
    assert (result.records[1].hostname, result.records[1].addresses_resolved) == (
        address,
        (address,),
    )
    assert resolver.queries == [Query(NAME, "A"), Query(NAME, "AAAA")]


async def test_a_hop_dial_failure_does_not_fall_back_on_the_hop() -> None:
    # boulder: the initial host has no IPv4 address to move to; the hop's own IPv4 is
    # never tried. The per-hop policy, run beside it, tries it and passes.
    result, _, fetcher = await run(
        {NAME: Host(a=(V4,)), HOP: Host(a=(HOP4,), aaaa=(HOP6,))},
        {(U, V4): redirect(HOP_URL), (HOP_URL, HOP6): Failed(CT), (HOP_URL, HOP4): page(KA)},
    )
    assert problem(result) == (
        ProblemType.CONNECTION,
        CT,
        f"{HOP6}: Fetching {HOP_URL}: {DURING_CONNECT}",
    )
    assert records(result) == [(0, U, V4, REDIR, 301, None), (1, HOP_URL, HOP6, FAILED, None, CT)]
    assert flags(result) == (False, False, 1, 1, False)
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.PER_HOP, True)
    # boulder's chain asked HOP6 once; the per-hop run HOP6, then HOP4.
    assert fetcher.addresses(HOP_URL) == [HOP6, HOP6, HOP4]


async def test_the_per_hop_policy_falls_back_on_the_hop() -> None:
    result, _, _ = await run(
        {NAME: Host(a=(V4,)), HOP: Host(a=(HOP4,), aaaa=(HOP6,))},
        {(U, V4): redirect(HOP_URL), (HOP_URL, HOP6): Failed(CT), (HOP_URL, HOP4): page(KA)},
        policy=FallbackPolicy.PER_HOP,
    )
    assert records(result) == [
        (0, U, V4, REDIR, 301, None),
        (1, HOP_URL, HOP6, FAILED, None, CT),
        (1, HOP_URL, HOP4, RESP, 200, None),
    ]
    assert flags(result) == (True, True, None, 1, False)
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.BOULDER, False)


async def test_boulder_replays_the_chain_from_the_initial_ipv4_into_a_redirect_loop() -> None:
    # The reference's item 6: IPv6 dead on 443 only, an HTTP-to-HTTPS redirect.
    result, resolver, _ = await run(
        {NAME: DUAL},
        {
            (U, V6): redirect(HTTPS_U),
            (HTTPS_U, V6): Failed(CT),
            (U, V4): redirect(HTTPS_U),
            (HTTPS_U, V4): page(KA),
        },
    )
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.REDIRECT_LOOP,
        f"{V4}: Fetching {HTTPS_U}: Redirect loop detected",
    )
    assert records(result) == [
        (0, U, V6, REDIR, 301, None),
        (1, HTTPS_U, V6, FAILED, None, CT),
        (0, U, V4, REFUSED_REDIR, 301, Reason.REDIRECT_LOOP),
    ]
    assert flags(result) == (False, True, 1, 1, False)
    assert (result.other_policy, result.other_policy_success) == (FallbackPolicy.PER_HOP, True)
    assert resolver.asked(NAME).count("AAAA") >= 2  # the HTTPS hop was looked up again


def hops(count: int) -> tuple[list[str], dict[tuple[str, str], Reply]]:
    """A chain of ``count`` redirects on NAME's V4: the challenge URL, then /hop/1, ...,
    each a 302 to the next; the last URL serves the key authorization. Returns the URLs
    and the fetcher's replies."""
    chain = [U, *(f"http://{NAME}/hop/{i}" for i in range(1, count + 1))]
    replies: dict[tuple[str, str], Reply] = {
        (here, V4): redirect(f"/hop/{i}", 302) for i, here in enumerate(chain[:-1], start=1)
    }
    replies[(chain[-1], V4)] = page(KA)
    return chain, replies


async def test_eleven_redirects_are_followed() -> None:
    chain, replies = hops(11)
    result, _, fetcher = await run({NAME: Host(a=(V4,))}, replies)
    assert flags(result) == (True, False, None, 11, False)
    assert records(result) == [
        *((hop, chain[hop], V4, REDIR, 302, None) for hop in range(11)),
        (11, chain[11], V4, RESP, 200, None),
    ]
    assert [c.url for c in fetcher.calls] == chain  # one family: no AAAA-vs-A probe


async def test_the_twelfth_redirect_is_too_many() -> None:
    chain, replies = hops(12)
    result, _, fetcher = await run({NAME: Host(a=(V4,))}, replies)
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.TOO_MANY_REDIRECTS,
        f"{V4}: Fetching /hop/12: Too many redirects",
    )
    assert records(result) == [
        *((hop, chain[hop], V4, REDIR, 302, None) for hop in range(11)),
        (11, chain[11], V4, REFUSED_REDIR, 302, Reason.TOO_MANY_REDIRECTS),
    ]
    assert flags(result) == (False, False, 12, 11, False)
    assert chain[12] not in {c.url for c in fetcher.calls}


# ---------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("phase", "reason"),
    [(Phase.DIAL, Reason.VALIDATION_TIMEOUT), (Phase.WAIT, Reason.READ_TIMEOUT)],
    ids=["during-a-dial", "waiting-for-the-head"],
)
async def test_the_deadline_is_a_timeout_after_connect_with_no_fallback(
    phase: Phase, reason: Reason
) -> None:
    result, _, fetcher = await run(
        {NAME: DUAL}, {(U, V6): Hang(phase), (U, V4): page(KA)}, budget=0.2
    )
    assert problem(result) == (
        ProblemType.CONNECTION,
        reason,
        f"{V6}: Fetching {U}: {AFTER_CONNECT}",
    )
    assert records(result) == [(0, U, V6, FAILED, None, reason)]
    assert result.ipv4_fallback is False
    assert fetcher.addresses(U).count(V4) == 1  # the probe only


async def test_the_deadline_while_reading_a_body_is_a_body_read_error() -> None:
    result, _, _ = await run({NAME: Host(a=(V4,))}, {(U, V4): Hang(Phase.BODY)}, budget=0.2)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{V4}: Error reading HTTP response body: context deadline exceeded",
    )
    assert records(result) == [(0, U, V4, RESP, None, Reason.BODY_READ_ERROR)]


async def test_the_deadline_during_a_hops_lookup_names_the_location() -> None:
    result, _, _ = await run(
        {NAME: Host(a=(V4,)), HOP: Host(a=(HOP4,), delay=60)},
        {(U, V4): redirect(HOP_URL)},
        budget=0.2,
    )
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.VALIDATION_TIMEOUT,
        f"{V4}: Fetching {HOP_URL}: {AFTER_CONNECT}",
    )
    assert records(result) == [(0, U, V4, REFUSED_REDIR, None, Reason.VALIDATION_TIMEOUT)]
    assert result.failed_hop == 1


async def test_the_deadline_during_the_first_lookup_is_a_dns_timeout() -> None:
    result, _, fetcher = await run({NAME: Host(a=(V4,), delay=60)}, {}, budget=0.2)
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_TIMEOUT,
        f"DNS problem: query timed out looking up A for {NAME}; "
        f"DNS problem: query timed out looking up AAAA for {NAME}",
    )
    assert (result.records, fetcher.calls) == ((), [])


# ---------------------------------------------------------------------------- DNS


async def test_nxdomain_sends_no_request() -> None:
    result, resolver, fetcher = await run({}, {})
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_NXDOMAIN,
        f"DNS problem: NXDOMAIN looking up A for {NAME} - check that a DNS record exists "
        f"for this domain; DNS problem: NXDOMAIN looking up AAAA for {NAME} - check that a "
        "DNS record exists for this domain",
    )
    assert (result.records, fetcher.calls) == ((), [])
    assert sorted(resolver.asked(NAME)) == ["A", "AAAA"]


async def test_an_aaaa_servfail_is_dropped_and_kept_for_display() -> None:
    result, _, _ = await run({NAME: Host(a=(V4,), aaaa=SERVFAIL)}, {(U, V4): page(KA)})
    assert flags(result) == (True, False, None, 0, False)
    assert records(result) == [(0, U, V4, RESP, 200, None)]
    assert [(e.hop, e.family, e.reason, e.detail) for e in result.dns_family_errors] == [
        (
            0,
            Family.IPV6,
            Reason.DNS_SERVFAIL,
            f"DNS problem: SERVFAIL looking up AAAA for {NAME} - the domain's nameservers "
            "may be malfunctioning",
        )
    ]


async def test_a_name_the_policy_refuses_is_neither_looked_up_nor_requested() -> None:
    result, resolver, fetcher = await run({}, {}, name="foo.local")
    assert problem(result) == (
        ProblemType.REJECTED_IDENTIFIER,
        Reason.POLICY_NOT_PUBLIC,
        'Invalid identifiers requested :: Cannot issue for "foo.local": '
        "Domain name does not end with a valid public suffix (TLD)",
    )
    assert (resolver.queries, fetcher.calls) == ([], [])


# ---------------------------------------------------------------------------- CAA


async def test_caa_is_asked_of_every_name_up_to_the_tld_beside_the_fetch() -> None:
    account = "https://acme-v02.api.letsencrypt.org/acme/acct/123"
    forbidding = (CaaRecord(0, b"issue", b"digicert.com"),)
    result, resolver, _ = await run(
        {NAME: Host(a=(V4,)), "example.com": Host(caa=forbidding)},
        {(U, V4): page(KA)},
        caa=True,
        account_uris=frozenset({account}),
    )
    assert [q.name for q in resolver.queries if q.type == "CAA"] == [NAME, "example.com", "com"]
    assert problem(result) == (
        ProblemType.CAA,
        Reason.CAA_FORBIDDEN_ISSUER,
        f"While processing CAA for {NAME}: CAA record for example.com prevents issuance",
    )
    assert records(result) == [(0, U, V4, RESP, 200, None)]
    assert result.failed_hop is None  # the fetch itself succeeded
