"""The demo lab: one domain per pitfall, served on loopback, and the config to watch them.

Rule: the showcase is data plus a builder; the same :class:`Showcase` backs
``--demo``, ``check --demo``, ``lab`` and the end-to-end tests, so what a newcomer
sees is what the tests assert.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from exporter import gocompat
from exporter.config import Config, FileSource, Sources, parse
from exporter.lab import servers as L
from exporter.lab.tls import lab_ssl_context

__all__ = ["SHOWCASE", "Showcase", "ShowcaseDomain", "start_showcase"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ShowcaseDomain:
    name: str
    description: str
    #: What Let's Encrypt would do today (policy ``boulder``).
    expect_success: bool
    build: Callable[[L.Lab, str], Awaitable[None]]


async def _healthy(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _wrong_aaaa(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, L.status(404), L.status(404))
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _aaaa_timeout(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, "timeout", "timeout")
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _aaaa_refused(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, "refused", "refused")
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _aaaa_timeout_https(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, "timeout", "timeout")
    v4 = await lab.host(4, L.redirect("https://{host}{path}"), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _ipv4_only(lab: L.Lab, name: str) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4])


async def _ipv6_dead_443(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, L.redirect("https://{host}{path}"), "timeout")
    v4 = await lab.host(4, L.redirect("https://{host}{path}"), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])


async def _nxdomain(lab: L.Lab, name: str) -> None:
    return None


async def _caa_forbids(lab: L.Lab, name: str) -> None:
    v6 = await lab.host(6, L.serve(), L.serve())
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6], caa=[(0, "issue", "digicert.com")])


async def _dnssec_bogus(lab: L.Lab, name: str) -> None:
    # What a validating resolver (Unbound with ede: yes) answers for a zone whose
    # signatures expired: SERVFAIL with an Extended DNS Error, for every type.
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(
        name,
        a=[v4],
        rcode={"A": "SERVFAIL", "AAAA": "SERVFAIL", "CAA": "SERVFAIL"},
        ede={
            rdtype: (7, f"validation failure <{name}. {rdtype} IN>: signature expired from {ns}")
            for rdtype, ns in (("A", "192.0.2.53"), ("AAAA", "192.0.2.53"), ("CAA", "192.0.2.53"))
        },
    )


async def _cert_renewal_due(lab: L.Lab, name: str) -> None:
    # A 90-day certificate issued 58 days ago: a standard client renews it in two days.
    v4 = await lab.host(
        4, L.status(404), L.serve(), tls=lab_ssl_context(validity=(-58 * DAY, 32 * DAY))
    )
    lab.zone.add(name, a=[v4])


async def _cert_renewal_far(lab: L.Lab, name: str) -> None:
    # A 90-day certificate issued yesterday: its renewal is two months away.
    v4 = await lab.host(
        4, L.status(404), L.serve(), tls=lab_ssl_context(validity=(-1 * DAY, 89 * DAY))
    )
    lab.zone.add(name, a=[v4])


async def _aaaa_servfail(lab: L.Lab, name: str) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add(name, a=[v4], servfail={"AAAA"})


SHOWCASE: tuple[ShowcaseDomain, ...] = (
    ShowcaseDomain(
        "healthy.example.com",
        "dual-stack, both families serve the challenge",
        True,
        _healthy,
    ),
    ShowcaseDomain(
        "wrong-aaaa.example.com",
        "the AAAA points at another server that answers 404: no fallback, fails",
        False,
        _wrong_aaaa,
    ),
    ShowcaseDomain(
        "aaaa-timeout.example.com",
        "the AAAA times out: Let's Encrypt falls back to the A record and succeeds",
        True,
        _aaaa_timeout,
    ),
    ShowcaseDomain(
        "aaaa-refused.example.com",
        "the AAAA refuses connections: falls back to the A record, succeeds",
        True,
        _aaaa_refused,
    ),
    ShowcaseDomain(
        "aaaa-timeout-https.example.com",
        "the AAAA times out and port 80 redirects to HTTPS: the HTTPS hop has no fallback",
        False,
        _aaaa_timeout_https,
    ),
    ShowcaseDomain(
        "ipv4-only.example.com",
        "no AAAA at all",
        True,
        _ipv4_only,
    ),
    ShowcaseDomain(
        "ipv6-dead-443.example.com",
        "IPv6 works on port 80 but not on 443, with an HTTPS redirect: fails today "
        "(Redirect loop detected), the per-hop policy would succeed",
        False,
        _ipv6_dead_443,
    ),
    ShowcaseDomain(
        "nxdomain.example.com",
        "the name does not exist",
        False,
        _nxdomain,
    ),
    ShowcaseDomain(
        "caa-forbids.example.com",
        "the web server is fine, but its CAA record names only another CA: Let's Encrypt "
        "refuses to issue",
        False,
        _caa_forbids,
    ),
    ShowcaseDomain(
        "dnssec-bogus.example.com",
        "the zone's DNSSEC signatures expired: a validating resolver (Let's Encrypt's) "
        "answers SERVFAIL",
        False,
        _dnssec_bogus,
    ),
    ShowcaseDomain(
        "cert-renewal-due.example.com",
        "the challenge URL answers 404 and the certificate served on 443 is due for renewal "
        "in two days: the renewal will fail, urgently",
        False,
        _cert_renewal_due,
    ),
    ShowcaseDomain(
        "cert-renewal-far.example.com",
        "the same failure, but the certificate's renewal is two months away: time to fix it",
        False,
        _cert_renewal_far,
    ),
    ShowcaseDomain(
        "aaaa-servfail.example.com",
        "the AAAA lookup fails (SERVFAIL) while A works: Let's Encrypt silently uses IPv4 "
        "and succeeds; the exporter shows the hidden failure",
        True,
        _aaaa_servfail,
    ),
)


#: The demo's file of names (a files source): a showcase name found there too, and a
#: wildcard that Let's Encrypt never validates over HTTP-01 (listed as skipped).
DEMO_FILE_NAMES = ("healthy.example.com", "*.example.com")


@dataclass
class Showcase:
    lab: L.Lab
    config: Config
    #: A directory the demo's files source reads (removed on stop).
    files: str | None = None

    def with_demo_files(self) -> Config:
        """The config with a files source of :data:`DEMO_FILE_NAMES` added, so that the demo
        shows discovery (where each name came from, a skipped wildcard) too."""
        self.files = tempfile.mkdtemp(prefix="acme-http01-demo-")
        path = os.path.join(self.files, "names.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("".join(f"- '{name}'\n" for name in DEMO_FILE_NAMES))
        sources = Sources(files=[FileSource(files=[path])])
        return self.config.model_copy(update={"sources": sources})

    async def stop(self) -> None:
        await self.lab.stop()
        if self.files is not None:
            shutil.rmtree(self.files, ignore_errors=True)


def lab_config(lab: L.Lab, domains: list[Any], **overrides: Any) -> dict[str, Any]:
    """A config document that validates ``domains`` against ``lab``."""

    def spec(endpoint: tuple[str, int] | None) -> str | None:
        if endpoint is None:
            return None
        host, port = endpoint
        return gocompat.join_host_port(host, port)

    document: dict[str, Any] = {
        "interval": "30s",
        "timeouts": {"dial": "2s", "validation": "6s"},
        "resolver": {"nameservers": [lab.dns.host], "port": lab.dns.port, "timeout": "2s"},
        "lab": {
            "address_map": {
                address: {"http": spec(ports.get(80)), "https": spec(ports.get(443))}
                for address, ports in lab.routes.endpoints.items()
            }
        },
        "domains": domains,
    }
    document.update(overrides)
    return document


async def start_showcase(**overrides: Any) -> Showcase:
    """Start the lab with every showcase domain; timeouts shortened so it is quick."""
    lab = L.Lab()
    await lab.start()
    try:
        for domain in SHOWCASE:
            await domain.build(lab, domain.name)
        domains = [
            {"name": d.name, "token": L.CANARY_TOKEN, "key_authorization": L.CANARY_KA}
            for d in SHOWCASE
        ]
        config = parse(lab_config(lab, domains, **overrides), "<demo>")
    except BaseException:
        await lab.stop()
        raise
    return Showcase(lab, config)
