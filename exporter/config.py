"""The configuration file: YAML in, one frozen :class:`Config` out, or a ConfigError.

Rule: data and validation only, and the single home of every default: each one
lives in the models below and nowhere else (``exporter.compose`` builds the
engine from a config; this module imports no other part of the package but the
records and the pure name rules, ``exporter.names``). Unknown keys are errors. A bad
file never half-loads: :func:`load` either returns a complete config or raises
:class:`ConfigError` listing every problem as ``<file>: <key>: <reason>``.

Durations are ``500ms``, ``10s``, ``5m``, ``1h``, ``7d`` or a number of seconds, and
every number is finite and within the range its field states (:data:`LIMITS`): a value
that would pass here and fail later (``.inf``, ``.nan``, ``1e300``) is refused here.
Domain names are normalised as an ACME client sends them (``exporter.names``: UTS #46
non-transitional, lowercase); a name Let's Encrypt's policy refuses still loads, and gets
that verdict when validated.

Reading a file (:func:`read_document`) is guarded too: the content must be stable (a file
caught mid-write is waited for, then refused as still changing), and the YAML is bounded
in size, nesting and alias expansion before anything is built from it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter.names import to_ascii
from exporter.records import FallbackPolicy

__all__ = [
    "LIMITS",
    "Config",
    "ConfigError",
    "DomainConfig",
    "load",
    "normalise_domain",
    "parse",
    "parse_duration",
    "parse_endpoint",
    "problems_of",
    "read_document",
    "render",
    "validated",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(Exception):
    """A configuration that cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """``10s`` -> 10.0. Raises ValueError with a readable reason."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10s, 5m or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: use 500ms, 10s, 5m, 1h, 7d or seconds")
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: must be a finite number of seconds")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("must be greater than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``604800`` -> ``7d``; ``0.5`` -> ``500ms``: the largest unit that divides it."""
    if seconds > 1e9:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds * 1000:g}ms"


#: The range of every bounded number, by field: (minimum, maximum), both included. A value
#: outside it is refused at load, with the range in the reason; nothing later has to guard
#: against a timer of 1e300 seconds or a schedule of ``.inf``.
LIMITS: dict[str, tuple[float, float]] = {
    "interval": (1.0, 7 * 86400.0),
    "jitter": (0.0, 7 * 86400.0),
    "timeout": (0.01, 300.0),
    "resolver_timeout": (0.01, 60.0),
    "certificates_interval": (1.0, 7 * 86400.0),
    "renewal_window": (0.0, 365 * 86400.0),
    "refresh_interval": (1.0, 86400.0),
}


def _within(field: str) -> Callable[[float], float]:
    low, high = LIMITS[field]

    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(
                f"{format_duration(value) if value > 0 else value} is out of range: "
                f"use {format_duration(low) if low else 0} to {format_duration(high)}"
            )
        return value

    return check


def _zero_or_more(value: object) -> float:
    return parse_duration(value, allow_zero=True)


# Duration fields, each bounded by its LIMITS entry.
Interval = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_within("interval"))]
Jitter = Annotated[float, BeforeValidator(_zero_or_more), AfterValidator(_within("jitter"))]
Timeout = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_within("timeout"))]
ResolverTimeout = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_within("resolver_timeout"))
]
CertificatesInterval = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_within("certificates_interval"))
]
RefreshInterval = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_within("refresh_interval"))
]
RenewalWindow = Annotated[
    float, BeforeValidator(_zero_or_more), AfterValidator(_within("renewal_window"))
]


