"""What the validator suites share: settings, a validator wired to the lab, lab sites,
and views of a result.

The engine is built from its public parts (settings, the DNS seam pointed at the lab's
DNS server, the dial seam with the lab's router), with short timeouts so that a case
that waits for a timeout stays quick. The settings alone serve the driver's unit tests,
which put fakes at the seams (``tests.fakes``).
"""

from __future__ import annotations

from typing import Any

from exporter.dial import Dialer, Router
from exporter.dns import DnspythonResolver
from exporter.http01 import Settings, Validator
from exporter.lab import servers as L
from exporter.policy import AddressPolicy
from exporter.records import FallbackPolicy, Outcome, ValidationResult

TOKEN, KA = L.CANARY_TOKEN, L.CANARY_KA
PATH = f"/.well-known/acme-challenge/{TOKEN}"
#: A record's outcomes, as the tables of :func:`records` spell them.
RESP, REDIR, FAILED, REFUSED_REDIR = (
    Outcome.RESPONSE,
    Outcome.REDIRECT,
    Outcome.FAILED,
    Outcome.REFUSED_REDIRECT,
)


def url(name: str, scheme: str = "http") -> str:
    return f"{scheme}://{name}{PATH}"


def settings(
    *,
    policy: FallbackPolicy = FallbackPolicy.BOULDER,
    dial: float = 0.5,
    budget: float = 3.0,
    tls: float = 10.0,
    caa: bool = False,
    account_uris: frozenset[str] = frozenset(),
    addresses: AddressPolicy | None = None,
) -> Settings:
    """A validator's settings: short timeouts (``dial``, the ``budget`` of a whole
    validation, the ``tls`` handshake's), CAA off unless asked for (these suites are about
    the fetch; the CAA suite turns it on), production's address policy unless given."""
    return Settings(
        policy=policy,
        dial_timeout=dial,
        validation_timeout=budget,
        tls_timeout=tls,
        caa=caa,
        account_uris=account_uris,
        addresses=addresses or AddressPolicy(),
    )


def validator(
    lab: L.Lab,
    *,
    addresses: AddressPolicy | None = None,
    routes: Router | None = None,
    resolver_timeout: float = 1.0,
    **options: Any,
) -> Validator:
    """A validator for ``lab``: its DNS server, its router (or ``routes``), its addresses
    accepted as public (or ``addresses``); ``options`` are :func:`settings`'."""
    accepted = addresses or AddressPolicy(lab_addresses=frozenset(lab.routes.endpoints))
    resolver = DnspythonResolver([lab.dns.host], lab.dns.port, timeout=resolver_timeout)
    return Validator(
        settings(addresses=accepted, **options), resolver, Dialer(routes or lab.routes)
    )


async def validate(
    lab: L.Lab, name: str, *, canary: bool = True, **settings: Any
) -> ValidationResult:
    """Validate ``name`` against ``lab``: a canary (the lab's token) unless ``canary`` is
    false (reachability mode); ``settings`` are :func:`validator`'s options."""
    engine = validator(lab, **settings)
    if canary:
        return await engine.validate(name, token=TOKEN, key_authorization=KA)
    return await engine.validate(name)


#: Keys every result's JSON has (``check --json``, ``/domains/<name>``).
RESULT_KEYS = frozenset(
    {
        "domain",
        "success",
        "policy",
        "problem",
        "ipv4_fallback",
        "failed_hop",
        "redirects",
        "aaaa_mismatch",
        "records",
        "families",
        "duration_seconds",
    }
)


def records(result: ValidationResult) -> list[tuple[Any, ...]]:
    return [(r.hop, r.url, r.address_used, r.outcome, r.status, r.error) for r in result.records]


def problem(result: ValidationResult) -> tuple[Any, ...] | None:
    p = result.problem
    return None if p is None else (p.type, p.reason, p.detail)


async def site(lab: L.Lab, name: str, http: Any, https: Any = "refused") -> str:
    """An IPv4-only lab host for ``name`` whose ports 80 and 443 behave as given."""
    address = await lab.host(4, http, https)
    lab.zone.add(name, a=[address])
    return address


async def dual_site(
    lab: L.Lab,
    name: str,
    http6: Any,
    https6: Any,
    http4: Any | None = None,
    https4: Any | None = None,
) -> tuple[str, str]:
    """A lab host on each family for ``name`` (AAAA and A), whose ports 80 and 443 behave
    as given (the IPv4 host's serve the canary unless given); (IPv6, IPv4) addresses."""
    v6 = await lab.host(6, http6, https6)
    v4 = await lab.host(4, http4 or L.serve(), https4 or L.serve())
    lab.zone.add(name, a=[v4], aaaa=[v6])
    return v6, v4
