"""The HTTP endpoints: routing, the landing page, ``/probe``, ``/domains``, ``/config``.

Rule: presentation only. Every page is rendered from the exporter's state at
request time (the result store's snapshot, the config in force); nothing here
validates on a schedule or changes state, except ``POST /-/reload``, which asks
the exporter to reload, and ``/probe``, which runs one validation and stores
nothing. The HTTP server itself is ``exporter.web``.

    /                  landing page: every domain, its verdict and fix
    /metrics           the metrics (text format 0.0.4, gzip if asked)
    /domains/<name>    the last result of one domain, as JSON (every record)
    /probe?target=     one validation now (configured domains unless allowed)
    /config            the config in force, as YAML
    /runbook           the alerts' runbook (each alert's name is an anchor)
    /-/healthy         liveness
    /-/ready           200 once every domain has a first result
    /-/reload          POST: re-read the config file (like SIGHUP)
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import html
import json
import time
from importlib import resources

import yaml

from exporter import __version__, markdown
from exporter.config import DomainConfig, normalise_domain
from exporter.metrics import DomainState, render_domains
from exporter.records import CertificateCheck, FallbackPolicy, ValidationResult
from exporter.report import fix_hint, render, verdict
from exporter.service import Exporter
from exporter.web import WebRequest, WebResponse

__all__ = ["Endpoints"]

#: At most this many /probe validations in flight (each one is a full validation).
_MAX_PROBES = 20


class Endpoints:
    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._probes = asyncio.Semaphore(max(1, min(exporter.config.concurrency, _MAX_PROBES)))

    async def handle(self, request: WebRequest) -> WebResponse:
        path = request.path
        if path == "/-/reload":
            if request.method not in ("POST", "PUT"):
                return WebResponse(405, b"use POST\n", headers=(("Allow", "POST"),))
            ok, message = await self.exporter.reload()
            return WebResponse.text(200 if ok else 500, message + "\n")
        if request.method not in ("GET", "HEAD"):
            return WebResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if path == "/metrics":
            return await self._metrics(request)
        if path == "/-/healthy":
            return WebResponse.text(200, "Healthy\n")
        if path == "/-/ready":
            if self.exporter.store.complete():
                return WebResponse.text(200, "Ready\n")
            return WebResponse.text(503, "Not ready: waiting for every domain's first result\n")
        if path == "/":
            return WebResponse(200, self._landing().encode(), "text/html; charset=utf-8")
        if path.startswith("/domains/"):
            return self._domain(path.removeprefix("/domains/"))
        if path == "/probe":
            return await self._probe(request)
        if path == "/runbook":
            return WebResponse(200, _runbook().encode(), "text/html; charset=utf-8")
        if path == "/config":
            document = self.exporter.config.model_dump(mode="json")
            return WebResponse(
                200, yaml.safe_dump(document, sort_keys=False).encode(), "text/yaml; charset=utf-8"
            )
        return WebResponse.text(404, "not found\n")

    async def _metrics(self, request: WebRequest) -> WebResponse:
        # Always the text format 0.0.4, which every Prometheus accepts; rendered in a
        # thread so that a large scrape never stalls the validations' event loop.
        content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.exporter.state.tasks = len(asyncio.all_tasks())
        body = await asyncio.to_thread(self.exporter.exposition.render)
        headers: tuple[tuple[str, str], ...] = ()
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers = (("Content-Encoding", "gzip"),)
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
        domain = exporter.config.domain(name)
        if domain is None:
            if not exporter.config.probe.allow_any_target:
                exporter.metrics.probes.labels("refused").inc()
                return WebResponse.text(
                    403,
                    f"{name} is not a configured domain (set probe.allow_any_target to allow)\n",
                )
            domain = DomainConfig(name=name)
        validator = exporter.validator_for(policy)
        if self._probes.locked():
            exporter.metrics.probes.labels("refused").inc()
            return WebResponse.text(503, "too many /probe requests in flight; retry later\n")
        async with self._probes:
            result = await exporter.validate(domain, validator)
        exporter.metrics.probes.labels("success" if result.success else "failure").inc()
        if request.arg("debug") == "true":
            text = render(result) + "\n\n" + json.dumps(result.to_json(), indent=2) + "\n"
            return WebResponse.text(200, text)
        body = render_domains({result.domain: DomainState().after(result)}).encode()
        return WebResponse(200, body, "text/plain; version=0.0.4")

    def _landing(self) -> str:
        rows = []
        for name, state in self.exporter.store.snapshot().items():
            rows.extend(_landing_rows(name, state.result, state.certificate))
        warning = ""
        if not self.exporter.state.ipv6_capable:
            warning = (
                '<p class="warn">This host cannot route IPv6. Let\'s Encrypt dials IPv6 first, '
                "so verdicts for domains with AAAA records are not measured here.</p>"
            )
        if not self.exporter.state.resolver_validating:
            warning += (
                '<p class="warn">The resolver does not validate DNSSEC (or has not answered '
                "the check yet). Let's Encrypt resolves "
                "every name itself with a validating recursive resolver: predictions here are "
                "only as good as this resolver's view (a split-horizon DNS or a zone with broken "
                "DNSSEC looks different to Let's Encrypt). Run Unbound beside the exporter.</p>"
            )
        if not self.exporter.state.reload_successful:
            warning += '<p class="warn">The last config reload failed; see the log.</p>'
        return _LANDING.format(
            version=__version__,
            policy=html.escape(str(self.exporter.config.policy)),
            interval=self.exporter.config.interval,
            warning=warning,
            rows="\n".join(rows),
        )


def _landing_rows(
    name: str, result: ValidationResult | None, certificate: CertificateCheck | None
) -> list[str]:
    """One domain's row on the landing page, and a row with its fix if it has one."""
    link = f'<a href="/domains/{html.escape(name)}">trace</a>'
    probe = f'<a href="/probe?target={html.escape(name)}&amp;debug=true">run now</a>'
    if result is None:
        cells = [name, "pending", "", "", "", "", "", "", "", ""]
    else:
        problem = result.problem
        cells = [
            name,
            "OK" if result.success else "FAIL",
            "" if problem is None else f"{problem.type}/{problem.reason}: {problem.detail}",
            "yes" if result.ipv4_fallback else "",
            "yes" if result.aaaa_mismatch else "",
            "yes" if result.failed_on_redirect_hop else "",
            _caa_cell(result),
            _certificate_cell(certificate),
            ", ".join(f"{e.family} {e.reason}" for e in result.dns_family_errors if e.hop == 0),
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(result.finished_at)),
        ]
    title = html.escape(verdict(result) if result else "")
    css = "" if result is None else ("ok" if result.success else "fail")
    escaped = [html.escape(str(c)) for c in cells] + [f"{link} {probe}"]
    row = f'<tr class="{css}" title="{title}">' + "".join(f"<td>{c}</td>" for c in escaped)
    rows = [row + "</tr>"]
    hint = fix_hint(result) if result is not None else None
    if hint:
        rows.append(f'<tr class="hint"><td></td><td colspan="10">{html.escape(hint)}</td></tr>')
    return rows


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


_LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>acme-http01-exporter</title>
<style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
tr.ok td:nth-child(2){{color:#186a1e;font-weight:bold}}
tr.fail td:nth-child(2){{color:#b00020;font-weight:bold}}
tr.hint td{{color:#555;font-size:90%;border-top:none}} .warn{{background:#fde8e8;padding:8px}}
</style></head><body>
<h1>acme-http01-exporter {version}</h1>
<p>Let's Encrypt HTTP-01 validation, predicted with the CA's own IPv6/IPv4 fallback and
redirect rules (policy <b>{policy}</b>, every {interval:g}s).
<a href="/metrics">Metrics</a> &middot; <a href="/config">Config</a> &middot;
<a href="/runbook">Runbook</a> &middot;
<a href="/-/ready">Ready</a></p>
{warning}
<table><tr><th>domain</th><th>verdict</th><th>problem</th><th>IPv4 fallback</th>
<th>AAAA mismatch</th><th>redirect-hop failure</th><th>CAA</th><th>certificate</th>
<th>hidden DNS failure</th>
<th>last run</th><th></th></tr>
{rows}
</table></body></html>
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
        + markdown.render(text)
        + "\n</body></html>\n"
    )


def _json(status: int, data: object) -> WebResponse:
    body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    return WebResponse(status, body, "application/json")
