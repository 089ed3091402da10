"""Let's Encrypt's HTTP-01 rules, as pure functions.

Rule 1: no I/O here. This module imports no network, DNS or HTTP library; the
I/O driver (``exporter.http01``) asks it every question whose answer is Let's
Encrypt policy, and it answers with plain values.

Rule 2: Let's Encrypt's behaviour is the specification, including its wording
(users paste these strings into searches). Every constant names its source in
Let's Encrypt's CA code (Boulder, ``va/http.go``, ``va/dns.go``, ``bdns/``).

The rules, in the order a validation meets them:

* address choice: A and AAAA are looked up; the lookup is fatal only when both
  families fail or are empty; only the first AAAA and the first A are ever used,
  the AAAA first (:func:`resolve_verdict`);
* fallback: only a dial-phase failure (timeout, refused, unreachable) may move
  to the IPv4 address, once (:func:`may_fall_back`, :func:`fallback_action`);
* redirects: checked in Boulder's order and wording (:func:`check_redirect`);
* the final response: status exactly 200, a body under 128 bytes, trailing
  Unicode whitespace trimmed, an exact match (:func:`check_response`).
"""

from __future__ import annotations

import codecs
import dataclasses
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache

from exporter.gocompat import GoURL, GoURLError, go_quote, to_lower, trim_right_space
from exporter.iana import reserved_block
from exporter.records import (
    CaaCheck,
    FallbackPolicy,
    Family,
    Outcome,
    Problem,
    ProblemType,
    Reason,
    Record,
    ValidationResult,
)

__all__ = [
    "ACME_CHALLENGE_PREFIX",
    "HTTPS_PORT",
    "HTTP_PORT",
    "MAX_PATH",
    "MAX_REDIRECTS",
    "MAX_RESPONSE_SIZE",
    "REASON_TYPES",
    "REDIRECT_STATUSES",
    "USER_AGENT",
    "AddressPolicy",
    "DeadlineVerdict",
    "DnsAnswer",
    "DnsFailure",
    "DnsFailureKind",
    "FallbackAction",
    "HiddenError",
    "Phase",
    "RedirectRefusal",
    "RedirectTarget",
    "Resolution",
    "body_matches",
    "body_read_problem",
    "challenge_url",
    "check_redirect",
    "check_response",
    "combine_caa",
    "deadline_verdict",
    "dns_deadline_problem",
    "dns_error_text",
    "dns_reason",
    "fallback_action",
    "ip_detail",
    "is_dialable_host",
    "is_dnssec_failure",
    "is_followed_redirect",
    "may_fall_back",
    "policies_may_disagree",
    "rcode_text",
    "redirect_problem",
    "resolve_verdict",
    "transport_message",
    "transport_problem",
    "valid_utf8",
]

#: va/http.go: ``maxRedirect = 10``, checked *before* the counter is incremented, so 11
#: redirects are followed and the 12th is refused (verified by running Boulder).
MAX_REDIRECTS = 10
#: va/http.go processRedirect: CA/B Forum BR 3.2.2.4.19 allows only these (303 is refused).
REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
#: Go's net/http calls the redirect checker for these when a Location is present.
GO_FOLLOWED_STATUSES = frozenset({301, 302, 303, 307, 308})
#: va/http.go: ``maxPathSize = 2000``.
MAX_PATH = 2000
#: va/http.go: ``maxResponseSize = 128``; a body of 128 bytes or more is refused.
MAX_RESPONSE_SIZE = 128
#: va/va.go newDefaultPortConfig: the only ports a redirect may name.
HTTP_PORT = 80
HTTPS_PORT = 443
#: core/challenges.go: ``/.well-known/acme-challenge/`` + token.
ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
#: What Let's Encrypt's production validation servers send.
USER_AGENT = (
    "Mozilla/5.0 (compatible; Let's Encrypt validation server; +https://www.letsencrypt.org)"
)


