"""The HTTP endpoints: routing, the landing page, ``/probe``, ``/domains``, ``/config``.

Rule: presentation only. Every page is rendered from the exporter's state at
request time (the result store's snapshot, the config in force); nothing here
validates on a schedule or changes state, except ``POST /-/reload``, which asks
the exporter to reload, and ``/probe``, which runs one validation and stores
nothing. The HTTP server itself is ``exporter.web``.

    /                  landing page: every domain's verdict and fix, paged and filtered
    /metrics           the metrics (text 0.0.4 or OpenMetrics, gzip: as negotiated)
    /domains/<name>    the last result of one domain, as JSON (every record)
    /probe?target=     one validation now (configured domains unless allowed)
    /config            the config in force, as YAML
    /runbook           the alerts' runbook (each alert's name is an anchor)
    /-/healthy         liveness
    /-/ready           200 once every domain has a first result
    /-/reload          POST: re-read the config file (like SIGHUP)

Behind a reverse proxy or an ingress path, as Prometheus: every route lives under
``--web.route-prefix`` (default: the path of ``--web.external-url``, ``/`` without one;
a request outside it is 404, except ``/``, which redirects to the prefix), and the
metrics under ``--web.telemetry-path`` within it. See :class:`Routes`.

Every link the exporter writes is relative (``./metrics``, ``./domains/<name>``,
``./?state=failing``), resolved by the browser against the page it is on: the landing
page is always ``<prefix>/`` (``<prefix>`` without the slash redirects there) and the
runbook ``<prefix>/runbook``. Relative links rather than links built from the external
URL's path because they need no configuration to be right: they work behind a proxy that
keeps the prefix and one that strips it, whether or not ``--web.external-url`` was given
or matches what the proxy does. The JSON documents (``/domains/<name>``) hold no links
to the exporter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gzip
import heapq
import html
import json
import math
import socket
import time
import urllib.parse
import weakref
from collections.abc import Sequence
from importlib import resources
from typing import Any

from exporter import __version__, markdown
from exporter.compose import Bundle, build_validator
from exporter.config import DomainConfig, normalise_domain
from exporter.config import render as config_yaml
from exporter.discovery.kinds import Origin, origin_json
from exporter.http01 import Validator
from exporter.metrics import (
    DomainState,
    accepts_gzip,
    negotiate_format,
    render_discovery,
    render_domains,
)
from exporter.records import CertificateCheck, FallbackPolicy, ValidationResult
from exporter.report import fix_hint, render, resolver_warning, verdict
from exporter.resources import ExporterResourceError
from exporter.service import Exporter
from exporter.web import WebRequest, WebResponse

__all__ = ["Endpoints", "Routes", "external_url", "route_prefix", "telemetry_path"]

#: At most this many /probe validations in flight (each one is a full validation).
_MAX_PROBES = 20


def external_url(raw: str, listen_port: int) -> str:
    """``--web.external-url`` as Prometheus computes it (``computeExternalURL``).

    Without one, ``http://<hostname>:<port>``. The path loses its trailing slashes and
    gains a leading one (``https://h/acme/`` and ``https://h/acme`` are the same, and
    ``https://h/`` has the path ``""``). Quotes around the value, a scheme other than
    http or https and a URL without a host are refused (ValueError).
    """
    if not raw:
        raw = f"http://{socket.gethostname()}:{listen_port}/"
    if raw[:1] in ("'", '"') or raw[-1:] in ("'", '"'):
        raise ValueError("URL must not begin or end with quotes")
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{raw!r} is not an absolute http:// or https:// URL")
    path = parts.path.rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return urllib.parse.urlunsplit(parts._replace(path=path))


def route_prefix(raw: str | None, external: str) -> str:
    """``--web.route-prefix`` as Prometheus sets it: the external URL's path when not
    given (or empty), always one leading slash and no trailing one (``/`` at the root)."""
    if not raw:
        raw = urllib.parse.urlsplit(external).path
    return "/" + raw.strip("/")


#: Paths the telemetry path may not take (they are other endpoints).
_FIXED_ROUTES = ("/", "/probe", "/config", "/runbook", "/domains", "/-")


def telemetry_path(raw: str) -> str:
    """``--web.telemetry-path``: a path below the route prefix, not another endpoint's."""
    path = "/" + raw.lstrip("/")
    if path in _FIXED_ROUTES or path.startswith(("/domains/", "/-/")) or "?" in path:
        raise ValueError(f"{raw!r} is not a free path (it is another endpoint's, or empty)")
    return path


@dataclasses.dataclass(frozen=True, slots=True)
class Routes:
    """Where the endpoints are: ``prefix`` + each endpoint's path, e.g. ``/acme/metrics``.

    ``external`` (from :func:`external_url`) is the address the exporter is reached at
    from outside; links do not need it (they are relative), the default prefix and the
    log do.
    """

    external: str = ""
    prefix: str = "/"
    telemetry: str = "/metrics"

    def within(self, path: str) -> str | None:
        """``path`` without the prefix (``/acme/metrics`` -> ``/metrics``); ``None``
        outside it."""
        if self.prefix == "/":
            return path
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :]
        return None


