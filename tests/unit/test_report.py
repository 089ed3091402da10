"""A pass with a warning, told the same way everywhere: one function on the result record
(``ValidationResult.warnings``) behind ``check``'s verdict, the JSON and the landing page."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from exporter import policy
from exporter.config import Config, parse
from exporter.records import (
    CaaCheck,
    DnsFamilyError,
    FallbackPolicy,
    Family,
    Mode,
    Outcome,
    PassWarning,
    Problem,
    ProblemType,
    Reason,
    Record,
    ValidationResult,
)
from exporter.report import fix_hint, render, resolver_warning, verdict, warning_text

#: A clean success, nothing sent (the facts under test are set on copies of it).
CLEAN = dataclasses.replace(
    ValidationResult.unreached("www.example.com", FallbackPolicy.BOULDER, Mode.CANARY),
    success=True,
)
HIDDEN = DnsFamilyError(
    hop=0,
    host="www.example.com",
    family=Family.IPV6,
    reason=Reason.DNS_SERVFAIL,
    detail="DNS problem: SERVFAIL looking up AAAA for www.example.com",
)


@pytest.mark.parametrize(
    ("changes", "codes", "because"),
    [
        ({}, [], None),
        ({"ipv4_fallback": True}, ["ipv4_fallback"], "only through its IPv4 fallback"),
        (
            {"aaaa_mismatch": True},
            ["aaaa_mismatch"],
            "IPv6 and IPv4 answer differently (AAAA mismatch)",
        ),
        (
            {"dns_family_errors": (HIDDEN,)},
            ["dns_family_error"],
            "a DNS lookup it hides failed (hidden DNS failure)",
        ),
        (
            {"ipv4_fallback": True, "aaaa_mismatch": True, "dns_family_errors": (HIDDEN,)},
            ["ipv4_fallback", "aaaa_mismatch", "dns_family_error"],
            "only through its IPv4 fallback; IPv6 and IPv4 answer differently (AAAA "
            "mismatch); a DNS lookup it hides failed (hidden DNS failure)",
        ),
    ],
)
def test_a_pass_with_a_warning_is_said_in_the_verdict_the_json_and_the_hint(
    changes: dict[str, object], codes: list[str], because: str | None
) -> None:
    result = dataclasses.replace(CLEAN, **changes)  # type: ignore[arg-type]
    assert result.to_json()["warnings"] == codes
    assert [str(w) for w in result.warnings] == codes
    assert warning_text(result) == because
    if because is None:
        assert verdict(result) == "Let's Encrypt would accept the challenge."
        assert fix_hint(result) is None
    else:
        assert verdict(result) == (
            f"Let's Encrypt would accept the challenge, with a warning: {because}."
        )
        assert fix_hint(result)  # a warning always comes with what to do
    assert render(result).splitlines()[1] == "  " + verdict(result)


def test_a_failure_has_its_problem_and_no_warnings() -> None:
    problem = Problem(ProblemType.CONNECTION, Reason.REDIRECT_LOOP, "Redirect loop detected")
    failed = dataclasses.replace(
        CLEAN, success=False, problem=problem, ipv4_fallback=True, aaaa_mismatch=True
    )
    assert failed.warnings == ()
    assert failed.to_json()["warnings"] == []
    assert warning_text(failed) is None


def test_the_warning_codes_are_a_closed_set() -> None:
    assert [str(w) for w in PassWarning] == ["ipv4_fallback", "aaaa_mismatch", "dns_family_error"]


def test_the_resolver_warning_says_what_it_means_and_what_to_do() -> None:
    real = resolver_warning(Config())
    assert real.startswith("The resolver does not validate DNSSEC (no AD bit on the signed root)")
    assert "Run a validating resolver such as Unbound beside the exporter" in real
    assert "\n" not in real
    lab = parse({"lab": {"address_map": {"2001:db8::1": {"http": "[::1]:8080"}}}})
    expected = resolver_warning(lab)
    assert expected.startswith(
        "The resolver does not validate DNSSEC: expected here, the lab's DNS server is "
        "authoritative, not a validating resolver."
    )
    assert expected != real and "\n" not in expected


# --------------------------------------------------------------- the failed address, by record

V6, V4 = "2001:db8::1", "192.0.2.1"
OTHER = {V6: V4, V4: V6}
URL = "http://www.example.com/.well-known/acme-challenge/t0k3n"
HOP1 = "https://cdn.example.net/.well-known/acme-challenge/t0k3n"
KEY = "t0k3n.thumbprint"

#: The start of each hint (``None``: no hint).
AAAA = "Let's Encrypt connects to the first AAAA address first"
HOP_V6 = "Redirect hops are dialled over IPv6 with no fallback"
STATUS = "The challenge URL must answer 200"
CONTENT = "The server answered 200 with other content"
REDIRECT = "Redirects may only use http or https"
ELEVEN = "Let's Encrypt follows at most 11 redirects"
LOOP = "A redirect hop could not be reached over IPv6"
CREATE = "Create an A and/or AAAA record for www.example.com."
DNSSEC = "The zone's DNSSEC is broken"
CAA_ISSUER = "No CAA record at example.com names letsencrypt.org"
CAA_LOOKUP = "Let's Encrypt looks up CAA at the domain and each parent"
NOT_PUBLIC = "The name does not end in a public suffix"


def _record(
    hop: int, address: str, outcome: Outcome, status: int | None = None, error: Reason | None = None
) -> Record:
    url, host, port = (URL, "www.example.com", 80) if hop == 0 else (HOP1, "cdn.example.net", 443)
    return Record(url, host, port, (address,), address, hop, outcome, status, error)


def _redirected(address: str) -> Record:
    """Hop 0 redirected to hop 1, from the other family's address than ``address``'s: a
    hint that read the wrong request would name the wrong family."""
    return _record(0, OTHER[address], Outcome.REDIRECT, status=301)


def _failed(problem: Problem, records: list[Record], hop: int | None) -> ValidationResult:
    return dataclasses.replace(
        CLEAN, success=False, problem=problem, records=tuple(records), failed_hop=hop
    )


def _refused(reason: Reason, message: str, address: str, hop: int = 0) -> ValidationResult:
    """The request on ``hop`` got a redirect that Let's Encrypt refuses."""
    refusal = policy.RedirectRefusal(reason, message)
    problem = policy.redirect_problem(ip=address, location=HOP1, refusal=refusal)
    sent = _record(hop, address, Outcome.REFUSED_REDIRECT, status=302, error=reason)
    return _failed(problem, [sent], hop + 1)


