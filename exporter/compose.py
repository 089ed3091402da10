"""Composition: the validation engine, built from a config.

Rule: the one place where a :class:`~exporter.config.Config` becomes the engine's
parts (the address policy, the validator's settings, the resolver, the dialer
and its router). ``check``, ``/probe`` and the scheduler all get their validator
from :func:`build_validator`, so they cannot drift apart; the config itself knows
nothing of the engine.

A running exporter holds one :class:`Bundle`: the config and everything built from it.
:func:`load_bundle` reads, validates and builds it whole, or raises
:class:`~exporter.config.ConfigError` (the file, the key, the reason) having changed
nothing. Start-up, every reload and ``--config.check`` call it, so "the check says OK"
means "a reload would apply".
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dns.resolver

from exporter.certs import CertificateReader
from exporter.config import Config, ConfigError, load, parse_endpoint
from exporter.dial import Dialer, PortMap, Router
from exporter.dns import DnspythonResolver
from exporter.http01 import Settings, Validator
from exporter.policy import AddressPolicy
from exporter.records import FallbackPolicy

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

__all__ = [
    "Bundle",
    "build_bundle",
    "build_certificate_reader",
    "build_resolver",
    "build_router",
    "build_settings",
    "build_validator",
    "load_bundle",
]


def build_router(config: Config) -> Router:
    """Where connects really go: the addresses as given, unless the lab section says not.

    A config with ``lab.address_map`` was written for the loopback lab (``acme-http01-exporter
    lab``); its router is the lab's own.
    """
    lab = config.lab
    ports = {
        logical: real
        for logical, real in ((80, lab.http_port), (443, lab.https_port))
        if logical != real
    }
    if not lab.address_map:
        return PortMap(ports)
    from exporter.lab.routing import AddressMap

    endpoints = {
        address: {
            port: parse_endpoint(spec)
            for port, spec in ((80, endpoint.http), (443, endpoint.https))
            if spec is not None
        }
        for address, endpoint in lab.address_map.items()
    }
    return AddressMap(endpoints=endpoints, ports=ports)


def _addresses(config: Config) -> AddressPolicy:
    return AddressPolicy(
        allow_loopback=config.lab.allow_loopback,
        allow_reserved=config.lab.allow_reserved,
        lab_addresses=frozenset(config.lab.address_map),
    )


def build_settings(config: Config, policy: FallbackPolicy | None = None) -> Settings:
    """The validator's settings; ``policy`` overrides the configured fallback policy."""
    return Settings(
        policy=policy or config.policy,
        dial_timeout=config.timeouts.dial,
        validation_timeout=config.timeouts.validation,
        tls_timeout=config.timeouts.tls,
        caa=config.caa.enabled,
        account_uris=frozenset(config.caa.account_uris),
        addresses=_addresses(config),
        # The challenge URL and a few redirect targets per domain, and room for /probe.
        remembered_urls=4 * len(config.domains) + 1024,
    )


def build_resolver(config: Config) -> DnspythonResolver:
    """The resolver: the configured nameservers, or the system's (/etc/resolv.conf)."""
    resolver = config.resolver
    return DnspythonResolver(resolver.nameservers or None, resolver.port, resolver.timeout)


def build_validator(config: Config, policy: FallbackPolicy | None = None) -> Validator:
    """A validator for ``config`` (under ``policy`` instead of the configured one, if given)."""
    return Validator(
        build_settings(config, policy), build_resolver(config), Dialer(build_router(config))
    )


def build_certificate_reader(config: Config) -> CertificateReader:
    """What reads the certificate each domain serves (same resolver, router, timeouts)."""
    return CertificateReader(
        build_resolver(config),
        Dialer(build_router(config)),
        _addresses(config),
        dial_timeout=config.timeouts.dial,
        tls_timeout=config.timeouts.tls,
        renewal_remaining=config.certificates.renewal_remaining,
        ca_file=config.certificates.ca_file,
    )


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Bundle:
    """A config and everything built from it; replaced whole, never in part."""

    config: Config
    #: The file it came from (None: the demo's config, built in memory).
    source: str | None
    validator: Validator
    certificates: CertificateReader
    #: The Kubernetes client config (``sources.kubernetes``), loaded: None without one.
    kubeconfig: SingleConfig | None = None


def build_bundle(config: Config, source: str | None = None) -> Bundle:
    """Everything ``config`` needs, built now: what cannot be built (the system resolver's
    configuration, the CA file) is a :class:`ConfigError` naming ``source`` and the key."""
    where = source or "<config>"
    try:
        validator = build_validator(config)
    except dns.resolver.NoResolverConfiguration as exc:
        raise ConfigError(
            where,
            [f"resolver.nameservers: empty, and the system resolver has none configured ({exc})"],
        ) from None
    try:
        certificates = build_certificate_reader(config)
    except (OSError, ssl.SSLError) as exc:
        path = config.certificates.ca_file
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            where, [f"certificates.ca_file: cannot load {path!r} as a CA bundle: {reason}"]
        ) from None
    kubeconfig = None
    if config.sources.kubernetes is not None:
        from exporter.discovery.kubernetes import load_kubeconfig

        try:
            kubeconfig = load_kubeconfig(config.sources.kubernetes)
        except ValueError as exc:
            key = "kubeconfig" if config.sources.kubernetes.kubeconfig else "(in-cluster)"
            raise ConfigError(where, [f"sources.kubernetes.{key}: {exc}"]) from None
    return Bundle(config, source, validator, certificates, kubeconfig)


def load_bundle(path: str | Path) -> Bundle:
    """Read, validate and build the config file at ``path``; ConfigError if anything fails."""
    return build_bundle(load(path), str(path))
