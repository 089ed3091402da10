"""Let's Encrypt's CAA check for HTTP-01, as pure functions.

Rule 1: no I/O here. This module imports no network, DNS or HTTP library (a test
enforces it). The DNS seam queries CAA for every name of :func:`caa_names`, hands
the raw answers over as :class:`CaaAnswer` values, and :func:`check_caa` answers
with a plain :class:`~exporter.records.CaaCheck`.

Rule 2: Let's Encrypt's behaviour is the specification, including its wording.
Every constant and rule names its source in Let's Encrypt's CA code (Boulder
``va/caa.go``, ``bdns/dns.go``, ``core/objects.go``; line numbers are those of
commit 2d00c8e2) or in miekg/dns, the DNS library Boulder uses.

The rules, in the order the check meets them:

* the names: the domain and every parent down to and including the TLD, all
  queried (:func:`caa_names`);
* one name's answer: an error, except NXDOMAIN at a dotted name, which counts as
  an empty answer; the CAA RRs of the answer section, whatever their owner;
* the relevant set: the closest name with at least one CAA RR of any tag; an error
  at or below it fails the whole check (type ``dns``), one above it is ignored;
* the tags: ``issue`` is checked, ``issuewild`` ignored (HTTP-01 is never for a
  wildcard), ``iodef``/``issuemail``/``issuevmc`` ignored, any other tag flagged
  critical refuses;
* the ``issue`` records: a malformed value authorises nothing
  (:func:`parse_issue_value`); one record naming ``letsencrypt.org`` whose
  ``accounturi`` and ``validationmethods`` match is enough;
* the words: ``While processing CAA for <domain>: CAA record for <name> prevents
  issuance`` (type ``caa``), or the DNS error text of the failing name (type ``dns``);
* at finalize (``ra/ra.go``): a renewal that reuses an authorization validated more than
  7 hours earlier fetches no challenge but meets the same check again, its problem
  rewrapped as type ``caa``, ``Error finalizing order :: rechecking caa: <detail>``
  (:func:`finalize_problem`, kept in ``CaaCheck.finalize_problem``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from exporter.policy import (
    DnsFailure,
    DnsFailureKind,
    dns_error_text,
    is_dnssec_failure,
    valid_utf8,
)
from exporter.records import CaaCheck, Problem, ProblemType, Reason

__all__ = [
    "ACCOUNTURI",
    "ACME_CHALLENGE_TYPES",
    "CRITICAL_FLAGS",
    "IGNORED_TAGS",
    "ISSUER_DOMAIN",
    "PARAMETER_TAGS_CASE_SENSITIVE",
    "VALIDATIONMETHODS",
    "VALIDATION_METHOD",
    "CaaAnswer",
    "CaaRecord",
    "IssueValue",
    "caa_names",
    "check_caa",
    "lookup_reason",
    "parse_issue_value",
]

#: va/caa.go caaDomainMatches (L483) compares the record's issuer domain with the VA's
#: configured ``issuerDomain``, byte for byte; Let's Encrypt's (production and staging)
#: is ``letsencrypt.org`` (LE CPS 4.2.1).
ISSUER_DOMAIN: Final = "letsencrypt.org"
#: core/objects.go ChallengeTypeHTTP01: the method the exporter predicts.
VALIDATION_METHOD: Final = "http-01"
#: core/objects.go AcmeChallenge.IsValid: the challenge names Boulder knows. In a
#: ``validationmethods`` list a well-formed name outside this set is skipped.
ACME_CHALLENGE_TYPES: Final = frozenset(
    {"http-01", "dns-01", "tls-alpn-01", "dns-account-01", "dns-persist-01"}
)

#: va/caa.go filterCAA (L197-201): the tags sorted into lists, compared after
#: strings.ToLower (case-insensitive).
_ISSUE: Final = b"issue"
_ISSUEWILD: Final = b"issuewild"
#: va/caa.go filterCAA (L202-213): recognised and ignored, even when flagged critical.
IGNORED_TAGS: Final = frozenset({b"iodef", b"issuemail", b"issuevmc"})
#: va/caa.go filterCAA (L221): ``Flag & (128 | 1)``; bit 1 is accepted as the critical
#: bit too ("a widespread misreading"). Other bits (2, 0x7E, ...) are not critical.
CRITICAL_FLAGS: Final = 0x81

#: va/caa.go caaAccountURIMatches (L497) and caaValidationMethodMatches (L539): the
#: parameter tags Boulder recognises.
ACCOUNTURI: Final = "accounturi"
VALIDATIONMETHODS: Final = "validationmethods"
#: va/caa.go L497, L539 compare parameter tags case-sensitively (``c.tag ==
#: "accounturi"``), so ``AccountURI=`` or ``ValidationMethods=`` is an unknown parameter
#: and silently ignored. Not merged as of 2d00c8e2: issue #8614 / PR #8616 (lowercase the
#: tags) and PR #8975 (same); the maintainers want "a different direction" (detecting
#: the mis-capitalisation). Set to False to compare lowercased tags (#8616's behaviour).
PARAMETER_TAGS_CASE_SENSITIVE: Final = True

#: va/caa.go parseCAARecord isWSP (L422): only space and tab are trimmed.
_WSP: Final = b" \t"
#: va/caa.go parseCAARecord (L457): a parameter tag is ASCII letters and digits only.
_TAG_BYTES: Final = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: va/caa.go parseCAARecord (L467): a parameter value is %x21-3A / %x3C-7E (a ``;`` cannot
#: reach it anyway: L428 splits the whole value on ``;`` first).
_VALUE_BYTES: Final = frozenset(range(0x21, 0x7F)) - {ord(";")}
#: va/caa.go validationMethodRegexp (L527): ``^[[:alnum:]-]+$``.
_METHOD_CHARS: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


# ------------------------------------------------------------------------------ input


def _escape(data: bytes) -> str:
    """miekg/dns writeTXTStringByte: ``"`` and ``\\`` backslashed, other bytes outside
    0x20-0x7E as ``\\DDD`` (decimal), as dig prints them."""
    out: list[str] = []
    for byte in data:
        if byte in b'"\\':
            out.append("\\" + chr(byte))
        elif byte < 0x20 or byte > 0x7E:
            out.append(f"\\{byte:03d}")
        else:
            out.append(chr(byte))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class CaaRecord:
    """One CAA RR (RFC 8659 section 4.1) as received: raw tag and value bytes."""

    flags: int
    tag: bytes  # raw tag bytes as received (may be non-alphanumeric, any case)
    value: bytes  # raw value bytes

    def to_text(self) -> str:
        """The presentation form, as miekg/dns CAA.String() and dig print it:
        ``0 issue "letsencrypt.org"`` (the tag unquoted, the value quoted)."""
        return f'{self.flags} {_escape(self.tag)} "{_escape(self.value)}"'


@dataclass(frozen=True, slots=True)
class CaaAnswer:
    """One name's CAA lookup, as the DNS seam saw it."""

    #: The queried name (lowercase, no trailing dot).
    name: str
    #: The CAA RRs of the answer section, whatever their owner (a CNAME the resolver
    #: followed): bdns/dns.go resultFromMsg (L35).
    records: tuple[CaaRecord, ...] = ()
    #: The lookup failed: RCODE (NXDOMAIN included, with its EDE), TIMEOUT, NETWORK,
    #: SERVER or TRUNCATED (bdns/problem.go wrapErr: TC is checked before the RCODE).
    failure: DnsFailure | None = None