def _transport(reason: Reason, address: str, hop: int, text: str = "") -> ValidationResult:
    url = URL if hop == 0 else HOP1
    problem = policy.transport_problem(reason, ip=address, url=url, text=text)
    records = [] if hop == 0 else [_redirected(address)]
    return _failed(problem, [*records, _record(hop, address, Outcome.FAILED, error=reason)], hop)


def _response(address: str, hop: int, status: int, body: bytes) -> ValidationResult:
    url = URL if hop == 0 else HOP1
    problem = policy.check_response(
        status=status, body=body, key_authorization=KEY, url=url, ip=address
    )
    assert problem is not None
    records = [] if hop == 0 else [_redirected(address)]
    return _failed(problem, [*records, _record(hop, address, Outcome.RESPONSE, status=status)], hop)


def _deadline(phase: policy.Phase, address: str) -> ValidationResult:
    location = HOP1 if phase is policy.Phase.DNS else None
    verdict = policy.deadline_verdict(phase, ip=address, url=URL, redirect_location=location)
    sent = _record(0, address, verdict.outcome, error=verdict.error)
    return _failed(verdict.problem, [sent], verdict.hop_offset)


def _fell_back(address: str) -> ValidationResult:
    """Per-hop fallback: the first AAAA failed, then ``address`` failed too."""
    reason = Reason.CONNECTION_REFUSED
    problem = policy.transport_problem(reason, ip=address, url=URL)
    first = _record(0, OTHER[address], Outcome.FAILED, error=reason)
    result = _failed(problem, [first, _record(0, address, Outcome.FAILED, error=reason)], 0)
    return dataclasses.replace(result, ipv4_fallback=True)


def _unreached(problem: Problem) -> ValidationResult:
    return dataclasses.replace(CLEAN, success=False, problem=problem)


