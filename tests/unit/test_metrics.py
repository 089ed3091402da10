"""The collector and the store: snapshot rendering, counters, removal, IPv6 vantage."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.metrics import Exposition, ResultStore, ServiceState
from exporter.records import (
    FallbackPolicy,
    Family,
    FamilyProbe,
    Mode,
    Problem,
    ProblemType,
    Reason,
    ValidationResult,
)
from tests.integration.procs import parse, value


def result(
    domain: str,
    success: bool,
    *,
    fallback: bool = False,
    hop: int | None = None,
    reason: Reason = Reason.CONNECT_TIMEOUT,
    v6: int = 1,
) -> ValidationResult:
    problem = None if success else Problem(ProblemType.CONNECTION, reason, "x")
    return ValidationResult(
        domain=domain,
        policy=FallbackPolicy.BOULDER,
        mode=Mode.CANARY,
        success=success,
        problem=problem,
        records=(),
        ipv4_fallback=fallback,
        failed_hop=None if success else hop,
        redirects=0,
        aaaa_mismatch=fallback,
        families=(FamilyProbe(Family.IPV6, "2001:db8::1", not fallback, None, None, None, None),),
        dns_addresses={Family.IPV4: 1, Family.IPV6: v6},
        duration_seconds=1.5,
        finished_at=1e9,
    )


def scrape(store: ResultStore, state: ServiceState | None = None) -> dict:  # type: ignore[type-arg]
    exposition = Exposition(store, state or ServiceState(), CollectorRegistry())
    return parse(exposition.render().decode())


def test_counters_accumulate_and_gauges_show_the_latest() -> None:
    store = ResultStore()
    store.set_domains(["a.example.com"])
    store.record(result("a.example.com", True, fallback=True))
    store.record(result("a.example.com", False, hop=1))
    store.record(result("a.example.com", False, hop=1))
    s = scrape(store)
    assert value(s, "acme_http01_ipv4_fallbacks_total", domain="a.example.com") == 1
    assert value(s, "acme_http01_ipv4_fallback", domain="a.example.com") == 0
    assert value(s, "acme_http01_validations_total", domain="a.example.com", result="failure") == 2
    assert value(s, "acme_http01_validations_total", domain="a.example.com", result="success") == 1
    assert (
        value(
            s,
            "acme_http01_redirect_hop_failures_total",
            domain="a.example.com",
            reason="connect_timeout",
        )
        == 2
    )
    assert value(s, "acme_http01_redirect_hop_failure", domain="a.example.com") == 1
    assert (
        value(
            s,
            "acme_http01_validation_problem",
            domain="a.example.com",
            type="connection",
            reason="connect_timeout",
        )
        == 1
    )


def test_failure_on_the_initial_request_is_not_a_hop_failure() -> None:
    store = ResultStore()
    store.set_domains(["a.example.com"])
    store.record(result("a.example.com", False, hop=0))
    s = scrape(store)
    assert value(s, "acme_http01_redirect_hop_failure", domain="a.example.com") == 0
    assert not [k for k in s if k[0] == "acme_http01_redirect_hop_failures_total"]


def test_removed_domain_vanishes_and_kept_one_keeps_counters() -> None:
    store = ResultStore()
    store.set_domains(["a.example.com", "b.example.com"])
    store.record(result("a.example.com", True))
    store.record(result("b.example.com", True))
    store.set_domains(["a.example.com", "c.example.com"])
    store.record(result("b.example.com", True))  # a late result for a removed domain: ignored
    s = scrape(store)
    assert not [k for k in s if ("domain", "b.example.com") in k[1]]
    assert value(s, "acme_http01_validations_total", domain="a.example.com", result="success") == 1
    # c has no result yet: only its counters, no verdict.
    assert value(s, "acme_http01_validation_success", domain="c.example.com") is None
    assert value(s, "acme_http01_validations_total", domain="c.example.com", result="success") == 0
    assert value(s, "acme_http01_domains") == 2
    assert not store.complete()


def test_without_ipv6_dual_stack_verdicts_are_not_measured() -> None:
    store = ResultStore()
    store.set_domains(["dual.example.com", "v4.example.com"])
    store.record(result("dual.example.com", False, hop=0))
    store.record(result("v4.example.com", True, v6=0))
    s = scrape(store, ServiceState(ipv6_capable=False))
    assert value(s, "acme_http01_exporter_ipv6_capable") == 0
    assert value(s, "acme_http01_validation_success", domain="dual.example.com") is None
    assert value(s, "acme_http01_family_response", domain="dual.example.com", family="ipv6") is None
    assert value(s, "acme_http01_validation_success", domain="v4.example.com") == 1
    assert value(s, "acme_http01_dns_addresses", domain="dual.example.com", family="ipv6") == 1


def test_caa_and_hidden_dns_failures() -> None:
    import dataclasses

    from exporter.records import CaaCheck, DnsFamilyError

    store = ResultStore()
    store.set_domains(["a.example.com", "b.example.com", "c.example.com"])
    forbidden = Problem(ProblemType.CAA, Reason.CAA_FORBIDDEN_ISSUER, "x")
    store.record(
        dataclasses.replace(
            result("a.example.com", False),
            problem=forbidden,
            caa=CaaCheck(
                names=("a.example.com", "example.com", "com"), permitted=False, problem=forbidden
            ),
        )
    )
    store.record(
        dataclasses.replace(
            result("b.example.com", True),
            caa=CaaCheck(
                names=("b.example.com", "example.com", "com"), permitted=True, problem=None
            ),
            dns_family_errors=(
                DnsFamilyError(0, "b.example.com", Family.IPV6, Reason.DNS_SERVFAIL, "x"),
                DnsFamilyError(1, "elsewhere.example.org", Family.IPV6, Reason.DNS_TIMEOUT, "y"),
            ),
        )
    )
    store.record(result("c.example.com", True))  # CAA check off: no series
    s = scrape(store, ServiceState(resolver_validating=True))
    assert s[("acme_http01_caa_permitted", frozenset({("domain", "a.example.com")}))] == 0
    assert s[("acme_http01_caa_permitted", frozenset({("domain", "b.example.com")}))] == 1
    assert not [k for k in s if k[0] == "acme_http01_caa_permitted" and "c.example.com" in str(k)]
    hidden = {k: v for k, v in s.items() if k[0] == "acme_http01_dns_family_error"}
    labels = {("domain", "b.example.com"), ("family", "ipv6"), ("reason", "dns_servfail")}
    assert hidden == {("acme_http01_dns_family_error", frozenset(labels)): 1}  # hop 0 only
    problem = ("domain", "a.example.com"), ("type", "caa"), ("reason", "caa_forbidden_issuer")
    assert s[("acme_http01_validation_problem", frozenset(problem))] == 1
    assert s[("acme_http01_resolver_dnssec_validating", frozenset())] == 1
    assert scrape(store)[("acme_http01_resolver_dnssec_validating", frozenset())] == 0