# ------------------------------------------------------------------------------ names


def caa_names(domain: str) -> tuple[str, ...]:
    """The names queried for ``domain``, closest first.

    va/caa.go checkCAARecords (L316-322) lowercases the identifier and strips a
    wildcard's ``*.``; getCAA (L287) strips trailing dots; parallelCAALookup (L234)
    queries every suffix made by removing leading labels, down to and including the
    TLD (never the root). Public suffixes get no special treatment.
    """
    hostname = domain.lower()
    hostname = hostname.removeprefix("*.")
    hostname = hostname.rstrip(".")
    labels = hostname.split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels)))


# ----------------------------------------------------------------------- issue values


@dataclass(frozen=True, slots=True)
class IssueValue:
    """A parsed ``issue`` value: the issuer domain and the parameters, in order."""

    #: Part 0 trimmed of spaces and tabs; may be empty; no syntax check (raw bytes).
    issuer: bytes
    #: (tag, value) pairs; duplicates kept. ASCII only, so ``str``.
    parameters: tuple[tuple[str, str], ...] = ()


def parse_issue_value(value: bytes) -> IssueValue | None:
    """va/caa.go parseCAARecord (L421): ``None`` when the value is malformed.

    Split on every ``;``; part 0 trimmed is the issuer domain. A single further part
    that is blank means no parameters; otherwise every further part must be
    ``tag=value`` (split at the first ``=``, both trimmed of spaces and tabs), the tag
    ASCII letters and digits only (empty allowed), the value within %x21-3A / %x3C-7E
    (empty allowed). Boulder's parse error texts are never shown to users.
    """
    parts = value.split(b";")
    issuer = parts[0].strip(_WSP)
    params = parts[1:]
    if len(params) == 1 and not params[0].strip(_WSP):
        return IssueValue(issuer)
    parsed: list[tuple[str, str]] = []
    for param in params:
        tag, equals, val = param.partition(b"=")
        if not equals:
            return None  # "parameter not formatted as tag=value: %q"
        tag = tag.strip(_WSP)
        if any(byte not in _TAG_BYTES for byte in tag):
            return None  # "tag contains disallowed character: %q"
        val = val.strip(_WSP)
        if any(byte not in _VALUE_BYTES for byte in val):
            return None  # "value contains disallowed character: %q"
        parsed.append((tag.decode("ascii"), val.decode("ascii")))
    return IssueValue(issuer, tuple(parsed))


