"""Domain names as Let's Encrypt reads them, and the names it will never issue for.

Rule 1: pure. No network, DNS or HTTP library is imported here; the only data read
is the Public Suffix List file the ``publicsuffixlist`` package ships, once, when this
module is imported (so that judging a name never needs a file descriptor).

Rule 2: Let's Encrypt's behaviour is the specification, including its wording.
Every rule and text below is read from Boulder (``policy/pa.go``, ``iana/iana.go``,
``web/probs.go``, ``wfe2/wfe.go``, ``ra/ra.go``), rewritten here, never copied.

Two functions, in the order a configured name meets them:

* :func:`to_ascii`: the name an ACME client sends. Surrounding blanks and the root's
  trailing dot go, ASCII is lowercased, and a name with any other character is
  converted as browsers and current ACME clients convert it: UTS #46 non-transitional
  mapping (``faß.de`` stays ``faß``: ``xn--fa-hia.de``, not IDNA 2003's ``fass.de``),
  then each non-ASCII label to its A-label. It raises ``ValueError`` only for what
  cannot even be sent as a name: not a string, empty, a character UTS #46 disallows,
  a label it cannot encode, or a wildcard (Let's Encrypt offers HTTP-01 for no
  wildcard, only DNS-01). Anything else, however wrong, is left for the policy.
* :func:`refusal`: Let's Encrypt's verdict on a DNS identifier before any validation
  (``policy.WellFormedIdentifiers`` at the new order, then the blocklist
  ``WillingToIssue`` checks): ``None`` when it may issue, else the
  :class:`~exporter.records.Problem` its ACME server returns for a one-name order.

What Boulder checks on an ``xn--`` label is narrower than IDNA 2008: that the
Punycode decodes (Go's ``x/net/idna`` ``ToUnicode``, its raw ``Punycode`` profile)
and that the result is NFC; so is the port here (:func:`_go_punycode_decode`, with
Go 1.26's Unicode 15 behaviour, where a label decoding to plain ASCII is no error).
The public suffix is found as Boulder's ``publicsuffix-go`` finds it, in the ICANN
section only (:func:`icann_suffix`); the rules come from the ``publicsuffixlist``
package's copy of the list, the same data as Boulder's but for the few rules added
or removed between the two copies' dates.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import idna

from exporter.gocompat import go_quote
from exporter.records import Problem, ProblemType, Reason

__all__ = [
    "BLOCKED_SUFFIXES",
    "MAX_LABELS",
    "MAX_LABEL_LENGTH",
    "MAX_NAME_LENGTH",
    "icann_suffix",
    "refusal",
    "to_ascii",
]

# ------------------------------------------------------------------------- to_ascii

_JOINERS = frozenset({"\u200c", "\u200d"})


def to_ascii(value: str) -> str:
    """``value`` as an ACME client sends it: lowercase A-labels, no trailing dot.

    ``ValueError`` (with a readable reason) only for what cannot be a name at all;
    a name Let's Encrypt refuses is returned, for :func:`refusal` to judge.
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a domain name: expected a string")
    text = value.strip()
    if text.isascii():
        name = text.lower()
    else:
        try:
            # Mapping: case folded, full-width forms and ideographic full stops to
            # ASCII, ignored characters dropped; NFC. Non-transitional: ß, ς and the
            # joiners stay as they are.
            mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
            name = ".".join(_a_label(label) for label in mapped.split("."))
        except idna.IDNAError as exc:
            raise ValueError(f"{value!r} is not a valid domain name ({exc})") from None
    name = name.removesuffix(".")
    if not name:
        raise ValueError("empty domain name")
    if name.startswith("*."):
        raise ValueError(
            f"{value!r} is a wildcard: Let's Encrypt validates a wildcard name with DNS-01 "
            "only, never with HTTP-01; list the names it covers instead"
        )
    return name


def _a_label(label: str) -> str:
    """One mapped label as an A-label, checked as UTS #46 does for a browser (joiners,
    a leading combining mark, the bidi rule; hyphens are not checked)."""
    if label.isascii():
        return label
    if label.startswith("xn--"):
        raise idna.IDNAError(f"{label!r} mixes the xn-- prefix with Unicode")
    idna.check_initial_combiner(label)
    for position, char in enumerate(label):
        if char in _JOINERS and not idna.valid_contextj(label, position):
            raise idna.IDNAError(f"joiner U+{ord(char):04X} not allowed at position {position}")
    idna.check_bidi(label)
    return "xn--" + label.encode("punycode").decode("ascii")


# -------------------------------------------------------------------------- refusal

#: policy/pa.go: ``maxLabels``, ``maxLabelLength``, ``maxDNSIdentifierLength``.
MAX_LABELS = 10
MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = 253

