"""What the scenario suites share: a validator wired to the lab, and views of a result.

The engine is built from its public parts (settings, the DNS seam pointed at the lab's
DNS server, the dial seam with the lab's router), with short timeouts so that a case
that waits for a timeout stays quick.
"""

from __future__ import annotations

from typing import Any

from exporter.dial import Dialer, Router
from exporter.dns import DnspythonResolver
from exporter.http01 import Settings, Validator
from exporter.lab import servers as L
from exporter.policy import AddressPolicy
from exporter.records import FallbackPolicy, ValidationResult

TOKEN, KA = L.CANARY_TOKEN, L.CANARY_KA
PATH = f"/.well-known/acme-challenge/{TOKEN}"


def url(name: str, scheme: str = "http") -> str:
    return f"{scheme}://{name}{PATH}"


def validator(
    lab: L.Lab,
    *,
    policy: FallbackPolicy = FallbackPolicy.BOULDER,
    dial: float = 0.5,
    budget: float = 3.0,
    caa: bool = False,
    account_uris: frozenset[str] = frozenset(),
    addresses: AddressPolicy | None = None,
    routes: Router | None = None,
) -> Validator:
    """A validator for ``lab``; CAA is off unless asked for (these suites are about the
    fetch; the CAA suite turns it on)."""
    settings = Settings(
        policy=policy,
        dial_timeout=dial,
        validation_timeout=budget,
        tls_timeout=10.0,
        caa=caa,
        account_uris=account_uris,
        addresses=addresses or AddressPolicy(lab_addresses=frozenset(lab.routes.endpoints)),
    )
    resolver = DnspythonResolver([lab.dns.host], lab.dns.port, timeout=1.0)
    return Validator(settings, resolver, Dialer(routes or lab.routes))


async def validate(
    lab: L.Lab, name: str, *, canary: bool = True, **settings: Any
) -> ValidationResult:
    """Validate ``name`` against ``lab``: a canary (the lab's token) unless ``canary`` is
    false (reachability mode)."""
    engine = validator(lab, **settings)
    if canary:
        return await engine.validate(name, token=TOKEN, key_authorization=KA)
    return await engine.validate(name)


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
