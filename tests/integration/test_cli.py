"""The ``check`` and ``lab`` commands, run as a user would: real processes, real lab."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.lab.showcase import SHOWCASE
from tests.conftest import ROOT, subprocess_env
from tests.integration.lab_validation import RESULT_KEYS
from tests.integration.procs import ExporterProcess, run_cli, wait_for

EXE = [sys.executable, "-m", "exporter"]


run = run_cli


def _verdicts(*args: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The event loop a served demo ran on and every domain's verdict and problem."""
    exporter = ExporterProcess("--demo", *args)
    try:
        exporter.wait_ready(60)
        _, samples = exporter.scrape()
        started = [entry for entry in exporter.logs if entry.get("msg") == "started"]
    finally:
        exporter.stop()
    verdicts: dict[str, tuple[str, ...]] = {}
    for (name, labels), sample in samples.items():
        if name in ("acme_http01_validation_success", "acme_http01_validation_problem"):
            found = dict(labels)
            key = f"{found['domain']} {name} {found.get('reason', '')}"
            verdicts[key] = (*sorted(f"{k}={v}" for k, v in found.items()), str(sample))
    return str(started[0]["event_loop"]), verdicts


def test_the_verdicts_are_the_same_on_both_event_loops() -> None:
    default_loop, on_uvloop = _verdicts()
    asyncio_loop, on_asyncio = _verdicts("--runtime.event-loop", "asyncio")
    assert (default_loop, asyncio_loop) == ("uvloop", "asyncio")
    assert len({k.split()[0] for k in on_uvloop}) == len(SHOWCASE)
    assert on_uvloop == on_asyncio


def test_an_unknown_event_loop_is_a_usage_error() -> None:
    proc = run("--demo", "--runtime.event-loop", "trio")
    assert proc.returncode == 2
    assert "invalid choice: 'trio'" in proc.stderr


@pytest.fixture(scope="module")
def demo_json() -> tuple[int, dict[str, dict[str, object]]]:
    proc = run("check", "--demo", "--json")
    # The demo lab's DNS server is authoritative, not a validating resolver: one warning,
    # which says so.
    assert proc.stderr.splitlines() == [
        "warning: The resolver does not validate DNSSEC: expected here, the lab's DNS server "
        "is authoritative, not a validating resolver. Against real domains, run a validating "
        "resolver such as Unbound beside the exporter."
    ]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, {line["domain"]: line for line in lines}


def test_check_demo_json_has_every_showcase_domain(
    demo_json: tuple[int, dict[str, dict[str, object]]],
) -> None:
    code, results = demo_json
    assert code == 1  # some showcase domains are predicted to fail
    assert list(results) == [d.name for d in SHOWCASE]
    for domain in SHOWCASE:
        result = results[domain.name]
        assert result["success"] is domain.expect_success, domain.name
        assert RESULT_KEYS - result.keys() == set(), domain.name


def test_check_demo_json_details(demo_json: tuple[int, dict[str, dict[str, object]]]) -> None:
    _, results = demo_json
    timeout_https = results["aaaa-timeout-https.example.com"]
    assert (
        timeout_https["problem"]
        == {
            "type": "connection",
            "reason": "connect_timeout",
            "detail": timeout_https["records"][2]["address_used"]  # type: ignore[index]
            + ": Fetching https://aaaa-timeout-https.example.com/.well-known/acme-challenge/"
            "lab-canary: Timeout during connect (likely firewall problem)",
        }
    )
    assert timeout_https["failed_hop"] == 1
    assert timeout_https["ipv4_fallback"] is True
    assert timeout_https["other_policy"] == {"policy": "per-hop", "success": True}
    dead443 = results["ipv6-dead-443.example.com"]
    assert dead443["problem"]["reason"] == "redirect_loop"  # type: ignore[index]
    assert dead443["problem"]["detail"].endswith("Redirect loop detected")  # type: ignore[index]
    assert results["aaaa-timeout.example.com"]["ipv4_fallback"] is True
    assert results["aaaa-timeout.example.com"]["aaaa_mismatch"] is True
    assert results["wrong-aaaa.example.com"]["aaaa_mismatch"] is True
    assert results["healthy.example.com"]["aaaa_mismatch"] is False
    assert results["nxdomain.example.com"]["problem"]["type"] == "dns"  # type: ignore[index]
    assert results["nxdomain.example.com"]["records"] == []
    # Passing with a warning: the codes of a closed set, only on a success.
    warnings = {name: result["warnings"] for name, result in results.items()}
    assert warnings == {
        d.name: {
            "aaaa-timeout.example.com": ["ipv4_fallback", "aaaa_mismatch"],
            "aaaa-refused.example.com": ["ipv4_fallback", "aaaa_mismatch"],
            "aaaa-servfail.example.com": ["dns_family_error"],
        }.get(d.name, [])
        for d in SHOWCASE
    }
    assert timeout_https["warnings"] == []  # a failure has its problem, not warnings


