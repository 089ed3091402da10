"""Human-readable renderings of a ValidationResult: trace lines, the verdict, a fix hint.

Rule: derived from the result record only; nothing here decides an outcome.
"""

from __future__ import annotations

import ipaddress
import time

from exporter.config import Config
from exporter.records import (
    CertificateCheck,
    FallbackPolicy,
    Family,
    Mode,
    Outcome,
    PassWarning,
    ProblemType,
    Reason,
    ValidationResult,
)

__all__ = [
    "NOT_ISSUED",
    "fix_hint",
    "is_refused",
    "render",
    "resolver_warning",
    "verdict",
    "warning_text",
]

_DOCS = "https://letsencrypt.org/docs/ipv6-support/"
#: The verdict on a name Let's Encrypt's policy refuses: no validation is attempted.
NOT_ISSUED = "Let's Encrypt will not issue for this name"


#: Each warning of a passing validation, in a few words (the hint says what to do).
_WARNING_TEXTS = {
    PassWarning.IPV4_FALLBACK: "only through its IPv4 fallback",
    PassWarning.AAAA_MISMATCH: "IPv6 and IPv4 answer differently (AAAA mismatch)",
    PassWarning.DNS_FAMILY_ERROR: "a DNS lookup it hides failed (hidden DNS failure)",
}


def warning_text(result: ValidationResult) -> str | None:
    """Why a success passes only with a warning; ``None`` for a clean success or a failure."""
    if not result.warnings:
        return None
    return "; ".join(_WARNING_TEXTS[warning] for warning in result.warnings)


def verdict(result: ValidationResult) -> str:
    """One sentence in Let's Encrypt's terms."""
    if result.success:
        if result.mode is Mode.REACHABILITY:
            text = "Let's Encrypt would reach the web server"
        else:
            text = "Let's Encrypt would accept the challenge"
        warnings = warning_text(result)
        if warnings is not None:
            text += f", with a warning: {warnings}"
        return text + "."
    assert result.problem is not None
    if is_refused(result):
        return (
            f"{NOT_ISSUED}: "
            f"urn:ietf:params:acme:error:{result.problem.type}: {result.problem.detail}"
        )
    return (
        "Let's Encrypt would fail: "
        f"urn:ietf:params:acme:error:{result.problem.type}: {result.problem.detail}"
    )


def resolver_warning(config: Config) -> str:
    """The one line said (log, landing page, ``check``) when the resolver does not validate
    DNSSEC. A config that routes the loopback lab's addresses (``--demo``, ``lab``) resolves
    through the lab's DNS server, which is authoritative: there the warning is expected."""
    if config.lab.address_map:
        return (
            "The resolver does not validate DNSSEC: expected here, the lab's DNS server is "
            "authoritative, not a validating resolver. Against real domains, run a validating "
            "resolver such as Unbound beside the exporter."
        )
    return (
        "The resolver does not validate DNSSEC (no AD bit on the signed root): a zone with "
        "broken DNSSEC or a split-horizon view may pass here and fail at Let's Encrypt, which "
        "validates. Run a validating resolver such as Unbound beside the exporter (README: "
        "A resolver that sees what Let's Encrypt sees)."
    )


def is_refused(result: ValidationResult) -> bool:
    """Let's Encrypt's policy refuses the name itself: nothing was validated."""
    return result.problem is not None and result.problem.type is ProblemType.REJECTED_IDENTIFIER