def _values_of(parsed: IssueValue, name: str) -> list[str]:
    """The values of every parameter whose tag is ``name`` (PARAMETER_TAGS_CASE_SENSITIVE)."""
    if PARAMETER_TAGS_CASE_SENSITIVE:
        return [v for t, v in parsed.parameters if t == name]
    return [v for t, v in parsed.parameters if t.lower() == name]


def _method_matches(parsed: IssueValue) -> bool:
    """va/caa.go caaValidationMethodMatches (L535): none matches; two or more never
    match; one is walked in order: a malformed item stops with no match, an unknown or
    other method is skipped, ``http-01`` matches."""
    found = _values_of(parsed, VALIDATIONMETHODS)
    if not found:
        return True
    if len(found) > 1:
        return False
    for method in found[0].split(","):
        if not method or any(ch not in _METHOD_CHARS for ch in method):
            return False
        if method not in ACME_CHALLENGE_TYPES:
            continue
        if method == VALIDATION_METHOD:
            return True
    return False


class _Step(IntEnum):
    """An ``issue`` record's first failing check (va/caa.go validateCAA L382-398), ranked
    by how far it got: the refusal reports the furthest record's reason."""

    ISSUER = 0  # names another CA, or malformed and not naming letsencrypt.org
    MALFORMED = 1  # malformed, but part 0 names letsencrypt.org
    ACCOUNT = 2  # accounturi names another account (or appears twice)
    METHOD = 3  # validationmethods excludes http-01
    AUTHORISES = 4


_REFUSAL_REASONS: Final = {
    _Step.ISSUER: Reason.CAA_FORBIDDEN_ISSUER,
    _Step.MALFORMED: Reason.CAA_FORBIDDEN_MALFORMED,
    _Step.ACCOUNT: Reason.CAA_FORBIDDEN_ACCOUNT,
    _Step.METHOD: Reason.CAA_FORBIDDEN_METHOD,
}