# --------------------------------------------------------------------------- addresses

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses may be contacted. Production: no special-purpose address at all
    (:func:`exporter.iana.reserved_block`); multicast is not one, so it is dialled.

    ``allow_loopback`` and ``allow_reserved`` are lab switches (Boulder has the same
    idea as ``allowRestrictedAddrs``); ``lab_addresses`` are addresses an operator
    mapped to lab endpoints explicitly, accepted as if they were public.
    """

    allow_loopback: bool = False
    allow_reserved: bool = False
    lab_addresses: frozenset[str] = frozenset()

    def refusal(self, address: IPAddress) -> str | None:
        """Let's Encrypt's reason to refuse ``address``, or ``None`` to accept it."""
        if self.allow_reserved or str(address) in self.lab_addresses:
            return None
        if self.allow_loopback and address.is_loopback:
            return None
        block = reserved_block(address)
        if block is None:
            return None
        return f"IP address is in a reserved address block: {block}"


# --------------------------------------------------------------------------------- DNS


class DnsFailureKind(StrEnum):
    RCODE = "rcode"  # the server answered with an rcode other than NOERROR
    TIMEOUT = "timeout"  # no answer in time
    NETWORK = "network"  # a transport error talking to the resolver
    SERVER = "server"  # anything else (an unparsable answer, a name that cannot be sent)
    TRUNCATED = "truncated"  # the final answer had TC set (an error for CAA only)


@dataclass(frozen=True, slots=True)
class DnsFailure:
    kind: DnsFailureKind
    #: For RCODE: the rcode's mnemonic as Let's Encrypt's DNS library prints it
    #: (:func:`rcode_text`): "NXDOMAIN", "SERVFAIL", "REFUSED", ...
    rcode: str = ""
    #: The first Extended DNS Error (RFC 8914) of an RCODE failure: (INFO-CODE, EXTRA-TEXT).
    ede: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One family's lookup: the A or AAAA addresses in answer order, or a failure."""

    family: Family
    addresses: tuple[str, ...] = ()
    failure: DnsFailure | None = None


@dataclass(frozen=True, slots=True)
class HiddenError:
    """One family's lookup error that Let's Encrypt dropped: the other family answered."""

    family: Family
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """A host's usable addresses. ``candidates`` is what Let's Encrypt will dial, in order."""

    host: str
    addresses: tuple[str, ...]  # AAAA first, then A, each in answer order (AddressesResolved)
    candidates: tuple[str, ...]  # (first AAAA, first A), or the one that exists
    v4: int
    v6: int
    #: A failed lookup (or one whose addresses were all refused) of the other family.
    hidden: tuple[HiddenError, ...] = ()

    @property
    def fallback(self) -> str | None:
        return self.candidates[1] if len(self.candidates) > 1 else None


#: miekg/dns RcodeToString, which bdns prints: the IANA mnemonics, 16 as BADSIG (not
#: BADVERS), and an empty string for a code it does not know.
_RCODES = {
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
    16: "BADSIG",
    17: "BADKEY",
    18: "BADTIME",
    19: "BADMODE",
    20: "BADNAME",
    21: "BADALG",
    22: "BADTRUNC",
    23: "BADCOOKIE",
}
_RCODE_EXPLANATIONS = {
    "NXDOMAIN": " - check that a DNS record exists for this domain",
    "SERVFAIL": " - the domain's nameservers may be malfunctioning",
}
_FAILURE_DETAIL = {
    DnsFailureKind.TIMEOUT: "query timed out",
    DnsFailureKind.NETWORK: "networking error",
    DnsFailureKind.SERVER: "server failure at resolver",
    DnsFailureKind.TRUNCATED: "response was truncated",
}
#: bdns/problem.go: the summary of each Extended DNS Error INFO-CODE (RFC 8914).
_EDE_SUMMARIES = {
    0: "Other",
    1: "DNSSEC: Unsupported DNSKEY Algorithm",
    2: "DNSSEC: Unsupported DS Digest Type",
    3: "Stale Answer",
    4: "Forged Answer",
    5: "DNSSEC: Indeterminate",
    6: "DNSSEC: Bogus",
    7: "DNSSEC: Signature Expired",
    8: "DNSSEC: Signature Not Yet Valid",
    9: "DNSSEC: DNSKEY Missing",
    10: "DNSSEC: RRSIGs Missing",
    11: "DNSSEC: No Zone Key Bit Set",
    12: "DNSSEC: NSEC Missing",
    13: "Cached Error",
    14: "Not Ready",
    15: "Blocked",
    16: "Censored",
    17: "Filtered",
    18: "Prohibited",
    19: "Stale NXDOMAIN Answer",
    20: "Not Authoritative",
    21: "Not Supported",
    22: "No Reachable Authority",
    23: "Network Error between Resolver and Authority",
    24: "Invalid Data",
}
#: The INFO-CODEs that report a DNSSEC validation failure.
DNSSEC_EDE_CODES = frozenset({1, 2, *range(5, 13)})
_RRTYPE = {Family.IPV4: "A", Family.IPV6: "AAAA"}


def rcode_text(rcode: int) -> str:
    """The rcode as Let's Encrypt's DNS library names it (empty when it has no name)."""
    return _RCODES.get(rcode, "")


