"""Result records: the single output of a validation.

Rule: everything the exporter shows (metrics, logs, the landing page, ``check``
output, ``/domains/<name>``) is derived from a :class:`ValidationResult`. The
records here are frozen values with no behaviour beyond serialisation, and the
enums are closed sets: a new value is a change to the metrics contract.

The problem ``type`` values are ACME's (RFC 8555 section 6.7, without the
``urn:ietf:params:acme:error:`` prefix). The ``reason`` values are ours; each
one maps to exactly one ``type`` (see ``policy.REASON_TYPES``).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, ClassVar

__all__ = [
    "FallbackPolicy",
    "Family",
    "FamilyProbe",
    "Mode",
    "Outcome",
    "PassWarning",
    "Problem",
    "ProblemType",
    "Reason",
    "Record",
    "ValidationResult",
]


class FallbackPolicy(StrEnum):
    """How a dial failure on a redirect hop is handled."""

    #: Let's Encrypt production today: a dial failure anywhere in the chain moves the
    #: *initial* host to its first IPv4 address once and replays the whole chain.
    BOULDER = "boulder"
    #: Let's Encrypt's proposed change (boulder PR #8905): every hop falls back to its
    #: own first IPv4 address once and re-requests that hop.
    PER_HOP = "per-hop"


class Mode(StrEnum):
    """What a validation's success means."""

    #: A configured token and key authorization: success means Let's Encrypt would accept.
    CANARY = "canary"
    #: A random token: success means Let's Encrypt would reach the web server and get a
    #: 2xx or a 404.
    REACHABILITY = "reachability"

    @classmethod
    def of(cls, key_authorization: str | None) -> Mode:
        return cls.REACHABILITY if key_authorization is None else cls.CANARY


