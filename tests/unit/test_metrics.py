"""The collector and the store: snapshot rendering, counters, removal, IPv6 vantage."""

from __future__ import annotations

import itertools
import platform
import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from exporter import __version__
from exporter.discovery.kinds import Origin
from exporter.discovery.status import Reason as DiscoveryReason
from exporter.discovery.status import SourceName, StatusBook
from exporter.metrics import (
    DOMAIN_FAMILIES,
    DiscoveryCollector,
    DomainState,
    Exposition,
    ResultStore,
    SelfMetrics,
    ServiceState,
    accepts_gzip,
    negotiate_format,
    render_discovery,
    render_domains,
    source_line,
)
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


def parse_openmetrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples as ``parse`` gives them, read by prometheus_client's OpenMetrics parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in openmetrics_families(text)
        for s in f.samples
    }


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


# ------------------------------------------------------------ formats and negotiation

OPENMETRICS_TYPES_AND_SAMPLES = """\
# TYPE acme_http01_validation_success gauge
acme_http01_validation_success{domain="a.example.com"} 0.0
# TYPE acme_http01_validation_problem gauge
acme_http01_validation_problem{domain="a.example.com",type="connection",reason="connect_timeout"} \
1.0
# TYPE acme_http01_aaaa_mismatch gauge
acme_http01_aaaa_mismatch{domain="a.example.com"} 0.0
# TYPE acme_http01_ipv4_fallback gauge
acme_http01_ipv4_fallback{domain="a.example.com"} 0.0
# TYPE acme_http01_ipv4_fallbacks counter
acme_http01_ipv4_fallbacks_total{domain="a.example.com"} 0.0
acme_http01_ipv4_fallbacks_total{domain="b.example.com"} 0.0
# TYPE acme_http01_redirect_hop_failure gauge
acme_http01_redirect_hop_failure{domain="a.example.com"} 1.0
# TYPE acme_http01_redirect_hop_failures counter
acme_http01_redirect_hop_failures_total{domain="a.example.com",reason="connect_timeout"} 1.0
# TYPE acme_http01_redirects gauge
acme_http01_redirects{domain="a.example.com"} 0.0
# TYPE acme_http01_dns_addresses gauge
acme_http01_dns_addresses{domain="a.example.com",family="ipv4"} 1.0
acme_http01_dns_addresses{domain="a.example.com",family="ipv6"} 1.0
# TYPE acme_http01_family_response gauge
acme_http01_family_response{domain="a.example.com",family="ipv6"} 1.0
# TYPE acme_http01_other_policy_success gauge
# TYPE acme_http01_caa_permitted gauge
# TYPE acme_http01_dns_family_error gauge
# TYPE acme_http01_certificate_not_before_timestamp_seconds gauge
# TYPE acme_http01_certificate_not_after_timestamp_seconds gauge
# TYPE acme_http01_certificate_renewal_due_timestamp_seconds gauge
# TYPE acme_http01_certificate_chain_valid gauge
# TYPE acme_http01_validation_duration_seconds gauge
acme_http01_validation_duration_seconds{domain="a.example.com"} 1.5
# TYPE acme_http01_last_validation_timestamp_seconds gauge
acme_http01_last_validation_timestamp_seconds{domain="a.example.com"} 1e+09
# TYPE acme_http01_validations counter
acme_http01_validations_total{domain="a.example.com",result="success"} 0.0
acme_http01_validations_total{domain="a.example.com",result="failure"} 1.0
acme_http01_validations_total{domain="b.example.com",result="success"} 0.0
acme_http01_validations_total{domain="b.example.com",result="failure"} 0.0
"""


def small_store() -> ResultStore:
    store = ResultStore()
    store.set_domains(["a.example.com", "b.example.com"])
    store.record(result("a.example.com", False, hop=1))
    return store


def exposition(store: ResultStore) -> Exposition:
    registry = CollectorRegistry(auto_describe=False)
    SelfMetrics(registry)
    return Exposition(store, ServiceState(), registry)