def normalise_domain(value: str) -> str:
    """The name as an ACME client sends it (:func:`exporter.names.to_ascii`): lowercase,
    trailing dot removed, IDNs as UTS #46 A-labels. ValueError only for what cannot be a
    name at all: a name Let's Encrypt refuses loads, and its validation says why."""
    return to_ascii(value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def account_uri_ok(uri: str) -> bool:
    """Whether ``uri`` has the shape of an ACME account URI."""
    return re.match(r"^https://[^/\s]+/\S*$", uri) is not None


def _account_uris(value: list[str] | None) -> list[str] | None:
    for uri in value or ():
        if not account_uri_ok(uri):
            raise ValueError(f"{uri!r} is not an ACME account URI such as {_ACCOUNT_EXAMPLE}")
    return value


_ACCOUNT_EXAMPLE = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789"


class DomainConfig(_Model):
    """One domain to validate; with a token and key authorization it is a canary."""

    name: str
    token: str | None = None
    key_authorization: str | None = None
    #: The ACME account URIs this domain's certificates are ordered with, for CAA
    #: ``accounturi`` (absent: ``caa.account_uris``).
    account_uris: list[str] | None = None

    _uris = field_validator("account_uris")(_account_uris)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalise_domain(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN.match(value):
            raise ValueError("a token uses only the base64url characters A-Z a-z 0-9 _ -")
        return value

    @model_validator(mode="after")
    def _pair(self) -> DomainConfig:
        if (self.token is None) != (self.key_authorization is None):
            raise ValueError("token and key_authorization go together: set both or neither")
        if (
            self.token is not None
            and self.key_authorization is not None
            and not self.key_authorization.startswith(self.token + ".")
        ):
            raise ValueError('key_authorization must be "<token>.<account thumbprint>"')
        return self


class Timeouts(_Model):
    #: Each TCP connect (Let's Encrypt: 10 s).
    dial: Timeout = 10.0
    #: The whole validation, redirects and fallback included (Let's Encrypt's tests: 20 s).
    validation: Timeout = 20.0
    #: Each TLS handshake (Let's Encrypt: 10 s).
    tls: Timeout = 10.0


class ResolverConfig(_Model):
    #: Nameserver addresses; empty: the system resolver (/etc/resolv.conf).
    nameservers: list[str] = Field(default_factory=list)
    port: int = Field(53, ge=1, le=65535)
    timeout: ResolverTimeout = 5.0

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value


class Endpoint(_Model):
    http: str | None = None  # "host:port" or "[v6]:port"; absent: refused
    https: str | None = None

    @field_validator("http", "https")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parse_endpoint(value)
        return value


def parse_endpoint(value: str) -> tuple[str, int]:
    """``[::1]:8080`` -> ``("::1", 8080)``; only loopback endpoints are accepted."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"{value!r} is not an address:port such as [::1]:8080") from None
    if not sep or not 0 < number < 65536:
        raise ValueError(f"{value!r} is not an address:port such as [::1]:8080")
    if not ip.is_loopback:
        raise ValueError(f"{value!r}: lab endpoints must be on loopback")
    return str(ip), number


class LabConfig(_Model):
    """Testing only; never needed against real domains."""

    #: Dial this port instead of 80 (URLs and Host headers stay without a port).
    http_port: int = Field(80, ge=1, le=65535)
    #: Dial this port instead of 443.
    https_port: int = Field(443, ge=1, le=65535)
    #: Accept 127.0.0.0/8 and ::1 as targets.
    allow_loopback: bool = False
    #: Accept every special-purpose block (documentation, ULA, private, ...) as targets.
    allow_reserved: bool = False
    #: Route an address's port 80 / 443 to a loopback endpoint (address -> endpoints).
    address_map: dict[str, Endpoint] = Field(default_factory=dict)

    @field_validator("address_map")
    @classmethod
    def _map(cls, value: dict[str, Endpoint]) -> dict[str, Endpoint]:
        out: dict[str, Endpoint] = {}
        for key, endpoint in value.items():
            try:
                out[str(ipaddress.ip_address(key))] = endpoint
            except ValueError:
                raise ValueError(f"{key!r} is not an IP address") from None
        return out


class CaaConfig(_Model):
    #: Check CAA as Let's Encrypt does: a refusal fails the validation.
    enabled: bool = True
    #: The ACME account URIs the domains' certificates are ordered with (Let's Encrypt's
    #: ``https://acme-v02.api.letsencrypt.org/acme/acct/<id>``), to compare with a CAA
    #: ``accounturi``. Empty: such a restriction is reported as not checked, never guessed.
    account_uris: list[str] = Field(default_factory=list)

    _uris = field_validator("account_uris")(_account_uris)


class CertificatesConfig(_Model):
    #: Read the certificate each domain serves on 443: expiry, issue date, issuer, chain.
    enabled: bool = True
    #: How often (it changes rarely, and each reading costs a TLS handshake).
    interval: CertificatesInterval = 3600.0
    #: A standard ACME client renews when this fraction of the lifetime is left.
    renewal_remaining: float = Field(1 / 3, gt=0, lt=1, allow_inf_nan=False)
    #: A failing domain whose renewal is due within this window is urgent (the alerts).
    renewal_window: RenewalWindow = 7 * 86400.0
    #: Extra CA certificates (PEM) to verify chains with; default: the system trust store.
    ca_file: str | None = None
    #: Readings in flight at once (apart from the validations' ``concurrency``).
    concurrency: int = Field(10, ge=1, le=10_000)


class ProbeConfig(_Model):
    #: Let ``/probe`` validate names that are not configured (an open validator: careful).
    allow_any_target: bool = False


class FileSource(_Model):
    """Files of names, read as Prometheus' ``file_sd_configs`` reads target files."""

    #: Paths and globs (``*``, ``?``, ``[...]`` in the last part only, as file_sd) of YAML or
    #: JSON files, each a list of names or of file_sd groups (``{targets: [names]}``).
    files: list[str] = Field(min_length=1)
    #: How often the files are checked for a change (a stat; read again only on change).
    refresh_interval: RefreshInterval = 30.0

    @field_validator("files")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern.strip():
                raise ValueError("an empty path")
            head = os.path.dirname(pattern)
            if any(ch in head for ch in "*?["):
                raise ValueError(f"{pattern!r}: a pattern may only be in the last part of the path")
        return value


class KindSource(_Model):
    #: Watch this kind.
    enabled: bool = True
    #: A Kubernetes label selector (``app=web,tier!=test``), sent to the API as is.
    label_selector: str = ""

    @field_validator("label_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("a label selector is one line")
        return value


class IngressSource(KindSource):
    #: Only Ingresses of these classes (``spec.ingressClassName``, or the annotation
    #: ``kubernetes.io/ingress.class``); empty: every class.
    ingress_classes: list[str] = Field(default_factory=list)
    #: Only Ingresses annotated ``cert-manager.io/issuer`` or ``cert-manager.io/cluster-issuer``.
    cert_manager_only: bool = False


class KubernetesSource(_Model):
    """Names from the Kubernetes API: listed, then watched (never polled)."""

    #: A kubeconfig file; absent: the pod's service account, else ``$KUBECONFIG`` or
    #: ``~/.kube/config``.
    kubeconfig: str | None = None
    #: The kubeconfig context; absent: its current context.
    context: str | None = None
    #: Namespaces to watch; empty: all (one cluster-wide watch per kind).
    namespaces: list[str] = Field(default_factory=list)
    #: Ingress (networking.k8s.io/v1): rules' hosts and TLS hosts.
    ingress: IngressSource = Field(default_factory=IngressSource)
    #: cert-manager Certificate (cert-manager.io/v1): dnsNames an ACME HTTP-01 solver of its
    #: Issuer or ClusterIssuer validates.
    certificate: KindSource = Field(default_factory=KindSource)
    #: Gateway API HTTPRoute (gateway.networking.k8s.io/v1): hostnames, within its parent
    #: Gateways' listeners.
    httproute: KindSource = Field(default_factory=KindSource)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAMESPACE.match(name):
                raise ValueError(f"{name!r} is not a namespace name (RFC 1123 label)")
        if len(set(value)) != len(value):
            raise ValueError("a namespace is listed twice")
        return value


_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class Sources(_Model):
    #: The same as the top-level ``domains`` (set one of the two).
    static: list[DomainConfig] | None = Field(default=None, exclude=True)
    #: Watched files of names.
    files: list[FileSource] = Field(default_factory=list)
    #: The Kubernetes API; absent: none.
    kubernetes: KubernetesSource | None = None


def _domain_items(value: Any) -> Any:
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


class Config(_Model):
    #: How often each domain is validated.
    interval: Interval = 300.0
    #: Random delay added to each run, at most ``interval``; default 10% of ``interval``.
    jitter: Jitter | None = None
    #: Validations in flight at once.
    concurrency: int = Field(100, ge=1, le=100_000)
    #: ``boulder`` (Let's Encrypt today) or ``per-hop`` (its proposed change).
    policy: FallbackPolicy = FallbackPolicy.BOULDER
    timeouts: Timeouts = Field(default_factory=Timeouts)
    resolver: ResolverConfig = Field(default_factory=ResolverConfig)
    caa: CaaConfig = Field(default_factory=CaaConfig)
    certificates: CertificatesConfig = Field(default_factory=CertificatesConfig)
    lab: LabConfig = Field(default_factory=LabConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    domains: list[DomainConfig] = Field(default_factory=list)
    #: Where else names come from (files, Kubernetes); ``sources.static`` is ``domains``.
    sources: Sources = Field(default_factory=Sources)

    @model_validator(mode="before")
    @classmethod
    def _static_alias(cls, data: Any) -> Any:
        sources = data.get("sources") if isinstance(data, dict) else None
        if isinstance(sources, dict) and sources.get("static") is not None:
            if data.get("domains"):
                raise ValueError("sources.static and domains are the same list: set one of them")
            data = {**data, "domains": sources["static"], "sources": {**sources, "static": None}}
        return data

    @field_validator("domains", mode="before")
    @classmethod
    def _domains(cls, value: Any) -> Any:
        return _domain_items(value)

    @field_validator("domains", mode="after")
    @classmethod
    def _unique(cls, value: list[DomainConfig]) -> list[DomainConfig]:
        seen: set[str] = set()
        for domain in value:
            if domain.name in seen:
                raise ValueError(f"domain {domain.name!r} is listed twice")
            seen.add(domain.name)
        return value

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if value is not None and interval is not None and value > interval:
            raise ValueError(
                f"{format_duration(value)} is longer than the interval "
                f"({format_duration(interval)}): use at most the interval"
            )
        return value

    @property
    def effective_jitter(self) -> float:
        return self.interval * 0.1 if self.jitter is None else self.jitter

    def domain(self, name: str) -> DomainConfig | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, DomainConfig]:
        return {domain.name: domain for domain in self.domains}


_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def render(config: Config) -> bytes:
    """The config as YAML that :func:`parse` reads back to a config that behaves the same:
    every key with its value in force (``jitter`` the effective one, 10% of the interval
    when the file left it out), and a domain with nothing but a name written as its name
    (as the file may write it; a 100,000-domain list is a quarter the size and time that
    way)."""
    document = config.model_dump(mode="json")
    document["jitter"] = config.effective_jitter
    document["domains"] = [
        domain["name"] if all(v is None for k, v in domain.items() if k != "name") else domain
        for domain in document["domains"]
    ]
    text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    return text.encode()


#: pydantic's texts replaced by ours, by error type.
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}
#: A part of an error's location that names a validator, not a key (pydantic puts one in
#: for a member of a union, e.g. ``function-after[check(), float]``).
_VALIDATOR_PART = re.compile(r"^function-(?:after|before|wrap|plain)\[")


def _location(loc: Sequence[int | str]) -> str:
    """``("domains", 0, "name")`` -> ``domains[0].name``; an empty one is the top level."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _VALIDATOR_PART.match(part):
            out += ("." if out else "") + part
    return out or "(top level)"


def problems_of(exc: ValidationError) -> list[str]:
    """One ``<key>: <reason>`` line per error pydantic found, in its order."""
    return [
        f"{_location(error['loc'])}: "
        + _MESSAGES.get(error["type"], error["msg"]).removeprefix("Value error, ")
        for error in exc.errors()
    ]


_Model_T = TypeVar("_Model_T", bound=BaseModel)


def validated(model: type[_Model_T], data: object, source: str) -> _Model_T:
    """A YAML document as ``model``, or a :class:`ConfigError` naming every problem as
    ``<key>: <reason>`` (the configuration file's and the web configuration file's rule)."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_of(exc)) from None


def parse(data: object, source: str = "<config>") -> Config:
    """Validate already-parsed YAML data (``None``, an empty document: every default)."""
    return validated(Config, {} if data is None else data, source)


#: A file last changed less than this long ago is read again after this long; it is used
#: only if both readings are the same (a writer that pauses longer than this between two
#: writes can still be caught: write the file elsewhere and rename it over, see the README).
SETTLE_SECONDS = 0.1
#: How long a file that keeps changing is waited for before the reading is refused.
STABLE_WAIT_SECONDS = 5.0
#: The YAML a config file may hold: its size, its nesting, and how much aliases may add to
#: it (an alias repeats its anchor's whole subtree; a few hundred bytes of aliases of
#: aliases expand to gigabytes: "billion laughs").
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000


def read_stable(path: str | Path, source: str | None = None) -> bytes:
    """The bytes of the file at ``path``, once they have stopped changing.

    A file is stable when it was last modified at least :data:`SETTLE_SECONDS` before it
    was read and its modification time, size and inode were the same before and after
    the reading; one changed more recently is read again after the settle time and used
    only when both readings are the same, bytes, modification time, size and inode (equal
    bytes alone may be the same prefix of two rewrites). An empty reading is never taken
    as settled by its modification time: a truncation can show the size 0 before the new
    time. A file still changing after :data:`STABLE_WAIT_SECONDS` is refused. Raises
    :class:`ConfigError`.
    """
    source = str(path) if source is None else source
    deadline = time.monotonic() + STABLE_WAIT_SECONDS
    previous: tuple[bytes, tuple[int, int, int]] | None = None
    while True:
        try:
            before = os.stat(path)
            if before.st_size > MAX_FILE_BYTES:
                raise ConfigError(
                    source,
                    [
                        f"(top level): the file is {before.st_size:,} bytes, more than the "
                        f"{MAX_FILE_BYTES:,} a config may hold"
                    ],
                )
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
            after = os.stat(path)
        except OSError as exc:
            raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
        identity = (after.st_mtime_ns, after.st_size, after.st_ino)
        same = (before.st_mtime_ns, before.st_size, before.st_ino) == identity
        settled = bool(data) and time.time_ns() - after.st_mtime_ns >= SETTLE_SECONDS * 1e9
        if same and (settled or previous == (data, identity)):
            return data
        if time.monotonic() >= deadline:
            raise ConfigError(
                source,
                [
                    f"(top level): the file is still changing after {STABLE_WAIT_SECONDS:g} s; "
                    "not applied (write it elsewhere and rename it over)"
                ],
            )
        previous = (data, identity) if same else None
        time.sleep(SETTLE_SECONDS)


def _check_yaml_shape(text: str, source: str) -> None:
    """Refuse YAML nested deeper than :data:`MAX_DEPTH`, or whose aliases would add more
    than :data:`MAX_ALIAS_NODES` nodes, before anything is built from it. One pass over
    libyaml's events (no recursion, nothing built)."""
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> nodes in its subtree
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes when it opened)
    nodes = 0
    added = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor or "", 1)
            added += size
            nodes += size
            if added > MAX_ALIAS_NODES:
                raise ConfigError(
                    source,
                    [
                        f"(top level): aliases expand to more than {MAX_ALIAS_NODES:,} nodes: "
                        "refused (write the values out instead of aliasing them)"
                    ],
                )
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            nodes += 1
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(top level)"
                raise ConfigError(
                    source, [f"{where}: nested more than {MAX_DEPTH} levels deep: refused"]
                )
            open_nodes.append((event.anchor, nodes))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_nodes.pop()
            if anchor:
                sizes[anchor] = nodes - start + 1


#: libyaml's parser and loader where PyYAML has them (ten times faster on a large list).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_document(path: str | Path) -> Any:
    """The one YAML document in the file at ``path``, read stable and bounded; a file that
    cannot be read or parsed, is still being written, is too large, too deep or too
    aliased, holds no document or more than one, is a :class:`ConfigError` naming the place.

    A file with no document (empty, blank, comments only) is refused, never read as "all
    defaults": it is what a reader sees between a truncate and a write, and accepting it
    would drop every domain (or, for the web config, every password) silently.
    """
    source = str(path)
    data = read_stable(path, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc}"]) from None
    try:
        _check_yaml_shape(text, source)
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}: invalid YAML: {problem}"]) from None
    if all(document is None for document in documents):
        raise ConfigError(source, ["(top level): the file holds no YAML document (empty?)"])
    if len(documents) > 1:
        raise ConfigError(source, ["(top level): the file holds more than one YAML document"])
    return documents[0]


def load(path: str | Path) -> Config:
    """Read and validate a config file."""
    return parse(read_document(path), str(path))