_REFUSAL_HINTS = {
    Reason.POLICY_IP_ADDRESS: (
        "This is an IP address, not a DNS name: list the domain name whose A and AAAA "
        "records point at this address."
    ),
    Reason.POLICY_NOT_PUBLIC: (
        "The name does not end in a public suffix of the ICANN section of the Public Suffix "
        "List (.local, .internal, .lan, .test, .example, .invalid and other private or "
        "reserved names never do), so no public CA issues for it. Use a name in a public "
        "domain you own (an internal host can get one, validated by DNS-01 if Let's Encrypt "
        "cannot reach it), or remove the name from the config."
    ),
    Reason.POLICY_PUBLIC_SUFFIX: (
        "The name is itself a public suffix (a TLD, or a registry suffix such as co.uk) "
        "that nobody can own: list the name registered under it."
    ),
    Reason.POLICY_INVALID_NAME: (
        "Fix the name: labels of 1 to 63 letters, digits and hyphens (none at either end, "
        "no '--' in third and fourth place unless it starts with xn--), at most 10 labels "
        "and 253 characters, no empty label; Unicode names are converted for you."
    ),
    Reason.POLICY_MALFORMED_IDN: (
        "An xn-- label must be the Punycode of a normalised (NFC) Unicode label: write the "
        "name in Unicode in the config and let the exporter convert it, or convert it "
        "again with an IDNA 2008 (UTS #46) tool."
    ),
    Reason.POLICY_FORBIDDEN: (
        "Let's Encrypt's policy forbids this name (it never issues for .onion names): get "
        "the certificate from another CA, or remove the name from the config."
    ),
}


def _refusal_hint(result: ValidationResult) -> str | None:
    assert result.problem is not None
    hint = _REFUSAL_HINTS.get(result.problem.reason)
    try:
        ipaddress.ip_address(result.domain)
    except ValueError:
        return hint
    return _REFUSAL_HINTS[Reason.POLICY_IP_ADDRESS]


def fix_hint(result: ValidationResult) -> str | None:
    """What to change, from Let's Encrypt's IPv6 advice; ``None`` when nothing is wrong."""
    problem = result.problem
    failed = result.failed_record
    ipv6_failed = failed is not None and failed.family is Family.IPV6
    if problem is None:
        if result.ipv4_fallback:
            return (
                "Passes only thanks to the IPv4 fallback, which Let's Encrypt applies to the "
                "first request alone: an HTTPS redirect would make it fail. Fix the AAAA "
                "record (or IPv6 on the server), or remove it. See " + _DOCS
            )
        if result.aaaa_mismatch:
            return (
                "IPv6 and IPv4 answer differently. Let's Encrypt uses the AAAA record first: "
                "make both addresses serve the same site, or remove the AAAA record."
            )
        if result.dns_family_errors:
            error = result.dns_family_errors[0]
            return (
                f"The {error.family} lookup of {error.host} fails; Let's Encrypt hides it and "
                "goes on with the other family, so this passes today, but one change to the "
                "working records (or a resolver that sees the zone differently) and it fails. "
                "Fix the zone's nameservers or DNSSEC for that record type."
            )
        return None
    if is_refused(result):
        return _refusal_hint(result)
    reason = problem.reason
    if reason in (Reason.DNS_NXDOMAIN, Reason.DNS_NO_ADDRESSES) and result.failed_hop is None:
        return f"Create an A and/or AAAA record for {result.domain}."
    if reason is Reason.REDIRECT_LOOP and result.ipv4_fallback:
        return (
            "A redirect hop could not be reached over IPv6, so Let's Encrypt replayed the "
            "whole chain over IPv4 and met the same redirect again. Make IPv6 work on every "
            "hop (ports 80 and 443), fix or remove the AAAA record, or exempt "
            "/.well-known/acme-challenge/ from the redirect."
        )
    if reason is Reason.KEY_AUTHORIZATION_MISMATCH:  # the content, whichever the address
        return "The server answered 200 with other content: check the challenge file it serves."
    if ipv6_failed and result.failed_on_redirect_hop:
        return (
            "Redirect hops are dialled over IPv6 with no fallback. Make IPv6 work on the "
            "redirect target (port 443 for HTTPS), fix or remove its AAAA record, or exempt "
            "/.well-known/acme-challenge/ from the HTTP to HTTPS redirect. See " + _DOCS
        )
    if ipv6_failed:
        return (
            "Let's Encrypt connects to the first AAAA address first and only falls back to "
            "IPv4 when that connection cannot be made at all. Point the AAAA record at this "
            "web server (same virtual host), or remove it. See " + _DOCS
        )
    if reason.value.startswith("bad_redirect") or reason.value.startswith("redirect_"):
        return (
            "Redirects may only use http or https, ports 80 or 443, a public domain name or "
            "IP, at most 11 hops and no loop. Fix the redirect, or exempt "
            "/.well-known/acme-challenge/ from it."
        )
    caa_hint = _caa_hint(result)
    if caa_hint is not None:
        return caa_hint
    if reason is Reason.DNS_DNSSEC:
        return (
            "The zone's DNSSEC is broken (expired signatures, or a DS at the parent that "
            "matches no key): Let's Encrypt's validating resolver answers SERVFAIL. Re-sign "
            "the zone, or fix or remove the DS record at the registrar."
        )
    if reason is Reason.TOO_MANY_REDIRECTS:
        return "Let's Encrypt follows at most 11 redirects: shorten the chain."
    if reason is Reason.BAD_STATUS:
        return (
            "The challenge URL must answer 200 (Let's Encrypt) or at least 2xx/404 "
            "(reachability): check the web server's configuration for /.well-known/acme-challenge/."
        )
    return None