class Endpoints:
    def __init__(self, exporter: Exporter, routes: Routes | None = None) -> None:
        self.exporter = exporter
        self.routes = routes or Routes()
        self._probes = asyncio.Semaphore(max(1, min(exporter.config.concurrency, _MAX_PROBES)))
        self._config_yaml: tuple[weakref.ref[Bundle], bytes] | None = None

    async def handle(self, request: WebRequest) -> WebResponse:
        prefix = self.routes.prefix
        path = self.routes.within(request.path)
        if path is None:
            if request.path == prefix:  # the landing page is <prefix>/: relative links need it
                location = prefix.rsplit("/", 1)[1] + "/"
                return WebResponse(301, b"", headers=(("Location", location),))
            if request.path == "/":  # as Prometheus: the root leads to the prefix
                return WebResponse(302, b"", headers=(("Location", prefix + "/"),))
            return WebResponse.text(404, "not found\n")
        if path == "/-/reload":
            if request.method not in ("POST", "PUT"):
                return WebResponse(405, b"use POST\n", headers=(("Allow", "POST"),))
            ok, message = await self.exporter.reload()
            return WebResponse.text(200 if ok else 500, message + "\n")
        if request.method not in ("GET", "HEAD"):
            return WebResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if path == self.routes.telemetry:
            return await self._metrics(request)
        if path == "/-/healthy":
            return WebResponse.text(200, "Healthy\n")
        if path == "/-/ready":
            if not self.exporter.discovery_settled:
                return WebResponse.text(503, "Not ready: waiting for the sources' first lists\n")
            if self.exporter.store.complete():
                return WebResponse.text(200, "Ready\n")
            return WebResponse.text(503, "Not ready: waiting for every domain's first result\n")
        if path == "/":
            return self._landing(request)
        if path.startswith("/domains/"):
            return self._domain(path.removeprefix("/domains/"))
        if path == "/probe":
            return await self._probe(request)
        if path == "/runbook":
            return WebResponse(200, _runbook().encode(), "text/html; charset=utf-8")
        if path == "/config":
            return WebResponse(200, await self._config(), "text/yaml; charset=utf-8")
        if path == "/discovery":
            return _json(200, self._discovery())
        return WebResponse.text(404, "not found\n")

    def _discovery(self) -> dict[str, object]:
        """Each source's state, and every name found but not validated (with the reason)."""
        exporter = self.exporter
        return {
            "sources": [
                {
                    "source": str(st.source),
                    "kind": st.kind,
                    "up": st.up,
                    "objects": st.objects,
                    "names": st.names,
                    "skipped": dict(sorted(st.skipped.items())),
                    "last_sync": st.last_sync or None,
                    "errors": {str(r): n for r, n in sorted(st.errors.items())},
                    "last_error": st.last_error or None,
                }
                for st in exporter.state.discovery.all()
            ],
            "skipped": [
                {"name": found.name, "reason": found.skipped, "found_in": origin_json(found.origin)}
                for found in exporter.skipped
            ],
        }

    async def _config(self) -> bytes:
        """The running config as YAML: rendered in a thread once per bundle (0.4 s at
        100,000 domains), so no endpoint waits for it."""
        bundle = self.exporter.bundle
        cached = self._config_yaml
        if cached is not None and cached[0]() is bundle:
            return cached[1]
        body = await asyncio.to_thread(config_yaml, bundle.config)
        self._config_yaml = (weakref.ref(bundle), body)  # never keeps an old bundle alive
        return body

    async def _metrics(self, request: WebRequest) -> WebResponse:
        # OpenMetrics when the Accept header prefers it, else the text format 0.0.4;
        # rendered in a thread so that a large scrape never stalls the validations'
        # event loop. gzip only when Accept-Encoding allows it (q-values honoured).
        openmetrics, content_type = negotiate_format(request.headers.get("accept"))
        self.exporter.state.tasks = len(asyncio.all_tasks())
        # The sources' states change on this loop: their lines are made here, the rest there.
        discovery = render_discovery(self.exporter.state, openmetrics=openmetrics)
        body = await asyncio.to_thread(self.exporter.exposition.render, openmetrics, discovery)
        headers: tuple[tuple[str, str], ...] = (("Vary", "Accept, Accept-Encoding"),)
        if accepts_gzip(request.headers.get("accept-encoding")):
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers += (("Content-Encoding", "gzip"),)
        return WebResponse(200, body, content_type, headers)

    def _domain(self, raw: str) -> WebResponse:
        try:
            name = normalise_domain(raw)
        except ValueError:
            return _json(404, {"error": f"{raw!r} is not a configured domain"})
        state = self.exporter.store.get(name)
        if state is None:
            return _json(404, {"error": f"{name} is not a configured domain"})
        if state.result is None:
            return _json(503, {"error": f"{name} has not been validated yet"})
        document = state.result.to_json()
        servers = self.exporter.acme_servers
        document["sources"] = [
            origin_json(o, servers.get((name, o), "")) for o in self.exporter.origins.get(name, ())
        ]
        check = state.certificate
        if not self.exporter.config.certificates.enabled:
            document["certificate"] = {"certificate": None, "error": "certificate reading is off"}
        elif check is None:
            document["certificate"] = {"certificate": None, "error": "not read yet"}
        else:
            document["certificate"] = check.to_json()
        return _json(200, document)

    async def _probe(self, request: WebRequest) -> WebResponse:
        target = request.arg("target")
        if not target:
            return WebResponse.text(400, "missing ?target=<domain>\n")
        try:
            name = normalise_domain(target)
            policy_arg = request.arg("policy")
            policy = FallbackPolicy(policy_arg) if policy_arg else None
        except ValueError as exc:
            return WebResponse.text(400, f"{exc}\n")
        exporter = self.exporter
        domain = exporter.every_domain.get(name)
        if domain is None:
            if not exporter.config.probe.allow_any_target:
                exporter.metrics.probes.labels("refused").inc()
                return WebResponse.text(
                    403,
                    f"{name} is not a configured domain (set probe.allow_any_target to allow)\n",
                )
            domain = DomainConfig(name=name)
        scrape_timeout = _scrape_timeout(request)
        budget = None if scrape_timeout is None else _probe_budget(scrape_timeout)
        validator = exporter.validator_for(policy)
        if budget is not None and budget < validator.settings.validation_timeout:
            validator = _bounded_validator(exporter, policy, budget)
        if self._probes.locked():
            exporter.metrics.probes.labels("refused").inc()
            return WebResponse.text(503, "too many /probe requests in flight; retry later\n")
        try:
            async with self._probes, asyncio.timeout(_hard_limit(scrape_timeout)):
                result = await exporter.validate(domain, validator)
        except ExporterResourceError as exc:
            exporter.metrics.exporter_errors.labels(exc.reason.value).inc()
            return WebResponse.text(
                503, f"{name}: not validated: the exporter ran out of its own resources ({exc})\n"
            )
        except TimeoutError:
            # Only when the engine itself overran the budget (the other policy's comparison
            # run, or a CAA lookup slower than the budget): better a clear error than a
            # scrape that Prometheus abandons.
            exporter.metrics.probes.labels("failure").inc()
            return WebResponse.text(
                504, f"{name}: the validation did not finish within the scrape timeout\n"
            )
        exporter.metrics.probes.labels("success" if result.success else "failure").inc()
        if request.arg("debug") == "true":
            text = render(result) + "\n\n" + json.dumps(result.to_json(), indent=2) + "\n"
            return WebResponse.text(200, text)
        openmetrics, content_type = negotiate_format(request.headers.get("accept"))
        text = render_domains({result.domain: DomainState().after(result)}, openmetrics=openmetrics)
        body = (text + "# EOF\n" if openmetrics else text).encode()
        return WebResponse(200, body, content_type, (("Vary", "Accept"),))

    def _landing(self, request: WebRequest) -> WebResponse:
        """The landing page: one page of domains, failing first, filtered by the query.

        ``?state=all|failing|warning|ok|pending`` (default all, failing first; ``warning``:
        passing with a warning, ``ok``: passing cleanly), ``?q=`` (part of a
        domain name, any case), ``?page=`` (from 1) and ``?size=`` (rows per page, 1 to
        1,000; default 100). Only the page shown is rendered: the whole fleet is only
        classified and sorted, so 10,000 domains cost what 100 do in HTML.
        """
        state = (request.arg("state") or "all").strip().lower()
        if state not in _LANDING_STATES:
            return WebResponse.text(
                400, f"state must be one of {', '.join(_LANDING_STATES)}, not {state!r}\n"
            )
        query = (request.arg("q") or "").strip().lower()
        size = _size_arg(request.arg("size"))
        if size is None:
            return WebResponse.text(
                400,
                f"size must be a whole number from 1 to {_LANDING_MAX_PAGE_SIZE:,} (rows per "
                f"page), not {request.arg('size')!r}\n",
            )
        snapshot = self.exporter.store.snapshot()
        counts = dict.fromkeys(_LANDING_STATES, 0)
        chosen: list[tuple[int, str, DomainState]] = []
        for name, domain_state in snapshot.items():
            if query and query not in name:
                continue
            rank = _landing_rank(domain_state.result)
            group = _RANK_STATE[rank]
            counts[group] += 1
            if state in ("all", group):
                chosen.append((rank, name, domain_state))
        counts["all"] = sum(counts[group] for group in _RANK_STATE)
        total = len(chosen)
        pages = max(1, math.ceil(total / size))
        page = _int_arg(request.arg("page"), 1, 1, pages)
        shown = heapq.nsmallest(page * size, chosen, key=_landing_key)[(page - 1) * size :]
        rows = []
        origins = self.exporter.origins
        servers = self.exporter.acme_servers
        for _, name, domain_state in shown:
            where = origins.get(name, ())
            staging = any(servers.get((name, o)) == "letsencrypt-staging" for o in where)
            rows.extend(
                _landing_rows(name, domain_state.result, domain_state.certificate, where, staging)
            )
        if not rows:
            what = "no domain is configured" if not snapshot else "no domain matches the filter"
            span = len(_DOMAIN_COLUMNS) + 1  # and the links
            rows.append(f'<tr class="empty"><td colspan="{span}">{what}</td></tr>')
        view = _LandingView(state, query, size)
        first_row = (page - 1) * size + 1 if total else 0
        pager = _landing_pager(view, page, pages, first_row, first_row + len(shown) - 1, total)
        return WebResponse(
            200,
            _LANDING.format(
                style=_LANDING_STYLE,
                version=html.escape(__version__),
                policy=html.escape(str(self.exporter.config.policy)),
                interval=self.exporter.config.interval,
                metrics=html.escape("." + urllib.parse.quote(self.routes.telemetry)),
                warning=self._landing_warnings() + self._landing_sources(),
                summary=_landing_summary(view, counts, len(snapshot)),
                form=_landing_form(view),
                pager=pager,
                header=_header(_DOMAIN_COLUMNS) + "<th></th>",
                rows="\n".join(rows),
            ).encode(),
            "text/html; charset=utf-8",
        )

    def _landing_sources(self) -> str:
        """The discovery sources' states, when names are discovered (not for a static list)."""
        statuses = [st for st in self.exporter.state.discovery.all() if st.source != "static"]
        if not statuses:
            return ""
        rows = []
        for st in statuses:
            skipped = ", ".join(f"{n} {r}" for r, n in sorted(st.skipped.items()))
            synced = (
                time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st.last_sync))
                if st.last_sync
                else "never"
            )
            row = _SourceRow(
                source=f"{st.source} {st.kind}",
                state="up" if st.up else "DOWN",
                objects=str(st.objects),
                names=str(st.names),
                skipped=skipped,
                last_sync=synced,
                last_error=st.last_error,
            )
            tds = "".join(
                f'<td class="{"down" if name == "state" and not st.up else ""}">'
                f"{html.escape(getattr(row, name))}</td>"
                for name, _ in _SOURCE_COLUMNS
            )
            rows.append(f"<tr>{tds}</tr>")
        return (
            '<details class="sources"><summary>Sources: '
            f"{sum(st.up for st in statuses)} of {len(statuses)} up, "
            f"{len(self.exporter.skipped)} names skipped "
            '(<a href="./discovery">details</a>)</summary>'
            f"<table><thead><tr>{_header(_SOURCE_COLUMNS)}</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></details>"
        )

    def _landing_warnings(self) -> str:
        warning = ""
        if not self.exporter.state.ipv6_capable:
            warning = (
                '<p class="warn">This host cannot route IPv6. Let\'s Encrypt dials IPv6 first, '
                "so verdicts for domains with AAAA records are not measured here.</p>"
            )
        if not self.exporter.state.resolver_validating:
            warning += f'<p class="warn">{html.escape(resolver_warning(self.exporter.config))}</p>'
        if not self.exporter.state.reload_successful:
            warning += '<p class="warn">The last config reload failed; see the log.</p>'
        return warning


