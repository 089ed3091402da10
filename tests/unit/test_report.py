"""A pass with a warning, told the same way everywhere: one function on the result record
(``ValidationResult.warnings``) behind ``check``'s verdict, the JSON and the landing page."""

from __future__ import annotations

import dataclasses

import pytest

from exporter.config import Config, parse
from exporter.records import (
    DnsFamilyError,
    FallbackPolicy,
    Family,
    Mode,
    PassWarning,
    Problem,
    ProblemType,
    Reason,
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