_CAA_HINTS = {
    Reason.CAA_FORBIDDEN_ISSUER: (
        'No CAA record at {name} names letsencrypt.org: add 0 issue "letsencrypt.org" '
        "beside the others (or remove the CAA records at {name})."
    ),
    Reason.CAA_FORBIDDEN_METHOD: (
        "The CAA record for letsencrypt.org at {name} restricts validationmethods and "
        'leaves out http-01: add it (0 issue "letsencrypt.org; validationmethods=http-01").'
    ),
    Reason.CAA_FORBIDDEN_ACCOUNT: (
        "The CAA record for letsencrypt.org at {name} pins accounturi to another ACME "
        "account: add the account you order with, or set caa.account_uris to it if it is."
    ),
    Reason.CAA_FORBIDDEN_MALFORMED: (
        "A CAA record for letsencrypt.org at {name} does not parse (parameters are "
        "key=value separated by ';', no trailing ';'): Let's Encrypt ignores it. Fix it."
    ),
    Reason.CAA_FORBIDDEN_CRITICAL: (
        "A CAA record at {name} has an unknown tag with the critical flag: Let's Encrypt "
        "refuses to issue. Remove the flag (0 instead of 128) or the record."
    ),
}


def _caa_hint(result: ValidationResult) -> str | None:
    check = result.caa
    problem = result.problem
    if check is None or problem is None or problem != check.problem:
        return None
    if problem.reason in _CAA_HINTS:
        return _CAA_HINTS[problem.reason].format(name=check.relevant_name or result.domain)
    return (
        "Let's Encrypt looks up CAA at the domain and each parent up to the TLD, and fails "
        "when a lookup fails: fix the nameservers (or DNSSEC) of the zone named above."
    )


def _caa_line(result: ValidationResult) -> str | None:
    check = result.caa
    if check is None:
        return None
    records = "; ".join(check.records)
    if check.permitted is None:
        line = "CAA: lookup failed, Let's Encrypt fails too"
    elif not check.permitted:
        assert check.problem is not None
        line = f"CAA: FORBIDS issuance ({check.problem.reason}) at {check.relevant_name}: {records}"
    elif check.relevant_name is None:
        line = f"CAA: permitted (no CAA records from {check.names[0]} up to {check.names[-1]})"
    else:
        line = f"CAA: permitted by {check.relevant_name}: {records}"
    if not check.account_checked:
        line += " (accounturi not checked: set caa.account_uris)"
    if check.problem is not None and check.problem != result.problem:
        line += f"\n    {check.problem.detail}"
    if check.finalize_problem is not None:
        line += (
            "\n    a renewal that reuses an authorization (validated over 7 h earlier) fetches no"
            f"\n    challenge and still fails at finalize: {check.finalize_problem.type}: "
            f"{check.finalize_problem.detail}"
        )
    return line