#: /probe leaves this much of Prometheus' scrape timeout for the response and the network.
PROBE_TIMEOUT_MARGIN = 0.5
#: ... but never validates for less than this (a validation needs a DNS lookup and a dial).
PROBE_MIN_BUDGET = 1.0


def _scrape_timeout(request: WebRequest) -> float | None:
    """Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds``; ``None`` if absent or invalid."""
    raw = request.headers.get("x-prometheus-scrape-timeout-seconds")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _probe_budget(scrape_timeout: float) -> float:
    """The validation budget that fits in a scrape timeout (the margin off, floored)."""
    return max(PROBE_MIN_BUDGET, scrape_timeout - PROBE_TIMEOUT_MARGIN)


def _hard_limit(scrape_timeout: float | None) -> float | None:
    """The most a /probe may take: just under the scrape timeout (none without one)."""
    if scrape_timeout is None:
        return None
    return max(PROBE_MIN_BUDGET, scrape_timeout - PROBE_TIMEOUT_MARGIN / 5)


def _bounded_validator(
    exporter: Exporter, policy: FallbackPolicy | None, budget: float
) -> Validator:
    """A validator like the running one (or ``policy``'s) whose deadline is ``budget``:
    it ends the validation exactly as Let's Encrypt's deadline would, and says so."""
    config = exporter.config
    timeouts = config.timeouts.model_copy(update={"validation": budget})
    return build_validator(config.model_copy(update={"timeouts": timeouts}), policy)


