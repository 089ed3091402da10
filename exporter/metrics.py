"""The metrics contract, rendered at scrape time from a snapshot of the latest results.

Rule: nothing on the scrape path does network I/O or touches the validations in
flight. :class:`ResultStore` holds the latest :class:`ValidationResult` and the
counters of each configured domain; :class:`Http01Collector` reads one snapshot
of it per scrape, so a domain removed from the config disappears at once and a
scrape never sees half an update. Metric names live in :class:`Metric`.

Sample exposition (one domain)::

    # HELP acme_http01_validation_success 1 if Let's Encrypt would succeed ...
    # TYPE acme_http01_validation_success gauge
    acme_http01_validation_success{domain="example.com"} 1.0
    acme_http01_validation_problem{domain="example.com",reason="none",type="none"} 1.0
    acme_http01_ipv4_fallbacks_total{domain="example.com"} 0.0
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.records import Family, ValidationResult

__all__ = ["Http01Collector", "Metric", "ResultStore", "SelfMetrics", "ServiceState"]

Sample = tuple[tuple[str, ...], float]

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
    VALIDATION_DURATION = "acme_http01_validation_duration_seconds"
    LAST_VALIDATION = "acme_http01_last_validation_timestamp_seconds"
    VALIDATIONS = "acme_http01_validations"  # counter: _total
    DOMAINS = "acme_http01_domains"
    IPV6_CAPABLE = "acme_http01_exporter_ipv6_capable"
    RELOAD_SUCCESSFUL = "acme_http01_config_last_reload_successful"
    RELOAD_TIMESTAMP = "acme_http01_config_last_reload_success_timestamp_seconds"
    BUILD_INFO = "acme_http01_exporter_build_info"
    # Exporter self-metrics (no domain label).
    SCHEDULER_DELAY = "acme_http01_scheduler_delay_seconds"
    SKIPPED_RUNS = "acme_http01_scheduler_skipped_runs"  # counter: _total
    VALIDATION_LATENCY = "acme_http01_validation_latency_seconds"
    IN_FLIGHT = "acme_http01_validations_in_flight"
    RELOADS = "acme_http01_config_reloads"  # counter: _total
    PROBES = "acme_http01_probes"  # counter: _total


@dataclass
class DomainState:
    """The latest result of one domain and its counters."""

    result: ValidationResult | None = None
    fallbacks: int = 0
    validations: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    hop_failures: dict[str, int] = field(default_factory=dict)


class ResultStore:
    """Thread-safe latest-results store. Writers replace; readers take snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domains: dict[str, DomainState] = {}

    def set_domains(self, names: Iterable[str]) -> None:
        """Keep exactly these domains (in this order); new ones start empty."""
        with self._lock:
            old = self._domains
            self._domains = {name: old.get(name) or DomainState() for name in names}

    def record(self, result: ValidationResult) -> ValidationResult | None:
        """Store a result; returns the previous one. Ignored for unknown domains."""
        with self._lock:
            state = self._domains.get(result.domain)
            if state is None:
                return None
            previous = state.result
            new = DomainState(
                result=result,
                fallbacks=state.fallbacks + (1 if result.ipv4_fallback else 0),
                validations=dict(state.validations),
                hop_failures=dict(state.hop_failures),
            )
            new.validations["success" if result.success else "failure"] += 1
            if not result.success and (result.failed_hop or 0) > 0 and result.problem:
                reason = str(result.problem.reason)
                new.hop_failures[reason] = new.hop_failures.get(reason, 0) + 1
            self._domains[result.domain] = new
            return previous

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
    reload_successful: bool = True
    reload_success_timestamp: float = 0.0


class Http01Collector(Collector):
    """Renders the per-domain contract and the exporter gauges from a snapshot."""

    def __init__(self, store: ResultStore, state: ServiceState) -> None:
        self.store = store
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self.store.snapshot()
        yield from render_domains(snapshot, ipv6_measured=self.state.ipv6_capable)
        yield _gauge(Metric.DOMAINS, "Configured domains.", [], [((), len(snapshot))])
        yield _gauge(
            Metric.IPV6_CAPABLE,
            "1 if this exporter's host can route IPv6; without it IPv6 results are not measured.",
            [],
            [((), 1 if self.state.ipv6_capable else 0)],
        )
        yield _gauge(
            Metric.RELOAD_SUCCESSFUL,
            "1 if the last configuration reload succeeded.",
            [],
            [((), 1 if self.state.reload_successful else 0)],
        )
        yield _gauge(
            Metric.RELOAD_TIMESTAMP,
            "Unix time of the last successful configuration reload.",
            [],
            [((), self.state.reload_success_timestamp)],
        )
        yield _gauge(
            Metric.BUILD_INFO,
            "Build information; always 1.",
            ["version", "python_version"],
            [((__version__, platform.python_version()), 1)],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


_F = TypeVar("_F", GaugeMetricFamily, CounterMetricFamily)


def _family(
    kind: type[_F], name: str, doc: str, labels: list[str], samples: Iterable[Sample]
) -> _F:
    family = kind(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], samples: Iterable[Sample]) -> GaugeMetricFamily:
    return _family(GaugeMetricFamily, name, doc, labels, samples)