#: policy/pa.go isDNSCharacter: the only bytes a DNS identifier may hold.
_DNS_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
#: policy/pa.go dnsLabelCharacterRegexp ``^[a-z0-9-]+$``.
_LABEL = re.compile(r"[a-z0-9-]+\Z")

#: web/probs.go problemDetailsForBoulderError prefixes the message of the step that
#: refused: wfe2/wfe.go NewOrder, after policy.WellFormedIdentifiers, and the RA's
#: NewOrder (its WillingToIssue checks the blocklists) as the WFE reports it.
_WFE = "Invalid identifiers requested"
_RA = "Error creating new order"


@dataclass(frozen=True, slots=True)
class _Refused:
    """One of policy/pa.go's errors: our reason and Boulder's text (its ``Detail``)."""

    reason: Reason
    text: str
    step: str = _WFE


# policy/pa.go's error variables. Their own types (``malformed``, or
# ``rejectedIdentifier`` for errInvalidRLDH and errPolicyForbidden) are those of the
# sub-problem; a one-name order gets combineSubErrors' ``rejectedIdentifier`` around it.
#: errEmptyIdentifier
_EMPTY = _Refused(Reason.POLICY_INVALID_NAME, "Identifier value (name) is empty")
#: errWildcardNotSupported
_WILDCARD_NOT_SUPPORTED = _Refused(
    Reason.POLICY_INVALID_NAME, "Wildcard domain names are not supported"
)
#: errInvalidDNSCharacter
_INVALID_CHARACTER = _Refused(
    Reason.POLICY_INVALID_NAME, "Domain name contains an invalid character"
)
#: errNameTooLong
_NAME_TOO_LONG = _Refused(Reason.POLICY_INVALID_NAME, "Domain name is longer than 253 bytes")
#: errIPAddressInDNS
_IP_ADDRESS = _Refused(
    Reason.POLICY_IP_ADDRESS, "Identifier type is DNS but value is an IP address"
)
#: errNameEndsInDot
_ENDS_IN_DOT = _Refused(Reason.POLICY_INVALID_NAME, "Domain name ends in a dot")
#: errTooManyLabels
_TOO_MANY_LABELS = _Refused(
    Reason.POLICY_INVALID_NAME, "Domain name has more than 10 labels (parts)"
)
#: errTooFewLabels
_TOO_FEW_LABELS = _Refused(Reason.POLICY_INVALID_NAME, "Domain name needs at least one dot")
#: errLabelTooShort
_LABEL_TOO_SHORT = _Refused(
    Reason.POLICY_INVALID_NAME, "Domain name can not have two dots in a row"
)
#: errLabelTooLong
_LABEL_TOO_LONG = _Refused(
    Reason.POLICY_INVALID_NAME,
    "Domain has a label (component between dots) longer than 63 bytes",
)
#: errInvalidRLDH
_RESERVED_LABEL = _Refused(
    Reason.POLICY_INVALID_NAME,
    "Domain name contains an invalid label in a reserved format (R-LDH: '??--')",
)
#: errMalformedIDN
_MALFORMED_IDN = _Refused(Reason.POLICY_MALFORMED_IDN, "Domain name contains malformed punycode")
#: errNonPublic
_NON_PUBLIC = _Refused(
    Reason.POLICY_NOT_PUBLIC, "Domain name does not end with a valid public suffix (TLD)"
)
#: errICANNTLD
_ICANN_TLD = _Refused(Reason.POLICY_PUBLIC_SUFFIX, "Domain name is an ICANN TLD")
#: errTooManyWildcards
_TOO_MANY_WILDCARDS = _Refused(Reason.POLICY_INVALID_NAME, "Domain name has more than one wildcard")
#: errMalformedWildcard
_MALFORMED_WILDCARD = _Refused(
    Reason.POLICY_INVALID_NAME,
    "Domain name contains an invalid wildcard. A wildcard is only permitted before the "
    "first dot in a domain name",
)
#: errICANNTLDWildcard
_ICANN_TLD_WILDCARD = _Refused(
    Reason.POLICY_PUBLIC_SUFFIX, "Domain name is a wildcard for an ICANN TLD"
)
#: errPolicyForbidden
_FORBIDDEN = _Refused(
    Reason.POLICY_FORBIDDEN,
    "The ACME server refuses to issue a certificate for this domain name, because it is "
    "forbidden by policy",
    step=_RA,
)

#: The blocklists (``HighRiskBlockedNames`` and the rest) are Let's Encrypt's
#: production configuration, not in Boulder's code. One entry is public knowledge:
#: every name under ``onion`` is refused with errPolicyForbidden (a label-wise suffix
#: match, policy/pa.go checkBlocklists).
BLOCKED_SUFFIXES = frozenset({"onion"})