def _when(timestamp: float, now: float) -> str:
    days = (timestamp - now) / 86400
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    return f"{date} (in {days:.0f} days)" if days >= 0 else f"{date} ({-days:.0f} days ago)"


def certificate_line(check: CertificateCheck, now: float | None = None) -> str:
    """What the domain serves on 443, and when a standard ACME client renews it."""
    cert = check.certificate
    if cert is None:
        return f"certificate: none read on 443 ({check.error})"
    now = time.time() if now is None else now
    chain = "valid" if cert.chain_valid else f"NOT valid ({cert.chain_error})"
    return (
        f"certificate: expires {_when(cert.not_after, now)}, renewal due "
        f"{_when(cert.renewal_due, now)}; issuer {cert.issuer}; chain {chain}"
    )


def render(result: ValidationResult, certificate: CertificateCheck | None = None) -> str:
    """The ``check`` command's human output for one domain."""
    mark = "OK  " if result.success else "FAIL"
    lines = [f"{mark} {result.domain}  (policy {result.policy}, {result.mode} mode)"]
    for record in result.records:
        if record.outcome is Outcome.REDIRECT or record.outcome is Outcome.RESPONSE:
            outcome = f"{record.status}"
            if record.outcome is Outcome.REDIRECT:
                outcome += " redirect"
            if record.error is not None:
                outcome += f" {record.error}"
        elif record.outcome is Outcome.REFUSED_REDIRECT:
            outcome = f"{record.status} redirect refused: {record.error}"
        elif record.error is not None:
            outcome = str(record.error)
        else:
            outcome = str(record.outcome)
        lines.append(
            f"  hop {record.hop}  {record.family:4}  {record.address_used:<24} "
            f"{record.url}  -> {outcome}"
        )
    lines.append("  " + verdict(result))
    if is_refused(result):
        # Nothing was looked up or fetched: no facts to give.
        return "\n".join(_closing(lines, result, certificate))
    facts = [f"IPv4 fallback: {'yes' if result.ipv4_fallback else 'no'}"]
    if len(result.families) == 2:
        v6 = result.family_probe(Family.IPV6)
        v4 = result.family_probe(Family.IPV4)
        assert v6 is not None and v4 is not None
        facts.append(
            f"AAAA mismatch: {'yes' if result.aaaa_mismatch else 'no'} "
            f"(ipv6 {_probe_text(v6.status, v6.error)}, ipv4 {_probe_text(v4.status, v4.error)})"
        )
    facts.append(f"redirects: {result.redirects}")
    if result.failed_hop is not None:
        facts.append(f"failed hop: {result.failed_hop}")
    facts.append(f"{result.duration_seconds:.2f}s")
    lines.append("  " + " | ".join(facts))
    if result.other_policy is not None:
        other = "would succeed" if result.other_policy_success else "would fail too"
        if result.success and not result.other_policy_success:
            other = "would FAIL"
        label = (
            "Let's Encrypt's proposed per-hop fallback (boulder PR #8905)"
            if result.other_policy is FallbackPolicy.PER_HOP
            else "Let's Encrypt today (boulder policy)"
        )
        lines.append(f"  {label}: {other}")
    caa = _caa_line(result)
    if caa is not None:
        lines.append(f"  {caa}")
    return "\n".join(_closing(lines, result, certificate))


def _closing(
    lines: list[str], result: ValidationResult, certificate: CertificateCheck | None
) -> list[str]:
    """The certificate line, the lookups Let's Encrypt hides, and the hint."""
    if certificate is not None:
        lines.append("  " + certificate_line(certificate))
    for error in result.dns_family_errors:
        lines.append(
            f"  hidden by Let's Encrypt: hop {error.hop} {error.family} lookup of "
            f"{error.host} failed ({error.reason}): {error.detail}"
        )
    hint = fix_hint(result)
    if hint:
        lines.append(f"  hint: {hint}")
    return lines


def _probe_text(status: int | None, error: Reason | None) -> str:
    if error is not None:
        return str(error)
    return str(status)