def _counter(
    name: str, doc: str, labels: list[str], samples: Iterable[Sample]
) -> CounterMetricFamily:
    return _family(CounterMetricFamily, name, doc, labels, samples)


def render_domains(
    snapshot: dict[str, DomainState], *, ipv6_measured: bool = True
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The per-domain families. Domains without a result yet have only their counters.

    Without IPv6 connectivity here, a dual-stack domain's verdict cannot be measured:
    its success, problem, fallback, mismatch, hop and IPv6 response series are left
    out rather than reported as failures.
    """
    Samples = list[tuple[tuple[str, ...], float]]
    success: Samples = []
    problem: Samples = []
    mismatch: Samples = []
    fallback: Samples = []
    hop_failure: Samples = []
    redirects: Samples = []
    addresses: Samples = []
    family_response: Samples = []
    other: Samples = []
    duration: Samples = []
    last: Samples = []
    fallbacks: Samples = []
    validations: Samples = []
    hop_failures: Samples = []
    for name, state in snapshot.items():
        d = (name,)
        fallbacks.append((d, state.fallbacks))
        validations.extend(((name, k), v) for k, v in state.validations.items())
        hop_failures.extend(((name, k), v) for k, v in sorted(state.hop_failures.items()))
        result = state.result
        if result is None:
            continue
        duration.append((d, result.duration_seconds))
        last.append((d, result.finished_at))
        addresses.extend(
            ((name, str(f)), result.dns_addresses.get(f, 0)) for f in (Family.IPV4, Family.IPV6)
        )
        for probe in result.families:
            if probe.family is Family.IPV6 and not ipv6_measured:
                continue
            family_response.append(((name, str(probe.family)), 1 if probe.responded else 0))
        if not ipv6_measured and result.dns_addresses.get(Family.IPV6, 0) > 0:
            continue  # not measured from here
        success.append((d, 1 if result.success else 0))
        if result.problem is None:
            problem.append(((name, "none", "none"), 1))
        else:
            problem.append(((name, str(result.problem.type), str(result.problem.reason)), 1))
        mismatch.append((d, 1 if result.aaaa_mismatch else 0))
        fallback.append((d, 1 if result.ipv4_fallback else 0))
        hop_failure.append((d, 1 if not result.success and (result.failed_hop or 0) > 0 else 0))
        redirects.append((d, result.redirects))
        if result.other_policy is not None:
            other.append(
                ((name, str(result.other_policy)), 1 if result.other_policy_success else 0)
            )
    yield _gauge(
        Metric.VALIDATION_SUCCESS,
        "1 if Let's Encrypt would succeed (canary mode) or reach the web server "
        "(reachability mode)." + _CACHED,
        ["domain"],
        success,
    )
    yield _gauge(
        Metric.VALIDATION_PROBLEM,
        "1 for the last validation's problem (ACME type and reason); "
        'type="none",reason="none" on success.' + _CACHED,
        ["domain", "type", "reason"],
        problem,
    )
    yield _gauge(
        Metric.AAAA_MISMATCH,
        "1 if the first AAAA and the first A address answer the first request differently."
        + _CACHED,
        ["domain"],
        mismatch,
    )
    yield _gauge(
        Metric.IPV4_FALLBACK,
        "1 if the last validation needed Let's Encrypt's IPv6-to-IPv4 fallback." + _CACHED,
        ["domain"],
        fallback,
    )
    yield _counter(
        Metric.IPV4_FALLBACKS,
        "Validations that used the IPv6-to-IPv4 fallback.",
        ["domain"],
        fallbacks,
    )
    yield _gauge(
        Metric.REDIRECT_HOP_FAILURE,
        "1 if the last validation failed on a redirect hop (not the initial request)." + _CACHED,
        ["domain"],
        hop_failure,
    )
    yield _counter(
        Metric.REDIRECT_HOP_FAILURES,
        "Validations that failed on a redirect hop, by reason.",
        ["domain", "reason"],
        hop_failures,
    )
    yield _gauge(
        Metric.REDIRECTS,
        "Redirects followed by the last validation." + _CACHED,
        ["domain"],
        redirects,
    )
    yield _gauge(
        Metric.DNS_ADDRESSES,
        "Valid (non-reserved) addresses per family at the last validation." + _CACHED,
        ["domain", "family"],
        addresses,
    )
    yield _gauge(
        Metric.FAMILY_RESPONSE,
        "1 if the first request pinned to that family's first address got an HTTP response."
        + _CACHED,
        ["domain", "family"],
        family_response,
    )
    yield _gauge(
        Metric.OTHER_POLICY_SUCCESS,
        "When a redirect hop's dial failed: 1 if the other fallback policy (boulder or "
        "per-hop) would succeed." + _CACHED,
        ["domain", "policy"],
        other,
    )
    yield _gauge(
        Metric.VALIDATION_DURATION,
        "Duration of the last validation." + _CACHED,
        ["domain"],
        duration,
    )
    yield _gauge(
        Metric.LAST_VALIDATION,
        "Unix time the last validation finished.",
        ["domain"],
        last,
    )
    yield _counter(
        Metric.VALIDATIONS,
        "Finished validations by result.",
        ["domain", "result"],
        validations,
    )


class SelfMetrics:
    """Exporter self-metrics, directly instrumented (no domain label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
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
