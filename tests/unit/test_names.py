"""Names as Let's Encrypt reads them (UTS #46, not IDNA 2003), and the names its policy
refuses, each with Boulder's exact text (policy/pa.go, wrapped as wfe2/wfe.go and
web/probs.go wrap it for a one-name order)."""

from __future__ import annotations

import pytest

from exporter import names
from exporter.config import parse
from exporter.names import icann_suffix, refusal, to_ascii
from exporter.records import FallbackPolicy, Mode, ProblemType, Reason, ValidationResult
from exporter.report import NOT_ISSUED, fix_hint, render, verdict

# ------------------------------------------------------------------------- to_ascii


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # UTS #46 non-transitional keeps ß (IDNA 2003 made it fass.de, another domain).
        ("faß.de", "xn--fa-hia.de"),
        ("FASS.de", "fass.de"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("bücher.example.com", "xn--bcher-kva.example.com"),
        ("ΣΊΣΥΦΟΣ.gr", "xn--kxa6akbbkh.gr"),  # case folded, then encoded
        ("ς.gr", "xn--3xa.gr"),  # final sigma kept (transitional would make it σ)
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("例子.公司.cn", "xn--fsqu00a.xn--55qx5d.cn"),
        ("Ｅｘａｍｐｌｅ。ｃｏｍ", "example.com"),  # full-width forms and the ideographic stop
        ("ex\u00adample.com", "example.com"),  # a soft hyphen is ignored
        ("WWW.Example.ORG.", "www.example.org"),
        ("  example.com  ", "example.com"),
        ("xn--fa-hia.de", "xn--fa-hia.de"),  # an A-label stays as it is
        ("XN--FA-HIA.DE", "xn--fa-hia.de"),
        # Left for the policy to judge, not refused here:
        ("exa mple.com", "exa mple.com"),
        ("a_b.example.com", "a_b.example.com"),
        ("192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("foo.local", "foo.local"),
        ("example.com..", "example.com."),  # only the root's dot goes
        ("xn--zz.example.com", "xn--zz.example.com"),
    ],
)
def test_to_ascii(value: str, expected: str) -> None:
    assert to_ascii(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty domain name"),
        ("  .  ", "empty domain name"),
        (42, "42 is not a domain name: expected a string"),
        (
            "*.example.com",
            "'*.example.com' is a wildcard: Let's Encrypt validates a wildcard name with "
            "DNS-01 only, never with HTTP-01; list the names it covers instead",
        ),
        ("a\u200db.com", "'a\\u200db.com' is not a valid domain name (joiner U+200D"),
        ("\u0301a.com", "is not a valid domain name (Label begins with an illegal combining"),
        ("xn--ü.com", "'xn--ü.com' is not a valid domain name ('xn--ü' mixes the xn-- prefix"),
        ("\ue000x.com", "is not a valid domain name (Codepoint U+E000 not allowed"),
    ],
)
def test_to_ascii_refuses_only_what_is_no_name(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        to_ascii(value)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_the_config_loads_refused_names_as_sent() -> None:
    config = parse(
        {"domains": ["faß.de", "foo.local", "192.0.2.1", "co.uk", {"name": "Bücher.example"}]},
        "<test>",
    )
    assert [d.name for d in config.domains] == [
        "xn--fa-hia.de",
        "foo.local",
        "192.0.2.1",
        "co.uk",
        "xn--bcher-kva.example",
    ]


# -------------------------------------------------------------------------- refusal

WFE = "Invalid identifiers requested :: Cannot issue for "
RA = "Error creating new order :: Cannot issue for "
NOT_PUBLIC = "Domain name does not end with a valid public suffix (TLD)"
INVALID_CHARACTER = "Domain name contains an invalid character"

MALFORMED_PUNYCODE = "Domain name contains malformed punycode"
INVALID = Reason.POLICY_INVALID_NAME


def refused(reason: Reason, text: str, *names: str) -> list[tuple[str, Reason, str]]:
    """Rows of :data:`REFUSED`: each of ``names`` is refused for ``reason`` with ``text``."""
    return [(name, reason, text) for name in names]


# Every refusal, with Boulder's text (policy/pa.go error variables), checked against
# Boulder's own policy.WellFormedIdentifiers and web.ProblemDetailsForError.
REFUSED = [
    # errNonPublic: not under a public suffix of the ICANN section
    *refused(
        Reason.POLICY_NOT_PUBLIC,
        NOT_PUBLIC,
        "foo.local",
        "foo.internal",
        "foo.test",
        "example.invalid",
        "xn--bcher-kva.example",
        "router.lan",
        "xn--r8jz45g.xn--zckzah",  # 例え.テスト
    ),
    # errICANNTLD: a public suffix itself, multi-label and wildcard rules included
    *refused(
        Reason.POLICY_PUBLIC_SUFFIX,
        "Domain name is an ICANN TLD",
        "co.uk",
        "xn--55qx5d.cn",  # 公司.cn
        "foo.ck",  # *.ck
    ),
    # errIPAddressInDNS (an IPv6 address fails on ':' first: errInvalidDNSCharacter)
    ("192.0.2.1", Reason.POLICY_IP_ADDRESS, "Identifier type is DNS but value is an IP address"),
    ("01.2.3.4", Reason.POLICY_NOT_PUBLIC, NOT_PUBLIC),  # a leading zero: no address for Go
    ("2001:db8::1", INVALID, INVALID_CHARACTER),
    # errInvalidDNSCharacter
    *refused(
        INVALID,
        INVALID_CHARACTER,
        "exa mple.com",
        "a_b.example.com",
        "-a.example.com",
        "a-.example.com",
        "xn--abc-.com",
    ),
    # errNameTooLong: 254 bytes
    (
        ".".join(["a" * 63] * 3 + ["a" * 58]) + ".com",
        INVALID,
        "Domain name is longer than 253 bytes",
    ),
    # errLabelTooLong: 64 bytes
    (
        "a" * 64 + ".com",
        INVALID,
        "Domain has a label (component between dots) longer than 63 bytes",
    ),
    # errTooManyLabels: 11
    ("a.b.c.d.e.f.g.h.i.j.com", INVALID, "Domain name has more than 10 labels (parts)"),
    # errTooFewLabels
    *refused(INVALID, "Domain name needs at least one dot", "localhost", "com"),
    # errLabelTooShort
    ("a..example.com", INVALID, "Domain name can not have two dots in a row"),
    # errNameEndsInDot
    ("example.com.", INVALID, "Domain name ends in a dot"),
    # errInvalidRLDH
    (
        "ab--c.example.com",
        INVALID,
        "Domain name contains an invalid label in a reserved format (R-LDH: '??--')",
    ),
    # errMalformedIDN: Punycode that does not decode, or decodes to a string not in NFC
    *refused(
        Reason.POLICY_MALFORMED_IDN,
        MALFORMED_PUNYCODE,
        "xn--zz.example.com",
        "xn---abc.example.com",
        "xn--e-xbb.example.com",  # e + U+0301 (combining acute): decodes, but NFC would be é
    ),
    # Wildcards (never HTTP-01; to_ascii refuses "*." itself, the policy the rest)
    ("*.*.example.com", INVALID, "Domain name has more than one wildcard"),
    (
        "a*.example.com",
        INVALID,
        "Domain name contains an invalid wildcard. A wildcard is only permitted before the "
        "first dot in a domain name",
    ),
    ("*.co.uk", Reason.POLICY_PUBLIC_SUFFIX, "Domain name is a wildcard for an ICANN TLD"),
]


@pytest.mark.parametrize(("name", "reason", "text"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_refused_names(name: str, reason: Reason, text: str) -> None:
    problem = refusal(name)
    assert problem is not None
    assert problem.type is ProblemType.REJECTED_IDENTIFIER
    assert problem.reason is reason
    assert problem.detail == f'{WFE}"{name}": {text}'


def test_onion_names_are_refused_by_the_blocklist() -> None:
    # Boulder's well-formedness rules allow .onion (an ICANN suffix); Let's Encrypt's
    # production blocklist refuses it, a step later (the RA).
    problem = refusal("expyuzz4wqqyqhjn.onion")
    assert problem is not None
    assert problem.reason is Reason.POLICY_FORBIDDEN
    assert problem.detail == (
        f'{RA}"expyuzz4wqqyqhjn.onion": The ACME server refuses to issue a certificate '
        "for this domain name, because it is forbidden by policy"
    )
    assert refusal("onion.example.com") is None


def test_the_quoting_is_gos() -> None:
    problem = refusal('a"b.example.com')
    assert problem is not None
    assert problem.detail == f'{WFE}"a\\"b.example.com": {INVALID_CHARACTER}'


@pytest.mark.parametrize(
    "name",
    [
        "example.com",
        "www.example.co.uk",
        "xn--fa-hia.de",  # faß.de
        "fass.de",
        "xn--bcher-kva.example.com",
        "xn--e1afmkfd.xn--p1ai",  # пример.рф: an IDN under an IDN TLD
        "xn--fsqu00a.xn--55qx5d.cn",  # 例子.公司.cn
        "xn--mgbh0fb.xn--mgberp4a5d4ar",  # مثال.السعودية
        "xn--n3h.com",  # ☃.com: Boulder only asks that the Punycode decode to NFC
        "xn--abc.com",  # decodes (to Unicode 15 Go, no error for any decodable label)
        "xn--a.example.com",  # U+0080: it decodes, and it is NFC
        "www.ck",  # the exception to *.ck
        "a.foo.ck",
        "kawasaki.jp",  # *.kawasaki.jp needs a label more: the suffix is jp
        "foo.blogspot.com",  # a private suffix does not count: the ICANN one is com
        "blogspot.com",
        "1.2.3.4.example.com",
        "a" * 63 + ".com",
        ".".join(["a" * 63] * 3 + ["a" * 57]) + ".com",  # 253 bytes
        "a.b.c.d.e.f.g.h.i.com",  # 10 labels
    ],
)
def test_allowed_names(name: str) -> None:
    assert refusal(name) is None


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("example.com", "com"),
        ("a.b.example.co.uk", "co.uk"),
        ("co.uk", "co.uk"),
        ("foo.ck", "foo.ck"),
        ("www.ck", "ck"),
        ("kawasaki.jp", "jp"),
        ("x.kawasaki.jp", "x.kawasaki.jp"),
        ("city.kawasaki.jp", "kawasaki.jp"),
        ("foo.blogspot.com", "com"),
        ("xn--d1acj3b.xn--p1ai", "xn--p1ai"),
        ("foo.local", None),
        ("", None),
        ("example.com.", None),
    ],
)
def test_icann_suffix_is_publicsuffix_gos(name: str, suffix: str | None) -> None:
    assert icann_suffix(name) == suffix


def test_the_rules_are_the_icann_section_only() -> None:
    assert names._ICANN_RULES["com"] is names._Rule.NORMAL
    assert names._ICANN_RULES["ck"] is names._Rule.WILDCARD
    assert names._ICANN_RULES["www.ck"] is names._Rule.EXCEPTION
    assert "xn--p1ai" in names._ICANN_RULES  # рф, in ASCII as Boulder holds it
    assert "blogspot.com" not in names._ICANN_RULES  # private section


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("fa-hia", "faß"),
        ("bcher-kva", "bücher"),
        ("n3h", "☃"),
        ("abc-", "abc"),  # only basic code points: Go returns them (Unicode 15)
        ("", ""),
        ("-abc", None),  # the delimiter first
        ("zz", None),  # ends inside a number
        ("a", "\x80"),
        ("99999999999", None),  # overflows int32
        ("a!", None),  # not a digit
    ],
)
def test_punycode_is_decoded_as_go_decodes_it(encoded: str, decoded: str | None) -> None:
    assert names._go_punycode_decode(encoded) == decoded


