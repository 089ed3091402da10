"""The exporter as a real process against the lab: contract, endpoints, reload, shutdown."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.lab.showcase import SHOWCASE
from tests.conftest import ROOT
from tests.integration.lab_validation import RESULT_KEYS
from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    parse,
    run_cli,
    value,
    wait_for,
    write_config,
)

#: Timeouts a busy machine keeps within: no contract value depends on them, but a loopback
#: dial or a validation that overran them would change a verdict. Each dial to one of the
#: lab's dead IPv6 addresses waits its full 3 s.
FAST = {"interval": "60s", "jitter": "500ms", "timeouts": {"dial": "3s", "validation": "20s"}}

#: domain: (success, type, reason, mismatch, fallback, hop failure, redirects,
#:          (dns ipv4, dns ipv6), {family: responded}, other policy success or None)
CONTRACT: dict[str, tuple[Any, ...]] = {
    "healthy.example.com": (1, "none", "none", 0, 0, 0, 0, (1, 1), {"ipv6": 1, "ipv4": 1}, None),
    "wrong-aaaa.example.com": (
        0, "unauthorized", "bad_status", 1, 0, 0, 0, (1, 1), {"ipv6": 1, "ipv4": 1}, None,
    ),
    "aaaa-timeout.example.com": (
        1, "none", "none", 1, 1, 0, 0, (1, 1), {"ipv6": 0, "ipv4": 1}, None,
    ),
    "aaaa-refused.example.com": (
        1, "none", "none", 1, 1, 0, 0, (1, 1), {"ipv6": 0, "ipv4": 1}, None,
    ),
    "aaaa-timeout-https.example.com": (
        0, "connection", "connect_timeout", 1, 1, 1, 1, (1, 1), {"ipv6": 0, "ipv4": 1}, 1,
    ),
    "ipv4-only.example.com": (1, "none", "none", 0, 0, 0, 0, (1, 0), {"ipv4": 1}, None),
    "ipv6-dead-443.example.com": (
        0, "connection", "redirect_loop", 0, 1, 1, 1, (1, 1), {"ipv6": 1, "ipv4": 1}, 1,
    ),
    "nxdomain.example.com": (0, "dns", "dns_nxdomain", 0, 0, 0, 0, (0, 0), {}, None),
    "caa-forbids.example.com": (
        0, "caa", "caa_forbidden_issuer", 0, 0, 0, 0, (1, 1), {"ipv6": 1, "ipv4": 1}, None,
    ),
    "dnssec-bogus.example.com": (0, "dns", "dns_dnssec", 0, 0, 0, 0, (0, 0), {}, None),
    "cert-renewal-due.example.com": (
        0, "unauthorized", "bad_status", 0, 0, 0, 0, (1, 0), {"ipv4": 1}, None,
    ),
    "cert-renewal-far.example.com": (
        0, "unauthorized", "bad_status", 0, 0, 0, 0, (1, 0), {"ipv4": 1}, None,
    ),
    "aaaa-servfail.example.com": (1, "none", "none", 0, 0, 0, 0, (1, 0), {"ipv4": 1}, None),
}  # fmt: skip
#: CAA permits issuance (acme_http01_caa_permitted) for every showcase domain but these.
CAA_FORBIDDEN = {"caa-forbids.example.com", "dnssec-bogus.example.com"}


@pytest.fixture(scope="module")
def showcase_exporter(
    lab_process: LabProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExporterProcess]:
    path = write_config(tmp_path_factory.mktemp("exp") / "config.yml", lab_process.config(**FAST))
    exporter = ExporterProcess("--config.file", str(path))
    exporter.wait_ready(40)
    yield exporter
    exporter.stop()


def test_contract_values_for_showcase_domains(showcase_exporter: ExporterProcess) -> None:
    _, samples = showcase_exporter.scrape()
    assert list(CONTRACT) == [d.name for d in SHOWCASE]
    for domain, expected in CONTRACT.items():
        success, ptype, reason, mismatch, fallback, hop, redirects, dns, families, other = expected
        got = {
            "success": value(samples, "acme_http01_validation_success", domain=domain),
            "problem": value(
                samples, "acme_http01_validation_problem", domain=domain, type=ptype, reason=reason
            ),
            "mismatch": value(samples, "acme_http01_aaaa_mismatch", domain=domain),
            "fallback": value(samples, "acme_http01_ipv4_fallback", domain=domain),
            "fallbacks": value(samples, "acme_http01_ipv4_fallbacks_total", domain=domain),
            "hop": value(samples, "acme_http01_redirect_hop_failure", domain=domain),
            "redirects": value(samples, "acme_http01_redirects", domain=domain),
            "dns": (
                value(samples, "acme_http01_dns_addresses", domain=domain, family="ipv4"),
                value(samples, "acme_http01_dns_addresses", domain=domain, family="ipv6"),
            ),
            "families": {
                f: value(samples, "acme_http01_family_response", domain=domain, family=f)
                for f in ("ipv6", "ipv4")
                if value(samples, "acme_http01_family_response", domain=domain, family=f)
                is not None
            },
            "other": value(
                samples, "acme_http01_other_policy_success", domain=domain, policy="per-hop"
            ),
            "total": value(
                samples,
                "acme_http01_validations_total",
                domain=domain,
                result="success" if success else "failure",
            ),
        }
        assert got == {
            "success": success,
            "problem": 1,
            "mismatch": mismatch,
            "fallback": fallback,
            "hop": hop,
            "redirects": redirects,
            "dns": dns,
            "families": families,
            "other": other,
            # A domain's second run may come soon after its first (its phase of the
            # interval), so the counters are checked against each other, not against 1.
            "fallbacks": got["fallbacks"],
            "total": got["total"],
        }, domain
        assert got["total"] >= 1
        assert got["fallbacks"] == (got["total"] if fallback else 0)
        # Exactly one problem series per domain.
        problems = [
            k
            for k in samples
            if k[0] == "acme_http01_validation_problem" and ("domain", domain) in k[1]
        ]
        assert len(problems) == 1, domain
        assert value(samples, "acme_http01_validation_duration_seconds", domain=domain) > 0
        assert value(samples, "acme_http01_last_validation_timestamp_seconds", domain=domain) > 1e9
    assert (
        value(
            samples,
            "acme_http01_redirect_hop_failures_total",
            domain="aaaa-timeout-https.example.com",
            reason="connect_timeout",
        )
        >= 1
    )
    assert (
        value(
            samples,
            "acme_http01_redirect_hop_failures_total",
            domain="ipv6-dead-443.example.com",
            reason="redirect_loop",
        )
        >= 1
    )
    for domain in CONTRACT:
        permitted = value(samples, "acme_http01_caa_permitted", domain=domain)
        assert permitted == (0 if domain in CAA_FORBIDDEN else 1), domain
    hidden = {k: v for k, v in samples.items() if k[0] == "acme_http01_dns_family_error"}
    labels = {"domain": "aaaa-servfail.example.com", "family": "ipv6", "reason": "dns_servfail"}
    assert hidden == {("acme_http01_dns_family_error", frozenset(labels.items())): 1}
    # The lab's DNS server is authoritative, not a validating resolver.
    assert value(samples, "acme_http01_resolver_dnssec_validating") == 0
    assert value(samples, "acme_http01_renewal_window_seconds") == 7 * 86400
    assert value(samples, "acme_http01_domains") == len(SHOWCASE)
    assert value(samples, "acme_http01_exporter_ipv6_capable") == 1
    assert value(samples, "acme_http01_config_last_reload_successful") == 1
    assert value(samples, "acme_http01_config_last_reload_success_timestamp_seconds") > 1e9
    build = [k for k in samples if k[0] == "acme_http01_exporter_build_info"]
    assert len(build) == 1 and ("version", "0.1.0") in build[0][1]
    assert value(samples, "acme_http01_scheduler_delay_seconds_count") >= len(SHOWCASE)
    assert value(samples, "acme_http01_validation_latency_seconds_count") >= len(SHOWCASE)


def test_no_ip_url_or_free_text_in_labels(showcase_exporter: ExporterProcess) -> None:
    _, samples = showcase_exporter.scrape()
    allowed = {
        "domain",
        "type",
        "reason",
        "family",
        "result",
        "policy",
        "version",
        "python_version",
        "perspective",
        "shard",
        "shards",
        "le",
        "source",  # where names come from: static, file, kubernetes
        "kind",  # Ingress, Certificate, ...; File
        "namespace",
        "name",  # an object's name; a file's path (as Prometheus' __meta_filepath)
    }
    for name, labels in samples:
        if name.startswith(("process_", "python_")):
            continue  # the runtime collectors' own labels (python_info, gc generation)
        for key, label_value in labels:
            assert key in allowed, (name, key)
            if key == "name" and dict(labels).get("source") == "file":
                assert label_value.startswith("/"), (name, label_value)
                continue
            assert "/" not in label_value and ":" not in label_value.replace("python", ""), (
                name,
                key,
                label_value,
            )


def test_the_demo_shows_discovery(demo: ExporterProcess) -> None:
    """The demo reads a file of names too: a name found twice keeps both origins, and the
    wildcard in it is skipped with its reason; the file path is the only label value with
    a slash."""
    _, samples = demo.scrape()
    origins = {
        dict(labels)["source"]
        for name, labels in samples
        if name == "acme_http01_domain_source_info"
        and dict(labels)["domain"] == "healthy.example.com"
    }
    assert origins == {"static", "file"}
    skipped = {
        dict(labels)["reason"]: count
        for (name, labels), count in samples.items()
        if name == "acme_http01_discovery_skipped_names"
    }
    assert skipped == {"wildcard": 1}
    for name, labels in samples:
        for key, label_value in labels:
            if "/" in label_value:
                assert (name, key) == ("acme_http01_domain_source_info", "name"), (name, key)
                assert dict(labels)["source"] == "file"


def test_promtool_check_metrics_on_a_real_scrape(showcase_exporter: ExporterProcess) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed")
    text, _ = showcase_exporter.scrape()
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metrics_gzip_and_text_format(showcase_exporter: ExporterProcess) -> None:
    import gzip
    import urllib.request

    req = urllib.request.Request(
        showcase_exporter.base + "/metrics",
        headers={
            "Accept-Encoding": "gzip",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        # Prometheus prefers OpenMetrics, and gets it.
        assert (
            response.headers["Content-Type"]
            == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )
        assert "Accept-Encoding" in response.headers["Vary"]
        text = gzip.decompress(response.read()).decode()
    assert 'acme_http01_validation_success{domain="healthy.example.com"} 1.0' in text
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1


def test_domains_endpoint(showcase_exporter: ExporterProcess) -> None:
    status, body, headers = showcase_exporter.request("/domains/aaaa-timeout-https.example.com")
    assert status == 200 and headers["Content-Type"] == "application/json"
    result = json.loads(body)
    assert result["domain"] == "aaaa-timeout-https.example.com"
    assert result["problem"]["reason"] == "connect_timeout"
    assert [r["hop"] for r in result["records"]] == [0, 0, 1]
    assert result["warnings"] == []  # a failure has its problem, no warnings
    status, body, _ = showcase_exporter.request("/domains/aaaa-servfail.example.com")
    assert status == 200 and json.loads(body)["warnings"] == ["dns_family_error"]
    assert RESULT_KEYS - result.keys() == set()
    assert showcase_exporter.request("/domains/unknown.example.com")[0] == 404
    # Names are normalised like the config's.
    assert showcase_exporter.request("/domains/HEALTHY.example.com.")[0] == 200


#: Showcase domains that serve no certificate on 443 (their names do not resolve).
NO_CERTIFICATE = {"nxdomain.example.com", "dnssec-bogus.example.com"}


def test_certificates_of_the_showcase_domains(showcase_exporter: ExporterProcess) -> None:
    def readings() -> dict[str, float | None]:
        _, samples = showcase_exporter.scrape()
        return {
            name: value(
                samples, "acme_http01_certificate_renewal_due_timestamp_seconds", domain=name
            )
            for name in CONTRACT
        }

    wait_for(
        lambda: all(readings()[n] is not None for n in CONTRACT if n not in NO_CERTIFICATE),
        20,
        "certificates were not read",
    )
    now = time.time()
    due = readings()
    assert {n for n, v in due.items() if v is None} == NO_CERTIFICATE
    # A 90-day certificate issued 58 days ago: a client renewing at a third left renews
    # in two days; the far one in 59 days.
    assert due["cert-renewal-due.example.com"] == pytest.approx(now + 2 * 86400, abs=600)
    assert due["cert-renewal-far.example.com"] == pytest.approx(now + 59 * 86400, abs=600)
    _, samples = showcase_exporter.scrape()
    name = "cert-renewal-due.example.com"
    not_after = value(samples, "acme_http01_certificate_not_after_timestamp_seconds", domain=name)
    not_before = value(samples, "acme_http01_certificate_not_before_timestamp_seconds", domain=name)
    assert not_after == pytest.approx(now + 32 * 86400, abs=600)
    assert not_before == pytest.approx(now - 58 * 86400, abs=600)
    # The lab's certificates are self-signed: reported, not required.
    assert value(samples, "acme_http01_certificate_chain_valid", domain=name) == 0
    status, body, _ = showcase_exporter.request(f"/domains/{name}")
    document = json.loads(body)
    assert status == 200
    assert document["certificate"]["certificate"]["issuer"] == "CN=acme-http01-exporter lab"
    assert document["certificate"]["certificate"]["chain_error"] == "self-signed certificate"
    status, body, _ = showcase_exporter.request("/domains/nxdomain.example.com")
    error = json.loads(body)["certificate"]["error"]
    assert error.startswith("DNS problem: NXDOMAIN looking up A for nxdomain.example.com")


def test_runbook_has_an_anchor_for_every_alert(showcase_exporter: ExporterProcess) -> None:
    import yaml

    rules = yaml.safe_load((ROOT / "grafana" / "rules.yaml").read_text())
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    status, page, headers = showcase_exporter.request("/runbook")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for alert in alerts:
        assert f'id="{alert.lower()}"' in page, alert
    assert "acme-http01-exporter check" in page


def test_landing_health_and_config(showcase_exporter: ExporterProcess) -> None:
    status, page, _ = showcase_exporter.request("/")
    assert status == 200
    for domain in CONTRACT:
        assert f"<td>{domain}</td>" in page
    assert "Redirect loop detected" in page
    assert "/domains/ipv6-dead-443.example.com" in page
    assert "<td>forbids (caa-forbids.example.com)</td>" in page
    assert "CAA record for caa-forbids.example.com prevents issuance" in page
    assert "<td>ipv6 dns_servfail</td>" in page  # aaaa-servfail.example.com's hidden failure
    wait_for(  # cert-renewal-due.example.com, once its certificate was read
        lambda: "<td>renewal due in 2 d</td>" in showcase_exporter.request("/")[1],
        20,
        "no certificate on the landing page",
    )
    # The lab's DNS server is authoritative, not a validating resolver: the banner says so,
    # in the words of the log's warning.
    banner = (
        "The resolver does not validate DNSSEC: expected here, the lab's DNS server is "
        "authoritative, not a validating resolver. Against real domains, run a validating "
        "resolver such as Unbound beside the exporter."
    )
    assert f'<p class="warn">{html.escape(banner)}</p>' in page
    logged = [e for e in showcase_exporter.logs if "validate DNSSEC" in str(e.get("msg"))]
    assert [(e["level"], e["msg"]) for e in logged] == [("warning", banner)]
    assert showcase_exporter.request("/-/healthy")[0] == 200
    status, text, _ = showcase_exporter.request("/config")
    assert status == 200 and "healthy.example.com" in text
    assert showcase_exporter.request("/nope")[0] == 404
    assert showcase_exporter.request("/-/reload")[0] == 405


def test_landing_warning_state_and_page_size(showcase_exporter: ExporterProcess) -> None:
    status, page, _ = showcase_exporter.request("/?state=warning")
    assert status == 200
    rows = re.findall(r'<tr class="(fail|warning|pending|ok)" data-domain="([^"]+)"', page)
    assert sorted(rows) == [
        ("warning", "aaaa-refused.example.com"),
        ("warning", "aaaa-servfail.example.com"),
        ("warning", "aaaa-timeout.example.com"),
    ]
    assert '<span class="n">3</span> warning' in page
    status, page, _ = showcase_exporter.request("/?state=ok")
    oks = re.findall(r'<tr class="(fail|warning|pending|ok)" data-domain="([^"]+)"', page)
    assert sorted(oks) == [("ok", "healthy.example.com"), ("ok", "ipv4-only.example.com")]
    # ?size= outside 1 to 1,000 (or not a number) is refused, not silently clamped.
    for size in ("0", "1001", "-5", "many"):
        status, text, _ = showcase_exporter.request(f"/?size={size}")
        assert status == 400, size
        assert (
            text == f"size must be a whole number from 1 to 1,000 (rows per page), not {size!r}\n"
        )
    for size in ("1", "1000"):
        assert showcase_exporter.request(f"/?size={size}")[0] == 200


def test_config_shows_the_jitter_in_force(lab_process: LabProcess, tmp_path: Path) -> None:
    document = lab_process.config(interval="40s", timeouts={"dial": "1s", "validation": "4s"})
    assert "jitter" not in document  # left to its default: 10% of the interval
    path = write_config(tmp_path / "c.yml", document)
    exporter = ExporterProcess("--config.file", str(path))
    try:
        status, text, _ = exporter.request("/config")
        assert status == 200
        assert yaml.safe_load(text)["jitter"] == 4.0
    finally:
        assert exporter.stop() == 0


def test_probe_configured_domain(showcase_exporter: ExporterProcess) -> None:
    status, text, _ = showcase_exporter.request("/probe?target=wrong-aaaa.example.com")
    assert status == 200
    samples = parse(text)
    assert value(samples, "acme_http01_validation_success", domain="wrong-aaaa.example.com") == 0
    assert value(samples, "acme_http01_aaaa_mismatch", domain="wrong-aaaa.example.com") == 1
    assert {k[0] for k in samples} >= {"acme_http01_validation_problem"}
    assert "acme_http01_exporter_build_info" not in {k[0] for k in samples}


def test_probe_debug_and_policy(showcase_exporter: ExporterProcess) -> None:
    status, text, _ = showcase_exporter.request(
        "/probe?target=ipv6-dead-443.example.com&policy=per-hop&debug=true"
    )
    assert status == 200
    assert text.startswith("OK   ipv6-dead-443.example.com  (policy per-hop, canary mode)")
    assert '"other_policy": {' in text


def test_probe_refuses_unconfigured_targets(showcase_exporter: ExporterProcess) -> None:
    status, text, _ = showcase_exporter.request("/probe?target=evil.example.net")
    assert status == 403
    assert "not a configured domain" in text
    assert showcase_exporter.request("/probe")[0] == 400
    assert showcase_exporter.request("/probe?target=healthy.example.com&policy=x")[0] == 400
    _, samples = showcase_exporter.scrape()
    assert value(samples, "acme_http01_probes_total", result="refused") >= 1


# ------------------------------------------------------------------------ reloads


def test_reload_add_remove_bad_and_sighup(lab_process: LabProcess, tmp_path: Path) -> None:
    def domains(*names: str) -> list[dict[str, str]]:
        return [d for d in lab_process.document["domains"] if d["name"] in names]

    path = write_config(
        tmp_path / "config.yml",
        lab_process.config(
            **FAST, domains=domains("healthy.example.com", "wrong-aaaa.example.com")
        ),
    )
    exporter = ExporterProcess("--config.file", str(path))
    try:
        exporter.wait_ready()
        _, samples = exporter.scrape()
        assert value(samples, "acme_http01_domains") == 2

        # Good reload: one added, one removed.
        write_config(
            path,
            lab_process.config(
                **FAST, domains=domains("healthy.example.com", "ipv4-only.example.com")
            ),
        )
        status, text, _ = exporter.request("/-/reload", "POST")
        assert (status, text) == (200, "config reloaded\n")

        def added_and_removed() -> bool:
            _, s = exporter.scrape()
            return (
                value(s, "acme_http01_validation_success", domain="ipv4-only.example.com") == 1
                and value(s, "acme_http01_validation_success", domain="wrong-aaaa.example.com")
                is None
            )

        wait_for(added_and_removed, 15, "reload did not add/remove domains", exporter)
        text, samples = exporter.scrape()
        assert "wrong-aaaa.example.com" not in text
        assert value(samples, "acme_http01_domains") == 2
        assert value(samples, "acme_http01_config_reloads_total", result="success") == 1
        # The kept domain keeps its counters.
        assert (
            value(
                samples,
                "acme_http01_validations_total",
                domain="healthy.example.com",
                result="success",
            )
            >= 1
        )

        # Bad reload: rejected, the running config is kept, the gauge says so.
        good_text = path.read_text()
        path.write_text(good_text + "intervall: 5m\n")
        status, text, _ = exporter.request("/-/reload", "POST")
        assert status == 500
        assert text.strip() == f"{path}: intervall: unknown key"
        _, samples = exporter.scrape()
        assert value(samples, "acme_http01_config_last_reload_successful") == 0
        assert value(samples, "acme_http01_config_reloads_total", result="failure") == 1
        assert value(samples, "acme_http01_validation_success", domain="ipv4-only.example.com") == 1
        exporter.logged(
            lambda e: (
                e.get("msg") == "config reload rejected; the running config is kept"
                and "intervall: unknown key" in e.get("problems", "")
            )
        )

        # SIGHUP with a fixed file: accepted again.
        path.write_text(good_text)
        exporter.proc.send_signal(signal.SIGHUP)

        def reloaded() -> bool:
            return value(exporter.scrape()[1], "acme_http01_config_last_reload_successful") == 1

        wait_for(reloaded, 10, "SIGHUP did not reload", exporter)
    finally:
        code = exporter.stop()
    assert code == 0


def test_sigterm_exits_cleanly_while_validating(lab_process: LabProcess, tmp_path: Path) -> None:
    # A domain whose validation is stuck in a dial timeout when SIGTERM arrives.
    document = lab_process.config(
        interval="60s",
        jitter="0s",
        timeouts={"dial": "30s", "validation": "60s"},
        domains=[
            d for d in lab_process.document["domains"] if d["name"] == "aaaa-timeout.example.com"
        ],
    )
    exporter = ExporterProcess("--config.file", str(write_config(tmp_path / "c.yml", document)))
    wait_for(
        lambda: value(exporter.scrape()[1], "acme_http01_validations_in_flight") == 1,
        10,
        "validation did not start",
        exporter,
    )
    code = exporter.stop(signal.SIGTERM, timeout=10)
    assert code == 0
    errors = [e for e in exporter.logs if e.get("level") == "error"]
    assert errors == []
    assert any(e.get("msg") == "shutting down" for e in exporter.logs)


def test_ready_only_after_every_domain_has_a_result(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    document = lab_process.config(
        interval="60s",
        jitter="0s",
        # aaaa-timeout's IPv6 dial: the window in which it is pending while healthy has its
        # result, long enough for a busy machine to start the exporter and look in it.
        timeouts={"dial": "10s", "validation": "20s"},
        domains=[
            d
            for d in lab_process.document["domains"]
            if d["name"] in ("healthy.example.com", "aaaa-timeout.example.com")
        ],
    )
    exporter = ExporterProcess("--config.file", str(write_config(tmp_path / "c.yml", document)))
    try:
        wait_for(
            lambda: exporter.request("/domains/healthy.example.com")[0] == 200,
            10,
            "no first result",
            exporter,
        )
        assert exporter.request("/-/ready")[0] == 503  # aaaa-timeout waits on its 10 s dial
        assert exporter.request("/domains/aaaa-timeout.example.com")[0] == 503
        exporter.wait_ready(30)
    finally:
        exporter.stop()


# ---------------------------------------------------------------------- the CLI


run = run_cli


def test_config_check() -> None:
    good = ROOT / "tests" / "testdata" / "configs" / "good.yml"
    proc = run("--config.file", str(good), "--config.check")
    assert (proc.returncode, proc.stdout) == (0, f"{good}: OK (3 domains)\n")
    bad = ROOT / "tests" / "testdata" / "configs" / "invalid-several.yml"
    proc = run("--config.file", str(bad), "--config.check")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"{bad}: timeouts.retries: unknown key",
        f"{bad}: probe.allow_any_target: Input should be a valid boolean, unable to interpret "
        "input",
    ]


def test_bad_start_arguments() -> None:
    assert run().returncode == 2
    proc = run("--config.file", "/nonexistent.yml")
    assert proc.returncode == 1
    assert "cannot read the file" in proc.stderr
    assert run("--web.listen-address", "nonsense", "--demo").returncode == 2


def test_demo_mode_shows_every_pitfall() -> None:
    exporter = ExporterProcess("--demo")
    try:
        exporter.wait_ready(40)
        _, samples = exporter.scrape()
        for domain in SHOWCASE:
            expected = 1 if domain.expect_success else 0
            got = value(samples, "acme_http01_validation_success", domain=domain.name)
            assert got == expected, domain.name
        status, page, _ = exporter.request("/")
        assert status == 200 and "Redirect loop detected" in page
    finally:
        assert exporter.stop() == 0


async def test_a_crashing_validation_becomes_an_internal_result() -> None:
    from exporter.compose import build_bundle
    from exporter.config import parse as parse_config
    from exporter.service import Exporter

    class BrokenResolver:
        async def lookup(self, host: str, family: object) -> object:
            raise RuntimeError("resolver exploded")

    exporter = Exporter(build_bundle(parse_config({"domains": ["a.example.com"]})))
    exporter.validator.resolver = BrokenResolver()  # type: ignore[assignment]
    await exporter._run("a.example.com", None)  # must not raise
    state = exporter.store.get("a.example.com")
    assert state is not None and state.result is not None
    assert state.result.problem is not None
    assert (state.result.problem.type, state.result.problem.reason) == (
        "serverInternal",
        "internal",
    )
    assert state.result.problem.detail == "internal error: RuntimeError: resolver exploded"


@pytest.mark.parametrize(("domains", "threshold"), [(1, 10), (1_000, 10), (10_000, 100)])
async def test_full_collections_spaced_in_proportion_to_the_domains(
    domains: int, threshold: int
) -> None:
    import gc

    from exporter.compose import build_bundle
    from exporter.config import parse as parse_config
    from exporter.service import Exporter, full_collection_threshold

    assert full_collection_threshold(50_000) == 500
    saved = gc.get_threshold()
    try:
        names = [f"d{i}.example.com" for i in range(domains)]
        exporter = Exporter(build_bundle(parse_config({"domains": names})))
        await exporter._schedule(reschedule=False)  # the jobs only: the scheduler is not started
        assert gc.get_threshold() == (saved[0], saved[1], threshold)
    finally:
        gc.set_threshold(*saved)
