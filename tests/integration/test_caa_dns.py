"""CAA and DNS as Let's Encrypt sees them, against the lab's real DNS and web servers.

Each case builds its names in the lab's DNS server (CAA records sent as raw wire data,
so even a tag dnspython refuses goes out as it is), validates with the exporter's own
resolver client and validator, and asserts the verdict: type, reason and Let's
Encrypt's exact detail text, plus what the CAA check found and the hidden failures.
"""

from __future__ import annotations

from typing import Any

from exporter import report
from exporter.dns import DnspythonResolver
from exporter.lab import servers as L
from exporter.records import (
    DnsFamilyError,
    Family,
    Problem,
    ProblemType,
    Reason,
    ValidationResult,
)
from tests.integration.lab_validation import validate as lab_validate

ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/123"
OTHER_ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/456"
PREFIX = "While processing CAA for {domain}: "


async def healthy(lab: L.Lab, name: str, **records: Any) -> None:
    """``name`` served correctly over both families, with extra zone data."""
    v6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6], **records)


async def validate(
    lab: L.Lab, name: str, *, account_uris: frozenset[str] = frozenset({ACCOUNT})
) -> ValidationResult:
    """A canary validation with the CAA check on, for the account ``ACCOUNT``."""
    return await lab_validate(lab, name, caa=True, account_uris=account_uris)


def verdict(result: ValidationResult) -> tuple[Any, ...]:
    p = result.problem
    return (result.success, None if p is None else (p.type, p.reason, p.detail))


def refused(domain: str, name: str, reason: Reason) -> tuple[Any, ...]:
    detail = PREFIX.format(domain=domain) + f"CAA record for {name} prevents issuance"
    return (False, (ProblemType.CAA, reason, detail))


# ------------------------------------------------------------------------------- CAA


