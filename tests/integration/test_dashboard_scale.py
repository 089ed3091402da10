"""The dashboard at 10,000 domains: every query bounded in the series it returns and reads.

Three hours of every per-domain series of 10,000 domains (a realistic mix: about 10 %
failing for ten reasons, some only lately; AAAA mismatches, IPv4 fallbacks, CAA refusals, DNS
family errors, stale results; certificates far from, near and past their renewal, and domains
without one), plus the exporter-level series of four shards, are written as OpenMetrics and
backfilled with ``promtool tsdb create-blocks-from openmetrics``. Debian's ``prometheus``
serves that TSDB on 127.0.0.1, and every query of grafana/dashboard.json (panel targets and
variables) runs against it as Grafana sends it: ``$domain`` one domain, the other variables
All (``.*``), range panels over the default 6 h. Each query must return a bounded number of
series (the fleet is never drawn one series per domain; per-domain panels show only
``$domain``) and read a bounded number of samples (Prometheus' own count,
``totalQueryableSamples`` of ``stats=all``, against what the series the panel may touch
hold: see ``sample_budget``). That count, unlike the query's time, does not depend on how
busy the machine is; the wall time (over the HTTP API, best of 3) is printed and bounded
only by a backstop far above it. The counts the fleet panels show and the order of the two
tables are checked against the generator's own truth. The figures are printed:

    .venv/bin/python -m pytest -q tests/integration/test_dashboard_scale.py
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from exporter.lab.ports import free_port
from tests.conftest import ROOT
from tests.integration.procs import tool, wait_for

DASHBOARD = ROOT / "grafana" / "dashboard.json"
DOMAINS = 10_000
SHARDS = 4
JOB = "acme-http01-exporter"
PERSPECTIVE = "eu-west"
HOURS = 3
SCRAPE = 60  # seconds between samples; also the data source's scrape interval in Grafana
INTERVAL = 300  # the exporter's validation interval
RANGE = 6 * 3600  # the dashboard's default time range
SCREEN_PX = 1800  # a 24-column row on a 1920 px screen: Grafana's maxDataPoints ~ width
BACKSTOP = 10.0  # seconds, per query: the slowest takes well under one on an idle machine
FLEET_MAX = 20  # series of a fleet query (by reason, by shard): never one per domain
PER_DOMAIN = 4  # series of $domain a per-domain panel may return (or a selector of it read)
DAY = 86400

# (type, reason, flags): the failing kinds, each about 1 % of the fleet. Flags: hop (fails on a
# redirect hop), fallback and mismatch (a dead AAAA), caa (forbids), nocert (no HTTPS on 443).
FAILURES: tuple[tuple[str, str, frozenset[str]], ...] = tuple(
    (t, r, frozenset(flags.split()))
    for t, r, flags in (
        ("connection", "connect_timeout", "hop fallback mismatch"),
        ("unauthorized", "bad_status", "mismatch"),
        ("unauthorized", "key_authorization_mismatch", ""),
        ("dns", "dns_nxdomain", "nocert noaddr"),
        ("dns", "dns_servfail", "nocert noaddr"),
        ("caa", "caa_forbidden_issuer", "caa"),
        ("connection", "connection_refused", ""),
        ("tls", "tls_error", "hop"),
        ("connection", "too_many_redirects", "hop"),
        ("dns", "dns_dnssec", "nocert noaddr"),
    )
)


@dataclass
class Domain:
    name: str
    instance: str
    failure: tuple[str, str, frozenset[str]] | None = None
    since: int | None = None  # failing only since then (healthy before)
    mismatch: bool = False
    fallback: bool = False
    family_error: bool = False
    ipv6: int = 1
    duration: float = 0.5
    offset: int = 0  # validations finish at offset + k * INTERVAL
    stale_after: int | None = None  # no validation finished after this
    cert: tuple[float, float, float, int] | None = None  # notBefore, notAfter, due, chain

    @property
    def flags(self) -> frozenset[str]:
        return self.failure[2] if self.failure else frozenset()

    def last_validation(self, t: int) -> int:
        if self.stale_after is not None:
            t = min(t, self.stale_after)
        return t - (t - self.offset) % INTERVAL


@dataclass
class Fleet:
    end: int
    domains: list[Domain] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.end - HOURS * 3600 + SCRAPE

    @property
    def times(self) -> list[int]:
        return list(range(self.start, self.end + 1, SCRAPE))


def make_fleet(end: int) -> Fleet:
    rng = random.Random(12)
    fleet = Fleet(end)
    for i in range(DOMAINS):
        d = Domain(f"site{i:05d}.example.com", f"exporter-{i % SHARDS}:9469")
        d.offset = rng.randrange(INTERVAL)
        d.ipv6 = 0 if rng.random() < 0.3 else rng.choice((1, 2))
        d.duration = round(rng.uniform(0.2, 1.5), 3)
        draw = rng.random()
        if draw < 0.10:
            d.failure = FAILURES[int(draw * 100)]
            if rng.random() < 0.25:  # failing lately only: the timelines show the change
                d.since = end - rng.randrange(20, 150) * 60
            if "fallback" in d.flags:
                d.duration = round(rng.uniform(20, 21), 3)  # two 10 s dial timeouts
            d.mismatch = "mismatch" in d.flags
            d.fallback = "fallback" in d.flags
        elif draw < 0.13:  # a dead AAAA: passes only through the IPv4 fallback
            d.mismatch = d.fallback = True
            d.duration = round(rng.uniform(10, 11), 3)
        elif draw < 0.15:  # the AAAA lookup fails, the A works: Let's Encrypt hides it
            d.family_error, d.ipv6 = True, 0
        elif draw < 0.16:  # the AAAA answers differently but well enough
            d.mismatch = True
        if d.mismatch:
            d.ipv6 = d.ipv6 or 1
        if rng.random() < 0.005:
            d.stale_after = end - 2 * 3600
        if "nocert" not in d.flags and rng.random() < 0.85:
            lifetime = (90 if rng.random() < 0.75 else 45) * DAY
            not_before = float(end - rng.uniform(0, 1.05 * lifetime))
            due = not_before + lifetime * 2 / 3
            chain = 0 if rng.random() < 0.01 else 1
            d.cert = (not_before, not_before + lifetime, due, chain)
        fleet.domains.append(d)
    return fleet


# ------------------------------------------------------------------ OpenMetrics


class Writer:
    """OpenMetrics text, one family at a time, each series' samples in time order."""

    def __init__(self, out: TextIO, times: list[int]):
        self.out = out
        self.times = times
        self.stamps = [str(t) for t in times]
        self.samples = 0

    def family(self, name: str, kind: str) -> None:
        self.out.write(f"# TYPE {name} {kind}\n")

    def constant(
        self, series: str, value: float | str, start: int = 0, stop: int | None = None
    ) -> None:
        """``value`` at every sample time from index ``start`` to ``stop``."""
        stamps = self.stamps[start:stop]
        self.samples += len(stamps)
        if stamps:
            head = f"{series} {value} "
            self.out.write(head + f"\n{head}".join(stamps) + "\n")

    def varying(self, series: str, values: list[float] | list[int], start: int = 0) -> None:
        """``values[i]`` at sample time ``i``, from index ``start`` on."""
        pairs = zip(values[start:], self.stamps[start:], strict=True)
        self.samples += len(self.stamps) - start
        self.out.write("".join(f"{series} {v} {stamp}\n" for v, stamp in pairs))