def _check_issue(value: bytes, account_uris: frozenset[str]) -> tuple[_Step, bool]:
    """One ``issue`` record through va/caa.go validateCAA's checks, in Boulder's order.

    Returns the first failing step (or AUTHORISES) and whether the record's single
    ``accounturi`` was taken as matching because no account URI is configured.
    """
    issuer = ISSUER_DOMAIN.encode()
    parsed = parse_issue_value(value)
    if parsed is None:  # L383-386: a malformed record is skipped
        named = value.split(b";")[0].strip(_WSP) == issuer
        return (_Step.MALFORMED if named else _Step.ISSUER), False
    if parsed.issuer != issuer:  # L388 caaDomainMatches: byte equality
        return _Step.ISSUER, False
    # L392 caaAccountURIMatches (L493): none matches any account, two or more never
    # match, one must equal prefix+account ID byte for byte. The exporter compares
    # with the configured full account URIs; with none configured it assumes a match.
    assumed = False
    accounts = _values_of(parsed, ACCOUNTURI)
    if len(accounts) > 1:
        return _Step.ACCOUNT, False
    if accounts:
        if not account_uris:
            assumed = True
        elif accounts[0] not in account_uris:
            return _Step.ACCOUNT, False
    if not _method_matches(parsed):  # L396
        return _Step.METHOD, assumed
    return _Step.AUTHORISES, assumed


# ---------------------------------------------------------------------------- verdict


def lookup_reason(failure: DnsFailure) -> Reason:
    """Our reason for a CAA lookup error that failed the check (type ``dns``)."""
    if is_dnssec_failure(failure):
        return Reason.CAA_LOOKUP_DNSSEC
    if failure.kind is DnsFailureKind.RCODE and failure.rcode == "SERVFAIL":
        return Reason.CAA_LOOKUP_SERVFAIL
    if failure.kind is DnsFailureKind.TIMEOUT:
        return Reason.CAA_LOOKUP_TIMEOUT
    if failure.kind is DnsFailureKind.TRUNCATED:
        return Reason.CAA_LOOKUP_TRUNCATED
    return Reason.CAA_LOOKUP_ERROR


def _lookup_error(name: str, failure: DnsFailure) -> DnsFailure | None:
    """bdns/dns.go LookupCAA (L298-317): the failure Boulder reports for ``name``, or
    ``None``. NXDOMAIN at a name containing a dot is an empty, successful answer (not
    at a bare TLD: "so we don't issue for gTLDs that have been removed by ICANN"); a
    truncated answer stays an error whatever its RCODE."""
    nxdomain = failure.kind is DnsFailureKind.RCODE and failure.rcode == "NXDOMAIN"
    if nxdomain and "." in name:
        return None
    return failure


def _prefixed(domain: str, text: str) -> str:
    """va/caa.go DoCAA (L106): ``While processing CAA for %s: %s``, then
    filterProblemDetails (L126, va/utf8filter.go): :func:`exporter.policy.valid_utf8`."""
    return valid_utf8(f"While processing CAA for {domain}: {text}")


def _decide(relevant: CaaAnswer, account_uris: frozenset[str]) -> tuple[Reason | None, bool]:
    """va/caa.go filterCAA (L192) + validateCAA (L341) for the relevant set: the refusal's
    reason (``None``: issuance permitted), and whether an ``accounturi`` was assumed to
    match for lack of a configured account URI."""
    issue: list[bytes] = []
    critical_unknown = False
    for record in relevant.records:
        tag = record.tag.lower()  # L197 strings.ToLower (miekg escapes non-ASCII bytes)
        if tag == _ISSUE:
            issue.append(record.value)
        elif tag == _ISSUEWILD or tag in IGNORED_TAGS:
            continue  # issuewild: only for a wildcard identifier (L363-366), never HTTP-01
        elif record.flags & CRITICAL_FLAGS:
            critical_unknown = True
    if critical_unknown:  # L348
        return Reason.CAA_FORBIDDEN_CRITICAL, False
    if not issue:  # L368: "no relevant records"
        return None, False
    # L382-402: one authorising record is enough; records are independent. The reason
    # of a refusal is that of the record that got furthest (method > account >
    # malformed naming letsencrypt.org > issuer); Boulder's text is the same for all.
    steps = [_check_issue(value, account_uris) for value in issue]
    assumed = any(was_assumed for _, was_assumed in steps)
    best = max(step for step, _ in steps)
    if best is _Step.AUTHORISES:
        return None, assumed
    return _REFUSAL_REASONS[best], assumed


