"""The configuration file: YAML in, one frozen :class:`Config` out, or a ConfigError.

Rule: data and validation only, and the single home of every default: each one
lives in the models below and nowhere else (``exporter.compose`` builds the
engine from a config; this module imports no other part of the package but the
records). Unknown keys are errors. A bad file never half-loads: :func:`load` either
returns a complete config or raises :class:`ConfigError` listing every problem
as ``<file>: <key>: <reason>``.

Durations are ``500ms``, ``10s``, ``5m``, ``1h``, ``7d`` or a number of seconds.
Domain names are normalised as Let's Encrypt does: lowercase, IDNs in punycode.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from exporter.records import FallbackPolicy

__all__ = [
    "Config",
    "ConfigError",
    "DomainConfig",
    "load",
    "normalise_domain",
    "parse",
    "parse_duration",
    "parse_endpoint",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def normalise_domain(value: str) -> str:
    """Lowercase, trailing dot removed, IDN labels in punycode; ValueError if not a name."""
    name = value.strip().rstrip(".").lower()
    if not name:
        raise ValueError("empty domain name")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is an IP address; only DNS names are validated")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{value!r} is not a valid domain name ({exc})") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise ValueError(f"{value!r} is not a valid domain name")
    return ascii_name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _account_uris(value: list[str] | None) -> list[str] | None:
    for uri in value or ():
        if not re.match(r"^https://[^/\s]+/\S*$", uri):
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
    dial: Duration = 10.0
    #: The whole validation, redirects and fallback included (Let's Encrypt's tests: 20 s).
    validation: Duration = 20.0
    #: Each TLS handshake (Let's Encrypt: 10 s).
    tls: Duration = 10.0


class ResolverConfig(_Model):
    #: Nameserver addresses; empty: the system resolver (/etc/resolv.conf).
    nameservers: list[str] = Field(default_factory=list)
    port: int = Field(53, ge=1, le=65535)
    timeout: Duration = 5.0

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
    interval: Duration = 3600.0
    #: A standard ACME client renews when this fraction of the lifetime is left.
    renewal_remaining: float = Field(1 / 3, gt=0, lt=1)
    #: A failing domain whose renewal is due within this window is urgent (the alerts).
    renewal_window: Duration = 7 * 86400.0
    #: Extra CA certificates (PEM) to verify chains with; default: the system trust store.
    ca_file: str | None = None
    #: Readings in flight at once (apart from the validations' ``concurrency``).
    concurrency: int = Field(10, ge=1, le=10_000)


class ProbeConfig(_Model):
    #: Let ``/probe`` validate names that are not configured (an open validator: careful).
    allow_any_target: bool = False


class Config(_Model):
    #: How often each domain is validated.
    interval: Duration = 300.0
    #: Random delay added to each run; default 10% of ``interval``.
    jitter: (
        Annotated[float, BeforeValidator(lambda v: parse_duration(v, allow_zero=True))] | None
    ) = None
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

    @field_validator("domains", mode="before")
    @classmethod
    def _domains(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("domains", mode="after")
    @classmethod
    def _unique(cls, value: list[DomainConfig]) -> list[DomainConfig]:
        seen: set[str] = set()
        for domain in value:
            if domain.name in seen:
                raise ValueError(f"domain {domain.name!r} is listed twice")
            seen.add(domain.name)
        return value

    @property
    def effective_jitter(self) -> float:
        return self.interval * 0.1 if self.jitter is None else self.jitter

    def domain(self, name: str) -> DomainConfig | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, DomainConfig]:
        return {domain.name: domain for domain in self.domains}


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def parse(data: object, source: str = "<config>") -> Config:
    """Validate already-parsed YAML data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = _MESSAGES.get(error["type"], error["msg"])
            message = message.removeprefix("Value error, ")
            problems.append(f"{_location(tuple(error['loc']))}: {message}")
        raise ConfigError(source, problems) from None


def read_yaml(path: str | Path, *, documents: bool = False) -> Any:
    """The YAML in the file at ``path`` (with ``documents``, the list of its documents);
    a file that cannot be read or parsed is a :class:`ConfigError` naming the place."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(source, [f"cannot read the file: {reason}"]) from None
    try:
        return list(yaml.safe_load_all(text)) if documents else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}: invalid YAML: {problem}"]) from None


def load(path: str | Path) -> Config:
    """Read and validate a config file."""
    source = str(path)
    documents = read_yaml(path, documents=True)
    # An empty file is not a config: it is what a reader sees between a truncate and a
    # write. Accepting it would drop every domain, and every alert on them, silently.
    if not documents or all(document is None for document in documents):
        raise ConfigError(source, ["(top level): the file holds no YAML document (empty?)"])
    if len(documents) > 1:
        raise ConfigError(source, ["(top level): the file holds more than one YAML document"])
    return parse(documents[0], source)