def labels(d: Domain, **extra: str) -> str:
    inner = "".join(f',{k}="{v}"' for k, v in extra.items())
    return f'{{domain="{d.name}",instance="{d.instance}",job="{JOB}"{inner}}}'


def write_openmetrics(path: Path, fleet: Fleet, times: list[int]) -> int:
    """Every series of ``fleet`` at ``times`` (a part of the window); returns the samples."""
    with path.open("w") as out:
        w = Writer(out, times)

        def split(d: Domain) -> int:
            """Index of the first sample at which ``d`` fails (0: failing all along)."""
            if d.since is None:
                return 0
            return next((i for i, t in enumerate(times) if t >= d.since), len(times))

        def flag(name: str, now: Callable[[Domain], bool], before: bool) -> None:
            """0 or 1: ``now``, and ``before`` while a domain failing lately was healthy."""
            w.family(name, "gauge")
            for d in fleet.domains:
                w.constant(name + labels(d), int(before), 0, split(d))
                w.constant(name + labels(d), int(now(d)), split(d))

        flag("acme_http01_validation_success", lambda d: d.failure is None, True)
        w.family("acme_http01_validation_problem", "gauge")
        for d in fleet.domains:
            none = "acme_http01_validation_problem" + labels(d, type="none", reason="none")
            if d.failure is None:
                w.constant(none, 1)
                continue
            w.constant(none, 1, 0, split(d))
            kind, reason, _ = d.failure
            w.constant(
                "acme_http01_validation_problem" + labels(d, type=kind, reason=reason), 1, split(d)
            )
        flag("acme_http01_aaaa_mismatch", lambda d: d.mismatch, False)
        flag("acme_http01_ipv4_fallback", lambda d: d.fallback, False)
        flag("acme_http01_redirect_hop_failure", lambda d: "hop" in d.flags, False)
        flag("acme_http01_caa_permitted", lambda d: "caa" not in d.flags, True)
        w.family("acme_http01_dns_family_error", "gauge")
        for d in fleet.domains:
            if d.family_error:
                w.constant(
                    "acme_http01_dns_family_error"
                    + labels(d, family="ipv6", reason="dns_servfail"),
                    1,
                )
        w.family("acme_http01_redirect_hop_failures", "counter")
        for d in fleet.domains:
            if d.failure is not None and "hop" in d.flags:  # from the first hop failure on
                first = d.since or fleet.start - 3600
                w.varying(
                    "acme_http01_redirect_hop_failures_total" + labels(d, reason=d.failure[1]),
                    [(t - first) // INTERVAL + 1 for t in times],
                    split(d),
                )
        w.family("acme_http01_last_validation_timestamp_seconds", "gauge")
        for d in fleet.domains:
            w.varying(
                "acme_http01_last_validation_timestamp_seconds" + labels(d),
                [d.last_validation(t) for t in times],
            )
        w.family("acme_http01_validation_duration_seconds", "gauge")
        for d in fleet.domains:
            w.constant("acme_http01_validation_duration_seconds" + labels(d), d.duration)
        w.family("acme_http01_dns_addresses", "gauge")
        for d in fleet.domains:
            noaddr = "noaddr" in d.flags
            w.constant("acme_http01_dns_addresses" + labels(d, family="ipv4"), 0 if noaddr else 1)
            w.constant(
                "acme_http01_dns_addresses" + labels(d, family="ipv6"), 0 if noaddr else d.ipv6
            )
        for i, name in enumerate(
            (
                "acme_http01_certificate_not_before_timestamp_seconds",
                "acme_http01_certificate_not_after_timestamp_seconds",
                "acme_http01_certificate_renewal_due_timestamp_seconds",
                "acme_http01_certificate_chain_valid",
            )
        ):
            w.family(name, "gauge")
            for d in fleet.domains:
                if d.cert is not None:
                    w.constant(name + labels(d), d.cert[i])
        w.family("acme_http01_domain_source_info", "gauge")
        for index, d in enumerate(fleet.domains):  # every domain from an Ingress of a team
            origin = {"source": "kubernetes", "kind": "Ingress"}
            origin |= {"namespace": team(index), "name": f"ing-{index}"}
            w.constant("acme_http01_domain_source_info" + labels(d, **origin), 1)
        write_exporter_series(w, fleet.start)
        out.write("# EOF\n")
    return w.samples


#: The namespaces (teams) the fleet's Ingresses are spread over.
TEAMS = 12


def team(index: int) -> str:
    return f"team-{index % TEAMS}"


def write_exporter_series(w: Writer, start: int) -> None:
    """Every exporter-level family of the README's table, for each of the SHARDS."""
    per_shard = DOMAINS // SHARDS
    gauges: dict[str, float] = {
        "acme_http01_domains": per_shard,
        "acme_http01_validation_interval_seconds": INTERVAL,
        "acme_http01_renewal_window_seconds": 7 * DAY,
        "acme_http01_resolver_dnssec_validating": 1,
        "acme_http01_exporter_ipv6_capable": 1,
        "acme_http01_config_last_reload_successful": 1,
        "acme_http01_config_last_reload_success_timestamp_seconds": start - DAY,
        "acme_http01_validations_in_flight": 12,
        "acme_http01_exporter_tasks": 60,
    }
    shards = [f'instance="exporter-{k}:9469",job="{JOB}"' for k in range(SHARDS)]
    for name, value in gauges.items():
        w.family(name, "gauge")
        for target in shards:
            w.constant(f"{name}{{{target}}}", value)
    sources = {("static", ""): 0, ("kubernetes", "Ingress"): DOMAINS}
    for name, of in (("acme_http01_discovery_up", None), ("acme_http01_discovery_names", 1)):
        w.family(name, "gauge")
        for target in shards:
            for (source, kind), names in sources.items():
                labels_ = f'source="{source}",kind="{kind}",{target}'
                w.constant(f"{name}{{{labels_}}}", 1 if of is None else names)
    w.family("acme_http01_discovery_errors", "counter")
    for target in shards:  # a watch expired and was listed again now and then
        w.varying(
            f'acme_http01_discovery_errors_total{{source="kubernetes",kind="Ingress",'
            f'reason="gone",{target}}}',
            [(t - start) // 3600 for t in w.times],
        )
    w.family("acme_http01_exporter_info", "gauge")
    for k, target in enumerate(shards):
        info = f'perspective="{PERSPECTIVE}",shard="{k}",shards="{SHARDS}"'
        w.constant(f"acme_http01_exporter_info{{{info},{target}}}", 1)
    w.family("acme_http01_exporter_build_info", "gauge")
    for target in shards:
        w.constant(
            f'acme_http01_exporter_build_info{{python_version="3.11.2",version="0.1.0",{target}}}',
            1,
        )
    counters = {
        "acme_http01_scheduler_skipped_runs": ("reason", {"max_instances": 0.01, "missed": 0.0}),
        "acme_http01_config_reloads": ("result", {"success": 0.0, "failure": 0.0}),
        "acme_http01_probes": ("result", {"success": 0.0, "failure": 0.0, "refused": 0.0}),
    }
    for name, (label, rates) in counters.items():
        w.family(name, "counter")
        for target in shards:
            for label_value, rate in rates.items():
                w.varying(
                    f'{name}_total{{{label}="{label_value}",{target}}}',
                    [round((t - start) * rate) for t in w.times],
                )
    per_scrape = per_shard * SCRAPE / INTERVAL  # validations per scrape interval and shard
    counts = [(t - start) // SCRAPE for t in w.times]
    buckets = ("0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "20", "30", "60", "120")
    shapes = {
        "acme_http01_validation_latency_seconds": (
            0,
            0,
            0.01,
            0.2,
            0.5,
            0.8,
            0.87,
            0.87,
            0.88,
            0.98,
            1,
            1,
            1,
        ),
        "acme_http01_scheduler_delay_seconds": (0.6, 0.9, 0.95, 0.98, 0.99, 1, 1, 1, 1, 1, 1, 1, 1),
    }
    for name, shape in shapes.items():
        w.family(name, "histogram")
        for target in shards:
            for le, share in (*zip(buckets, shape, strict=True), ("+Inf", 1)):
                w.varying(
                    f'{name}_bucket{{le="{le}",{target}}}',
                    [round(scrapes * per_scrape * share) for scrapes in counts],
                )
            w.varying(
                f"{name}_sum{{{target}}}",
                [round(scrapes * per_scrape * 1.7, 3) for scrapes in counts],
            )
            w.varying(
                f"{name}_count{{{target}}}", [round(scrapes * per_scrape) for scrapes in counts]
            )


def exporter_series() -> Counter[str]:
    """The number of exporter-level series (those without a ``domain``) of each name."""
    out = io.StringIO()
    write_exporter_series(Writer(out, [0]), 0)  # one sample per series
    lines = out.getvalue().splitlines()
    return Counter(line.partition("{")[0] for line in lines if not line.startswith("#"))


#: Series of each exporter-level name: a few per shard, never one per domain.
EXPORTER_SERIES = exporter_series()


# ------------------------------------------------------------------ Prometheus


@dataclass
class Served:
    base: str
    fleet: Fleet
    samples: int
    setup_seconds: dict[str, float]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    promtool, prometheus = tool("promtool"), tool("prometheus")
    tmp = tmp_path_factory.mktemp("dashboard-scale")
    setup: dict[str, float] = {}
    started = time.perf_counter()
    fleet = make_fleet(int(time.time()) // SCRAPE * SCRAPE)
    # Two halves of the window, two blocks: promtool backfills the first half while the
    # second is written (promtool is single-threaded; the machine has two cores).
    times = fleet.times
    parts = [times[: len(times) // 2], times[len(times) // 2 :]]
    # Blocks of up to 162 h: promtool parses its input once per block it writes.
    backfill_command = [
        promtool,
        *("tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=200h"),
    ]
    backfills: list[subprocess.Popen[str]] = []
    texts = [tmp / f"fleet-{k}.om" for k in range(len(parts))]  # 1.7 GB each
    samples = 0
    try:
        for text, part in zip(texts, parts, strict=True):
            samples += write_openmetrics(text, fleet, part)
            backfills.append(
                subprocess.Popen(
                    [*backfill_command, str(text), str(tmp / "data")],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        for backfill in backfills:
            output, _ = backfill.communicate(timeout=300)
            assert backfill.returncode == 0, output[-2000:]
    finally:
        for backfill in backfills:
            if backfill.poll() is None:
                backfill.kill()
                backfill.communicate()
        for text in texts:
            text.unlink(missing_ok=True)
    setup["write and backfill"] = time.perf_counter() - started
    (tmp / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(ready, 60, "prometheus did not become ready")
        setup["prometheus ready"] = time.perf_counter() - started
        yield Served(base, fleet, samples, setup)
    finally:
        server.terminate()
        server.wait(30)


def call(base: str, path: str, params: dict[str, str], post: bool = True) -> Any:
    body = urllib.parse.urlencode(params)
    if post:  # as Grafana does (its default HTTP method is POST)
        request = urllib.request.Request(base + path, data=body.encode())
    else:
        request = urllib.request.Request(f"{base}{path}?{body}")
    with urllib.request.urlopen(request, timeout=60) as response:
        document = json.load(response)
    assert document["status"] == "success", document
    return document["data"]


def best_of_3(base: str, path: str, params: dict[str, str], post: bool = True) -> tuple[Any, float]:
    best = math.inf
    data = None
    for _ in range(3):
        started = time.perf_counter()
        data = call(base, path, params, post)
        best = min(best, time.perf_counter() - started)
    return data, best


# ------------------------------------------------------------------ as Grafana sends it


def regex_escape(value: str) -> str:
    """Grafana's escape of a multi-value variable's value for a Prometheus regex."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def step_for(panel: dict[str, Any]) -> int:
    """Grafana's step: the range over the panel's width in pixels (maxDataPoints), never
    below the panel's min interval or the data source's scrape interval."""
    width_px: float = panel["gridPos"]["w"] / 24 * SCREEN_PX
    minimum = SCRAPE
    if "interval" in panel:
        match = re.fullmatch(r"(\d+)([smh])", panel["interval"])
        assert match, panel["interval"]
        minimum = max(minimum, int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]])
    return max(minimum, math.ceil(RANGE / width_px))


def rate_interval(step: int) -> int:
    """Grafana's ``$__rate_interval``."""
    return max(step + SCRAPE, 4 * SCRAPE)


def substitute(expr: str, domain: str, step: int, **selected: str) -> str:
    """The variables as Grafana fills them in: All is ``.*``, a selected value is escaped."""
    expr = expr.replace("$__rate_interval", f"{rate_interval(step)}s")
    for name in ("cluster", "job", "perspective", "instance"):
        value = selected.get(name)
        expr = expr.replace(f"${name}", ".*" if value is None else regex_escape(value))
    expr = expr.replace("$domain", regex_escape(domain))
    assert "$" not in expr, expr
    return expr


@dataclass
class Measured:
    panel: str
    ref: str
    kind: str
    series: list[Any]  # series, or a variable's values
    seconds: float
    expr: str
    step: int = 0  # of a range query; 0: an instant query (or a variable)
    samples: int | None = None  # read by the query (a variable's values: not counted)
    row: str = ""  # the title of the row the panel is in
    reads: str = ""  # what the query may read: see sample_budget
    budget: int = 0  # the samples it may read


def sample_budget(m: Measured, fleet: Fleet) -> tuple[str, int]:
    """The kind of ``m``'s panel and the samples its query may read.

    At each step a selector reads one sample of each series it matches (the latest within
    the lookback), or under ``[$__rate_interval]`` every sample of that window; any other
    window counts as one sample, so a longer one goes over. An exporter-level selector
    matches at most the EXPORTER_SERIES of its name. A per-domain selector matches, by the
    panel's kind: in a per-domain panel (the ``$domain`` row), at most PER_DOMAIN series of
    ``$domain``; in an instant fleet or table query, the current series of every domain; in a
    fleet panel drawn over time, at most the failing domains' series, never every domain's.
    A query that reads every domain where its kind must not (a per-domain panel without its
    ``$domain`` filter, a fleet panel over time of every domain, a range function over the
    fleet in a table) reads 10,000 samples per step, or a window's worth per domain, and
    goes over.
    """
    steps = RANGE // m.step + 1 if m.step else 1
    window = rate_interval(m.step or SCRAPE) // SCRAPE + 1  # both ends hold a sample
    if "$domain" in m.row or "$domain" in m.expr:
        kind, per_domain = "domain", PER_DOMAIN
    elif not m.step:
        kind, per_domain = "fleet now", DOMAINS
    else:
        kind, per_domain = "fleet over time", sum(1 for d in fleet.domains if d.failure is not None)
    per_step = 0
    selectors = re.findall(r"(acme_http01_\w+)\{[^}]*\}(\[\$__rate_interval\])?", m.expr)
    for name, ranged in selectors:
        per_step += EXPORTER_SERIES.get(name, per_domain) * (window if ranged else 1)
    return kind, steps * per_step


def chosen_domain(fleet: Fleet) -> Domain:
    """The ``$domain`` of the run: failing lately on a redirect hop, with a certificate, so
    that every per-domain panel has something to draw."""
    return next(
        d
        for d in fleet.domains
        if d.failure is not None
        and "hop" in d.flags
        and "fallback" in d.flags
        and d.since is not None
        and d.cert is not None
        and d.stale_after is None
    )


@pytest.fixture(scope="module")
def measured(served: Served) -> list[Measured]:
    board = json.loads(DASHBOARD.read_text())
    assert board["time"] == {"from": "now-6h", "to": "now"}  # RANGE
    domain = chosen_domain(served.fleet).name
    end = served.fleet.end
    out: list[Measured] = []
    row = ""
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        selector, label = match.groups()
        data, seconds = best_of_3(
            served.base,
            f"/api/v1/label/{label}/values",
            {
                "match[]": substitute(selector, domain, SCRAPE),
                "start": str(end - RANGE),
                "end": str(end),
            },
            post=False,
        )
        out.append(Measured(f"${variable['name']}", "var", "values", data, seconds, selector))
    for panel in board["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        for target in panel.get("targets", []):
            step = step_for(panel)
            expr = substitute(target["expr"], domain, step)
            if target.get("instant"):
                params = {"query": expr, "time": str(end), "stats": "all"}
                data, seconds = best_of_3(served.base, "/api/v1/query", params)
                kind, step = "instant", 0
            else:
                params = {
                    "query": expr,
                    "start": str(end - RANGE),
                    "end": str(end),
                    "step": str(step),
                    "stats": "all",
                }
                data, seconds = best_of_3(served.base, "/api/v1/query_range", params)
                kind = f"range {step}s"
            samples = data["stats"]["samples"]["totalQueryableSamples"]
            m = Measured(
                panel["title"],
                target["refId"],
                kind,
                data["result"],
                seconds,
                target["expr"],
                step,
                samples,
                row,
            )
            m.reads, m.budget = sample_budget(m, served.fleet)
            out.append(m)
    return out


def test_every_query_is_bounded_in_series_and_samples(
    served: Served, measured: list[Measured], capsys: pytest.CaptureFixture[str]
) -> None:
    domain = chosen_domain(served.fleet).name
    (live,) = call(
        served.base,
        "/api/v1/query",
        {"query": 'count({__name__=~"acme_http01_.+"})', "time": str(served.fleet.end)},
    )["result"]
    lines = [
        f"{DOMAINS} domains: {live['value'][1]} series at the end, {served.samples:,} samples "
        f"({HOURS} h, every {SCRAPE} s); $domain={domain}; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in served.setup_seconds.items()),
        f"{'panel':<44} {'ref':<4} {'query':<10} {'series':>6} {'seconds':>8} "
        f"{'samples':>9} {'bound':>9} kind",
    ]
    for m in measured:
        line = f"{m.panel[:44]:<44} {m.ref:<4} {m.kind:<10} {len(m.series):>6} {m.seconds:>8.3f}"
        if m.samples is not None:
            line += f" {m.samples:>9} {m.budget:>9} {m.reads}"
        lines.append(line)
    slowest = max(measured, key=lambda m: m.seconds)
    lines.append(f"slowest: {slowest.panel} {slowest.ref} {slowest.seconds:.3f} s")
    with capsys.disabled():
        print("\n" + "\n".join(lines))

    problems = []
    for m in measured:
        where = f"{m.panel} {m.ref}"
        if m.seconds >= BACKSTOP:
            problems.append(f"{where}: {m.seconds:.3f} s")
        if m.ref == "var":
            continue
        assert m.samples is not None, where
        if m.samples > m.budget:
            problems.append(f"{where}: {m.samples} samples read, at most {m.budget} ({m.reads})")
        if "$domain" in m.expr:  # a per-domain panel: that domain only
            domains = {s["metric"].get("domain") for s in m.series}
            if domains != {domain} or len(m.series) > PER_DOMAIN:
                problems.append(f"{where}: {len(m.series)} series of {domains}")
            continue
        limits = [int(k) for k in re.findall(r"(?:topk|bottomk)\((\d+),", m.expr)]
        if limits:  # a table: at most its top-k rows
            if not 0 < len(m.series) <= max(limits):
                problems.append(f"{where}: {len(m.series)} series, top-k {max(limits)}")
            continue
        if any("domain" in s["metric"] for s in m.series) or not 0 < len(m.series) <= FLEET_MAX:
            problems.append(f"{where}: {len(m.series)} series (fleet query)")
    assert not problems, problems

    variables = {m.panel: m.series for m in measured if m.ref == "var"}
    assert len(variables["$domain"]) == DOMAINS
    assert variables["$cluster"] == []  # absent label: only All, which matches it absent
    assert variables["$perspective"] == [PERSPECTIVE]
    assert len(variables["$instance"]) == SHARDS


def value_of(measured: list[Measured], title: str, ref: str = "A") -> float:
    (m,) = [m for m in measured if m.panel == title and m.ref == ref]
    (sample,) = m.series
    return float(sample["value"][1])


def test_fleet_panels_count_right_at_scale(served: Served, measured: list[Measured]) -> None:
    fleet = served.fleet
    end = fleet.end
    failing = [d for d in fleet.domains if d.failure is not None]
    certs = [d for d in fleet.domains if d.cert is not None]
    expected = {
        "Domains": DOMAINS,
        "OK": DOMAINS - len(failing),
        "Failing": len(failing),
        "Failing, renewal due soon": sum(
            1 for d in failing if d.cert is not None and d.cert[2] - end < 7 * DAY
        ),
        "Expiring within 7 days": sum(1 for d in certs if d.cert and d.cert[1] - end < 7 * DAY),
        "Stale results": sum(
            1 for d in fleet.domains if end - d.last_validation(end) > 3 * INTERVAL
        ),
        "AAAA mismatch": sum(1 for d in fleet.domains if d.mismatch),
        "IPv4 fallback": sum(1 for d in fleet.domains if d.fallback),
        "Redirect-hop failure": sum(1 for d in failing if "hop" in d.flags),
        "CAA forbids": sum(1 for d in failing if "caa" in d.flags),
        "DNS family errors": sum(1 for d in fleet.domains if d.family_error),
        "Chain not verified": sum(1 for d in certs if d.cert and d.cert[3] == 0),
    }
    assert {title: value_of(measured, title) for title in expected} == expected
    assert all(expected.values())  # the mix has every case

    # Variables set to one value rather than All: the perspective joined in from
    # acme_http01_exporter_info, the instance matched on the series.
    (failing_stat,) = [m for m in measured if m.panel == "Failing"]
    domain = chosen_domain(fleet).name

    def failing_when(**selected: str) -> float:
        expr = substitute(failing_stat.expr, domain, SCRAPE, **selected)
        (sample,) = call(served.base, "/api/v1/query", {"query": expr, "time": str(end)})["result"]
        return float(sample["value"][1])

    assert failing_when(perspective=PERSPECTIVE) == len(failing)
    assert failing_when(perspective="elsewhere") == 0
    shard0 = "exporter-0:9469"
    assert failing_when(instance=shard0) == sum(1 for d in failing if d.instance == shard0)
    assert failing_when(job=JOB, cluster="") == len(failing)  # cluster="" matches it absent

    (by_reason,) = [m for m in measured if m.panel == "Failing domains by reason"]
    counts = {s["metric"]["reason"]: int(float(s["value"][1])) for s in by_reason.series}
    assert counts == Counter(d.failure[1] for d in failing if d.failure)

    # The join of failing domains to the namespace of the object that names them.
    (by_team,) = [m for m in measured if m.panel == "Failing domains by namespace"]
    teams = {s["metric"]["namespace"]: int(float(s["value"][1])) for s in by_team.series}
    index = {d.name: i for i, d in enumerate(fleet.domains)}
    assert teams == Counter(team(index[d.name]) for d in failing)


def test_tables_put_the_worst_first_at_scale(served: Served, measured: list[Measured]) -> None:
    end = served.fleet.end
    failing_by_renewal = sorted(
        (d for d in served.fleet.domains if d.failure is not None and d.cert is not None),
        key=lambda d: d.cert[2] if d.cert else 0,
    )

    def rows(title: str, ref: str) -> dict[str, float]:
        (m,) = [m for m in measured if m.panel == title and m.ref == ref]
        return {s["metric"]["domain"]: float(s["value"][1]) for s in m.series}

    worst = rows("Domains and their current problem", "A")  # valued by rank
    assert min(worst.values()) >= 3  # all failing (there are more failing domains than rows)
    assert len(failing_by_renewal) > len(worst)
    assert set(worst) == {d.name for d in failing_by_renewal[: len(worst)]}
    problems = [m for m in measured if m.panel == "Domains and their current problem"]
    for m in problems:  # every column holds the same rows (the merged table stays top-k)
        assert {s["metric"]["domain"] for s in m.series} <= set(worst), m.ref

    at_risk = rows("Renewal at risk", "A")
    expected = {d.name: d.cert[2] - end for d in failing_by_renewal[: len(at_risk)] if d.cert}
    assert at_risk == pytest.approx(expected)
    assert min(at_risk.values()) < 0  # overdue renewals are in the mix