@lru_cache(maxsize=65536)
def refusal(name: str) -> Problem | None:
    """Let's Encrypt's refusal of the DNS identifier ``name`` (as :func:`to_ascii` gives
    it), or ``None`` when its policy allows the name.

    The detail is what the ACME client receives for a new order of this one name
    (type ``urn:ietf:params:acme:error:rejectedIdentifier``), e.g. ``Invalid
    identifiers requested :: Cannot issue for "foo.local": Domain name does not end
    with a valid public suffix (TLD)``: policy/pa.go combineSubErrors' ``Cannot issue
    for %q: %s`` under web/probs.go's ``%s :: %s`` and the step's message. Remembered:
    the same names come back every interval.
    """
    refused = _valid_domain(name) or _blocked(name)
    if refused is None:
        return None
    detail = f"{refused.step} :: Cannot issue for {go_quote(name.encode())}: {refused.text}"
    return Problem(ProblemType.REJECTED_IDENTIFIER, refused.reason, detail)


def _blocked(name: str) -> _Refused | None:
    labels = name.split(".")
    if any(".".join(labels[i:]) in BLOCKED_SUFFIXES for i in range(len(labels))):
        return _FORBIDDEN
    return None


def _valid_domain(domain: str) -> _Refused | None:
    """policy/pa.go ValidDomain: the wildcard checks, then validNonWildcardDomain."""
    stars = domain.count("*")
    if stars == 0:
        return _valid_non_wildcard_domain(domain)
    if stars > 1:
        return _TOO_MANY_WILDCARDS
    if not domain.startswith("*."):
        return _MALFORMED_WILDCARD
    base = domain.removeprefix("*.")
    suffix = icann_suffix(base)
    if suffix is None:
        return _NON_PUBLIC
    if suffix == base:
        return _ICANN_TLD_WILDCARD
    return _valid_non_wildcard_domain(base)


def _valid_non_wildcard_domain(domain: str) -> _Refused | None:
    """policy/pa.go validNonWildcardDomain, its checks in its order (the first wins)."""
    if domain == "":
        return _EMPTY
    if domain.startswith("*."):
        return _WILDCARD_NOT_SUPPORTED
    if not all(char in _DNS_CHARACTERS for char in domain):
        return _INVALID_CHARACTER
    if len(domain) > MAX_NAME_LENGTH:
        return _NAME_TOO_LONG
    if _is_ip_address(domain):
        return _IP_ADDRESS
    if domain.endswith("."):
        return _ENDS_IN_DOT
    labels = domain.split(".")
    if len(labels) > MAX_LABELS:
        return _TOO_MANY_LABELS
    if len(labels) < 2:
        return _TOO_FEW_LABELS
    for label in labels:
        if not label:
            return _LABEL_TOO_SHORT
        if len(label) > MAX_LABEL_LENGTH:
            return _LABEL_TOO_LONG
        if not _LABEL.match(label) or label.startswith("-") or label.endswith("-"):
            return _INVALID_CHARACTER
        # A reserved LDH label ("??--"): only an xn-- label may be one, and it must be
        # Punycode that decodes to an NFC string.
        if len(label) >= 4 and label[2:4] == "--":
            if label[:2] != "xn":
                return _RESERVED_LABEL
            decoded = _go_punycode_decode(label[4:])
            if decoded is None or not unicodedata.is_normalized("NFC", decoded):
                return _MALFORMED_IDN
    suffix = icann_suffix(domain)
    if suffix is None:
        return _NON_PUBLIC
    if suffix == domain:
        return _ICANN_TLD
    return None


def _is_ip_address(domain: str) -> bool:
    """netip.ParseAddr succeeds. Only dotted IPv4 can get here (':' and '%' are not DNS
    characters); Go, like ``ipaddress``, wants four decimal octets without leading zeros."""
    try:
        ipaddress.IPv4Address(domain)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------- Punycode

_BASE, _TMIN, _TMAX, _SKEW, _DAMP = 36, 1, 26, 38, 700
_INITIAL_BIAS, _INITIAL_N = 72, 128
_MAX_INT32 = 2**31 - 1
_MAX_RUNE = 0x10FFFF
_MAX_DECODED = 1024  # x/net/idna: longer output is an error


