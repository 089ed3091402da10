"""The metrics contract, rendered at scrape time from a snapshot of the latest results.

Rule: nothing on the scrape path does network I/O or touches the validations in
flight. :class:`ResultStore` holds the latest :class:`ValidationResult` and the
counters of each configured domain; :class:`Exposition` reads one snapshot of it
per scrape, so a domain removed from the config disappears at once and a scrape
never sees half an update. Each domain's lines are rendered once per result and
cached (a scrape of 10,000 domains only joins strings): the per-domain families are the
one part written here by hand. The rest is prometheus_client's, collectors rendered by its
own exposition: the exporter-level gauges (:class:`ExporterCollector`), the discovery
sources' states (:class:`DiscoveryCollector`), the self-metrics and the runtime
registries. Metric names live in :class:`Metric`.

Sample exposition (one domain)::

    # HELP acme_http01_validation_success 1 if Let's Encrypt would succeed ...
    # TYPE acme_http01_validation_success gauge
    acme_http01_validation_success{domain="example.com"} 1.0
    acme_http01_validation_problem{domain="example.com",reason="none",type="none"} 1.0
    acme_http01_ipv4_fallbacks_total{domain="example.com"} 0.0
"""

from __future__ import annotations

import dataclasses
import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    metrics_core,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.openmetrics.exposition import (
    generate_latest as _untyped_generate_openmetrics,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_float_to_go

from exporter import __version__
from exporter.discovery.kinds import Origin
from exporter.discovery.status import Reason, SourceName, Status, StatusBook
from exporter.records import CertificateCheck, Family, ValidationResult
from exporter.resources import ResourceReason

__all__ = [
    "TEXT_CONTENT_TYPE",
    "DiscoveryCollector",
    "DomainState",
    "ExporterCollector",
    "Exposition",
    "Metric",
    "ResultStore",
    "SelfMetrics",
    "ServiceState",
    "accepts_gzip",
    "negotiate_format",
    "openmetrics_content_type",
    "render_discovery",
    "render_domains",
    "runtime_registry",
    "source_line",
]

#: prometheus_client's own float formatting, so the text matches its exposition exactly.
floatToGoString = cast(Callable[[float], str], _untyped_float_to_go)
generate_openmetrics = cast(Callable[[Collector], bytes], _untyped_generate_openmetrics)

#: Content types as Prometheus expects them (``text/plain`` 0.0.4; OpenMetrics by version).
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_VERSIONS = ("1.0.0", "0.0.1")


def openmetrics_content_type(version: str = "1.0.0") -> str:
    return f"application/openmetrics-text; version={version}; charset=utf-8"


_EOF = b"# EOF\n"

_CACHED = " From the latest periodic validation (cached between runs)."


class Metric(StrEnum):
    VALIDATION_SUCCESS = "acme_http01_validation_success"
    VALIDATION_PROBLEM = "acme_http01_validation_problem"
    AAAA_MISMATCH = "acme_http01_aaaa_mismatch"
    IPV4_FALLBACK = "acme_http01_ipv4_fallback"
    IPV4_FALLBACKS = "acme_http01_ipv4_fallbacks"  # counter: _total
    REDIRECT_HOP_FAILURE = "acme_http01_redirect_hop_failure"
    REDIRECT_HOP_FAILURES = "acme_http01_redirect_hop_failures"  # counter: _total
    REDIRECTS = "acme_http01_redirects"
    DNS_ADDRESSES = "acme_http01_dns_addresses"
    FAMILY_RESPONSE = "acme_http01_family_response"
    OTHER_POLICY_SUCCESS = "acme_http01_other_policy_success"
    CAA_PERMITTED = "acme_http01_caa_permitted"
    CERT_NOT_BEFORE = "acme_http01_certificate_not_before_timestamp_seconds"
    CERT_NOT_AFTER = "acme_http01_certificate_not_after_timestamp_seconds"
    CERT_RENEWAL_DUE = "acme_http01_certificate_renewal_due_timestamp_seconds"
    CERT_CHAIN_VALID = "acme_http01_certificate_chain_valid"
    DNS_FAMILY_ERROR = "acme_http01_dns_family_error"
    VALIDATION_DURATION = "acme_http01_validation_duration_seconds"
    LAST_VALIDATION = "acme_http01_last_validation_timestamp_seconds"
    VALIDATIONS = "acme_http01_validations"  # counter: _total
    DOMAINS = "acme_http01_domains"
    INTERVAL = "acme_http01_validation_interval_seconds"
    IPV6_CAPABLE = "acme_http01_exporter_ipv6_capable"
    RESOLVER_VALIDATING = "acme_http01_resolver_dnssec_validating"
    RENEWAL_WINDOW = "acme_http01_renewal_window_seconds"
    RELOAD_SUCCESSFUL = "acme_http01_config_last_reload_successful"
    RELOAD_TIMESTAMP = "acme_http01_config_last_reload_success_timestamp_seconds"
    BUILD_INFO = "acme_http01_exporter_build_info"
    INFO = "acme_http01_exporter_info"
    TASKS = "acme_http01_exporter_tasks"
    # Exporter self-metrics (no domain label).
    SCHEDULER_DELAY = "acme_http01_scheduler_delay_seconds"
    SKIPPED_RUNS = "acme_http01_scheduler_skipped_runs"  # counter: _total
    VALIDATION_LATENCY = "acme_http01_validation_latency_seconds"
    IN_FLIGHT = "acme_http01_validations_in_flight"
    RELOADS = "acme_http01_config_reloads"  # counter: _total
    PROBES = "acme_http01_probes"  # counter: _total
    EXPORTER_ERRORS = "acme_http01_exporter_errors"  # counter: _total
    # Discovery: where names come from (exporter.discovery).
    DOMAIN_SOURCE_INFO = "acme_http01_domain_source_info"
    DISCOVERY_UP = "acme_http01_discovery_up"
    DISCOVERY_OBJECTS = "acme_http01_discovery_objects"
    DISCOVERY_NAMES = "acme_http01_discovery_names"
    DISCOVERY_SKIPPED = "acme_http01_discovery_skipped_names"
    DISCOVERY_LAST_SYNC = "acme_http01_discovery_last_sync_timestamp_seconds"
    DISCOVERY_ERRORS = "acme_http01_discovery_errors"  # counter: _total


@dataclass
class DomainState:
    """The latest result of one domain and its counters. Replaced, never mutated,
    once stored, so its rendered lines can be cached."""

    result: ValidationResult | None = None
    fallbacks: int = 0
    validations: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    hop_failures: dict[str, int] = field(default_factory=dict)
    #: The latest reading of the certificate served on 443 (its own, slower schedule).
    certificate: CertificateCheck | None = None
    #: When the renewal is planned, where the issuing side says so (cert-manager's
    #: ``status.renewalTime``); it takes precedence over the served certificate's.
    planned_renewal: float | None = None
    _lines: tuple[bool, dict[Metric, str]] | None = field(default=None, repr=False)

    def after(self, result: ValidationResult) -> DomainState:
        """A new state: ``result`` is the latest, and counted."""
        new = DomainState(
            result=result,
            fallbacks=self.fallbacks + (1 if result.ipv4_fallback else 0),
            validations=dict(self.validations),
            hop_failures=dict(self.hop_failures),
            certificate=self.certificate,
            planned_renewal=self.planned_renewal,
        )
        new.validations["success" if result.success else "failure"] += 1
        if result.failed_on_redirect_hop:
            reason = str(result.reason)
            new.hop_failures[reason] = new.hop_failures.get(reason, 0) + 1
        return new

    def lines(self, name: str, ipv6_measured: bool) -> dict[Metric, str]:
        cached = self._lines
        if cached is not None and cached[0] == ipv6_measured:
            return cached[1]
        rendered = {
            metric: "".join(_line(metric, labels, value) for labels, value in samples)
            for metric, samples in domain_samples(name, self, ipv6_measured).items()
        }
        self._lines = (ipv6_measured, rendered)
        return rendered


class ResultStore:
    """Thread-safe latest-results store. Writers replace; readers take snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domains: dict[str, DomainState] = {}

    def set_domains(self, names: Iterable[str], plans: Mapping[str, float] | None = None) -> None:
        """Keep exactly these domains (in this order); new ones start empty. ``plans``: each
        domain's planned renewal, where known (:attr:`DomainState.planned_renewal`)."""
        plans = plans or {}
        with self._lock:
            old = self._domains
            new: dict[str, DomainState] = {}
            for name in names:
                state = old.get(name) or DomainState()
                plan = plans.get(name)
                if state.planned_renewal != plan:
                    state = dataclasses.replace(state, planned_renewal=plan, _lines=None)
                new[name] = state
            self._domains = new

    def record(self, result: ValidationResult) -> ValidationResult | None:
        """Store a result; returns the previous one. Ignored for unknown domains."""
        with self._lock:
            state = self._domains.get(result.domain)
            if state is None:
                return None
            self._domains[result.domain] = state.after(result)
            return state.result

    def record_certificate(self, check: CertificateCheck) -> None:
        """Store a certificate reading. Ignored for unknown domains."""
        with self._lock:
            state = self._domains.get(check.domain)
            if state is not None:
                self._domains[check.domain] = dataclasses.replace(
                    state, certificate=check, _lines=None
                )

    def clear_certificates(self) -> None:
        """Forget every certificate reading (the readings were turned off)."""
        with self._lock:
            self._domains = {
                name: dataclasses.replace(state, certificate=None, _lines=None)
                for name, state in self._domains.items()
            }

    def snapshot(self) -> dict[str, DomainState]:
        with self._lock:
            return dict(self._domains)

    def get(self, name: str) -> DomainState | None:
        with self._lock:
            return self._domains.get(name)

    def complete(self) -> bool:
        """Every configured domain has at least one result."""
        with self._lock:
            return all(state.result is not None for state in self._domains.values())


@dataclass
class ServiceState:
    """Exporter-level facts the collector renders."""

    ipv6_capable: bool = True
    interval: float = 300.0
    perspective: str = ""
    tasks: int = 0
    shard: int = 0
    shards: int = 1
    reload_successful: bool = True
    reload_success_timestamp: float = 0.0
    renewal_window: float = 7 * 86400.0
    #: Whether the resolver validates DNSSEC; ``None`` until checked or when it did not answer.
    resolver_validating: bool | None = None
    #: The discovery sources' statuses (read at scrape time).
    discovery: StatusBook = field(default_factory=StatusBook)
    #: The sample lines of acme_http01_domain_source_info, rebuilt when the names change.
    source_lines: str = ""


#: Per-domain families, in exposition order: (metric, type, help, label names).
DOMAIN_FAMILIES: tuple[tuple[Metric, str, str, tuple[str, ...]], ...] = (
    (
        Metric.VALIDATION_SUCCESS,
        "gauge",
        "1 if Let's Encrypt would succeed (canary mode) or reach the web server "
        "(reachability mode)." + _CACHED,
        ("domain",),
    ),
    (
        Metric.VALIDATION_PROBLEM,
        "gauge",
        "1 for the last validation's problem (ACME type and reason); "
        'type="none",reason="none" on success.' + _CACHED,
        ("domain", "type", "reason"),
    ),
    (
        Metric.AAAA_MISMATCH,
        "gauge",
        "1 if the first AAAA and the first A address answer the first request differently."
        + _CACHED,
        ("domain",),
    ),
    (
        Metric.IPV4_FALLBACK,
        "gauge",
        "1 if the last validation needed Let's Encrypt's IPv6-to-IPv4 fallback." + _CACHED,
        ("domain",),
    ),
    (
        Metric.IPV4_FALLBACKS,
        "counter",
        "Validations that used the IPv6-to-IPv4 fallback.",
        ("domain",),
    ),
    (
        Metric.REDIRECT_HOP_FAILURE,
        "gauge",
        "1 if the last validation failed on a redirect hop (not the initial request)." + _CACHED,
        ("domain",),
    ),
    (
        Metric.REDIRECT_HOP_FAILURES,
        "counter",
        "Validations that failed on a redirect hop, by reason.",
        ("domain", "reason"),
    ),
    (
        Metric.REDIRECTS,
        "gauge",
        "Redirects followed by the last validation." + _CACHED,
        ("domain",),
    ),
    (
        Metric.DNS_ADDRESSES,
        "gauge",
        "Valid (non-reserved) addresses per family at the last validation." + _CACHED,
        ("domain", "family"),
    ),
    (
        Metric.FAMILY_RESPONSE,
        "gauge",
        "1 if the first request pinned to that family's first address got an HTTP response."
        + _CACHED,
        ("domain", "family"),
    ),
    (
        Metric.OTHER_POLICY_SUCCESS,
        "gauge",
        "When a redirect hop's dial failed: 1 if the other fallback policy (boulder or "
        "per-hop) would succeed." + _CACHED,
        ("domain", "policy"),
    ),
    (
        Metric.CAA_PERMITTED,
        "gauge",
        "1 if the domain's CAA records permit Let's Encrypt to issue by HTTP-01 for the "
        "configured account; 0 if they forbid it or their lookup failed (absent when the CAA "
        "check is off)." + _CACHED,
        ("domain",),
    ),
    (
        Metric.DNS_FAMILY_ERROR,
        "gauge",
        "1 for a lookup of the domain's A or AAAA records that failed while the other "
        "family's succeeded: Let's Encrypt goes on with the family it has and hides this "
        "error (reason as in acme_http01_validation_problem)." + _CACHED,
        ("domain", "family", "reason"),
    ),
    (
        Metric.CERT_NOT_BEFORE,
        "gauge",
        "notBefore (Unix time) of the leaf certificate served on 443 (absent without one). "
        "Read on its own, slower schedule.",
        ("domain",),
    ),
    (
        Metric.CERT_NOT_AFTER,
        "gauge",
        "notAfter (Unix time) of the leaf certificate served on 443 (absent without one).",
        ("domain",),
    ),
    (
        Metric.CERT_RENEWAL_DUE,
        "gauge",
        "When the certificate's renewal is due (Unix time): for a name of a cert-manager "
        "Certificate, its status.renewalTime; otherwise when the configured fraction of the "
        "served certificate's lifetime (a third by default) is left.",
        ("domain",),
    ),
    (
        Metric.CERT_CHAIN_VALID,
        "gauge",
        "1 if the certificate's chain verifies for the domain (trust store, hostname "
        "included); 0 if not. Let's Encrypt does not require it; browsers do.",
        ("domain",),
    ),
    (
        Metric.VALIDATION_DURATION,
        "gauge",
        "Duration of the last validation." + _CACHED,
        ("domain",),
    ),
    (
        Metric.LAST_VALIDATION,
        "gauge",
        "Unix time the last validation finished.",
        ("domain",),
    ),
    (
        Metric.VALIDATIONS,
        "counter",
        "Finished validations by result.",
        ("domain", "result"),
    ),
)


def _sample_name(metric: Metric, kind: str) -> str:
    return f"{metric}_total" if kind == "counter" else str(metric)


def _header(metric: Metric, kind: str, doc: str) -> str:
    name = _sample_name(metric, kind)
    escaped = doc.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} {kind}\n"