#: Rows per landing page unless ``?size=`` says otherwise, and the most it may ask for.
_LANDING_PAGE_SIZE = 100
_LANDING_MAX_PAGE_SIZE = 1000
#: The ``?state=`` filters, in the order the page lists them.
_LANDING_STATES = ("all", "failing", "warning", "ok", "pending")
#: Sort rank -> state: failing first, then passing with a warning (IPv4 fallback, AAAA
#: mismatch, hidden DNS failure: ``ValidationResult.warnings``), then pending, then ok.
_RANK_STATE = ("failing", "warning", "pending", "ok")


def _landing_rank(result: ValidationResult | None) -> int:
    if result is None:
        return 2
    if not result.success:
        return 0
    if result.warnings:
        return 1
    return 3


def _landing_key(item: tuple[int, str, DomainState]) -> tuple[int, str]:
    return item[0], item[1]


def _size_arg(raw: str | None) -> int | None:
    """``?size=``: rows per page, 1 to 1,000 (the default when absent); ``None`` otherwise."""
    if raw is None or raw == "":
        return _LANDING_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        return None
    return size if 1 <= size <= _LANDING_MAX_PAGE_SIZE else None


def _int_arg(raw: str | None, default: int, low: int, high: int) -> int:
    """A whole number from the query, clamped to [low, high]; ``default`` if not one."""
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return min(max(value, low), high)