def test_openmetrics_rendering_of_a_small_store_exactly() -> None:
    text = render_domains(small_store().snapshot(), openmetrics=True)
    lines = text.splitlines(keepends=True)
    assert "".join(ln for ln in lines if not ln.startswith("# HELP ")) == (
        OPENMETRICS_TYPES_AND_SAMPLES
    )
    helps = [ln for ln in lines if ln.startswith("# HELP ")]
    assert len(helps) == len(DOMAIN_FAMILIES)
    # Each HELP right before its TYPE, named alike; double quotes escaped (OpenMetrics only).
    for help_line, type_line in itertools.pairwise(lines):
        if help_line.startswith("# HELP "):
            assert type_line.split()[2] == help_line.split()[2]
    assert (
        "# HELP acme_http01_validations Finished validations by result.\n" in helps
        and "# HELP acme_http01_ipv4_fallbacks Validations that used the IPv6-to-IPv4 fallback.\n"
        in helps
    )
    problem = next(h for h in helps if h.startswith("# HELP acme_http01_validation_problem "))
    assert 'type=\\"none\\",reason=\\"none\\" on success.' in problem
    assert "# EOF" not in text  # the exposition ends it, once


def test_openmetrics_counters_named_without_total_and_samples_with_it() -> None:
    e = exposition(small_store())
    om, text = e.render(openmetrics=True).decode(), e.render().decode()
    om_counters = re.findall(r"^# TYPE (\S+) counter$", om, re.M)
    text_counters = re.findall(r"^# TYPE (\S+) counter$", text, re.M)
    assert "acme_http01_validations" in om_counters
    assert "process_cpu_seconds" in om_counters and "python_gc_objects_collected" in om_counters
    assert "acme_http01_probes" in om_counters
    for family in om_counters:
        assert not family.endswith("_total"), family
        assert f"{family}_total" in text_counters, family
    assert re.search(r"^# HELP \S+_total ", om, re.M) is None
    # Samples are the same lines in both formats.
    assert (
        'acme_http01_validations_total{domain="a.example.com",result="failure"} 1.0\n' in om
        and 'acme_http01_validations_total{domain="a.example.com",result="failure"} 1.0\n' in text
    )
    # The same families and values either way (prometheus_client's parsers).
    om_samples = parse_openmetrics(om)
    text_samples = parse(text)
    runtime = ("process_", "python_gc_")  # they move between the two renders
    assert {k for k in om_samples if not k[0].startswith(runtime)} == {
        k for k in text_samples if not k[0].startswith(runtime)
    }


def test_openmetrics_eof_once_at_the_end_and_runtime_metrics_in_both() -> None:
    e = exposition(small_store())
    om = e.render(openmetrics=True).decode()
    assert om.count("# EOF") == 1 and om.endswith("\n# EOF\n")
    text = e.render().decode()
    assert "# EOF" not in text
    for body in (om, text):
        assert "\nprocess_cpu_seconds_total " in body
        assert "\nprocess_resident_memory_bytes " in body
        assert '\npython_info{implementation="' in body
        assert '\npython_gc_objects_collected_total{generation="0"} ' in body
    assert "acme_http01_validations_total" not in generate_latest(e.runtime).decode()


def test_runtime_metrics_are_not_in_the_cached_domain_lines() -> None:
    store = small_store()
    state = store.get("a.example.com")
    assert state is not None
    before = state.lines("a.example.com", True)
    exposition(store).render(openmetrics=True)
    assert state.lines("a.example.com", True) is before  # cached, shared by both formats
    assert not any("process_" in lines for lines in before.values())


OM1 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OM0 = "application/openmetrics-text; version=0.0.1; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
PROMETHEUS_DEFAULT = (  # Prometheus 2.x's Accept header
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, TEXT),
        ("", TEXT),
        ("*/*", TEXT),
        ("text/plain", TEXT),
        ("application/openmetrics-text", OM1),
        ("application/openmetrics-text; version=1.0.0", OM1),
        ("application/openmetrics-text;version=0.0.1", OM0),
        ("application/openmetrics-text; version=0.0.1; q=1, text/plain; q=0.5", OM0),
        (PROMETHEUS_DEFAULT, OM1),
        # Prometheus with scrape_protocols: [PrometheusText0.0.4] (and ahead of OpenMetrics)
        ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", TEXT),
        (
            "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.9,*/*;q=0.1",
            TEXT,
        ),
        ("application/openmetrics-text;version=1.0.0;q=0, text/plain;q=0.1", TEXT),
        ("application/openmetrics-text;q=0, */*", TEXT),
        ("text/plain;q=0, */*;q=0.2", OM1),  # text refused: the only other thing we have
        ("application/*", OM1),
        ("application/openmetrics-text;version=2.0.0", TEXT),  # a version we do not speak
        ("application/json", TEXT),  # nothing acceptable: the text format anyway
        ("application/openmetrics-text;q=abc", TEXT),  # a malformed q accepts nothing
        ("APPLICATION/OpenMetrics-Text; Version=1.0.0", OM1),
        ("application/openmetrics-text, text/plain", TEXT),  # a tie: the text format
    ],
)
def test_content_negotiation(accept: str | None, expected: str) -> None:
    openmetrics, content_type = negotiate_format(accept)
    assert content_type == expected
    assert openmetrics == expected.startswith("application/openmetrics-text")