def _go_punycode_decode(encoded: str) -> str | None:
    """x/net/idna punycode.go ``decode`` (RFC 3492 6.2 with Go's int32 overflow checks):
    the decoded label, or ``None`` where Go returns an error."""
    if encoded == "":
        return ""
    pos = encoded.rfind("-") + 1
    if pos == 1:
        return None
    if pos == len(encoded):
        return encoded[:-1]
    output = list(encoded[: pos - 1]) if pos else []
    i, n, bias = 0, _INITIAL_N, _INITIAL_BIAS
    while pos < len(encoded):
        old_i, weight, k = i, 1, _BASE
        while True:
            if pos == len(encoded):
                return None
            digit = _decode_digit(encoded[pos])
            if digit is None:
                return None
            pos += 1
            i += digit * weight
            if i > _MAX_INT32:
                return None
            t = _TMIN if k <= bias else _TMAX if k >= bias + _TMAX else k - bias
            if digit < t:
                break
            weight *= _BASE - t
            if weight > _MAX_INT32:
                return None
            k += _BASE
        if len(output) >= _MAX_DECODED:
            return None
        x = len(output) + 1
        bias = _adapt(i - old_i, x, first=old_i == 0)
        n += i // x
        i %= x
        if n > _MAX_RUNE:
            return None
        # Go's string([]rune) turns a surrogate into U+FFFD.
        output.insert(i, "\ufffd" if 0xD800 <= n <= 0xDFFF else chr(n))
        i += 1
    return "".join(output)


def _decode_digit(char: str) -> int | None:
    if "0" <= char <= "9":
        return ord(char) - ord("0") + 26
    if "A" <= char <= "Z":
        return ord(char) - ord("A")
    if "a" <= char <= "z":
        return ord(char) - ord("a")
    return None


def _adapt(delta: int, points: int, *, first: bool) -> int:
    delta //= _DAMP if first else 2
    delta += delta // points
    k = 0
    while delta > ((_BASE - _TMIN) * _TMAX) // 2:
        delta //= _BASE - _TMIN
        k += _BASE
    return k + (_BASE - _TMIN + 1) * delta // (delta + _SKEW)


# --------------------------------------------------------------------- public suffix


class _Rule(Enum):
    NORMAL = "normal"
    WILDCARD = "wildcard"  # "*.ck": value "ck"
    EXCEPTION = "exception"  # "!www.ck": value "www.ck"


def _load_icann_rules() -> dict[str, _Rule]:
    """The ICANN section of the Public Suffix List, by value, as publicsuffix-go holds it
    (Unicode rules in ASCII: each non-ASCII label as xn-- and its raw Punycode)."""
    data = importlib.resources.files("publicsuffixlist").joinpath("public_suffix_list.dat")
    rules: dict[str, _Rule] = {}
    icann = False
    for line in data.read_text("utf-8").splitlines():
        line = line.strip()
        if "BEGIN ICANN DOMAINS" in line:
            icann = True
        elif "END ICANN DOMAINS" in line:
            icann = False
        if not icann or not line or line.startswith("//"):
            continue
        text = line.split()[0].lower()
        kind = _Rule.NORMAL
        if text.startswith("!"):
            kind, text = _Rule.EXCEPTION, text[1:]
        elif text.startswith("*."):
            kind, text = _Rule.WILDCARD, text[2:]
        ascii_text = ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in text.split(".")
        )
        rules[ascii_text] = kind
    return rules


_ICANN_RULES = _load_icann_rules()


def icann_suffix(name: str) -> str | None:
    """iana.ExtractSuffix: ``name``'s public suffix from the ICANN section, ``None`` when
    it has none (Boulder's error). ``name`` itself when it is a public suffix.

    publicsuffix-go's List.Find with ``IgnorePrivate`` and no default rule: the longest
    tail of ``name`` (at a dot) that is a rule's value and matches wins; a wildcard
    value matches only with a label more. Rule.Decompose then gives the suffix. So
    ``kawasaki.jp`` (rule ``*.kawasaki.jp``) has the suffix ``jp``, not itself.
    """
    if name == "":
        return None
    rules = _ICANN_RULES
    part = name
    while True:
        kind = rules.get(part)
        if kind is not None and (part != name or kind is not _Rule.WILDCARD):
            return _decompose(name, part, kind) or name
        dot = part.find(".")
        if dot < 0:
            return None
        part = part[dot + 1 :]


def _decompose(name: str, value: str, kind: _Rule) -> str:
    """publicsuffix-go Rule.Decompose's suffix ("" where it gives none)."""
    if kind is _Rule.EXCEPTION:
        dot = value.find(".")
        if dot < 0:
            return ""
        suffix = value[dot + 1 :]
        return suffix if name.removesuffix(suffix) else ""
    rest = name.removesuffix(value)
    if not rest:
        return ""
    if kind is _Rule.NORMAL:
        return value
    rest = rest[:-1]
    dot = rest.rfind(".")
    return "" if dot < 0 else f"{rest[dot + 1 :]}.{value}"