@dataclasses.dataclass(frozen=True, slots=True)
class _LandingView:
    """The landing page's filters, carried by every link it makes."""

    state: str
    query: str
    size: int

    def url(self, page: int = 1, state: str | None = None) -> str:
        """The page's address with these filters (HTML-escaped, for an attribute)."""
        params = {"state": self.state if state is None else state, "q": self.query}
        params |= {"size": str(self.size), "page": str(page)}
        defaults = {"state": "all", "q": "", "size": str(_LANDING_PAGE_SIZE), "page": "1"}
        kept = {key: value for key, value in params.items() if value != defaults[key]}
        return html.escape("./?" + urllib.parse.urlencode(kept) if kept else "./")


def _landing_summary(view: _LandingView, counts: dict[str, int], configured: int) -> str:
    """The counts per state (within the name filter), each a link to that filter."""
    parts = []
    for state in _LANDING_STATES:
        label = f'<span class="n">{counts[state]:,}</span> {state}'
        if state == view.state:
            parts.append(f'<b class="{state}" aria-current="true">{label}</b>')
        else:
            parts.append(f'<a class="{state}" href="{view.url(state=state)}">{label}</a>')
    scope = (
        f"; of those whose name contains <code>{html.escape(view.query)}</code>"
        if view.query
        else ""
    )
    return (
        f'<p class="summary">{configured:,} domains configured{scope}: '
        + " &middot; ".join(parts)
        + "</p>"
    )