#: ra/ra.go caaRecheckDuration: at finalize, an authorization whose challenge was validated
#: more than this long ago has its CAA checked again (the BRs allow 8 hours).
CAA_RECHECK_AFTER_SECONDS: Final = 7 * 3600


def finalize_problem(problem: Problem) -> Problem:
    """ra.go checkAuthorizationsCAA and recheckCAA for one identifier, as the ACME client
    reads it: the same CAA check again at finalize, its problem (a DNS one included)
    rewrapped as type ``caa`` with ``rechecking caa: <detail>``, which the web front end
    shows as ``Error finalizing order :: rechecking caa: <detail>`` (web/probs.go)."""
    detail = f"Error finalizing order :: rechecking caa: {problem.detail}"
    return Problem(ProblemType.CAA, problem.reason, detail)


def check_caa(
    domain: str, answers: Sequence[CaaAnswer], *, account_uris: frozenset[str]
) -> CaaCheck:
    """va/caa.go checkCAA for an HTTP-01 validation of ``domain``.

    ``answers`` holds one lookup per name of :func:`caa_names`, in the same order.
    ``account_uris`` are the full account URLs the subscriber may use (byte equality);
    when empty, a record's single ``accounturi`` is taken as matching and the result
    says ``account_checked=False``.
    """
    names = caa_names(domain)
    if tuple(a.name for a in answers) != names:
        raise ValueError(f"CAA answers {[a.name for a in answers]} do not match {list(names)}")
    identifier = domain.lower()  # identifiers are lowercased at new-order (identifier.Normalize)

    # va/caa.go selectCAA (L267): the first error or the first present set wins; an
    # error above the relevant name is ignored by Let's Encrypt (kept here to show it).
    relevant: CaaAnswer | None = None
    ignored_errors: list[tuple[str, str]] = []
    for answer in answers:
        failure = None if answer.failure is None else _lookup_error(answer.name, answer.failure)
        if failure is not None:
            text = dns_error_text(answer.name, "CAA", failure)
            if relevant is None:  # records could hide behind it; checkCAA L154-155: type dns
                detail = _prefixed(identifier, text)
                lookup = Problem(ProblemType.DNS, lookup_reason(failure), detail)
                return CaaCheck(
                    names=names,
                    permitted=None,
                    problem=lookup,
                    finalize_problem=finalize_problem(lookup),
                )
            ignored_errors.append((answer.name, text))  # valid UTF-8 already
        elif relevant is None and answer.records:  # parallelCAALookup L251: present
            relevant = answer
    if relevant is None:  # validateCAA L342: "no records", can issue
        return CaaCheck(names=names, permitted=True, problem=None)

    reason, assumed = _decide(relevant, account_uris)
    problem: Problem | None = None
    if reason is not None:  # checkCAA L167-168
        detail = _prefixed(identifier, f"CAA record for {relevant.name} prevents issuance")
        problem = Problem(ProblemType.CAA, reason, detail)
    return CaaCheck(
        names=names,
        permitted=reason is None,
        problem=problem,
        relevant_name=relevant.name,
        records=tuple(record.to_text() for record in relevant.records),
        ignored_errors=tuple(ignored_errors),
        account_checked=not assumed,
        finalize_problem=None if problem is None else finalize_problem(problem),
    )