class Family(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @classmethod
    def of(cls, address: str) -> Family:
        """The family of an IP address literal: ``192.0.2.1``, ``2001:db8::1``, or a scoped
        ``fe80::1%eth0``; the one place that tells an IPv6 address from an IPv4 one.

        Anything else (a host name, a bracketed ``[::1]``, ``host:port``, the empty
        string) raises :class:`ValueError`: every caller holds an address that a lookup,
        a config check or a bound socket produced, so a non-address is a bug to surface,
        not a family to guess.
        """
        return _family_of(address)


@functools.lru_cache(maxsize=1 << 16)  # the same addresses come back every interval
def _family_of(address: str) -> Family:
    return Family.IPV6 if ipaddress.ip_address(address).version == 6 else Family.IPV4


class ProblemType(StrEnum):
    """ACME problem types that HTTP-01 validation can produce, and ``rejectedIdentifier``:
    the order for the name is refused before any validation (``exporter.names``)."""

    DNS = "dns"
    CONNECTION = "connection"
    UNAUTHORIZED = "unauthorized"
    TLS = "tls"
    CAA = "caa"
    MALFORMED = "malformed"
    SERVER_INTERNAL = "serverInternal"
    REJECTED_IDENTIFIER = "rejectedIdentifier"


class Reason(StrEnum):
    """Why a validation failed. Closed set; documented in README.md."""

    NONE = "none"
    # DNS (type dns)
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_SERVFAIL = "dns_servfail"
    DNS_TIMEOUT = "dns_timeout"
    DNS_ERROR = "dns_error"
    DNS_NO_ADDRESSES = "dns_no_addresses"
    #: the resolver's answer carried a DNSSEC Extended DNS Error (RFC 8914): a bogus zone
    DNS_DNSSEC = "dns_dnssec"
    # Dialing (type connection); the only reasons that may trigger the IPv4 fallback
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECTION_REFUSED = "connection_refused"
    NETWORK_UNREACHABLE = "network_unreachable"
    CONNECT_ERROR = "connect_error"
    # After the connection was established (type connection / tls)
    VALIDATION_TIMEOUT = "validation_timeout"
    READ_TIMEOUT = "read_timeout"
    CONNECTION_RESET = "connection_reset"
    TLS_HANDSHAKE_TIMEOUT = "tls_handshake_timeout"
    TLS_ALERT = "tls_alert"
    TLS_ERROR = "tls_error"
    HTTP2_OVER_HTTP = "http2_over_http"
    PROTOCOL_ERROR = "protocol_error"
    # Redirect policy (type connection, or dns for a hop's lookup)
    BAD_REDIRECT_STATUS = "bad_redirect_status"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_REDIRECT_LOCATION = "bad_redirect_location"
    BAD_REDIRECT_SCHEME = "bad_redirect_scheme"
    BAD_REDIRECT_PORT = "bad_redirect_port"
    BAD_REDIRECT_HOST = "bad_redirect_host"
    REDIRECT_RESERVED_IP = "redirect_reserved_ip"
    REDIRECT_BAD_TLD = "redirect_bad_tld"
    REDIRECT_PATH_TOO_LONG = "redirect_path_too_long"
    REDIRECT_LOOP = "redirect_loop"
    # The final response (type unauthorized)
    BAD_STATUS = "bad_status"
    BODY_TOO_LARGE = "body_too_large"
    BODY_READ_ERROR = "body_read_error"
    KEY_AUTHORIZATION_MISMATCH = "key_authorization_mismatch"
    # CAA forbids issuance (type caa): the relevant record set's verdict
    CAA_FORBIDDEN_CRITICAL = "caa_forbidden_critical"  # an unknown tag flagged critical
    CAA_FORBIDDEN_ISSUER = "caa_forbidden_issuer"  # no record names letsencrypt.org
    CAA_FORBIDDEN_METHOD = "caa_forbidden_method"  # validationmethods excludes http-01
    CAA_FORBIDDEN_ACCOUNT = "caa_forbidden_account"  # accounturi names another account
    CAA_FORBIDDEN_MALFORMED = "caa_forbidden_malformed"  # a letsencrypt.org record, unparsable
    # A CAA lookup failed (type dns)
    CAA_LOOKUP_DNSSEC = "caa_lookup_dnssec"
    CAA_LOOKUP_SERVFAIL = "caa_lookup_servfail"
    CAA_LOOKUP_TIMEOUT = "caa_lookup_timeout"
    CAA_LOOKUP_TRUNCATED = "caa_lookup_truncated"
    CAA_LOOKUP_ERROR = "caa_lookup_error"
    # Let's Encrypt will not issue for the name at all (type rejectedIdentifier): its
    # policy refuses it before any validation, so nothing is looked up or fetched
    POLICY_IP_ADDRESS = "policy_ip_address"  # an IPv4 address, not a DNS name
    POLICY_NOT_PUBLIC = "policy_not_public"  # not under an ICANN public suffix (.local, ...)
    POLICY_PUBLIC_SUFFIX = "policy_public_suffix"  # a public suffix itself (com, co.uk)
    #: characters, lengths, labels, dots, reserved "??--" labels, wildcards
    POLICY_INVALID_NAME = "policy_invalid_name"
    POLICY_MALFORMED_IDN = "policy_malformed_idn"  # an xn-- label that is not valid Punycode
    POLICY_FORBIDDEN = "policy_forbidden"  # Let's Encrypt's blocklist (every .onion name)
    # The exporter itself failed (type serverInternal)
    INTERNAL = "internal"


class _Json:
    """A record's JSON (a contract: ``/domains/<name>``, ``check --json``, ``/probe?debug``):
    its fields in declaration order, each value made plain by :func:`_plain`.

    A record whose JSON differs says how, and only that: ``_json_keys`` names its keys in
    order, space-separated, when they are not its fields (a property may be one, a field
    left out is not shown); ``_json_values`` gives the values ``_plain`` would get wrong.
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    _json_keys: ClassVar[str] = ""

    def _json_values(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        values = self._json_values()
        return {
            key: values[key] if key in values else _plain(getattr(self, key))
            for key in self._json_keys.split() or [f.name for f in dataclasses.fields(self)]
        }


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: object) -> Any:
    """A value as JSON: a record by its own JSON, an enum by its value, a tuple as a list,
    a mapping sorted by key with its keys as text; anything else (None included) as it is."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, _Json):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(_plain(key)): _plain(item) for key, item in sorted(value.items())}
    return value


class Outcome(StrEnum):
    """What happened to one request (one record)."""

    RESPONSE = "response"  # an HTTP response that ended the chain
    REDIRECT = "redirect"  # a redirect that was followed (the next record is its target)
    #: a redirect that was not followed: the policy refused it or its host did not resolve
    REFUSED_REDIRECT = "refused_redirect"
    FAILED = "failed"  # no HTTP response: see the record's ``error``
    NOT_SENT = "not_sent"  # the record was set up but the chain ended before its request


@dataclass(frozen=True, slots=True)
class Problem(_Json):
    type: ProblemType
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Record(_Json):
    """One request, as Let's Encrypt's ``core.ValidationRecord`` plus its outcome.

    A fallback shows up as a further record with the same ``url`` and the IPv4
    ``address_used``, exactly as Let's Encrypt records it.
    """

    url: str
    hostname: str
    port: int
    addresses_resolved: tuple[str, ...]
    address_used: str
    hop: int
    outcome: Outcome = Outcome.NOT_SENT
    status: int | None = None
    error: Reason | None = None

    # The family after the address it is of; the port as text (Let's Encrypt's JSON).
    _json_keys = "url hostname port addresses_resolved address_used family hop outcome status error"

    @property
    def family(self) -> Family:
        return Family.of(self.address_used)

    def _json_values(self) -> dict[str, Any]:
        return {"port": str(self.port)}


@dataclass(frozen=True, slots=True)
class FamilyProbe(_Json):
    """The first request sent to one family's first address, no fallback, no redirects."""

    family: Family
    address: str
    responded: bool  # an HTTP response came back
    status: int | None
    location: str | None
    body_matches: bool | None  # None without a configured key authorization
    error: Reason | None

    def signature(self) -> tuple[object, ...]:
        """What must agree between the two families for them to count as the same."""
        return (self.responded, self.error, self.status, self.location, self.body_matches)


@dataclass(frozen=True, slots=True)
class DnsFamilyError(_Json):
    """A lookup that failed while the other family's succeeded: Let's Encrypt goes on with
    the family it has and drops this error; the exporter keeps it to show it."""

    hop: int  # 0: the initial host; n: the host of the n-th redirect
    host: str
    family: Family
    reason: Reason
    detail: str  # the text Let's Encrypt built and dropped


@dataclass(frozen=True, slots=True)
class CaaCheck(_Json):
    """Let's Encrypt's CAA check of a domain (va/caa.go), as the exporter saw it."""

    #: The names queried, from the domain up to its TLD.
    names: tuple[str, ...]
    #: Whether CAA permits issuance; ``None`` when a lookup failed (Let's Encrypt fails too).
    permitted: bool | None
    #: The CAA problem (type ``caa`` or ``dns``), ``None`` when issuance is permitted.
    problem: Problem | None
    #: The name whose record set decided, ``None`` when no name has CAA records.
    relevant_name: str | None = None
    #: That record set, in presentation format (``0 issue "letsencrypt.org"``).
    records: tuple[str, ...] = ()
    #: Lookup errors above the relevant name, which Let's Encrypt ignores: (name, text).
    ignored_errors: tuple[tuple[str, str], ...] = ()
    #: False when a record pins ``accounturi`` but no account URI was configured to compare.
    account_checked: bool = True
    #: What a renewal meets at finalize when it reuses an authorization validated more than
    #: 7 hours earlier (no challenge is fetched then, but CAA is checked again: type ``caa``,
    #: ``Error finalizing order :: rechecking caa: …``); ``None`` when CAA permits.
    finalize_problem: Problem | None = None

    def _json_values(self) -> dict[str, Any]:
        return {"ignored_errors": [{"name": n, "detail": d} for n, d in self.ignored_errors]}


@dataclass(frozen=True, slots=True)
class Certificate(_Json):
    """The leaf certificate a domain serves on port 443, read as a browser would."""

    address: str  # the address it was read from (the first AAAA, else the first A)
    not_before: float  # Unix time
    not_after: float
    issuer: str  # RFC 4514
    subject: str
    #: Whether the chain verifies for the domain (system trust store, hostname included).
    chain_valid: bool
    chain_error: str | None
    #: When a standard ACME client renews it (a fraction of the lifetime left).
    renewal_due: float


@dataclass(frozen=True, slots=True)
class CertificateCheck(_Json):
    """One reading of a domain's certificate: the certificate, or why there is none."""

    domain: str
    certificate: Certificate | None
    #: Why no certificate was read (no HTTPS on 443, a failed handshake, no address).
    error: str | None
    checked_at: float

    _json_keys = "certificate error checked_at"  # the domain is the caller's key


class PassWarning(StrEnum):
    """Why a passing validation is one change away from failing (closed set, in the order
    shown). Only a success carries warnings: a failure has its problem."""

    #: An IPv6 dial failed and Let's Encrypt's IPv4 fallback saved the validation; it
    #: applies to the initial host alone, so an HTTPS redirect would make it fail.
    IPV4_FALLBACK = "ipv4_fallback"
    #: The first AAAA and the first A address answer the first request differently.
    AAAA_MISMATCH = "aaaa_mismatch"
    #: An A or AAAA lookup failed while the other family's worked: Let's Encrypt hides it.
    DNS_FAMILY_ERROR = "dns_family_error"


@dataclass(frozen=True, slots=True)
class ValidationResult(_Json):
    domain: str
    policy: FallbackPolicy
    mode: Mode
    success: bool
    problem: Problem | None
    records: tuple[Record, ...]
    ipv4_fallback: bool
    failed_hop: int | None
    redirects: int
    aaaa_mismatch: bool
    families: tuple[FamilyProbe, ...]
    dns_addresses: dict[Family, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    finished_at: float = 0.0
    #: Set when the two fallback policies can disagree (a redirect hop's dial failed):
    #: the other policy and whether it would succeed.
    other_policy: FallbackPolicy | None = None
    other_policy_success: bool | None = None
    #: Let's Encrypt's CAA check; ``None`` when the check is off or was not reached.
    caa: CaaCheck | None = None
    #: One-family lookup failures Let's Encrypt hides (the other family answered).
    dns_family_errors: tuple[DnsFamilyError, ...] = ()

    @property
    def failed_record(self) -> Record | None:
        """The request the fetch failed on: the last one sent, when it is on the failed hop.
        Its ``address_used`` is the address that failed (the address a transport, response
        or body problem's detail names).

        ``None`` when no request failed: a success, a failed lookup of the domain, a CAA
        refusal, a name refused by policy, an internal error; and a refused redirect, whose
        hop was never requested (the Location was refused, or its host did not resolve):
        its detail names the address that sent the redirect, which did not fail.
        """
        if self.success or not self.records or self.records[-1].hop != self.failed_hop:
            return None
        return self.records[-1]

    @property
    def failed_on_redirect_hop(self) -> bool:
        """The validation failed on a redirect hop (not on the initial request)."""
        return not self.success and self.failed_hop is not None and self.failed_hop > 0

    @property
    def warnings(self) -> tuple[PassWarning, ...]:
        """What makes a success fragile (empty for a clean success and for a failure)."""
        if not self.success:
            return ()
        flags = (
            (PassWarning.IPV4_FALLBACK, self.ipv4_fallback),
            (PassWarning.AAAA_MISMATCH, self.aaaa_mismatch),
            (PassWarning.DNS_FAMILY_ERROR, bool(self.dns_family_errors)),
        )
        return tuple(warning for warning, present in flags if present)

    @property
    def reason(self) -> Reason:
        """The failure's reason, ``none`` for a success."""
        return Reason.NONE if self.problem is None else self.problem.reason

    @classmethod
    def unreached(
        cls, domain: str, policy: FallbackPolicy, mode: Mode, problem: Problem | None = None
    ) -> ValidationResult:
        """A result with no request sent (DNS failed, or the exporter itself did)."""
        return cls(
            domain=domain,
            policy=policy,
            mode=mode,
            success=False,
            problem=problem,
            records=(),
            ipv4_fallback=False,
            failed_hop=None,
            redirects=0,
            aaaa_mismatch=False,
            families=(),
        )

    def family_probe(self, family: Family) -> FamilyProbe | None:
        for probe in self.families:
            if probe.family is family:
                return probe
        return None

    # The verdict first, the details after it; the other policy as one object.
    _json_keys = (
        "domain success policy mode problem ipv4_fallback failed_hop redirects aaaa_mismatch "
        "dns_addresses records families other_policy caa dns_family_errors warnings "
        "duration_seconds finished_at"
    )

    def _json_values(self) -> dict[str, Any]:
        other = None
        if self.other_policy is not None:
            other = {"policy": self.other_policy.value, "success": self.other_policy_success}
        return {"other_policy": other, "duration_seconds": round(self.duration_seconds, 6)}