def _caa(problem: Problem, address: str) -> ValidationResult:
    """The fetch passed (from ``address``), CAA did not: Let's Encrypt reports CAA's problem."""
    check = CaaCheck(("www.example.com", "example.com", "com"), None, problem)
    if problem.type is ProblemType.CAA:
        check = dataclasses.replace(
            check, permitted=False, relevant_name="example.com", records=('0 issue "pki.goog"',)
        )
    passed = _record(0, address, Outcome.RESPONSE, status=200)
    return dataclasses.replace(
        CLEAN, success=False, problem=problem, records=(passed,), caa=check, failed_hop=None
    )


DNS_NXDOMAIN = Problem(
    ProblemType.DNS,
    Reason.DNS_NXDOMAIN,
    "DNS problem: NXDOMAIN looking up A for www.example.com - check that a DNS record "
    "exists for this domain; DNS problem: NXDOMAIN looking up AAAA for www.example.com - "
    "check that a DNS record exists for this domain",
)
HOP_NXDOMAIN = dataclasses.replace(DNS_NXDOMAIN, detail=DNS_NXDOMAIN.detail.replace("www", "cdn"))
CAA_FORBIDS = Problem(
    ProblemType.CAA,
    Reason.CAA_FORBIDDEN_ISSUER,
    "CAA record for example.com prevents issuance",
)
CAA_SERVFAIL = Problem(
    ProblemType.DNS,
    Reason.CAA_LOOKUP_SERVFAIL,
    "DNS problem: SERVFAIL looking up CAA for com - the domain's nameservers may be malfunctioning",
)

#: (case, how to build it from an address, the hint with that address IPv6, with it IPv4,
#: whether the failed request is the last record: False when no request failed).
HINT_TABLE: list[tuple[str, Callable[[str], ValidationResult], str | None, str | None, bool]] = [
    # connection: dialling, waiting, a reset, on the first request and on a redirect hop
    ("dial timeout", lambda a: _transport(Reason.CONNECT_TIMEOUT, a, 0), AAAA, None, True),
    ("refused", lambda a: _transport(Reason.CONNECTION_REFUSED, a, 0), AAAA, None, True),
    ("unreachable hop", lambda a: _transport(Reason.NETWORK_UNREACHABLE, a, 1), HOP_V6, None, True),
    ("reset", lambda a: _transport(Reason.CONNECTION_RESET, a, 0), AAAA, None, True),
    ("http2", lambda a: _transport(Reason.HTTP2_OVER_HTTP, a, 0), AAAA, None, True),
    ("fallback, then", _fell_back, AAAA, None, True),
    ("deadline dialling", lambda a: _deadline(policy.Phase.DIAL, a), AAAA, None, True),
    ("deadline waiting", lambda a: _deadline(policy.Phase.WAIT, a), AAAA, None, True),
    # tls: an alert on the HTTPS redirect hop
    (
        "tls alert hop",
        lambda a: _transport(Reason.TLS_ALERT, a, 1, "remote error: tls: handshake failure"),
        HOP_V6,
        None,
        True,
    ),
    ("tls error hop", lambda a: _transport(Reason.TLS_ERROR, a, 1), HOP_V6, None, True),
    # unauthorized: the final response, its body
    ("404", lambda a: _response(a, 0, 404, b""), AAAA, STATUS, True),
    ("404 hop", lambda a: _response(a, 1, 404, b""), HOP_V6, STATUS, True),
    ("too large", lambda a: _response(a, 0, 200, b"x" * 200), AAAA, None, True),
    # the detail of a mismatch names no address: the hint is about the content
    ("mismatch", lambda a: _response(a, 0, 200, b"other"), CONTENT, CONTENT, True),
    ("mismatch hop", lambda a: _response(a, 1, 200, b"other"), CONTENT, CONTENT, True),
    ("body cut", lambda a: _deadline(policy.Phase.BODY, a), AAAA, None, True),
    # a refused redirect: its hop was never requested, whatever sent the redirect
    (
        "bad port",
        lambda a: _refused(Reason.BAD_REDIRECT_PORT, "bad port", a),
        REDIRECT,
        REDIRECT,
        False,
    ),
    (
        "loop",
        lambda a: _refused(Reason.REDIRECT_LOOP, "Redirect loop", a),
        REDIRECT,
        REDIRECT,
        False,
    ),
    (
        "twelfth",
        lambda a: _refused(Reason.TOO_MANY_REDIRECTS, "Too many", a, 11),
        ELEVEN,
        ELEVEN,
        False,
    ),
    (
        "hop nxdomain",
        lambda a: _failed(
            policy.redirect_problem(ip=a, location=HOP1, refusal=HOP_NXDOMAIN),
            [_record(0, a, Outcome.REFUSED_REDIRECT, status=302, error=Reason.DNS_NXDOMAIN)],
            1,
        ),
        None,
        None,
        False,
    ),
    ("hop lookup deadline", lambda a: _deadline(policy.Phase.DNS, a), None, None, False),
    (
        "loop after the fallback",
        lambda a: dataclasses.replace(
            _refused(Reason.REDIRECT_LOOP, "Redirect loop", a), ipv4_fallback=True
        ),
        LOOP,
        LOOP,
        False,
    ),
    # dns, caa, rejectedIdentifier, serverInternal: no request failed
    ("nxdomain", lambda a: _unreached(DNS_NXDOMAIN), CREATE, CREATE, False),
    (
        "dnssec",
        lambda a: _unreached(Problem(ProblemType.DNS, Reason.DNS_DNSSEC, "DNS problem: SERVFAIL")),
        DNSSEC,
        DNSSEC,
        False,
    ),
    ("caa forbids", lambda a: _caa(CAA_FORBIDS, a), CAA_ISSUER, CAA_ISSUER, False),
    ("caa lookup", lambda a: _caa(CAA_SERVFAIL, a), CAA_LOOKUP, CAA_LOOKUP, False),
    (
        "not public",
        lambda a: _unreached(
            Problem(ProblemType.REJECTED_IDENTIFIER, Reason.POLICY_NOT_PUBLIC, "not public")
        ),
        NOT_PUBLIC,
        NOT_PUBLIC,
        False,
    ),
    (
        "internal",
        lambda a: _unreached(
            Problem(ProblemType.SERVER_INTERNAL, Reason.INTERNAL, "internal error: 2001:db8::1")
        ),
        None,
        None,
        False,
    ),
]


