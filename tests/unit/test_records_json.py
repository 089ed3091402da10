"""The records' JSON is a contract (``/domains/<name>``, ``check --json``, ``/probe?debug``):
every record type, each optional field set and unset, gives exactly these bytes, keys in
this order (``/probe?debug`` does not sort them)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from exporter.records import (
    CaaCheck,
    Certificate,
    CertificateCheck,
    DnsFamilyError,
    FallbackPolicy,
    Family,
    FamilyProbe,
    Mode,
    Outcome,
    Problem,
    ProblemType,
    Reason,
    Record,
    ValidationResult,
)

PROBLEM = Problem(
    ProblemType.CONNECTION,
    Reason.CONNECT_TIMEOUT,
    "2001:db8::1: Timeout during connect (likely firewall problem)",
)
CAA_PROBLEM = Problem(
    ProblemType.CAA,
    Reason.CAA_FORBIDDEN_ISSUER,
    "CAA record for example.com prevents issuance",
)
RECORD_SET = Record(
    url="http://www.example.com/.well-known/acme-challenge/t0k3n",
    hostname="www.example.com",
    port=80,
    addresses_resolved=("2001:db8::1", "192.0.2.1"),
    address_used="2001:db8::1",
    hop=0,
    outcome=Outcome.RESPONSE,
    status=404,
    error=Reason.BAD_STATUS,
)
RECORD_UNSET = Record(
    url="https://www.example.com:443/x",
    hostname="www.example.com",
    port=443,
    addresses_resolved=(),
    address_used="192.0.2.1",
    hop=1,
)
PROBE_SET = FamilyProbe(Family.IPV6, "2001:db8::1", True, 301, "https://x.example/", True, None)
PROBE_UNSET = FamilyProbe(
    Family.IPV4, "192.0.2.1", False, None, None, None, Reason.CONNECTION_REFUSED
)
PROBE_FALSE = FamilyProbe(Family.IPV4, "192.0.2.1", True, 200, None, False, None)
HIDDEN = DnsFamilyError(
    1, "cdn.example.net", Family.IPV6, Reason.DNS_SERVFAIL, "SERVFAIL looking up AAAA"
)
CAA_SET = CaaCheck(
    names=("www.example.com", "example.com", "com"),
    permitted=False,
    problem=CAA_PROBLEM,
    relevant_name="example.com",
    records=('0 issue "pki.goog"', '0 iodef "mailto:a@example.com"'),
    ignored_errors=(("com", "SERVFAIL"), ("www.example.com", "timeout")),
    account_checked=False,
    finalize_problem=Problem(ProblemType.CAA, Reason.CAA_FORBIDDEN_ISSUER, "rechecking caa: x"),
)
CAA_UNSET = CaaCheck(names=("example.com", "com"), permitted=True, problem=None)
CAA_FAILED = CaaCheck(
    names=("example.com",),
    permitted=None,
    problem=Problem(ProblemType.DNS, Reason.CAA_LOOKUP_SERVFAIL, "SERVFAIL"),
)
CERTIFICATE_SET = Certificate(
    address="2001:db8::1",
    not_before=1700000000.0,
    not_after=1707776000.25,
    issuer="CN=R11,O=Let's Encrypt,C=US",
    subject="CN=www.example.com",
    chain_valid=False,
    chain_error="certificate has expired",
    renewal_due=1705184000.5,
)
CERTIFICATE_UNSET = Certificate("192.0.2.1", 1.0, 2.0, "CN=a", "CN=b", True, None, 1.5)
CHECK_SET = CertificateCheck("www.example.com", CERTIFICATE_SET, None, 1700000100.125)
CHECK_UNSET = CertificateCheck("www.example.com", None, "connection refused", 1700000100.0)
UNREACHED = ValidationResult.unreached("www.example.com", FallbackPolicy.PER_HOP, Mode.REACHABILITY)
FULL = ValidationResult(
    domain="www.example.com",
    policy=FallbackPolicy.BOULDER,
    mode=Mode.CANARY,
    success=False,
    problem=PROBLEM,
    records=(RECORD_SET, RECORD_UNSET),
    ipv4_fallback=True,
    failed_hop=1,
    redirects=1,
    aaaa_mismatch=True,
    families=(PROBE_SET, PROBE_UNSET),
    dns_addresses={Family.IPV6: 2, Family.IPV4: 1},
    duration_seconds=1.23456789,
    finished_at=1700000000.5,
    other_policy=FallbackPolicy.PER_HOP,
    other_policy_success=True,
    caa=CAA_SET,
    dns_family_errors=(HIDDEN,),
)
PASSED_WITH_WARNINGS = dataclasses.replace(
    FULL,
    success=True,
    problem=None,
    failed_hop=None,
    other_policy_success=False,
    caa=CAA_UNSET,
    duration_seconds=0.0000004,
)
OTHER_UNKNOWN = dataclasses.replace(UNREACHED, other_policy=FallbackPolicy.BOULDER, caa=CAA_FAILED)

Case = (
    Problem
    | Record
    | FamilyProbe
    | DnsFamilyError
    | CaaCheck
    | Certificate
    | CertificateCheck
    | ValidationResult
)

CASES: dict[str, Case] = {
    "problem": PROBLEM,
    "record_set": RECORD_SET,
    "record_unset": RECORD_UNSET,
    "probe_set": PROBE_SET,
    "probe_unset": PROBE_UNSET,
    "probe_false": PROBE_FALSE,
    "dns_family_error": HIDDEN,
    "caa_set": CAA_SET,
    "caa_unset": CAA_UNSET,
    "caa_failed": CAA_FAILED,
    "certificate_set": CERTIFICATE_SET,
    "certificate_unset": CERTIFICATE_UNSET,
    "certificate_check_set": CHECK_SET,
    "certificate_check_unset": CHECK_UNSET,
    "result_unreached": UNREACHED,
    "result_full": FULL,
    "result_passed_with_warnings": PASSED_WITH_WARNINGS,
    "result_other_policy_unknown": OTHER_UNKNOWN,
}

#: What each case's ``to_json`` gave when each record type wrote its own by hand.
EXPECTED: dict[str, dict[str, Any]] = {
    "problem": {
        "type": "connection",
        "reason": "connect_timeout",
        "detail": "2001:db8::1: Timeout during connect (likely firewall problem)",
    },
    "record_set": {
        "url": "http://www.example.com/.well-known/acme-challenge/t0k3n",
        "hostname": "www.example.com",
        "port": "80",
        "addresses_resolved": ["2001:db8::1", "192.0.2.1"],
        "address_used": "2001:db8::1",
        "family": "ipv6",
        "hop": 0,
        "outcome": "response",
        "status": 404,
        "error": "bad_status",
    },
    "record_unset": {
        "url": "https://www.example.com:443/x",
        "hostname": "www.example.com",
        "port": "443",
        "addresses_resolved": [],
        "address_used": "192.0.2.1",
        "family": "ipv4",
        "hop": 1,
        "outcome": "not_sent",
        "status": None,
        "error": None,
    },
    "probe_set": {
        "family": "ipv6",
        "address": "2001:db8::1",
        "responded": True,
        "status": 301,
        "location": "https://x.example/",
        "body_matches": True,
        "error": None,
    },
    "probe_unset": {
        "family": "ipv4",
        "address": "192.0.2.1",
        "responded": False,
        "status": None,
        "location": None,
        "body_matches": None,
        "error": "connection_refused",
    },
    "probe_false": {
        "family": "ipv4",
        "address": "192.0.2.1",
        "responded": True,
        "status": 200,
        "location": None,
        "body_matches": False,
        "error": None,
    },
    "dns_family_error": {
        "hop": 1,
        "host": "cdn.example.net",
        "family": "ipv6",
        "reason": "dns_servfail",
        "detail": "SERVFAIL looking up AAAA",
    },
    "caa_set": {
        "names": ["www.example.com", "example.com", "com"],
        "permitted": False,
        "problem": {
            "type": "caa",
            "reason": "caa_forbidden_issuer",
            "detail": "CAA record for example.com prevents issuance",
        },
        "relevant_name": "example.com",
        "records": ['0 issue "pki.goog"', '0 iodef "mailto:a@example.com"'],
        "ignored_errors": [
            {"name": "com", "detail": "SERVFAIL"},
            {"name": "www.example.com", "detail": "timeout"},
        ],
        "account_checked": False,
        "finalize_problem": {
            "type": "caa",
            "reason": "caa_forbidden_issuer",
            "detail": "rechecking caa: x",
        },
    },
    "caa_unset": {
        "names": ["example.com", "com"],
        "permitted": True,
        "problem": None,
        "relevant_name": None,
        "records": [],
        "ignored_errors": [],
        "account_checked": True,
        "finalize_problem": None,
    },
    "caa_failed": {
        "names": ["example.com"],
        "permitted": None,
        "problem": {"type": "dns", "reason": "caa_lookup_servfail", "detail": "SERVFAIL"},
        "relevant_name": None,
        "records": [],
        "ignored_errors": [],
        "account_checked": True,
        "finalize_problem": None,
    },
    "certificate_set": {
        "address": "2001:db8::1",
        "not_before": 1700000000.0,
        "not_after": 1707776000.25,
        "issuer": "CN=R11,O=Let's Encrypt,C=US",
        "subject": "CN=www.example.com",
        "chain_valid": False,
        "chain_error": "certificate has expired",
        "renewal_due": 1705184000.5,
    },
    "certificate_unset": {
        "address": "192.0.2.1",
        "not_before": 1.0,
        "not_after": 2.0,
        "issuer": "CN=a",
        "subject": "CN=b",
        "chain_valid": True,
        "chain_error": None,
        "renewal_due": 1.5,
    },
    "certificate_check_unset": {
        "certificate": None,
        "error": "connection refused",
        "checked_at": 1700000100.0,
    },
    "result_unreached": {
        "domain": "www.example.com",
        "success": False,
        "policy": "per-hop",
        "mode": "reachability",
        "problem": None,
        "ipv4_fallback": False,
        "failed_hop": None,
        "redirects": 0,
        "aaaa_mismatch": False,
        "dns_addresses": {},
        "records": [],
        "families": [],
        "other_policy": None,
        "caa": None,
        "dns_family_errors": [],
        "warnings": [],
        "duration_seconds": 0.0,
        "finished_at": 0.0,
    },
}
#: A record inside another gives the JSON it gives alone.
EXPECTED["certificate_check_set"] = {
    "certificate": EXPECTED["certificate_set"],
    "error": None,
    "checked_at": 1700000100.125,
}
EXPECTED["result_full"] = {
    "domain": "www.example.com",
    "success": False,
    "policy": "boulder",
    "mode": "canary",
    "problem": EXPECTED["problem"],
    "ipv4_fallback": True,
    "failed_hop": 1,
    "redirects": 1,
    "aaaa_mismatch": True,
    "dns_addresses": {"ipv4": 1, "ipv6": 2},
    "records": [EXPECTED["record_set"], EXPECTED["record_unset"]],
    "families": [EXPECTED["probe_set"], EXPECTED["probe_unset"]],
    "other_policy": {"policy": "per-hop", "success": True},
    "caa": EXPECTED["caa_set"],
    "dns_family_errors": [EXPECTED["dns_family_error"]],
    "warnings": [],
    "duration_seconds": 1.234568,
    "finished_at": 1700000000.5,
}
#: The keys keep their places when their values change.
EXPECTED["result_passed_with_warnings"] = {
    **EXPECTED["result_full"],
    "success": True,
    "problem": None,
    "failed_hop": None,
    "other_policy": {"policy": "per-hop", "success": False},
    "caa": EXPECTED["caa_unset"],
    "warnings": ["ipv4_fallback", "aaaa_mismatch", "dns_family_error"],
    "duration_seconds": 0.0,
}
EXPECTED["result_other_policy_unknown"] = {
    **EXPECTED["result_unreached"],
    "other_policy": {"policy": "boulder", "success": None},
    "caa": EXPECTED["caa_failed"],
}


@pytest.mark.parametrize("name", CASES)
def test_each_record_gives_the_json_it_always_gave(name: str) -> None:
    document = CASES[name].to_json()
    assert json.dumps(document) == json.dumps(EXPECTED[name])  # the bytes, keys in order
    assert json.dumps(document, indent=2) == json.dumps(EXPECTED[name], indent=2)
    assert document == EXPECTED[name]  # and the values: lists, not tuples; None kept


def test_every_record_type_is_covered_with_each_optional_field_set_and_unset() -> None:
    """A new record type, or a new optional field, needs a case here first."""
    shown = {type(case) for case in CASES.values()}
    assert shown == {
        Problem,
        Record,
        FamilyProbe,
        DnsFamilyError,
        CaaCheck,
        Certificate,
        CertificateCheck,
        ValidationResult,
    }
    for kind in shown:
        cases = [case for case in CASES.values() if type(case) is kind]
        for spec in dataclasses.fields(kind):
            values = {repr(getattr(case, spec.name)) for case in cases}
            no_default = spec.default is spec.default_factory is dataclasses.MISSING
            optional = not no_default or "None" in str(spec.type)
            if optional:
                assert len(values) > 1, f"{kind.__name__}.{spec.name}: set and unset"