def _landing_form(view: _LandingView) -> str:
    """A plain GET form (no script): state, name filter, and the page size kept."""
    options = "".join(
        f'<option value="{state}"{" selected" if state == view.state else ""}>{state}</option>'
        for state in _LANDING_STATES
    )
    size = (
        f'<input type="hidden" name="size" value="{view.size}">'
        if view.size != _LANDING_PAGE_SIZE
        else ""
    )
    return (
        '<form class="filter" method="get" action="./">'
        f'<label>state <select name="state">{options}</select></label> '
        '<label>domain contains <input type="search" name="q" '
        f'value="{html.escape(view.query)}" placeholder="part of a name"></label> '
        f'{size}<button type="submit">filter</button>'
        + (' <a href="./">clear</a>' if view != _LandingView("all", "", _LANDING_PAGE_SIZE) else "")
        + "</form>"
    )


def _landing_pager(
    view: _LandingView, page: int, pages: int, first: int, last: int, total: int
) -> str:
    """First/previous/next/last links (keeping the filters) and where this page is."""

    def link(target: int, text: str, rel: str) -> str:
        if target == page or not 1 <= target <= pages:
            return f'<span class="off">{text}</span>'
        return f'<a rel="{rel}" href="{view.url(target)}">{text}</a>'

    where = (
        f"page {page:,} of {pages:,} &middot; rows {first:,}&ndash;{last:,} of {total:,}"
        if total
        else "no rows"
    )
    return (
        '<nav class="pager">'
        + link(1, "&laquo; first", "first")
        + link(page - 1, "&lsaquo; previous", "prev")
        + f'<span class="where">{where}</span>'
        + link(page + 1, "next &rsaquo;", "next")
        + link(pages, "last &raquo;", "last")
        + "</nav>"
    )


