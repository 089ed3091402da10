"""Table tests for Let's Encrypt's CAA check (``exporter.caa``): the worked examples of the
spec (issue 11, section 1.13) row by row, then the parser, the names and the texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import caa
from exporter.caa import CaaAnswer, CaaRecord, IssueValue, caa_names, check_caa, parse_issue_value
from exporter.policy import DnsFailure, DnsFailureKind
from exporter.records import CaaCheck, Problem, ProblemType, Reason

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ the module rule


# ------------------------------------------------------------------------- helpers

DOMAIN = "www.example.com"
P = "While processing CAA for www.example.com: "
ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/123"
ACCOUNTS = frozenset({ACCOUNT})
SHORT = {"www": "www.example.com", "example.com": "example.com", "com": "com"}

NXDOMAIN = DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN")
SERVFAIL = DnsFailure(DnsFailureKind.RCODE, "SERVFAIL")
REFUSED = DnsFailure(DnsFailureKind.RCODE, "REFUSED")
TIMEOUT = DnsFailure(DnsFailureKind.TIMEOUT)
TRUNCATED = DnsFailure(DnsFailureKind.TRUNCATED)


def servfail(code: int, text: str = "") -> DnsFailure:
    return DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", ede=(code, text))


def rr(text: str) -> CaaRecord:
    """``0 issue "letsencrypt.org"`` -> a record (the table's values hold no quote)."""
    flags, tag, quoted = text.split(" ", 2)
    assert quoted[0] == quoted[-1] == '"', text
    return CaaRecord(int(flags), tag.encode(), quoted[1:-1].encode())


Zone = dict[str, tuple[str, ...] | DnsFailure]


def answers(zone: Zone, domain: str = DOMAIN) -> list[CaaAnswer]:
    """One answer per queried name; a name the zone does not list answers NOERROR, empty."""
    full = {SHORT.get(name, name): data for name, data in zone.items()}
    out = []
    for name in caa_names(domain):
        data = full.pop(name, ())
        if isinstance(data, DnsFailure):
            out.append(CaaAnswer(name, failure=data))
        else:
            out.append(CaaAnswer(name, tuple(rr(text) for text in data)))
    assert full == {}, f"names never queried: {full}"
    return out


def run(zone: Zone, accounts: frozenset[str] = ACCOUNTS, domain: str = DOMAIN) -> CaaCheck:
    return check_caa(domain, answers(zone, domain), account_uris=accounts)


LE = '0 issue "letsencrypt.org"'
REFUSED_AT_EXAMPLE = P + "CAA record for example.com prevents issuance"
REFUSED_AT_WWW = P + "CAA record for www.example.com prevents issuance"


def le(params: str) -> str:
    return f'0 issue "letsencrypt.org; {params}"'


ALLOWED = "allowed"

# ------------------------------------------------------- the spec's worked examples
#
# Each row: (spec row, zone, permitted, reason, detail, relevant name, relevant records).
# ``reason`` None means permitted; the problem type follows from the reason.

ROWS: list[tuple[str, Zone, bool | None, Reason | None, str | None, str | None]] = [
    ("01-nothing", {}, True, None, None, None),
    ("02-le-at-parent", {"example.com": (LE,)}, True, None, None, "example.com"),
    (
        "03-other-ca",
        {"example.com": ('0 issue "digicert.com"',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "04-closest-set-wins",
        {"www": (LE,), "example.com": ('0 issue ";"',)},
        True,
        None,
        None,
        "www.example.com",
    ),
    (
        "05-iodef-only-stops-the-climb",
        {"www": ('0 iodef "mailto:sec@example.com"',), "example.com": ('0 issue ";"',)},
        True,
        None,
        None,
        "www.example.com",
    ),
    (
        "06-semicolon-at-fqdn",
        {"www": ('0 issue ";"',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_WWW,
        "www.example.com",
    ),
    (
        "07-empty-value",
        {"example.com": ('0 issue ""',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "08-one-authorising-record-is-enough",
        {"example.com": ('0 issue ";"', LE)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "09-tag-case-insensitive",
        {"example.com": ('0 ISSUE "letsencrypt.org"',)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "10a-issuer-case-sensitive",
        {"example.com": ('0 issue "LetsEncrypt.org"',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "10b-issuer-trailing-dot",
        {"example.com": ('0 issue "letsencrypt.org."',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "11-blanks-and-unknown-parameter",
        {"example.com": ('0 issue " letsencrypt.org ; foo=bar"',)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "12-method-dns-01",
        {"example.com": (le("validationmethods=dns-01"),)},
        False,
        Reason.CAA_FORBIDDEN_METHOD,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "13a-methods-http-01-first",
        {"example.com": (le("validationmethods=http-01,dns-01"),)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "13b-methods-unknown-skipped",
        {"example.com": (le("validationmethods=foo,http-01"),)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "13c-methods-trailing-comma-never-reached",
        {"example.com": (le("validationmethods=http-01,"),)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "14a-methods-empty-item-stops",
        {"example.com": (le("validationmethods=dns-01,,http-01"),)},
        False,
        Reason.CAA_FORBIDDEN_METHOD,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "14b-methods-case-sensitive",
        {"example.com": (le("validationmethods=HTTP-01"),)},
        False,
        Reason.CAA_FORBIDDEN_METHOD,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "14c-methods-empty",
        {"example.com": (le("validationmethods="),)},
        False,
        Reason.CAA_FORBIDDEN_METHOD,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "15-mis-capitalised-methods-ignored",
        {"example.com": (le("ValidationMethods=dns-01"),)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "16-trailing-semicolon-malformed",
        {"example.com": (le("validationmethods=http-01;"),)},
        False,
        Reason.CAA_FORBIDDEN_MALFORMED,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "17a-dash-in-tag-malformed",
        {"example.com": (le("a-b=c"),)},
        False,
        Reason.CAA_FORBIDDEN_MALFORMED,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "17b-space-in-value-malformed",
        {"example.com": (le("a=b c=d"),)},
        False,
        Reason.CAA_FORBIDDEN_MALFORMED,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "18-accounturi-ours",
        {"example.com": (le(f"accounturi={ACCOUNT}"),)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "19a-accounturi-other",
        {"example.com": (le("accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/456"),)},
        False,
        Reason.CAA_FORBIDDEN_ACCOUNT,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "19b-accounturi-trailing-slash",
        {"example.com": (le(f"accounturi={ACCOUNT}/"),)},
        False,
        Reason.CAA_FORBIDDEN_ACCOUNT,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "19c-accounturi-twice",
        {"example.com": (le(f"accounturi={ACCOUNT}; accounturi={ACCOUNT}"),)},
        False,
        Reason.CAA_FORBIDDEN_ACCOUNT,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "20a-critical-unknown-128",
        {"example.com": (LE, '128 tbs "x"')},
        False,
        Reason.CAA_FORBIDDEN_CRITICAL,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "20b-critical-unknown-1",
        {"example.com": (LE, '1 tbs "x"')},
        False,
        Reason.CAA_FORBIDDEN_CRITICAL,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "21-flag-2-not-critical",
        {"example.com": ('2 tbs "x"',)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "22-recognised-tags-may-be-critical",
        {
            "example.com": (
                '128 issuewild ";"',
                '128 issuemail ";"',
                '128 issuevmc "x"',
                '128 iodef "mailto:a@b.c"',
            )
        },
        True,
        None,
        None,
        "example.com",
    ),
    (
        "23-issuewild-only",
        {"example.com": ('0 issuewild ";"',)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "24-issuewild-ignored-for-http-01",
        {"example.com": ('0 issuewild "letsencrypt.org"', '0 issue ";"')},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "25-non-alphanumeric-tag",
        {"example.com": ('0 contact-email "x"',)},
        True,
        None,
        None,
        "example.com",
    ),
    (
        "26-non-alphanumeric-tag-critical",
        {"example.com": ('128 contact-email "x"',)},
        False,
        Reason.CAA_FORBIDDEN_CRITICAL,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    (
        "27-furthest-record-gives-the-reason",
        {"example.com": ('0 issue "digicert.com"', le("validationmethods=dns-01"))},
        False,
        Reason.CAA_FORBIDDEN_METHOD,
        REFUSED_AT_EXAMPLE,
        "example.com",
    ),
    # 28: www is a CNAME to cdn.example.net, which has the record: the resolver follows
    # it and the answer's CAA RRs count as www's.
    (
        "28-cname-target-records-count-for-the-fqdn",
        {"www": ('0 issue "digicert.com"',)},
        False,
        Reason.CAA_FORBIDDEN_ISSUER,
        REFUSED_AT_WWW,
        "www.example.com",
    ),
    # 29: the CNAME target has none; example.net (its parent) is never queried.
    ("29-cname-target-parents-never-consulted", {"www": ()}, True, None, None, None),
    (
        "30-servfail",
        {"www": SERVFAIL},
        None,
        Reason.CAA_LOOKUP_SERVFAIL,
        P + "DNS problem: SERVFAIL looking up CAA for www.example.com - the domain's "
        "nameservers may be malfunctioning",
        None,
    ),
    (
        "31-error-above-the-relevant-set-ignored",
        {"www": (LE,), "example.com": SERVFAIL},
        True,
        None,
        None,
        "www.example.com",
    ),
    (
        "32-ede-dnssec-bogus",
        {"example.com": servfail(6)},
        None,
        Reason.CAA_LOOKUP_DNSSEC,
        P + "DNS problem: looking up CAA for example.com: DNSSEC: Bogus",
        None,
    ),
    (
        "33-ede-signature-expired",
        {
            "example.com": servfail(
                7, "validation failure <example.com. CAA IN>: signature expired from 192.0.2.53"
            )
        },
        None,
        Reason.CAA_LOOKUP_DNSSEC,
        P + "DNS problem: looking up CAA for example.com: DNSSEC: Signature Expired: "
        "validation failure <example.com. CAA IN>: signature expired from 192.0.2.53",
        None,
    ),
    (
        "34-ede-no-reachable-authority",
        {"example.com": servfail(22)},
        None,
        Reason.CAA_LOOKUP_SERVFAIL,
        P + "DNS problem: looking up CAA for example.com: No Reachable Authority",
        None,
    ),
    (
        "35-ede-unknown-code",
        {"example.com": servfail(27, "x")},
        None,
        Reason.CAA_LOOKUP_SERVFAIL,
        P + "DNS problem: looking up CAA for example.com: Unknown Extended DNS Error code 27: x",
        None,
    ),
    (
        "36-servfail-at-tld",
        {"com": SERVFAIL},
        None,
        Reason.CAA_LOOKUP_SERVFAIL,
        P + "DNS problem: SERVFAIL looking up CAA for com - the domain's nameservers may be "
        "malfunctioning",
        None,
    ),
    ("37-nxdomain-at-dotted-name-is-empty", {"www": NXDOMAIN}, True, None, None, None),
    (
        "38-nxdomain-at-tld",
        {"com": NXDOMAIN},
        None,
        Reason.CAA_LOOKUP_ERROR,
        P + "DNS problem: NXDOMAIN looking up CAA for com - check that a DNS record exists for "
        "this domain",
        None,
    ),
    (
        "39-truncated",
        {"www": TRUNCATED},
        None,
        Reason.CAA_LOOKUP_TRUNCATED,
        P + "DNS problem: response was truncated looking up CAA for www.example.com",
        None,
    ),
    (
        "40-timeout",
        {"example.com": TIMEOUT},
        None,
        Reason.CAA_LOOKUP_TIMEOUT,
        P + "DNS problem: query timed out looking up CAA for example.com",
        None,
    ),
    (
        "41-refused",
        {"www": REFUSED},
        None,
        Reason.CAA_LOOKUP_ERROR,
        P + "DNS problem: REFUSED looking up CAA for www.example.com",
        None,
    ),
]


def problem_type(reason: Reason) -> ProblemType:
    """A refusal is type caa, a failed lookup type dns (va/caa.go)."""
    return ProblemType.CAA if reason.value.startswith("caa_forbidden") else ProblemType.DNS


@pytest.mark.parametrize(
    ("zone", "permitted", "reason", "detail", "relevant"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_worked_example(
    zone: Zone,
    permitted: bool | None,
    reason: Reason | None,
    detail: str | None,
    relevant: str | None,
) -> None:
    check = run(zone)
    assert check.names == ("www.example.com", "example.com", "com")
    assert check.permitted is permitted
    if reason is None:
        assert check.problem is None
    else:
        assert check.problem is not None
        assert (check.problem.type, check.problem.reason) == (problem_type(reason), reason)
        assert check.problem.detail == detail
    assert check.relevant_name == relevant
    # The relevant set, every tag, in answer order, in presentation form.
    expected = zone.get(next((k for k, v in SHORT.items() if v == relevant), ""), ())
    assert check.records == (() if relevant is None else expected)
    assert check.account_checked is True


def test_row_42_caa_refusal_is_reported_whatever_the_web_server_does() -> None:
    # Combining with the HTTP-01 result (the DCV problem wins) is the validator's job;
    # the CAA check of row 3's DNS is a refusal on its own.
    check = run({"example.com": ('0 issue "digicert.com"',)})
    assert check.permitted is False
    assert check.problem is not None
    assert check.problem.type is ProblemType.CAA
    assert check.problem.detail == REFUSED_AT_EXAMPLE


# ---------------------------------------------------------- the re-check at finalize


def test_a_refusal_is_met_again_at_finalize_as_type_caa() -> None:
    check = run({"example.com": ('0 issue "digicert.com"',)})
    assert check.finalize_problem == Problem(
        ProblemType.CAA,
        Reason.CAA_FORBIDDEN_ISSUER,
        "Error finalizing order :: rechecking caa: " + REFUSED_AT_EXAMPLE,
    )


def test_a_lookup_failure_at_finalize_becomes_type_caa_too() -> None:
    # ra.recheckCAA rewraps every CAA problem, a DNS one included, as berrors.CAAError.
    check = run({"www": TIMEOUT, "example.com": (LE,)})
    assert check.problem is not None and check.problem.type is ProblemType.DNS
    assert check.finalize_problem == Problem(
        ProblemType.CAA,
        Reason.CAA_LOOKUP_TIMEOUT,
        "Error finalizing order :: rechecking caa: "
        + P
        + "DNS problem: query timed out looking up CAA for "
        + DOMAIN,
    )


def test_nothing_is_met_at_finalize_when_caa_permits() -> None:
    assert run({"www": (LE,)}).finalize_problem is None
    assert run({}).finalize_problem is None
    assert caa.CAA_RECHECK_AFTER_SECONDS == 7 * 3600


# ------------------------------------------------------------- the relevant set, more


def test_ignored_errors_above_the_relevant_set() -> None:  # row 31
    check = run({"www": (LE,), "example.com": SERVFAIL, "com": TIMEOUT})
    assert check.permitted is True
    assert check.ignored_errors == (
        (
            "example.com",
            "DNS problem: SERVFAIL looking up CAA for example.com - the domain's nameservers "
            "may be malfunctioning",
        ),
        ("com", "DNS problem: query timed out looking up CAA for com"),
    )


def test_an_error_below_the_relevant_set_fails_the_check() -> None:
    check = run({"www": TIMEOUT, "example.com": (LE,)})
    assert check.permitted is None
    assert check.problem is not None
    assert check.problem.detail == P + "DNS problem: query timed out looking up CAA for " + DOMAIN
    assert (check.relevant_name, check.records, check.ignored_errors) == (None, (), ())


def test_nxdomain_above_the_relevant_set_is_not_an_error() -> None:
    assert run({"www": (LE,), "example.com": NXDOMAIN}).ignored_errors == ()


def test_ede_on_nxdomain() -> None:
    # The carve-out ignores the EDE at a dotted name; at the TLD the EDE form replaces
    # the NXDOMAIN text.
    blocked = DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN", ede=(15, ""))
    assert run({"www": blocked}).permitted is True
    check = run({"com": blocked})
    assert check.problem is not None
    assert check.problem.reason is Reason.CAA_LOOKUP_ERROR
    assert check.problem.detail == P + "DNS problem: looking up CAA for com: Blocked"


@pytest.mark.parametrize(
    ("failure", "reason", "text"),
    [
        (
            DnsFailure(DnsFailureKind.NETWORK),
            Reason.CAA_LOOKUP_ERROR,
            "DNS problem: networking error looking up CAA for www.example.com",
        ),
        (
            DnsFailure(DnsFailureKind.SERVER),
            Reason.CAA_LOOKUP_ERROR,
            "DNS problem: server failure at resolver looking up CAA for www.example.com",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "FORMERR"),
            Reason.CAA_LOOKUP_ERROR,
            "DNS problem: FORMERR looking up CAA for www.example.com",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "REFUSED", ede=(18, "")),
            Reason.CAA_LOOKUP_ERROR,
            "DNS problem: looking up CAA for www.example.com: Prohibited",
        ),
        (
            DnsFailure(DnsFailureKind.RCODE, "REFUSED", ede=(9, "k")),
            Reason.CAA_LOOKUP_DNSSEC,
            "DNS problem: looking up CAA for www.example.com: DNSSEC: DNSKEY Missing: k",
        ),
    ],
    ids=["network", "server", "formerr", "refused-ede-18", "refused-ede-dnssec"],
)
def test_lookup_error_reasons(failure: DnsFailure, reason: Reason, text: str) -> None:
    check = run({"www": failure})
    assert check.problem is not None
    assert (check.problem.type, check.problem.reason) == (ProblemType.DNS, reason)
    assert check.problem.detail == P + text


@pytest.mark.parametrize(
    ("ede_text", "shown"),
    [
        ("plain ascii", "plain ascii"),
        ("caf\u00e9", "caf\u00e9"),
        ("bad \udcff byte", "bad \ufffd byte"),
        ("\udcc3\udca9", "\u00e9"),  # escaped bytes that form valid UTF-8 are kept
        ("\udce2\udc82x", "\ufffd\ufffdx"),  # Go: one U+FFFD per invalid byte
    ],
    ids=["ascii", "utf-8", "invalid-byte", "escaped-valid", "truncated-sequence"],
)
def test_invalid_utf8_in_the_detail_becomes_replacement_characters(
    ede_text: str, shown: str
) -> None:
    check = run({"www": servfail(6, ede_text)})
    assert check.problem is not None
    assert check.problem.detail == (
        P + "DNS problem: looking up CAA for www.example.com: DNSSEC: Bogus: " + shown
    )


def test_a_truncated_sequence_gives_one_replacement_character_per_byte() -> None:
    # Boulder's filterProblemDetails (va/utf8filter.go) ranges over the Go string: b"\xe2\x82"
    # followed by "b" is two invalid bytes, so two U+FFFD (not Python's one).
    extra = b"a\xe2\x82b".decode("utf-8", errors="surrogateescape")
    check = run({"www": servfail(6, extra)})
    assert check.problem is not None
    assert check.problem.detail == (
        "While processing CAA for www.example.com: "
        "DNS problem: looking up CAA for www.example.com: DNSSEC: Bogus: a\ufffd\ufffdb"
    )
    # An error above the relevant set is shown with the same replacement.
    check = run({"www": (LE,), "com": servfail(6, extra)})
    assert check.ignored_errors == (
        ("com", "DNS problem: looking up CAA for com: DNSSEC: Bogus: a\ufffd\ufffdb"),
    )


def test_the_identifier_is_lowercased() -> None:
    zone: Zone = {"example.com": ('0 issue "digicert.com"',)}
    check = check_caa("WWW.Example.COM", answers(zone), account_uris=ACCOUNTS)
    assert check.problem is not None
    assert check.problem.detail == REFUSED_AT_EXAMPLE


def test_answers_must_follow_caa_names() -> None:
    with pytest.raises(ValueError, match="do not match"):
        check_caa(DOMAIN, [CaaAnswer("example.com"), CaaAnswer("com")], account_uris=ACCOUNTS)
    with pytest.raises(ValueError, match="do not match"):
        check_caa(DOMAIN, list(reversed(answers({}))), account_uris=ACCOUNTS)


def test_flags_are_shown_and_tags_kept_as_received() -> None:
    check = run({"example.com": ('0 ISSUE "letsencrypt.org"', '2 Tbs "x"')})
    assert check.records == ('0 ISSUE "letsencrypt.org"', '2 Tbs "x"')


# ------------------------------------------------------------------ refusal reasons


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (('0 issue "digicert.com; a-b=c"',), Reason.CAA_FORBIDDEN_ISSUER),
        ((le("a-b=c"), '0 issue "digicert.com"'), Reason.CAA_FORBIDDEN_MALFORMED),
        ((le("a-b=c"), le("accounturi=x")), Reason.CAA_FORBIDDEN_ACCOUNT),
        (
            (le("accounturi=x"), le(f"accounturi={ACCOUNT}; validationmethods=dns-01")),
            Reason.CAA_FORBIDDEN_METHOD,
        ),
        # The account is checked before the method: this record fails on the account.
        ((le("accounturi=x; validationmethods=dns-01"),), Reason.CAA_FORBIDDEN_ACCOUNT),
        ((le("validationmethods=dns-01; validationmethods=http-01"),), Reason.CAA_FORBIDDEN_METHOD),
        (('0 issue "  letsencrypt.org ;; "',), Reason.CAA_FORBIDDEN_MALFORMED),
        # A critical unknown tag wins over every issue record.
        ((le("validationmethods=dns-01"), '129 foo "bar"'), Reason.CAA_FORBIDDEN_CRITICAL),
        (('0 issue "letsencrypt.org"', '128 tbs "x"'), Reason.CAA_FORBIDDEN_CRITICAL),
        (('0 issue ";"', '126 tbs "x"'), Reason.CAA_FORBIDDEN_ISSUER),
    ],
    ids=[
        "malformed-naming-another-ca",
        "malformed-naming-le-over-issuer",
        "account-over-malformed",
        "method-over-account",
        "account-before-method",
        "methods-twice",
        "double-semicolon",
        "critical-over-method",
        "critical-over-authorising",
        "flags-126-not-critical",
    ],
)
def test_refusal_reason(records: tuple[str, ...], reason: Reason) -> None:
    check = run({"example.com": records})
    assert check.permitted is False
    assert check.problem is not None
    assert (check.problem.type, check.problem.reason) == (ProblemType.CAA, reason)
    assert check.problem.detail == REFUSED_AT_EXAMPLE


# ------------------------------------------------------------------------ accounts


@pytest.mark.parametrize(
    ("records", "permitted", "account_checked"),
    [
        ((le(f"accounturi={ACCOUNT}"),), True, False),
        ((le("accounturi=https://example.net/acct/1; validationmethods=http-01"),), True, False),
        ((le("accounturi=a; validationmethods=dns-01"),), False, False),
        # Two accounturi parameters never match, whatever the account: checked.
        ((le("accounturi=a; accounturi=a"),), False, True),
        ((LE,), True, True),
        # Another CA's record is not compared by Let's Encrypt.
        (('0 issue "digicert.com; accounturi=a"', LE), True, True),
        ((le("AccountURI=a"),), True, True),
    ],
    ids=[
        "assumed",
        "assumed-with-method",
        "assumed-method-refused",
        "twice",
        "none",
        "other-ca",
        "mis-capitalised",
    ],
)
def test_without_a_configured_account(
    records: tuple[str, ...], permitted: bool, account_checked: bool
) -> None:
    check = run({"example.com": records}, accounts=frozenset())
    assert check.permitted is permitted
    assert check.account_checked is account_checked


def test_any_configured_account_matches() -> None:
    other = "https://acme-v01.api.letsencrypt.org/acme/reg/123"
    zone: Zone = {"example.com": (le(f"accounturi={other}"),)}
    assert run(zone).permitted is False
    check = run(zone, accounts=frozenset({ACCOUNT, other}))
    assert (check.permitted, check.account_checked) == (True, True)


def test_parameter_tags_are_case_sensitive_today() -> None:
    # Boulder PRs #8616/#8975 (lowercase them) are not merged.
    assert caa.PARAMETER_TAGS_CASE_SENSITIVE is True


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (b"letsencrypt.org", IssueValue(b"letsencrypt.org")),
        (b"", IssueValue(b"")),
        (b";", IssueValue(b"")),
        (b"letsencrypt.org;", IssueValue(b"letsencrypt.org")),
        (b"letsencrypt.org; \t", IssueValue(b"letsencrypt.org")),
        (b" \tletsencrypt.org\t ", IssueValue(b"letsencrypt.org")),
        (b"LetsEncrypt.org.", IssueValue(b"LetsEncrypt.org.")),
        (b"not a domain!", IssueValue(b"not a domain!")),
        (b"\xffca", IssueValue(b"\xffca")),
        (
            b"letsencrypt.org; accounturi=https://a/b?c=d ; validationmethods=http-01,dns-01",
            IssueValue(
                b"letsencrypt.org",
                (("accounturi", "https://a/b?c=d"), ("validationmethods", "http-01,dns-01")),
            ),
        ),
        (b"ca; a=1; a=2", IssueValue(b"ca", (("a", "1"), ("a", "2")))),
        (b"ca; =v", IssueValue(b"ca", (("", "v"),))),
        (b"ca; t=", IssueValue(b"ca", (("t", ""),))),
        (b"ca; t==,=", IssueValue(b"ca", (("t", "=,="),))),
        (b"ca;T9=~!", IssueValue(b"ca", (("T9", "~!"),))),
        (b"letsencrypt.org; validationmethods=http-01;", None),
        (b";;", None),
        (b"ca; a=1;; b=2", None),
        (b"ca; flag", None),
        (b"ca; a=b c=d", None),
        (b"ca; a-b=c", None),
        (b"ca; a_b=1", None),
        (b"ca; a b=1", None),
        (b"ca; a=\x7f", None),
        (b"ca; a=caf\xc3\xa9", None),
        (b"ca; \xc3\xa9=1", None),
        (b"ca; a=\x00", None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_issue_value(value: bytes, parsed: IssueValue | None) -> None:
    assert parse_issue_value(value) == parsed


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("domain", "names"),
    [
        ("www.example.com", ("www.example.com", "example.com", "com")),
        (
            "a.b.example.co.uk",
            ("a.b.example.co.uk", "b.example.co.uk", "example.co.uk", "co.uk", "uk"),
        ),
        ("WWW.Example.COM.", ("www.example.com", "example.com", "com")),
        ("*.example.com", ("example.com", "com")),
        ("example.com", ("example.com", "com")),
        ("com", ("com",)),
    ],
    ids=lambda v: str(v),
)
def test_caa_names(domain: str, names: tuple[str, ...]) -> None:
    assert caa_names(domain) == names


# ------------------------------------------------------------------ presentation


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (CaaRecord(0, b"issue", b"letsencrypt.org"), '0 issue "letsencrypt.org"'),
        (CaaRecord(128, b"tbs", b""), '128 tbs ""'),
        (CaaRecord(0, b"issue", b'say "hi" \\ ok'), '0 issue "say \\"hi\\" \\\\ ok"'),
        (CaaRecord(0, b"iodef", b"caf\xc3\xa9"), '0 iodef "caf\\195\\169"'),
        (CaaRecord(0, b"issue", b"a\x00\x1f\x7f\xffb"), '0 issue "a\\000\\031\\127\\255b"'),
        (CaaRecord(1, b'con"tact\xff', b"x"), '1 con\\"tact\\255 "x"'),
        (CaaRecord(0, b"ISSUE", b"a;b=c"), '0 ISSUE "a;b=c"'),
    ],
    ids=["plain", "empty", "quote-backslash", "utf-8", "control", "odd-tag", "case-kept"],
)
def test_to_text(record: CaaRecord, text: str) -> None:
    assert record.to_text() == text