def dns_error_text(host: str, rrtype: str, failure: DnsFailure) -> str:
    """bdns.Error.Error() for a failed lookup of ``rrtype`` records of ``host``.

    Without an Extended DNS Error: ``DNS problem: <detail> looking up <type> for
    <host><hint>``; with one (an rcode failure only): ``DNS problem: looking up <type>
    for <host>: <summary>[: <extra text>]``, the resolver's text verbatim, except that
    bytes that are not UTF-8 become U+FFFD (:func:`valid_utf8`), as in every problem.
    """
    if failure.kind is DnsFailureKind.RCODE and failure.ede is not None:
        code, extra = failure.ede
        summary = _EDE_SUMMARIES.get(code, f"Unknown Extended DNS Error code {code}")
        text = f"DNS problem: looking up {rrtype} for {host}: {summary}"
        if extra:
            text = f"{text}: {extra}"
    else:
        if failure.kind is DnsFailureKind.RCODE:
            detail = failure.rcode
            hint = _RCODE_EXPLANATIONS.get(failure.rcode, "")
        else:
            detail = _FAILURE_DETAIL[failure.kind]
            hint = ""
        text = f"DNS problem: {detail} looking up {rrtype} for {host}{hint}"
    return valid_utf8(text)


def is_dnssec_failure(failure: DnsFailure | None) -> bool:
    """The resolver reported a DNSSEC validation failure (an EDE with a DNSSEC code)."""
    return failure is not None and failure.ede is not None and failure.ede[0] in DNSSEC_EDE_CODES


def dns_reason(failure: DnsFailure | None) -> Reason:
    """Our reason for a failed A/AAAA lookup (``None``: it left no usable address)."""
    if failure is None:
        return Reason.DNS_NO_ADDRESSES
    if is_dnssec_failure(failure):
        return Reason.DNS_DNSSEC
    if failure.kind is DnsFailureKind.RCODE:
        return {"NXDOMAIN": Reason.DNS_NXDOMAIN, "SERVFAIL": Reason.DNS_SERVFAIL}.get(
            failure.rcode, Reason.DNS_ERROR
        )
    if failure.kind is DnsFailureKind.TIMEOUT:
        return Reason.DNS_TIMEOUT
    return Reason.DNS_ERROR


