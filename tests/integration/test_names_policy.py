"""Names Let's Encrypt will never issue for, through the real commands: ``check`` and the
served exporter give the verdict of their own, and send no DNS query for such a name
(the lab's DNS server records every question); ``faß.de`` is looked up as
``xn--fa-hia.de`` (UTS #46), not as IDNA 2003's ``fass.de``."""

from __future__ import annotations

import asyncio
import html
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.message

from exporter.lab import servers as L
from exporter.lab.showcase import lab_config
from tests.conftest import ROOT, subprocess_env
from tests.integration.lab_validation import site
from tests.integration.procs import ExporterProcess, parse, value, write_config

#: Configured as written; the first is validated, the others are refused by the policy.
DOMAINS = ["faß.de", "foo.local", "co.uk", "192.0.2.1", "shop.onion", "exa mple.com"]
REFUSED = {
    "foo.local": (
        "policy_not_public",
        'Invalid identifiers requested :: Cannot issue for "foo.local": '
        "Domain name does not end with a valid public suffix (TLD)",
    ),
    "co.uk": (
        "policy_public_suffix",
        'Invalid identifiers requested :: Cannot issue for "co.uk": Domain name is an ICANN TLD',
    ),
    "192.0.2.1": (
        "policy_ip_address",
        'Invalid identifiers requested :: Cannot issue for "192.0.2.1": '
        "Identifier type is DNS but value is an IP address",
    ),
    "shop.onion": (
        "policy_forbidden",
        'Error creating new order :: Cannot issue for "shop.onion": The ACME server refuses '
        "to issue a certificate for this domain name, because it is forbidden by policy",
    ),
    "exa mple.com": (
        "policy_invalid_name",
        'Invalid identifiers requested :: Cannot issue for "exa mple.com": '
        "Domain name contains an invalid character",
    ),
}
SENTENCE = "Let's Encrypt will not issue for this name"


def record_questions(lab: L.Lab) -> list[str]:
    """Every name the lab's DNS server is asked about, from now on."""
    questions: list[str] = []
    answer: Callable[[dns.message.Message], dns.message.Message | None] = lab.zone.answer

    def recording(query: dns.message.Message) -> dns.message.Message | None:
        questions.extend(q.name.to_text(omit_final_dot=True).lower() for q in query.question)
        return answer(query)

    lab.zone.answer = recording  # type: ignore[method-assign]
    lab.zone.cache.clear()
    return questions


def assert_only_the_valid_name_was_looked_up(questions: list[str]) -> None:
    """Lookups of xn--fa-hia.de (A, AAAA, CAA up the tree) and the resolver's DNSSEC
    probe of the root: nothing of a refused name, nor of fass.de."""
    assert "xn--fa-hia.de" in questions
    assert set(questions) <= {"xn--fa-hia.de", "de", "."}, sorted(set(questions))


async def lab_with_fass(lab: L.Lab, tmp_path: Path, **overrides: Any) -> Path:
    await site(lab, "xn--fa-hia.de", L.serve())
    await site(lab, "fass.de", L.status(500))  # IDNA 2003's reading: another domain
    domains = [{"name": DOMAINS[0], "token": L.CANARY_TOKEN, "key_authorization": L.CANARY_KA}]
    return write_config(tmp_path / "names.yml", lab_config(lab, domains + DOMAINS[1:], **overrides))


async def check(*args: str) -> tuple[int | None, str, str]:
    """``acme-http01-exporter check ARGS``, beside the lab this event loop serves."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        "check",
        *args,
        env=subprocess_env(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_check_gives_the_verdict_without_a_dns_query(lab: L.Lab, tmp_path: Path) -> None:
    path = await lab_with_fass(lab, tmp_path)
    questions = record_questions(lab)
    returncode, stdout, stderr = await check("--config", str(path), "--json")
    assert returncode == 1, stderr
    results = {r["domain"]: r for r in map(json.loads, stdout.splitlines())}
    assert set(results) == {"xn--fa-hia.de", *REFUSED}
    assert results["xn--fa-hia.de"]["success"] is True
    for name, (reason, detail) in REFUSED.items():
        result = results[name]
        assert result["success"] is False
        assert result["problem"] == {
            "type": "rejectedIdentifier",
            "reason": reason,
            "detail": detail,
        }
        assert result["records"] == [] and result["caa"] is None
        assert result["certificate"]["error"] == f"not read: {SENTENCE}"
    assert_only_the_valid_name_was_looked_up(questions)

    # The text says it in one sentence, with the reason and what to do.
    returncode, stdout, _ = await check("--config", str(path), "foo.local")
    lines = stdout.splitlines()
    assert returncode == 1
    assert lines[0] == "FAIL foo.local  (policy boulder, reachability mode)"
    assert lines[1] == (
        f"  {SENTENCE}: urn:ietf:params:acme:error:rejectedIdentifier: {REFUSED['foo.local'][1]}"
    )
    assert lines[2] == f"  certificate: none read on 443 (not read: {SENTENCE})"
    assert lines[3].startswith("  hint: The name does not end in a public suffix")
    assert_only_the_valid_name_was_looked_up(questions)


async def test_the_exporter_shows_the_verdict(lab: L.Lab, tmp_path: Path) -> None:
    path = await lab_with_fass(lab, tmp_path, interval="1h", jitter="0s")
    questions = record_questions(lab)
    exporter = await asyncio.to_thread(ExporterProcess, "--config.file", str(path))
    try:
        await asyncio.to_thread(exporter.wait_ready, 30)
        _, samples = await asyncio.to_thread(exporter.scrape)
        assert value(samples, "acme_http01_validation_success", domain="xn--fa-hia.de") == 1
        for name, (reason, _) in REFUSED.items():
            assert value(samples, "acme_http01_validation_success", domain=name) == 0
            problem = {"domain": name, "type": "rejectedIdentifier", "reason": reason}
            assert value(samples, "acme_http01_validation_problem", **problem) == 1, name
            assert (
                value(samples, "acme_http01_certificate_not_after_timestamp_seconds", domain=name)
                is None
            )
        # The landing page: the sentence on the row, the problem and the hint.
        status, page, _ = await asyncio.to_thread(exporter.request, "/?state=failing")
        assert status == 200
        assert html.escape(f"{SENTENCE}: urn:ietf:params:acme:error:rejectedIdentifier") in page
        assert html.escape(f"rejectedIdentifier/policy_not_public: {REFUSED['foo.local'][1]}") in (
            page
        )
        assert html.escape("public suffix of the ICANN section") in page
        # A probe now says the same, without a lookup either.
        status, body, _ = await asyncio.to_thread(exporter.request, "/probe?target=foo.local")
        assert status == 200
        probe = parse(body)
        labels = {
            "domain": "foo.local",
            "type": "rejectedIdentifier",
            "reason": "policy_not_public",
        }
        assert value(probe, "acme_http01_validation_problem", **labels) == 1
        status, body, _ = await asyncio.to_thread(exporter.request, "/domains/foo.local")
        assert status == 200
        assert json.loads(body)["problem"]["detail"] == REFUSED["foo.local"][1]
    finally:
        await asyncio.to_thread(exporter.stop)
    assert_only_the_valid_name_was_looked_up(questions)