def _origin_text(origin: Origin) -> str:
    if origin.source == "file":
        return f"file {origin.name}"
    where = f"{origin.namespace}/{origin.name}" if origin.namespace else origin.name
    return f"{origin.kind} {where}"


def _landing_rows(
    name: str,
    result: ValidationResult | None,
    certificate: CertificateCheck | None,
    origins: Sequence[Origin] = (),
    staging: bool = False,
) -> list[str]:
    """One domain's row on the landing page, and a row with its fix if it has one."""
    quoted = html.escape(urllib.parse.quote(name, safe=""))
    probe = html.escape("./probe?" + urllib.parse.urlencode({"target": name, "debug": "true"}))
    links = f'<a href="./domains/{quoted}">trace</a> <a href="{probe}">run now</a>'
    if result is None:
        row = _DomainRow(domain=name, verdict="pending")
    else:
        problem = result.problem
        row = _DomainRow(
            domain=name,
            verdict=("WARN" if result.warnings else "OK") if result.success else "FAIL",
            problem="" if problem is None else f"{problem.type}/{problem.reason}: {problem.detail}",
            ipv4_fallback="yes" if result.ipv4_fallback else "",
            aaaa_mismatch="yes" if result.aaaa_mismatch else "",
            redirect_hop_failure="yes" if result.failed_on_redirect_hop else "",
            caa=_caa_cell(result),
            certificate=_certificate_cell(certificate),
            hidden_dns_failure=", ".join(
                f"{e.family} {e.reason}" for e in result.dns_family_errors if e.hop == 0
            ),
            last_run=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(result.finished_at)),
        )
    title = html.escape(verdict(result) if result else "not validated yet")
    group = _RANK_STATE[_landing_rank(result)]
    css = "fail" if group == "failing" else group
    cells = {column: html.escape(getattr(row, column)) for column, _ in _DOMAIN_COLUMNS}
    found = [_origin_text(o) for o in origins if o.source != "static"]
    if staging:
        found.append("issued by Let's Encrypt staging")
    if found:
        cells["domain"] += f'<div class="src">{html.escape(", ".join(found))}</div>'
    tr = f'<tr class="{css}" data-domain="{html.escape(name)}" title="{title}">'
    rows = [tr + "".join(f"<td>{c}</td>" for c in (*cells.values(), links)) + "</tr>"]
    hint = fix_hint(result) if result is not None else None
    if hint:
        # Under every column but the first, the links' included.
        rows.append(
            f'<tr class="hint" data-domain="{html.escape(name)}"><td></td>'
            f'<td colspan="{len(_DOMAIN_COLUMNS)}">{html.escape(hint)}</td></tr>'
        )
    return rows


def _column(header: str) -> Any:
    """A column of a landing-page table: a field of its row record, with its header."""
    return dataclasses.field(default="", metadata={"header": header})


@dataclasses.dataclass(frozen=True, slots=True)
class _DomainRow:
    """One domain's row of the landing table, a field per column in the order shown (the
    links follow, in a column of their own). The header, the cells, the style sheet's
    column rules and the hint row's span all follow these fields, by name."""

    domain: str = _column("domain")
    verdict: str = _column("verdict")
    problem: str = _column("problem")
    ipv4_fallback: str = _column("IPv4 fallback")
    aaaa_mismatch: str = _column("AAAA mismatch")
    redirect_hop_failure: str = _column("redirect-hop failure")
    caa: str = _column("CAA")
    certificate: str = _column("certificate")
    hidden_dns_failure: str = _column("hidden DNS failure")
    last_run: str = _column("last run")


@dataclasses.dataclass(frozen=True, slots=True)
class _SourceRow:
    """One discovery source's row of the landing page's sources table."""

    source: str = _column("source")
    state: str = _column("state")
    objects: str = _column("objects")
    names: str = _column("names")
    skipped: str = _column("skipped")
    last_sync: str = _column("last sync")
    last_error: str = _column("last error")