def _openmetrics_header(metric: Metric, doc: str, kind: str) -> str:
    """OpenMetrics: the family is named without ``_total`` (its samples keep it), and
    the help text escapes double quotes too."""
    escaped = _openmetrics_escape(doc)
    return f"# HELP {metric} {escaped}\n# TYPE {metric} {kind}\n"


def _openmetrics_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_HEADERS = {metric: _header(metric, kind, doc) for metric, kind, doc, _ in DOMAIN_FAMILIES}
_OPENMETRICS_HEADERS = {
    metric: _openmetrics_header(metric, doc, kind) for metric, kind, doc, _ in DOMAIN_FAMILIES
}
_NAMES = {metric: _sample_name(metric, kind) for metric, kind, _, _ in DOMAIN_FAMILIES}


def _line(metric: Metric, labels: Sequence[tuple[str, str]], value: float) -> str:
    """One sample. Label values here are domain names and enum values: nothing to escape."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{_NAMES[metric]}{{{inner}}} {floatToGoString(value)}\n"


def domain_samples(
    name: str, state: DomainState, ipv6_measured: bool
) -> dict[Metric, list[tuple[Sequence[tuple[str, str]], float]]]:
    """Every sample of one domain, by family. Without IPv6 connectivity here, a
    dual-stack domain's verdict cannot be measured: its success, problem, fallback,
    mismatch, hop and IPv6 response series are left out rather than reported as failures.
    """
    d = (("domain", name),)
    out: dict[Metric, list[tuple[Sequence[tuple[str, str]], float]]] = {
        m: [] for m, *_ in DOMAIN_FAMILIES
    }
    out[Metric.IPV4_FALLBACKS].append((d, state.fallbacks))
    for result_label, count in state.validations.items():
        out[Metric.VALIDATIONS].append(((*d, ("result", result_label)), count))
    for reason, count in sorted(state.hop_failures.items()):
        out[Metric.REDIRECT_HOP_FAILURES].append(((*d, ("reason", reason)), count))
    check = state.certificate
    if check is not None and check.certificate is not None:
        cert = check.certificate
        out[Metric.CERT_NOT_BEFORE].append((d, cert.not_before))
        out[Metric.CERT_NOT_AFTER].append((d, cert.not_after))
        out[Metric.CERT_RENEWAL_DUE].append((d, state.planned_renewal or cert.renewal_due))
        out[Metric.CERT_CHAIN_VALID].append((d, 1 if cert.chain_valid else 0))
    elif state.planned_renewal is not None:
        out[Metric.CERT_RENEWAL_DUE].append((d, state.planned_renewal))
    result = state.result
    if result is None:
        return out
    out[Metric.VALIDATION_DURATION].append((d, result.duration_seconds))
    out[Metric.LAST_VALIDATION].append((d, result.finished_at))
    if result.caa is not None:
        out[Metric.CAA_PERMITTED].append((d, 1 if result.caa.permitted else 0))
    for error in result.dns_family_errors:
        if error.hop == 0:
            labels = (*d, ("family", str(error.family)), ("reason", str(error.reason)))
            out[Metric.DNS_FAMILY_ERROR].append((labels, 1))
    for family in (Family.IPV4, Family.IPV6):
        out[Metric.DNS_ADDRESSES].append(
            ((*d, ("family", str(family))), result.dns_addresses.get(family, 0))
        )
    for probe in result.families:
        if probe.family is Family.IPV6 and not ipv6_measured:
            continue
        out[Metric.FAMILY_RESPONSE].append(
            ((*d, ("family", str(probe.family))), 1 if probe.responded else 0)
        )
    if not ipv6_measured and result.dns_addresses.get(Family.IPV6, 0) > 0:
        return out  # not measured from here
    problem = result.problem
    out[Metric.VALIDATION_SUCCESS].append((d, 1 if result.success else 0))
    out[Metric.VALIDATION_PROBLEM].append(
        (
            (
                *d,
                ("type", "none" if problem is None else str(problem.type)),
                ("reason", "none" if problem is None else str(problem.reason)),
            ),
            1,
        )
    )
    out[Metric.AAAA_MISMATCH].append((d, 1 if result.aaaa_mismatch else 0))
    out[Metric.IPV4_FALLBACK].append((d, 1 if result.ipv4_fallback else 0))
    hop_failure = result.failed_on_redirect_hop
    out[Metric.REDIRECT_HOP_FAILURE].append((d, 1 if hop_failure else 0))
    out[Metric.REDIRECTS].append((d, result.redirects))
    if result.other_policy is not None:
        out[Metric.OTHER_POLICY_SUCCESS].append(
            ((*d, ("policy", str(result.other_policy))), 1 if result.other_policy_success else 0)
        )
    return out


def render_domains(
    snapshot: dict[str, DomainState], *, ipv6_measured: bool = True, openmetrics: bool = False
) -> str:
    """The per-domain families as exposition text (format 0.0.4), or with ``openmetrics``
    as OpenMetrics families (without the closing ``# EOF``: the caller ends the exposition).

    Each domain's lines are rendered once per result and cached on its (immutable)
    state, so a scrape only joins strings: a result changes only when its validation
    finishes. The sample lines are the same in both formats (counter samples end in
    ``_total`` in both, label values need no escaping, floats are Go's); only the family
    headers differ, and both sets are rendered once at import.
    """
    per_domain = [state.lines(name, ipv6_measured) for name, state in snapshot.items()]
    headers = _OPENMETRICS_HEADERS if openmetrics else _HEADERS
    parts: list[str] = []
    for metric, *_ in DOMAIN_FAMILIES:
        parts.append(headers[metric])
        parts.extend(lines[metric] for lines in per_domain)
    return "".join(parts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _exposition(collector: Collector, openmetrics: bool) -> bytes:
    """``collector``'s families as prometheus_client renders them: the text format 0.0.4, or
    OpenMetrics without the closing ``# EOF`` (the exposition ends with one, once)."""
    if openmetrics:
        return generate_openmetrics(collector).removesuffix(_EOF)
    return generate_latest(collector)


class ExporterCollector:
    """The exporter-level gauges, a prometheus_client collector: the service state's facts
    as they are when it is collected, and ``domains``. Made for each scrape: ``domains`` is
    the size of the snapshot that scrape renders the domain families from, so
    ``acme_http01_domains`` counts exactly the domains whose series the scrape holds."""

    def __init__(self, state: ServiceState, domains: int) -> None:
        self.state = state
        self.domains = domains

    def collect(self) -> Iterator[metrics_core.Metric]:
        state = self.state
        gauges: tuple[tuple[Metric, str, float], ...] = (
            (Metric.DOMAINS, "Configured domains.", self.domains),
            (
                Metric.INTERVAL,
                "Configured interval between two validations of a domain.",
                state.interval,
            ),
            (
                Metric.TASKS,
                "asyncio tasks in the exporter (validations, connections, jobs).",
                state.tasks,
            ),
            (
                Metric.IPV6_CAPABLE,
                "1 if this exporter's host can route IPv6; without it IPv6 results are not "
                "measured.",
                1 if state.ipv6_capable else 0,
            ),
            (
                Metric.RESOLVER_VALIDATING,
                "1 if the configured resolver validates DNSSEC (the AD bit on the signed root), "
                "as Let's Encrypt's does; 0 if not or if it did not answer the check: predictions "
                "are then only as good as that resolver's view.",
                1 if state.resolver_validating else 0,
            ),
            (
                Metric.RENEWAL_WINDOW,
                "Configured window: a failing domain whose certificate renewal is due within it "
                "(or overdue) is urgent.",
                state.renewal_window,
            ),
            (
                Metric.RELOAD_SUCCESSFUL,
                "1 if the last configuration reload succeeded.",
                1 if state.reload_successful else 0,
            ),
            (
                Metric.RELOAD_TIMESTAMP,
                "Unix time of the last successful configuration reload.",
                state.reload_success_timestamp,
            ),
        )
        for metric, doc, value in gauges:
            yield GaugeMetricFamily(str(metric), doc, value=value)
        build = GaugeMetricFamily(
            str(Metric.BUILD_INFO),
            "Build information; always 1.",
            labels=("python_version", "version"),
        )
        build.add_metric((platform.python_version(), __version__), 1)
        yield build
        info = GaugeMetricFamily(
            str(Metric.INFO),
            "This replica: its vantage point (perspective) and its shard of the domain list.",
            labels=("perspective", "shard", "shards"),
        )
        info.add_metric((state.perspective, str(state.shard), str(state.shards)), 1)
        yield info


def source_line(domain: str, origin: Origin) -> str:
    """One ``acme_http01_domain_source_info`` sample (file paths may need escaping)."""
    return (
        f'{Metric.DOMAIN_SOURCE_INFO}{{domain="{domain}",source="{_escape(origin.source)}",'
        f'kind="{_escape(origin.kind)}",namespace="{_escape(origin.namespace)}",'
        f'name="{_escape(origin.name)}"}} 1\n'
    )


_SOURCE_INFO_HELP = (
    "Where a validated domain was found: one series per source object (static list, "
    "file, or Kubernetes kind/namespace/name); always 1. Join on domain."
)
#: acme_http01_domain_source_info is per domain: its lines are made when the names change
#: (:attr:`ServiceState.source_lines`), and only its family header here.
_SOURCE_INFO_HEADERS = (
    _header(Metric.DOMAIN_SOURCE_INFO, "gauge", _SOURCE_INFO_HELP),
    _openmetrics_header(Metric.DOMAIN_SOURCE_INFO, _SOURCE_INFO_HELP, "gauge"),
)


class DiscoveryCollector:
    """Each discovery source's state, a prometheus_client collector. The statuses change on
    the event loop that owns the sources: they are read when this is made (there), and
    collecting gives what they were then."""

    def __init__(self, statuses: Iterable[Status]) -> None:
        self._families = _discovery_families(list(statuses))

    def collect(self) -> list[metrics_core.Metric]:
        return self._families


def _discovery_families(statuses: list[Status]) -> list[metrics_core.Metric]:
    where = ("source", "kind")

    def gauge(metric: Metric, doc: str, labels: tuple[str, ...] = where) -> GaugeMetricFamily:
        return GaugeMetricFamily(str(metric), doc, labels=labels)

    up = gauge(
        Metric.DISCOVERY_UP,
        "1 if the source's last list, watch or read worked; 0 while it fails (its last "
        "known names are kept).",
    )
    objects = gauge(Metric.DISCOVERY_OBJECTS, "Objects (files) the source currently knows.")
    names = gauge(Metric.DISCOVERY_NAMES, "Names the source puts up for validation (all shards).")
    skipped = gauge(
        Metric.DISCOVERY_SKIPPED,
        "Names the source found that Let's Encrypt would not validate over HTTP-01, by "
        "reason (wildcard, DNS-01 solver, not an ACME issuer...).",
        (*where, "reason"),
    )
    last_sync = gauge(
        Metric.DISCOVERY_LAST_SYNC,
        "Unix time the source was last known to be current (a list, a read, a watch "
        "event or bookmark); 0: never.",
    )
    errors = CounterMetricFamily(
        str(Metric.DISCOVERY_ERRORS),
        "Failed lists, watches and reads of the source, by reason.",
        labels=(*where, "reason"),
    )
    for status in statuses:
        key = (str(status.source), status.kind)
        up.add_metric(key, 1 if status.up else 0)
        objects.add_metric(key, status.objects)
        names.add_metric(key, status.names)
        for reason, count in sorted(status.skipped.items()):
            skipped.add_metric((*key, reason), count)
        last_sync.add_metric(key, status.last_sync)
        if status.source is not SourceName.STATIC:
            for error in sorted(Reason):
                errors.add_metric((*key, str(error)), status.errors.get(error, 0))
    return [up, objects, names, skipped, last_sync, errors]


def render_discovery(state: ServiceState, *, openmetrics: bool = False) -> str:
    """Where names come from: the per-domain join, and each source's state (read now)."""
    families = _exposition(DiscoveryCollector(state.discovery.all()), openmetrics).decode()
    return _SOURCE_INFO_HEADERS[openmetrics] + state.source_lines + families


def runtime_registry() -> CollectorRegistry:
    """``process_*``, ``python_info`` and ``python_gc_*``: prometheus_client's default
    collectors, in a registry of their own (a handful of samples, collected per scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class Exposition:
    """``/metrics``: the domain families from a snapshot, the exporter gauges (counting
    that snapshot's domains), the discovery families, the self-metrics registry (histograms
    and counters without a domain label) and the runtime registry (process and Python
    collectors), in the text format 0.0.4 or in OpenMetrics (one ``# EOF``, at the end)."""

    def __init__(
        self,
        store: ResultStore,
        state: ServiceState,
        registry: CollectorRegistry,
        runtime: CollectorRegistry | None = None,
    ):
        self.store = store
        self.state = state
        self.registry = registry
        self.runtime = runtime_registry() if runtime is None else runtime

    def render(self, openmetrics: bool = False, discovery: str | None = None) -> bytes:
        """The whole exposition. ``discovery``: :func:`render_discovery`'s text, made on the
        event loop that owns the sources (this may run in a thread); None: made here."""
        snapshot = self.store.snapshot()
        ipv6 = self.state.ipv6_capable
        if discovery is None:
            discovery = render_discovery(self.state, openmetrics=openmetrics)
        return b"".join(
            (
                render_domains(snapshot, ipv6_measured=ipv6, openmetrics=openmetrics).encode(),
                _exposition(ExporterCollector(self.state, len(snapshot)), openmetrics),
                discovery.encode(),
                _exposition(self.registry, openmetrics),
                _exposition(self.runtime, openmetrics),
                _EOF if openmetrics else b"",
            )
        )


class SelfMetrics:
    """Exporter self-metrics, directly instrumented (no domain label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # No *_created series: they double the self-metrics for no dashboard or alert use.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        buckets = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
        self.scheduler_delay = Histogram(
            Metric.SCHEDULER_DELAY,
            "Delay between a validation's scheduled time and its start (includes waiting "
            "for a concurrency slot).",
            buckets=buckets,
            registry=registry,
        )
        self.skipped_runs = Counter(
            Metric.SKIPPED_RUNS,
            "Scheduled runs skipped because the previous one was still running or was missed.",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            Metric.VALIDATION_LATENCY,
            "Validation durations, all domains.",
            buckets=buckets,
            registry=registry,
        )
        self.in_flight = Gauge(Metric.IN_FLIGHT, "Validations running now.", registry=registry)
        self.reloads = Counter(
            Metric.RELOADS, "Configuration reloads by result.", ["result"], registry=registry
        )
        self.probes = Counter(
            Metric.PROBES, "/probe requests by result.", ["result"], registry=registry
        )
        for reason in ("max_instances", "missed"):
            self.skipped_runs.labels(reason)
        for result in ("success", "failure"):
            self.reloads.labels(result)
        for result in ("success", "failure", "refused"):
            self.probes.labels(result)
        self.exporter_errors = Counter(
            Metric.EXPORTER_ERRORS,
            "Validations and certificate readings abandoned because the exporter ran out of "
            "its own resources (descriptors, socket buffers, memory); the domain's last "
            "result is kept.",
            ["reason"],
            registry=registry,
        )
        for reason in ResourceReason:
            self.exporter_errors.labels(reason.value)


# ------------------------------------------------------------------ content negotiation


def _parameters(item: str) -> tuple[str, dict[str, str], float]:
    """One element of an Accept or Accept-Encoding list: its value, parameters and q."""
    value, *params = (part.strip() for part in item.split(";"))
    parsed: dict[str, str] = {}
    for param in params:
        key, _, raw = param.partition("=")
        parsed[key.strip().lower()] = raw.strip().strip('"')
    q = 1.0
    if "q" in parsed:
        try:
            q = min(max(float(parsed.pop("q")), 0.0), 1.0)
        except ValueError:
            q = 0.0  # a malformed q-value accepts nothing rather than everything
    return value.lower(), parsed, q


def _elements(header: str) -> list[tuple[str, dict[str, str], float]]:
    return [_parameters(item) for item in header.split(",") if item.strip()]


#: What /metrics can send, in the server's order of preference on a tie:
#: (media type, version). The text format first: every Prometheus and every tool reads it.
_OFFERS = (
    ("text/plain", "0.0.4"),
    ("application/openmetrics-text", "1.0.0"),
    ("application/openmetrics-text", "0.0.1"),
)


def _quality(offer: tuple[str, str], ranges: list[tuple[str, dict[str, str], float]]) -> float:
    """The q of the most specific range matching ``offer`` (RFC 9110 §12.5.1); 0 if none."""
    media, version = offer
    kind = media.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for value, params, q in ranges:
        if value == media:
            wanted = params.get("version")
            if wanted is not None and wanted != version:
                continue
            specificity = 3 if wanted is not None else 2
        elif value == f"{kind}/*":
            specificity = 1
        elif value == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def negotiate_format(accept: str | None) -> tuple[bool, str]:
    """``(openmetrics, content type)`` for an ``Accept`` header, q-values honoured.

    The highest q wins; a tie goes to the text format 0.0.4, which is also the answer
    when the header is absent or accepts nothing we offer (a scrape should not fail on
    a format: Prometheus' own clients do the same).
    """
    if not accept:
        return False, TEXT_CONTENT_TYPE
    ranges = _elements(accept)
    best, best_q = _OFFERS[0], 0.0
    for offer in _OFFERS:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    if best[0] == "text/plain":
        return False, TEXT_CONTENT_TYPE
    return True, openmetrics_content_type(best[1])


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether to gzip for this ``Accept-Encoding`` (RFC 9110 §12.5.3).

    gzip's q is its own entry's (``x-gzip`` too), else ``*``'s, else 0: gzip is sent when
    it is positive, unless the client lists ``identity`` itself with a higher q. Without
    the header, or with ``gzip;q=0``, the body is sent as it is.
    """
    if not accept_encoding:
        return False
    codings = {value: q for value, _, q in _elements(accept_encoding)}
    star = codings.get("*", 0.0)
    gzip_q = codings.get("gzip", codings.get("x-gzip", star))
    return gzip_q > 0 and gzip_q >= codings.get("identity", 0.0)