@pytest.mark.parametrize("family", [Family.IPV6, Family.IPV4])
@pytest.mark.parametrize(
    ("build", "on_v6", "on_v4", "request_failed"),
    [case[1:] for case in HINT_TABLE],
    ids=[case[0] for case in HINT_TABLE],
)
def test_the_hint_reads_the_failed_address_from_the_records(
    family: Family,
    build: Callable[[str], ValidationResult],
    on_v6: str | None,
    on_v4: str | None,
    request_failed: bool,
) -> None:
    address = V6 if family is Family.IPV6 else V4
    result = build(address)
    failed = result.failed_record
    if request_failed:
        assert failed is not None and failed is result.records[-1]
        assert failed.address_used == address and failed.family is family
    else:
        assert failed is None
    expected = on_v6 if family is Family.IPV6 else on_v4
    hint = fix_hint(result)
    if expected is None:
        assert hint is None
    else:
        assert hint is not None and hint.startswith(expected), hint


def test_every_problem_type_is_in_the_hint_table() -> None:
    """``malformed`` is the one ACME type no HTTP-01 validation produces."""
    shown = set()
    for _, build, *_ in HINT_TABLE:
        for address in (V6, V4):
            problem = build(address).problem
            assert problem is not None
            shown.add(problem.type)
    assert shown == set(ProblemType) - {ProblemType.MALFORMED}
    assert ProblemType.MALFORMED not in policy.REASON_TYPES.values()


def test_the_failed_address_is_the_one_the_detail_names() -> None:
    """Where the problem of a failed request names an address (Let's Encrypt's ``<ip>: ...``;
    a mismatch names none), it is the failed record's: the records say what the text says."""
    for name, build, _, _, request_failed in HINT_TABLE:
        if not request_failed or name.startswith("mismatch"):
            continue
        for address in (V6, V4):
            result = build(address)
            assert result.problem is not None and result.failed_record is not None
            assert result.problem.detail.startswith(f"{result.failed_record.address_used}: ")