def _columns(row: type[_DomainRow] | type[_SourceRow]) -> tuple[tuple[str, str], ...]:
    """A table's columns, in order: (field name, header)."""
    return tuple((f.name, f.metadata["header"]) for f in dataclasses.fields(row))


_DOMAIN_COLUMNS = _columns(_DomainRow)
_SOURCE_COLUMNS = _columns(_SourceRow)


def _header(columns: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"<th>{html.escape(header)}</th>" for _, header in columns)


def _nth(column: str) -> str:
    """The CSS pseudo-class of a landing-table column; ``links``: the column after them."""
    names = [name for name, _ in _DOMAIN_COLUMNS] + ["links"]
    return f":nth-child({names.index(column) + 1})"


def _certificate_cell(check: CertificateCheck | None) -> str:
    if check is None:
        return ""
    if check.certificate is None:
        return "none on 443"
    days = (check.certificate.renewal_due - time.time()) / 86400
    return f"renewal due in {days:.0f} d" if days >= 0 else f"renewal overdue by {-days:.0f} d"


def _caa_cell(result: ValidationResult) -> str:
    check = result.caa
    if check is None:
        return ""
    if check.permitted is None:
        return "lookup failed"
    if not check.permitted:
        return f"forbids ({check.relevant_name})"
    return "permits" if check.account_checked else "permits (accounturi not checked)"


_LANDING_STYLE = f"""
body{{font-family:sans-serif;margin:1.5em;color:#1d1d1d}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}}
th{{background:#f3f3f3}} table{{font-size:14px}}
td{_nth("problem")}{{min-width:18em;overflow-wrap:break-word}}
tr:not(.hint) td:is({_nth("domain")},{_nth("links")}){{white-space:nowrap}}
td{_nth("links")} a{{display:block}}
tr.ok td{_nth("verdict")}{{color:#186a1e;font-weight:bold}}
tr.fail td{_nth("verdict")}{{color:#b00020;font-weight:bold}}
tr.pending td{_nth("verdict")}{{color:#8a6d00}}
tr.warning td{_nth("verdict")}{{color:#c25e00;font-weight:bold}}
tr.hint td{{color:#555;font-size:90%;border-top:none}} .warn{{background:#fde8e8;padding:8px}}
.summary a,.summary b{{margin:0 .2em}} .summary .n{{font-weight:bold}}
.summary .failing .n{{color:#b00020}} .summary .ok .n{{color:#186a1e}}
.summary .pending .n{{color:#8a6d00}} .summary .warning .n{{color:#c25e00}}
.filter{{margin:.8em 0}} .pager{{margin:.6em 0}} .pager>*{{margin-right:1em}}
.pager .off{{color:#999}} .pager .where{{color:#333}}
td .src{{color:#555;font-size:85%}} .sources td.down{{color:#b00020;font-weight:bold}}
"""

_LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>acme-http01-exporter</title>
<style>{style}</style></head><body>
<h1>acme-http01-exporter {version}</h1>
<p>Let's Encrypt HTTP-01 validation, predicted with the CA's own IPv6/IPv4 fallback and
redirect rules (policy <b>{policy}</b>, every {interval:g}s).
<a href="{metrics}">Metrics</a> &middot; <a href="./config">Config</a> &middot;
<a href="./runbook">Runbook</a> &middot; <a href="./discovery">Discovery</a> &middot;
<a href="./-/ready">Ready</a></p>
{warning}
{summary}
{form}
{pager}
<table><thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody></table>
{pager}
</body></html>
"""


@functools.cache
def _runbook() -> str:
    """The runbook shipped with the package, as a page; each alert is an anchor."""
    text = resources.files("exporter").joinpath("runbook.md").read_text(encoding="utf-8")
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        "<title>acme-http01-exporter runbook</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "pre{background:#f4f4f4;padding:8px}</style></head><body>\n"
        '<p><a href="./">acme-http01-exporter</a></p>\n'
        + markdown.render(text)
        + "\n</body></html>\n"
    )


def _json(status: int, data: object) -> WebResponse:
    body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    return WebResponse(status, body, "application/json")