@lru_cache(maxsize=65536)
def usable_address(addresses: AddressPolicy, text: str, version: int) -> str | None:
    """``text`` as dialled (normalised) when it is an IPv``version`` address Let's Encrypt
    may contact, else ``None``. Remembered: the same answers come back every interval."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version != version or addresses.refusal(ip) is not None:
        return None
    return str(ip)


def resolve_verdict(
    host: str, a: DnsAnswer, aaaa: DnsAnswer, addresses: AddressPolicy
) -> Resolution | Problem:
    """va/dns.go getAddrs + newHTTPValidationTarget.

    A family "errors" when its lookup failed or left no valid address (reserved ones
    are dropped). Only when both error is the lookup fatal, with the A error first:
    ``<A error>; <AAAA error>``. One family's error alone is silently ignored by Let's
    Encrypt; it is kept in :attr:`Resolution.hidden` when the lookup failed or its
    addresses were all refused (a plain empty answer is normal for a one-family host).
    """
    usable: dict[Family, list[str]] = {}
    errors: dict[Family, str] = {}
    reasons: dict[Family, Reason] = {}
    notable: set[Family] = set()
    for answer in (a, aaaa):
        good: list[str] = []
        if answer.failure is None:
            version = 4 if answer.family is Family.IPV4 else 6
            for text in answer.addresses:
                accepted = usable_address(addresses, text, version)
                if accepted is not None:
                    good.append(accepted)
        usable[answer.family] = good
        rrtype = _RRTYPE[answer.family]
        if answer.failure is not None:
            errors[answer.family] = dns_error_text(host, rrtype, answer.failure)
            reasons[answer.family] = dns_reason(answer.failure)
            notable.add(answer.family)
        elif not good:
            errors[answer.family] = f"no valid {rrtype} records found for {host}"
            reasons[answer.family] = Reason.DNS_NO_ADDRESSES
            if answer.addresses:
                notable.add(answer.family)
    v4, v6 = usable[Family.IPV4], usable[Family.IPV6]
    if not v4 and not v6:
        detail = f"{errors[Family.IPV4]}; {errors[Family.IPV6]}"
        return Problem(ProblemType.DNS, reasons[Family.IPV4], detail)
    candidates = tuple(x for x in (v6[:1] + v4[:1]))
    hidden = tuple(
        HiddenError(family, reasons[family], errors[family])
        for family in (Family.IPV6, Family.IPV4)
        if family in notable
    )
    return Resolution(host, tuple(v6 + v4), candidates, v4=len(v4), v6=len(v6), hidden=hidden)


# ---------------------------------------------------------------------------- fallback

#: va/http.go fallbackErr: "only dial errors (not read or write errors) are eligible for
#: fallback from an IPv6 to an IPv4 address". Refused and unreachable count too (verified
#: by running Boulder); a deadline that fires during a dial does not.
_DIAL_REASONS = frozenset(
    {
        Reason.CONNECT_TIMEOUT,
        Reason.CONNECTION_REFUSED,
        Reason.NETWORK_UNREACHABLE,
        Reason.CONNECT_ERROR,
    }
)


def may_fall_back(reason: Reason) -> bool:
    """The fallback predicate: true only for failures while establishing TCP."""
    return reason in _DIAL_REASONS


class FallbackAction(StrEnum):
    FAIL = "fail"  # the error stands
    REPLAY_INITIAL = "replay_initial"  # boulder: initial host's IPv4, whole chain again
    RETRY_HOP = "retry_hop"  # per-hop: this hop's IPv4, same URL again


def fallback_action(
    policy: FallbackPolicy,
    *,
    reason: Reason,
    initial_has_unused_fallback: bool,
    hop_has_unused_fallback: bool,
) -> FallbackAction:
    """What Let's Encrypt does after a request on some hop failed with ``reason``.

    Only a dial failure (:func:`may_fall_back`) may fall back. ``boulder``: any dial
    failure in the chain advances the *initial* host to its IPv4 address, once, and
    replays the whole chain; if the initial host has no unused IPv4 address, the error
    stands. ``per-hop`` (boulder PR #8905): the failing hop moves to its own IPv4
    address, once, and is requested again.
    """
    if not may_fall_back(reason):
        return FallbackAction.FAIL
    if policy is FallbackPolicy.BOULDER:
        return FallbackAction.REPLAY_INITIAL if initial_has_unused_fallback else FallbackAction.FAIL
    return FallbackAction.RETRY_HOP if hop_has_unused_fallback else FallbackAction.FAIL


def policies_may_disagree(records: tuple[Record, ...] | list[Record]) -> bool:
    """Whether ``boulder`` and ``per-hop`` can reach different verdicts on this chain.

    They differ only in how a dial failure on a redirect hop is handled.
    """
    return any(r.hop > 0 and r.error is not None and may_fall_back(r.error) for r in records)


# --------------------------------------------------------------------------- redirects


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    url: str  # absolute, as Go's URL.String() prints it (the record's URL)
    scheme: str
    #: lowercased; an IP literal without brackets; a Unicode name stays Unicode (Go's URL
    #: parser percent-decodes it, and Let's Encrypt looks it up without IDNA)
    host: str
    port: int
    is_ip: bool


@dataclass(frozen=True, slots=True)
class RedirectRefusal:
    reason: Reason
    message: str
    type: ProblemType = ProblemType.CONNECTION
    #: The URL the detail names instead of the Location: Go's client names the request
    #: that received a Location it could not parse.
    fetching: str | None = None


#: Go's int on 64-bit: a longer port fails strconv.Atoi in extractRequestTarget.
_MAX_GO_INT = 2**63 - 1


@cache
def _icann_suffixes() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def has_icann_suffix(host: str) -> bool:
    """iana.ExtractSuffix: the host must end in a public suffix from the ICANN section.

    publicsuffix-go matches rules label by label from the right; a trailing dot leaves
    an empty last label that no rule matches, so ``host.example.com.`` has no suffix.
    """
    if host.endswith("."):
        return False
    psl = _icann_suffixes()
    return psl.publicsuffix(host, accept_unknown=False) is not None  # type: ignore[attr-defined]


def check_redirect(
    *,
    current_url: str,
    status: int,
    location: str,
    redirects_followed: int,
    seen_urls: frozenset[str] | set[str],
    addresses: AddressPolicy,
) -> RedirectTarget | RedirectRefusal:
    """Go's ``Client.do`` then va/http.go processRedirect + extractRequestTarget, in that
    order and in their words.

    ``current_url`` is the URL of the request that received the redirect, ``location``
    its (non-empty) Location as sent. ``redirects_followed`` counts the redirects already
    processed in this validation (a replay keeps counting). ``seen_urls`` holds the URL
    of every record so far.
    """
    # 0. Go's client parses the Location against the request's URL before it asks the
    #    redirect policy; a Location it cannot parse ends the chain naming the request.
    try:
        target = GoURL.parse(current_url).resolve(location)
    except GoURLError:
        return RedirectRefusal(
            Reason.BAD_REDIRECT_LOCATION, "Error getting validation data", fetching=current_url
        )
    # 1. Count: checked before the increment, so the 12th redirect is the first refused.
    if redirects_followed > MAX_REDIRECTS:
        return RedirectRefusal(Reason.TOO_MANY_REDIRECTS, "Too many redirects")
    # 2. TLS >= 1.2 is enforced by the client's TLS settings; nothing below 1.2 connects.
    # 3. Status code.
    if status not in REDIRECT_STATUSES:
        return RedirectRefusal(
            Reason.BAD_REDIRECT_STATUS, "received disallowed redirect status code"
        )
    # 4. The host (with its port) is lowercased, Go's strings.ToLower.
    target = target.with_host(to_lower(target.host_text))
    # 5. extractRequestTarget: scheme, port, host.
    scheme = target.scheme.decode("ascii")
    if scheme not in ("http", "https"):
        return RedirectRefusal(
            Reason.BAD_REDIRECT_SCHEME,
            "Invalid protocol scheme in redirect target. "
            f'Only "http" and "https" protocol schemes are supported, not "{scheme}"',
        )
    host, port_text = target.hostname(), target.port()
    if port_text:
        port = int(port_text)
        if port > _MAX_GO_INT:  # strconv.Atoi: out of range
            return RedirectRefusal(Reason.BAD_REDIRECT_LOCATION, "Error getting validation data")
        if port not in (HTTP_PORT, HTTPS_PORT):
            return RedirectRefusal(
                Reason.BAD_REDIRECT_PORT,
                "Invalid port in redirect target. Only ports "
                f"{HTTP_PORT} and {HTTPS_PORT} are supported, not {port}",
            )
    else:
        port = HTTP_PORT if scheme == "http" else HTTPS_PORT
    if host == "":
        return RedirectRefusal(Reason.BAD_REDIRECT_HOST, "Invalid empty host in redirect target")
    # A host ending in .well-known: a missing '/' in the webserver's redirect.
    if host.endswith(".well-known"):
        return RedirectRefusal(
            Reason.BAD_REDIRECT_HOST,
            f"Invalid host in redirect target {go_quote(host.encode())}. "
            "Check webserver config for missing '/' in redirect target.",
        )
    # IP literals are allowed unless zoned or reserved (netip.ParseAddr).
    try:
        ip: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if "%" in host:
            return RedirectRefusal(
                Reason.BAD_REDIRECT_HOST, "Invalid host in redirect target: contains scope zone"
            )
        refusal = addresses.refusal(ip)
        if refusal is not None:
            return RedirectRefusal(
                Reason.REDIRECT_RESERVED_IP, f"Invalid host in redirect target: {refusal}"
            )
        host = str(ip)
    elif not has_icann_suffix(host):
        return RedirectRefusal(
            Reason.REDIRECT_BAD_TLD,
            "Invalid host in redirect target, must end in IANA registered TLD",
        )
    # 6. Path length: the decoded path, in bytes.
    if len(target.path) > MAX_PATH:
        return RedirectRefusal(Reason.REDIRECT_PATH_TOO_LONG, "Redirect target too long")
    # 8. Loop: the exact URL string of any earlier record, fallback records included
    #    (so http://h/x and http://h:80/x differ).
    url = target.string()
    if url in seen_urls:
        return RedirectRefusal(Reason.REDIRECT_LOOP, "Redirect loop detected")
    return RedirectTarget(url=url, scheme=scheme, host=host, port=port, is_ip=ip is not None)


def is_dialable_host(host: str) -> bool:
    """Whether Let's Encrypt can connect to a redirect target it has looked up.

    Go's transport dials the IDNA (punycode) form of a non-ASCII host, while Boulder's
    dialer only accepts the name it resolved (the Unicode one): such a hop fails with
    "Error getting validation data" once its name resolves.
    """
    return host.isascii()


def is_followed_redirect(status: int, location: str | None) -> bool:
    """Whether Go's client hands this response to the redirect checker at all.

    Go calls ``CheckRedirect`` for 301, 302, 303, 307 and 308 with a non-empty
    ``Location``; any other response, an empty Location included, ends the chain and is
    judged as the final response.
    """
    return bool(location) and status in GO_FOLLOWED_STATUSES


def redirect_problem(*, ip: str, location: str, refusal: RedirectRefusal | Problem) -> Problem:
    """A redirect that was not followed: ``<ip>: Fetching <Location>: <message>``.

    The refusal is the redirect checker's (:class:`RedirectRefusal`) or the new host's
    DNS problem; Go prefixes its message with the Location it was given, verbatim (or
    with the request's URL when it could not parse the Location). Bytes that are not
    UTF-8 become U+FFFD, as Boulder's problem details do.
    """
    message = refusal.message if isinstance(refusal, RedirectRefusal) else refusal.detail
    named = refusal.fetching if isinstance(refusal, RedirectRefusal) else None
    detail = ip_detail(ip, f"Fetching {named or location}: {message}")
    return Problem(refusal.type, refusal.reason, valid_utf8(detail))


def _go_rune_error(error: UnicodeError) -> tuple[str | bytes, int]:
    """The codec error handler behind :func:`valid_utf8` (registered as :data:`_GO_UTF8`).

    Encoding: a ``surrogateescape`` surrogate (U+DC80-U+DCFF) is the byte it stands for;
    any other lone surrogate cannot come from UTF-8 and becomes 0xFF, a byte that is
    never valid, so it reads as one U+FFFD. Decoding: one U+FFFD, then go on at the next
    byte, as Go's ``range`` over a string does (not Python's ``replace``, which gives one
    U+FFFD for a whole truncated sequence).
    """
    if isinstance(error, UnicodeEncodeError):
        chunk = error.object[error.start : error.end]
        raw = bytes(ord(ch) - 0xDC00 if 0xDC80 <= ord(ch) <= 0xDCFF else 0xFF for ch in chunk)
        return raw, error.end
    if isinstance(error, UnicodeDecodeError):
        return "\ufffd", error.start + 1
    raise error


_GO_UTF8 = "exporter.go-rune-error"
codecs.register_error(_GO_UTF8, _go_rune_error)


def valid_utf8(text: str) -> str:
    """A problem's text as an ACME client reads it: each byte that is not part of valid
    UTF-8 becomes one U+FFFD.

    Bytes arrive as ``surrogateescape`` surrogates (a ``Location`` header, a resolver's
    EXTRA-TEXT). Boulder's VA passes every problem through ``filterProblemDetails``
    (``va/utf8filter.go``; ``DoDCV`` in ``va/va.go`` and ``DoCAA`` in ``va/caa.go`` call it
    before the problem leaves the VA), whose ``replaceInvalidUTF8`` ranges over the Go
    string: an invalid byte yields ``utf8.RuneError`` and the range advances by one byte.
    So ``a\\xe2\\x82b`` is ``a\\ufffd\\ufffdb`` (``strings.ToValidUTF8`` would give one
    U+FFFD per run; Python's ``replace`` one per maximal subpart: neither is it). Nothing
    later changes the text: protobuf (VA to RA, RA to SA) needs valid UTF-8 and gets it, the
    SA stores it with ``encoding/json`` and the WFE sends it with ``encoding/json``, whose
    own coercion (one U+FFFD per invalid byte) finds nothing left to replace. Measured
    with Boulder 2d00c8e's own functions on Go 1.26.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", _GO_UTF8).decode("utf-8", _GO_UTF8)


def challenge_url(host: str, token: str) -> str:
    """The initial URL: ``http://<host>/.well-known/acme-challenge/<token>``, no port."""
    return f"http://{host}{ACME_CHALLENGE_PREFIX}{token}"


# ---------------------------------------------------------------------------- messages

#: Every reason's ACME problem type.
REASON_TYPES: dict[Reason, ProblemType] = {
    Reason.NONE: ProblemType.CONNECTION,
    Reason.DNS_NXDOMAIN: ProblemType.DNS,
    Reason.DNS_SERVFAIL: ProblemType.DNS,
    Reason.DNS_TIMEOUT: ProblemType.DNS,
    Reason.DNS_ERROR: ProblemType.DNS,
    Reason.DNS_NO_ADDRESSES: ProblemType.DNS,
    Reason.DNS_DNSSEC: ProblemType.DNS,
    Reason.CONNECT_TIMEOUT: ProblemType.CONNECTION,
    Reason.CONNECTION_REFUSED: ProblemType.CONNECTION,
    Reason.NETWORK_UNREACHABLE: ProblemType.CONNECTION,
    Reason.CONNECT_ERROR: ProblemType.CONNECTION,
    Reason.VALIDATION_TIMEOUT: ProblemType.CONNECTION,
    Reason.READ_TIMEOUT: ProblemType.CONNECTION,
    Reason.CONNECTION_RESET: ProblemType.CONNECTION,
    Reason.TLS_HANDSHAKE_TIMEOUT: ProblemType.CONNECTION,
    Reason.TLS_ALERT: ProblemType.TLS,
    Reason.TLS_ERROR: ProblemType.CONNECTION,
    Reason.HTTP2_OVER_HTTP: ProblemType.CONNECTION,
    Reason.PROTOCOL_ERROR: ProblemType.CONNECTION,
    Reason.BAD_REDIRECT_STATUS: ProblemType.CONNECTION,
    Reason.TOO_MANY_REDIRECTS: ProblemType.CONNECTION,
    Reason.BAD_REDIRECT_LOCATION: ProblemType.CONNECTION,
    Reason.BAD_REDIRECT_SCHEME: ProblemType.CONNECTION,
    Reason.BAD_REDIRECT_PORT: ProblemType.CONNECTION,
    Reason.BAD_REDIRECT_HOST: ProblemType.CONNECTION,
    Reason.REDIRECT_RESERVED_IP: ProblemType.CONNECTION,
    Reason.REDIRECT_BAD_TLD: ProblemType.CONNECTION,
    Reason.REDIRECT_PATH_TOO_LONG: ProblemType.CONNECTION,
    Reason.REDIRECT_LOOP: ProblemType.CONNECTION,
    Reason.BAD_STATUS: ProblemType.UNAUTHORIZED,
    Reason.BODY_TOO_LARGE: ProblemType.UNAUTHORIZED,
    Reason.BODY_READ_ERROR: ProblemType.UNAUTHORIZED,
    Reason.KEY_AUTHORIZATION_MISMATCH: ProblemType.UNAUTHORIZED,
    Reason.CAA_FORBIDDEN_CRITICAL: ProblemType.CAA,
    Reason.CAA_FORBIDDEN_ISSUER: ProblemType.CAA,
    Reason.CAA_FORBIDDEN_METHOD: ProblemType.CAA,
    Reason.CAA_FORBIDDEN_ACCOUNT: ProblemType.CAA,
    Reason.CAA_FORBIDDEN_MALFORMED: ProblemType.CAA,
    Reason.CAA_LOOKUP_DNSSEC: ProblemType.DNS,
    Reason.CAA_LOOKUP_SERVFAIL: ProblemType.DNS,
    Reason.CAA_LOOKUP_TIMEOUT: ProblemType.DNS,
    Reason.CAA_LOOKUP_TRUNCATED: ProblemType.DNS,
    Reason.CAA_LOOKUP_ERROR: ProblemType.DNS,
    Reason.POLICY_IP_ADDRESS: ProblemType.REJECTED_IDENTIFIER,
    Reason.POLICY_NOT_PUBLIC: ProblemType.REJECTED_IDENTIFIER,
    Reason.POLICY_PUBLIC_SUFFIX: ProblemType.REJECTED_IDENTIFIER,
    Reason.POLICY_INVALID_NAME: ProblemType.REJECTED_IDENTIFIER,
    Reason.POLICY_MALFORMED_IDN: ProblemType.REJECTED_IDENTIFIER,
    Reason.POLICY_FORBIDDEN: ProblemType.REJECTED_IDENTIFIER,
    Reason.INTERNAL: ProblemType.SERVER_INTERNAL,
}

#: va/va.go detailedError: the message for each transport failure.
_TRANSPORT_MESSAGES: dict[Reason, str] = {
    Reason.CONNECT_TIMEOUT: "Timeout during connect (likely firewall problem)",
    Reason.CONNECTION_REFUSED: "Connection refused",
    Reason.NETWORK_UNREACHABLE: "Network unreachable",
    Reason.CONNECT_ERROR: "Error getting validation data",
    Reason.CONNECTION_RESET: "Connection reset by peer",
    Reason.VALIDATION_TIMEOUT: "Timeout after connect (your server may be slow or overloaded)",
    Reason.READ_TIMEOUT: "Timeout after connect (your server may be slow or overloaded)",
    Reason.TLS_HANDSHAKE_TIMEOUT: "Timeout after connect (your server may be slow or overloaded)",
    Reason.TLS_ERROR: "Error getting validation data",
    Reason.HTTP2_OVER_HTTP: "Server is speaking HTTP/2 over HTTP",
    Reason.PROTOCOL_ERROR: "Error getting validation data",
}


def transport_message(reason: Reason) -> str:
    """va/va.go detailedError's words for a transport failure (no address, no URL)."""
    return _TRANSPORT_MESSAGES.get(reason, "Error getting validation data")


def ip_detail(ip: str, message: str) -> str:
    """va/va.go ipError: ``<ip>: <message>``."""
    return f"{ip}: {message}"


def transport_problem(reason: Reason, *, ip: str, url: str, text: str = "") -> Problem:
    """A request that got no HTTP response: ``<ip>: Fetching <url>: <message>``.

    ``text`` is the TLS alert text for ``tls_alert`` (``remote error: tls: ...``).
    """
    message = text if reason is Reason.TLS_ALERT else _TRANSPORT_MESSAGES[reason]
    return Problem(REASON_TYPES[reason], reason, ip_detail(ip, f"Fetching {url}: {message}"))


class Phase(StrEnum):
    """Where a request was when the validation's overall deadline fired."""

    DNS = "dns"  # looking up a host (the initial one, or a redirect target)
    DIAL = "dial"  # establishing TCP
    WAIT = "wait"  # connected: TLS handshake, or waiting for the response head
    BODY = "body"  # reading a 200 response's body


@dataclass(frozen=True, slots=True)
class DeadlineVerdict:
    """What Let's Encrypt reports when its context deadline ends a validation."""

    problem: Problem
    outcome: Outcome  # for the record of the request in progress
    error: Reason  # the record's error
    hop_offset: int  # 1 when the redirect target's lookup was cut off, else 0


def deadline_verdict(
    phase: Phase, *, ip: str, url: str, redirect_location: str | None
) -> DeadlineVerdict:
    """The context deadline fired during ``phase`` of the request to ``url`` via ``ip``.

    Go reports a deadline during a dial as a timeout *after* connect (the dial error is
    ``context deadline exceeded``, not a dial timeout, so there is no fallback either);
    while reading a 200 body it is a body read error; while looking up a redirect's
    target it is reported against that redirect's Location.
    """
    if phase is Phase.BODY:
        return DeadlineVerdict(
            body_read_problem(ip, "context deadline exceeded"),
            Outcome.RESPONSE,
            Reason.BODY_READ_ERROR,
            0,
        )
    if phase is Phase.DNS and redirect_location is not None:
        problem = transport_problem(Reason.VALIDATION_TIMEOUT, ip=ip, url=redirect_location)
        return DeadlineVerdict(problem, Outcome.REFUSED_REDIRECT, Reason.VALIDATION_TIMEOUT, 1)
    reason = Reason.VALIDATION_TIMEOUT if phase is Phase.DIAL else Reason.READ_TIMEOUT
    return DeadlineVerdict(transport_problem(reason, ip=ip, url=url), Outcome.FAILED, reason, 0)


def dns_deadline_problem(host: str) -> Problem:
    """The deadline fired while looking up the initial host: both lookups time out."""
    return Problem(
        ProblemType.DNS,
        Reason.DNS_TIMEOUT,
        f"DNS problem: query timed out looking up A for {host}; "
        f"DNS problem: query timed out looking up AAAA for {host}",
    )


def body_read_problem(ip: str, text: str) -> Problem:
    """A 200 response whose body could not be read (``text``: Go's io.ReadAll error)."""
    return Problem(
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        ip_detail(ip, f"Error reading HTTP response body: {text}"),
    )


# ----------------------------------------------------------------------------- response


def check_response(
    *,
    status: int,
    body: bytes,
    key_authorization: str | None,
    url: str,
    ip: str,
) -> Problem | None:
    """The verdict on the response that ended the chain (va/http.go validateHTTP01).

    With a key authorization (canary mode): status exactly 200, body under 128 bytes,
    trailing whitespace trimmed, exact match. Without one (reachability mode): a
    status of 2xx or 404 means Let's Encrypt would reach the web server.
    ``body`` holds at most :data:`MAX_RESPONSE_SIZE` bytes.
    """
    if key_authorization is None:
        if 200 <= status < 300 or status == 404:
            return None
        return Problem(
            ProblemType.UNAUTHORIZED,
            Reason.BAD_STATUS,
            ip_detail(ip, f"Invalid response from {url}: {status}"),
        )
    if status != 200:
        return Problem(
            ProblemType.UNAUTHORIZED,
            Reason.BAD_STATUS,
            ip_detail(ip, f"Invalid response from {url}: {status}"),
        )
    if len(body) >= MAX_RESPONSE_SIZE:
        return Problem(
            ProblemType.UNAUTHORIZED,
            Reason.BODY_TOO_LARGE,
            ip_detail(ip, f"Invalid response from {url}: {go_quote(body[:MAX_RESPONSE_SIZE])}"),
        )
    payload = trim_right_space(body)
    expected = key_authorization.encode()
    if not body_matches(body, key_authorization):
        return Problem(
            ProblemType.UNAUTHORIZED,
            Reason.KEY_AUTHORIZATION_MISMATCH,
            "The key authorization file from the server did not match this challenge. "
            f"Expected {go_quote(expected)} (got {go_quote(payload)})",
        )
    return None


def body_matches(body: bytes, key_authorization: str) -> bool:
    """va/http.go: the body, trailing Unicode whitespace trimmed, equals the key authorization."""
    return trim_right_space(body) == key_authorization.encode()


def combine_caa(
    result: ValidationResult,
    check: CaaCheck | None,
    *,
    other_policy: FallbackPolicy | None,
    other_policy_success: bool | None,
) -> ValidationResult:
    """ra.checkDCVAndCAA: the verdict of the fetch and of CAA together.

    Let's Encrypt checks CAA only once the fetch passed, so it reports one problem: the
    fetch's if it failed, else CAA's. The CAA check is kept on the result either way (a
    refusal shows up before the web server is fixed), and the other fallback policy's
    verdict needs CAA too.
    """
    problem, success = result.problem, result.success
    if problem is None and check is not None and check.problem is not None:
        problem, success = check.problem, False
    permitted = check is None or check.permitted is True
    return dataclasses.replace(
        result,
        success=success,
        problem=problem,
        caa=check,
        other_policy=other_policy,
        other_policy_success=(
            None if other_policy_success is None else other_policy_success and permitted
        ),
    )