async def test_caa_permits_letsencrypt(lab: L.Lab) -> None:
    await healthy(lab, "www.permit.example.com")
    lab.zone.add("permit.example.com", caa=[(0, "issue", "letsencrypt.org")])
    result = await validate(lab, "www.permit.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None
    assert (result.caa.permitted, result.caa.relevant_name, result.caa.records) == (
        True,
        "permit.example.com",
        ('0 issue "letsencrypt.org"',),
    )
    assert result.caa.names == (
        "www.permit.example.com",
        "permit.example.com",
        "example.com",
        "com",
    )


async def test_no_caa_anywhere_permits(lab: L.Lab) -> None:
    await healthy(lab, "none.example.com")
    result = await validate(lab, "none.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None
    assert (result.caa.permitted, result.caa.relevant_name) == (True, None)


async def test_caa_names_another_ca(lab: L.Lab) -> None:
    await healthy(lab, "other.example.com", caa=[(0, "issue", "digicert.com")])
    result = await validate(lab, "other.example.com")
    expected = refused("other.example.com", "other.example.com", Reason.CAA_FORBIDDEN_ISSUER)
    assert verdict(result) == expected
    assert result.failed_hop is None  # the fetch itself succeeded
    assert result.caa is not None and result.caa.permitted is False
    # A renewal reusing an authorization validated over 7 h earlier skips the challenge,
    # not CAA: it fails at finalize, and check says so.
    finalize = f"Error finalizing order :: rechecking caa: {expected[1][2]}"
    assert result.caa.finalize_problem == Problem(
        ProblemType.CAA, Reason.CAA_FORBIDDEN_ISSUER, finalize
    )
    assert f"still fails at finalize: caa: {finalize}" in report.render(result)


async def test_caa_empty_issuer_forbids_every_ca(lab: L.Lab) -> None:
    await healthy(lab, "empty.example.com", caa=[(0, "issue", ";")])
    result = await validate(lab, "empty.example.com")
    assert verdict(result) == refused(
        "empty.example.com", "empty.example.com", Reason.CAA_FORBIDDEN_ISSUER
    )


async def test_validationmethods_dns01_only_forbids_http01(lab: L.Lab) -> None:
    value = "letsencrypt.org; validationmethods=dns-01"
    await healthy(lab, "dns01.example.com", caa=[(0, "issue", value)])
    result = await validate(lab, "dns01.example.com")
    assert verdict(result) == refused(
        "dns01.example.com", "dns01.example.com", Reason.CAA_FORBIDDEN_METHOD
    )


async def test_validationmethods_http01_permits(lab: L.Lab) -> None:
    value = "letsencrypt.org; validationmethods=http-01"
    await healthy(lab, "http01.example.com", caa=[(0, "issue", value)])
    assert verdict(await validate(lab, "http01.example.com")) == (True, None)


async def test_accounturi_match_permits(lab: L.Lab) -> None:
    await healthy(
        lab, "acct.example.com", caa=[(0, "issue", f"letsencrypt.org; accounturi={ACCOUNT}")]
    )
    result = await validate(lab, "acct.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None and result.caa.account_checked is True


async def test_accounturi_mismatch_forbids(lab: L.Lab) -> None:
    value = f"letsencrypt.org; accounturi={OTHER_ACCOUNT}"
    await healthy(lab, "acct2.example.com", caa=[(0, "issue", value)])
    result = await validate(lab, "acct2.example.com")
    assert verdict(result) == refused(
        "acct2.example.com", "acct2.example.com", Reason.CAA_FORBIDDEN_ACCOUNT
    )


async def test_accounturi_without_a_configured_account_is_not_guessed(lab: L.Lab) -> None:
    value = f"letsencrypt.org; accounturi={OTHER_ACCOUNT}"
    await healthy(lab, "acct3.example.com", caa=[(0, "issue", value)])
    result = await validate(lab, "acct3.example.com", account_uris=frozenset())
    assert verdict(result) == (True, None)
    assert result.caa is not None and result.caa.account_checked is False


async def test_critical_unknown_tag_forbids(lab: L.Lab) -> None:
    caa = [(0, "issue", "letsencrypt.org"), (128, "tbs", "x")]
    await healthy(lab, "critical.example.com", caa=caa)
    result = await validate(lab, "critical.example.com")
    assert verdict(result) == refused(
        "critical.example.com", "critical.example.com", Reason.CAA_FORBIDDEN_CRITICAL
    )


async def test_non_critical_unknown_tags_are_ignored(lab: L.Lab) -> None:
    # contact-email is not alphanumeric: dnspython refuses it, Let's Encrypt does not.
    caa = [
        (0, "issue", "letsencrypt.org"),
        (0, b"contact-email", b"x@example.com"),
        (0, "tbs", "x"),
    ]
    await healthy(lab, "unknown.example.com", caa=caa)
    result = await validate(lab, "unknown.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None
    assert result.caa.records == (
        '0 issue "letsencrypt.org"',
        '0 contact-email "x@example.com"',
        '0 tbs "x"',
    )


async def test_critical_non_alphanumeric_tag_forbids(lab: L.Lab) -> None:
    caa = [(0, "issue", "letsencrypt.org"), (128, b"contact-email", b"x@example.com")]
    await healthy(lab, "critical2.example.com", caa=caa)
    result = await validate(lab, "critical2.example.com")
    assert verdict(result) == refused(
        "critical2.example.com", "critical2.example.com", Reason.CAA_FORBIDDEN_CRITICAL
    )


async def test_a_record_set_on_a_parent_applies(lab: L.Lab) -> None:
    await healthy(lab, "a.b.parent.example.com")
    lab.zone.add("parent.example.com", caa=[(0, "issue", "digicert.com")])
    result = await validate(lab, "a.b.parent.example.com")
    assert verdict(result) == refused(
        "a.b.parent.example.com", "parent.example.com", Reason.CAA_FORBIDDEN_ISSUER
    )


async def test_the_name_itself_overrides_its_parent(lab: L.Lab) -> None:
    await healthy(lab, "www.override.example.com", caa=[(0, "issue", "letsencrypt.org")])
    lab.zone.add("override.example.com", caa=[(0, "issue", ";")])
    result = await validate(lab, "www.override.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None and result.caa.relevant_name == "www.override.example.com"


async def test_issuewild_alone_does_not_apply_to_http01(lab: L.Lab) -> None:
    await healthy(lab, "wild.example.com", caa=[(0, "issuewild", ";")])
    lab.zone.add("example.com", caa=[(0, "issue", ";")])  # never consulted: the climb stops
    result = await validate(lab, "wild.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None and result.caa.relevant_name == "wild.example.com"


async def test_issuewild_does_not_authorise_http01(lab: L.Lab) -> None:
    caa = [(0, "issuewild", "letsencrypt.org"), (0, "issue", ";")]
    await healthy(lab, "wild2.example.com", caa=caa)
    result = await validate(lab, "wild2.example.com")
    assert verdict(result) == refused(
        "wild2.example.com", "wild2.example.com", Reason.CAA_FORBIDDEN_ISSUER
    )


async def test_caa_servfail_fails_validation(lab: L.Lab) -> None:
    await healthy(lab, "caa-servfail.example.com", rcode={"CAA": "SERVFAIL"})
    result = await validate(lab, "caa-servfail.example.com")
    detail = (
        "While processing CAA for caa-servfail.example.com: DNS problem: SERVFAIL looking up "
        "CAA for caa-servfail.example.com - the domain's nameservers may be malfunctioning"
    )
    assert verdict(result) == (False, (ProblemType.DNS, Reason.CAA_LOOKUP_SERVFAIL, detail))
    assert result.caa is not None and result.caa.permitted is None
    # A renewal that reuses an older authorization fetches nothing, and still fails at
    # finalize: the same lookup, as type caa.
    assert result.caa.finalize_problem == Problem(
        ProblemType.CAA,
        Reason.CAA_LOOKUP_SERVFAIL,
        f"Error finalizing order :: rechecking caa: {detail}",
    )


async def test_caa_servfail_above_the_deciding_name_is_ignored(lab: L.Lab) -> None:
    await healthy(lab, "www.ignored.example.com", caa=[(0, "issue", "letsencrypt.org")])
    lab.zone.add("ignored.example.com", rcode={"CAA": "SERVFAIL"})
    result = await validate(lab, "www.ignored.example.com")
    assert verdict(result) == (True, None)
    assert result.caa is not None
    assert result.caa.ignored_errors == (
        (
            "ignored.example.com",
            "DNS problem: SERVFAIL looking up CAA for ignored.example.com - the domain's "
            "nameservers may be malfunctioning",
        ),
    )


async def test_caa_through_a_cname(lab: L.Lab) -> None:
    v6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("cdn.provider.example.net", a=[v4], aaaa=[v6], caa=[(0, "issue", "digicert.com")])
    lab.zone.add("www.cname.example.com", cname="cdn.provider.example.net")
    result = await validate(lab, "www.cname.example.com")
    # The alias target's record set counts for the queried name.
    assert verdict(result) == refused(
        "www.cname.example.com", "www.cname.example.com", Reason.CAA_FORBIDDEN_ISSUER
    )


async def test_a_failed_fetch_is_reported_before_caa(lab: L.Lab) -> None:
    v6 = await lab.host(6, L.status(404), L.status(404))
    v4 = await lab.host(4, L.status(404), L.status(404))
    lab.zone.add("both.example.com", a=[v4], aaaa=[v6], caa=[(0, "issue", "digicert.com")])
    result = await validate(lab, "both.example.com")
    assert result.problem is not None
    assert (result.problem.type, result.problem.reason) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
    )
    # ... but the CAA refusal is on the result, to be fixed next.
    assert result.caa is not None and result.caa.problem is not None
    assert result.caa.problem.reason is Reason.CAA_FORBIDDEN_ISSUER


# ------------------------------------------------------------------------------- DNS


async def test_dnssec_failure_in_the_resolvers_words(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    name = "bogus.example.com"
    texts = {
        t: f"validation failure <{name}. {t} IN>: signature expired from 192.0.2.53"
        for t in ("A", "AAAA")
    }
    lab.zone.add(
        name,
        a=[v4],
        rcode={"A": "SERVFAIL", "AAAA": "SERVFAIL"},
        ede={t: (7, text) for t, text in texts.items()},
    )
    result = await validate(lab, name)
    detail = (
        f"DNS problem: looking up A for {name}: DNSSEC: Signature Expired: {texts['A']}; "
        f"DNS problem: looking up AAAA for {name}: DNSSEC: Signature Expired: {texts['AAAA']}"
    )
    assert verdict(result) == (False, (ProblemType.DNS, Reason.DNS_DNSSEC, detail))


async def test_a_non_dnssec_extended_error_keeps_its_rcode_reason(lab: L.Lab) -> None:
    name = "unreachable.example.com"
    lab.zone.add(
        name,
        rcode={"A": "SERVFAIL", "AAAA": "SERVFAIL"},
        ede={"A": (22, ""), "AAAA": (27, "mystery")},
    )
    result = await validate(lab, name)
    detail = (
        f"DNS problem: looking up A for {name}: No Reachable Authority; "
        f"DNS problem: looking up AAAA for {name}: Unknown Extended DNS Error code 27: mystery"
    )
    assert verdict(result) == (False, (ProblemType.DNS, Reason.DNS_SERVFAIL, detail))


async def test_hidden_aaaa_servfail_is_shown(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("hidden.example.com", a=[v4], servfail={"AAAA"})
    result = await validate(lab, "hidden.example.com")
    assert verdict(result) == (True, None)  # Let's Encrypt goes on with IPv4
    assert result.dns_family_errors == (
        DnsFamilyError(
            0,
            "hidden.example.com",
            Family.IPV6,
            Reason.DNS_SERVFAIL,
            "DNS problem: SERVFAIL looking up AAAA for hidden.example.com - the domain's "
            "nameservers may be malfunctioning",
        ),
    )


async def test_hidden_dnssec_failure_of_one_family(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    text = "validation failure <half.example.com. AAAA IN>: signature expired from 192.0.2.53"
    lab.zone.add("half.example.com", a=[v4], rcode={"AAAA": "SERVFAIL"}, ede={"AAAA": (7, text)})
    result = await validate(lab, "half.example.com")
    assert verdict(result) == (True, None)
    assert [(e.family, e.reason) for e in result.dns_family_errors] == [
        (Family.IPV6, Reason.DNS_DNSSEC)
    ]
    assert result.dns_family_errors[0].detail == (
        f"DNS problem: looking up AAAA for half.example.com: DNSSEC: Signature Expired: {text}"
    )


async def test_only_reserved_aaaa_is_hidden_no_addresses(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("ula.example.com", a=[v4], aaaa=["fc00::1"])
    result = await validate(lab, "ula.example.com")
    assert verdict(result) == (True, None)
    assert [(e.family, e.reason, e.detail) for e in result.dns_family_errors] == [
        (Family.IPV6, Reason.DNS_NO_ADDRESSES, "no valid AAAA records found for ula.example.com")
    ]


async def test_a_one_family_host_hides_nothing(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("v4only.example.com", a=[v4])
    result = await validate(lab, "v4only.example.com")
    assert verdict(result) == (True, None)
    assert result.dns_family_errors == ()


async def test_hidden_failure_on_a_redirect_hop(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.redirect("http://target.example.org{path}"), L.serve())
    lab.zone.add("start.example.com", a=[v4])
    t4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("target.example.org", a=[t4], servfail={"AAAA"})
    result = await validate(lab, "start.example.com")
    assert verdict(result) == (True, None)
    assert [(e.hop, e.host, e.family, e.reason) for e in result.dns_family_errors] == [
        (1, "target.example.org", Family.IPV6, Reason.DNS_SERVFAIL)
    ]


async def test_a_servfail_is_not_asked_again_elsewhere(lab: L.Lab) -> None:
    """Two nameservers: the first answers SERVFAIL, which is final (no second opinion)."""
    second = L.LabDNS(L.Zone(), host="127.0.0.2")
    await second.start(lab.dns.port)
    try:
        second.zone.add("second.example.com", a=["192.0.2.200"])
        lab.zone.add("second.example.com", servfail={"A", "AAAA"})
        resolver = DnspythonResolver([lab.dns.host, second.host], lab.dns.port, timeout=1.0)
        answer = await resolver.lookup("second.example.com", Family.IPV4)
        assert answer.failure is not None and answer.failure.rcode == "SERVFAIL"
    finally:
        await second.stop()