def test_check_says_a_pass_with_a_warning_and_why() -> None:
    proc = run("check", "--demo", "aaaa-servfail.example.com", "aaaa-timeout.example.com")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = [line.strip() for line in proc.stdout.splitlines() if "Let's Encrypt would" in line]
    assert verdicts == [
        "Let's Encrypt would accept the challenge, with a warning: a DNS lookup it hides "
        "failed (hidden DNS failure).",
        "Let's Encrypt would accept the challenge, with a warning: only through its IPv4 "
        "fallback; IPv6 and IPv4 answer differently (AAAA mismatch).",
    ]


def test_check_human_output_for_one_domain() -> None:
    proc = run("check", "--demo", "aaaa-timeout-https.example.com")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith("FAIL aaaa-timeout-https.example.com  (policy boulder, canary mode)")
    assert "hop 0  ipv6" in out and "-> connect_timeout" in out
    assert "hop 0  ipv4" in out and "-> 301 redirect" in out
    assert "hop 1  ipv6" in out
    assert "Let's Encrypt would fail: urn:ietf:params:acme:error:connection:" in out
    assert "per-hop fallback (boulder PR #8905): would succeed" in out
    assert "exempt /.well-known/acme-challenge/ from the HTTP to HTTPS redirect" in out


def test_check_exit_zero_when_all_succeed() -> None:
    proc = run("check", "--demo", "healthy.example.com", "ipv4-only.example.com")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK   ") == 2
    assert "with a warning" not in proc.stdout  # clean passes


def test_check_per_hop_policy() -> None:
    proc = run("check", "--demo", "--json", "--policy", "per-hop", "ipv6-dead-443.example.com")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["policy"] == "per-hop" and result["success"] is True
    assert result["other_policy"] == {"policy": "boulder", "success": False}


def test_check_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("check").returncode == 2
    assert run("check", "--policy", "sometimes", "a.example.com").returncode == 2
    bad = tmp_path / "bad.yml"
    bad.write_text("intervall: 5m\n")
    proc = run("check", "--config", str(bad), "a.example.com")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}: intervall: unknown key"
    proc = run("check", "*.example.com")
    assert proc.returncode == 2
    assert "is a wildcard: Let's Encrypt validates a wildcard name with DNS-01 only" in proc.stderr


def test_lab_command_and_check_against_its_config(tmp_path: Path) -> None:
    config = tmp_path / "lab.yml"
    lab = subprocess.Popen(
        [*EXE, "lab", "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while not config.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert config.exists(), "the lab did not write its config"
        proc = run("check", "--config", str(config), "--json", "wrong-aaaa.example.com")
        assert proc.returncode == 1, proc.stderr
        result = json.loads(proc.stdout)
        assert result["problem"]["reason"] == "bad_status"
        assert result["aaaa_mismatch"] is True
    finally:
        lab.send_signal(signal.SIGTERM)
        out, _ = lab.communicate(timeout=10)
    assert lab.returncode == 0
    assert "healthy.example.com" in out


def test_web_max_connections_flag_caps_the_served_exporter(tmp_path: Path) -> None:
    """--web.max-connections 3: three held connections, a fourth is answered 503 and
    counted; a negative limit is a usage error."""
    config = tmp_path / "c.yml"
    config.write_text("domains: []\n")
    exporter = ExporterProcess(
        "--config.file", str(config), "--web.max-connections", "3", "--log.level", "debug"
    )
    held: list[socket.socket] = []
    try:
        host, port = exporter.base.removeprefix("http://").rsplit(":", 1)
        for _ in range(3):
            held.append(socket.create_connection((host, int(port)), timeout=10))
        time.sleep(0.5)
        with socket.create_connection((host, int(port)), timeout=10) as extra:
            extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 ")
        for sock in held:
            sock.close()
        held.clear()

        def slot_free() -> bool:
            # Until the exporter has seen the three closes, a request is refused: a 503,
            # or a reset when its bytes arrive after the refused socket was closed.
            try:
                return exporter.request("/metrics")[0] == 200
            except OSError:
                return False

        wait_for(slot_free, 10, "the closed connections' slots were not freed", exporter)
        _, samples = exporter.scrape()
        assert samples[("acme_http01_web_connections_refused_total", frozenset())] >= 1
    finally:
        for sock in held:
            sock.close()
        assert exporter.stop() == 0
    assert run("--config.file", str(config), "--web.max-connections", "-1").returncode == 2