@pytest.mark.parametrize(
    ("accept_encoding", "gzip"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("x-gzip", True),
        ("GZIP;Q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("deflate, br", False),
        ("identity", False),
        ("*", True),
        ("*;q=0.5", True),
        ("*, gzip;q=0", False),
        ("*;q=0", False),
        ("*;q=0, gzip", True),
        ("gzip;q=0.5, identity;q=1", False),  # identity preferred
        ("gzip;q=0.5, identity;q=0.5", True),  # a tie: compress
        ("identity;q=0, gzip;q=0.1", True),
        ("gzip;q=bogus", False),
    ],
)
def test_gzip_negotiation(accept_encoding: str | None, gzip: bool) -> None:
    assert accepts_gzip(accept_encoding) is gzip


# ------------------------------------------- the exporter gauges and the discovery families

EXPORTER_GAUGES = """\
# HELP acme_http01_domains Configured domains.
# TYPE acme_http01_domains gauge
acme_http01_domains 2.0
# HELP acme_http01_validation_interval_seconds Configured interval between two validations \
of a domain.
# TYPE acme_http01_validation_interval_seconds gauge
acme_http01_validation_interval_seconds 60.5
# HELP acme_http01_exporter_tasks asyncio tasks in the exporter (validations, connections, jobs).
# TYPE acme_http01_exporter_tasks gauge
acme_http01_exporter_tasks 7.0
# HELP acme_http01_exporter_ipv6_capable 1 if this exporter's host can route IPv6; without it \
IPv6 results are not measured.
# TYPE acme_http01_exporter_ipv6_capable gauge
acme_http01_exporter_ipv6_capable 0.0
# HELP acme_http01_resolver_dnssec_validating 1 if the configured resolver validates DNSSEC \
(the AD bit on the signed root), as Let's Encrypt's does; 0 if not or if it did not answer the \
check: predictions are then only as good as that resolver's view.
# TYPE acme_http01_resolver_dnssec_validating gauge
acme_http01_resolver_dnssec_validating 1.0
# HELP acme_http01_renewal_window_seconds Configured window: a failing domain whose certificate \
renewal is due within it (or overdue) is urgent.
# TYPE acme_http01_renewal_window_seconds gauge
acme_http01_renewal_window_seconds 604800.0
# HELP acme_http01_config_last_reload_successful 1 if the last configuration reload succeeded.
# TYPE acme_http01_config_last_reload_successful gauge
acme_http01_config_last_reload_successful 0.0
# HELP acme_http01_config_last_reload_success_timestamp_seconds Unix time of the last \
successful configuration reload.
# TYPE acme_http01_config_last_reload_success_timestamp_seconds gauge
acme_http01_config_last_reload_success_timestamp_seconds 1.7e+09
# HELP acme_http01_exporter_build_info Build information; always 1.
# TYPE acme_http01_exporter_build_info gauge
acme_http01_exporter_build_info{python_version="PYTHON",version="VERSION"} 1.0
# HELP acme_http01_exporter_info This replica: its vantage point (perspective) and its shard of \
the domain list.
# TYPE acme_http01_exporter_info gauge
acme_http01_exporter_info{perspective="eu \\"west\\"\\\\1\\nx",shard="1",shards="3"} 1.0
"""


def test_exporter_gauges_exactly_in_both_formats() -> None:
    """The same lines in both formats (a gauge is named alike in both, and no help text
    holds a double quote), label values escaped, one family each."""
    state = ServiceState(
        perspective='eu "west"\\1\nx',
        tasks=7,
        shard=1,
        shards=3,
        ipv6_capable=False,
        resolver_validating=True,
        reload_successful=False,
        reload_success_timestamp=1.7e9,
        interval=60.5,
    )
    expected = EXPORTER_GAUGES.replace("PYTHON", platform.python_version()).replace(
        "VERSION", __version__
    )
    for openmetrics in (False, True):
        body = Exposition(small_store(), state, CollectorRegistry()).render(openmetrics).decode()
        start = body.index("# HELP acme_http01_domains ")
        end = body.index("# HELP acme_http01_domain_source_info ")
        assert body[start:end] == expected, openmetrics


def test_the_domain_count_is_the_rendered_snapshots() -> None:
    """A reload that lands while a scrape renders: acme_http01_domains counts the domains
    whose series that scrape holds, not the store's new list."""

    class ReloadedMidScrape(ResultStore):
        def snapshot(self) -> dict[str, DomainState]:
            taken = super().snapshot()
            self.set_domains(["new.example.com"])
            return taken

    store = ReloadedMidScrape()
    store.set_domains(["a.example.com", "b.example.com"])
    s = scrape(store)
    assert value(s, "acme_http01_domains") == 2
    assert {dict(k[1])["domain"] for k in s if k[0] == "acme_http01_validations_total"} == {
        "a.example.com",
        "b.example.com",
    }


def _book() -> StatusBook:
    book = StatusBook()
    book.get(SourceName.STATIC, "").names = 2
    ingress = book.get(SourceName.KUBERNETES, "Ingress")
    ingress.up, ingress.objects, ingress.names, ingress.last_sync = True, 3, 4, 1.7e9
    ingress.skipped = {"wildcard": 2, "dns01": 1}
    ingress.failed(DiscoveryReason.FORBIDDEN, "no")
    return book


def test_discovery_families_in_both_formats() -> None:
    state = ServiceState(discovery=_book())
    state.source_lines = source_line(
        "a.example.com", Origin("file", "File", "", '/srv/"names".yml')
    )
    text = render_discovery(state)
    om = render_discovery(state, openmetrics=True)
    assert "# EOF" not in om  # the exposition ends it, once
    ingress = {"source": "kubernetes", "kind": "Ingress"}
    for samples in (parse(text), parse_openmetrics(om + "# EOF\n")):
        assert value(samples, "acme_http01_discovery_up", **ingress) == 0
        assert value(samples, "acme_http01_discovery_up", source="static", kind="") == 0
        assert value(samples, "acme_http01_discovery_objects", **ingress) == 3
        assert value(samples, "acme_http01_discovery_names", source="static", kind="") == 2
        assert value(samples, "acme_http01_discovery_skipped_names", **ingress, reason="dns01") == 1
        assert (
            value(samples, "acme_http01_discovery_last_sync_timestamp_seconds", **ingress) == 1.7e9
        )
        errors = {k: v for k, v in samples.items() if k[0] == "acme_http01_discovery_errors_total"}
        assert len(errors) == len(DiscoveryReason)  # none for the static list
        assert (
            value(samples, "acme_http01_discovery_errors_total", **ingress, reason="forbidden") == 1
        )
        where = {"domain": "a.example.com", "source": "file", "kind": "File", "namespace": ""}
        where["name"] = '/srv/"names".yml'
        assert samples[("acme_http01_domain_source_info", frozenset(where.items()))] == 1
    assert "# TYPE acme_http01_discovery_errors_total counter\n" in text
    assert "# TYPE acme_http01_discovery_errors counter\n" in om
    for body in (text, om):
        helps = re.findall(r"^# HELP (\S+) ", body, re.M)
        assert len(helps) == len(set(helps)) == 7


def test_discovery_is_read_when_the_collector_is_made() -> None:
    """The statuses change on the event loop: what a scrape renders is what they were when
    the loop made the collector, whatever happens while the scrape renders elsewhere."""
    book = _book()
    collector = DiscoveryCollector(book.all())
    book.get(SourceName.KUBERNETES, "Ingress").objects = 99
    objects = next(f for f in collector.collect() if f.name == "acme_http01_discovery_objects")
    assert {s.labels["kind"]: s.value for s in objects.samples} == {"": 0, "Ingress": 3}