# --------------------------------------------------------------------------- report


def _refused(name: str, key_authorization: str | None = None) -> ValidationResult:
    return ValidationResult.unreached(
        name, FallbackPolicy.BOULDER, Mode.of(key_authorization), refusal(name)
    )


def test_the_verdict_sentence_the_reason_and_a_hint() -> None:
    result = _refused("foo.local")
    assert verdict(result) == (
        "Let's Encrypt will not issue for this name: "
        f'urn:ietf:params:acme:error:rejectedIdentifier: {WFE}"foo.local": {NOT_PUBLIC}'
    )
    assert verdict(result).startswith(NOT_ISSUED)
    hint = fix_hint(result)
    assert hint is not None and "public suffix" in hint
    text = render(result)
    assert text.splitlines() == [
        "FAIL foo.local  (policy boulder, reachability mode)",
        "  " + verdict(result),
        f"  hint: {hint}",
    ]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("192.0.2.1", "IP address"),
        ("2001:db8::1", "IP address"),  # Boulder's text is about a character; the hint is not
        ("co.uk", "public suffix"),
        ("a_b.example.com", "letters, digits and hyphens"),
        ("xn--zz.example.com", "Punycode"),
        ("x.onion", "another CA"),
    ],
)
def test_every_refusal_has_a_hint(name: str, words: str) -> None:
    hint = fix_hint(_refused(name))
    assert hint is not None and words in hint


def test_every_policy_reason_is_a_rejected_identifier() -> None:
    from exporter.policy import REASON_TYPES

    refusals = {r for r in Reason if r.value.startswith("policy_")}
    assert len(refusals) == 6
    assert {REASON_TYPES[r] for r in refusals} == {ProblemType.REJECTED_IDENTIFIER}
