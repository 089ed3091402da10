"""/metrics as scrapers see it: OpenMetrics or the text format, gzip, Vary, runtime metrics,
a real Prometheus scraping both ways; /probe bounded by Prometheus' scrape timeout."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.endpoints import _probe_budget, _scrape_timeout
from exporter.lab import servers as L
from exporter.lab.showcase import lab_config
from exporter.web import WebRequest
from tests.integration.procs import (
    ExporterProcess,
    parse,
    start_prometheus,
    tool,
    value,
    wait_for,
    write_config,
)

OM1 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OM0 = "application/openmetrics-text; version=0.0.1; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
#: Prometheus 2.x's default Accept header (OpenMetrics preferred).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
#: What Prometheus sends with ``scrape_protocols: [PrometheusText0.0.4]``.
TEXT_ONLY_ACCEPT = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def get(
    base: str, path: str, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """One GET; the body exactly as sent (urllib never decompresses)."""
    request = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def promtool_check(body: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=body.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------ /metrics by hand


def test_text_format_by_default_and_promtool_passes_it(demo: ExporterProcess) -> None:
    for accept in (None, "*/*", TEXT_ONLY_ACCEPT):
        status, headers, body = get(demo.base, "/metrics", {"Accept": accept} if accept else {})
        assert status == 200
        assert headers["Content-Type"] == TEXT
        assert "Content-Encoding" not in headers
        assert {v.strip() for v in headers["Vary"].split(",")} == {"Accept", "Accept-Encoding"}
    proc = promtool_check(body)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = body.decode()
    samples = parse(text)
    assert value(samples, "acme_http01_validation_success", domain="healthy.example.com") == 1
    assert "# EOF" not in text
    for runtime in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert value(samples, runtime) is not None, runtime
    assert [k for k in samples if k[0] == "python_info"]
    assert value(samples, "python_gc_objects_collected_total", generation="0") is not None


def test_openmetrics_when_asked_and_its_parser_passes_it(demo: ExporterProcess) -> None:
    for accept, content_type in (
        (PROMETHEUS_ACCEPT, OM1),
        ("application/openmetrics-text; version=1.0.0", OM1),
        ("application/openmetrics-text;version=0.0.1", OM0),
    ):
        status, headers, body = get(demo.base, "/metrics", {"Accept": accept})
        assert status == 200
        assert headers["Content-Type"] == content_type, accept
    text = body.decode()
    assert text.count("# EOF") == 1 and text.endswith("\n# EOF\n")
    assert "# TYPE acme_http01_validations counter\n" in text
    assert "# TYPE acme_http01_validations_total" not in text
    # promtool check metrics reads the text format only (Prometheus 2.42 here): it stops at
    # OpenMetrics' escaped quotes in a HELP. The OpenMetrics body is checked by
    # prometheus_client's OpenMetrics parser, which is strict (it requires # EOF, rejects
    # a counter family named *_total, interleaved families, ...).
    proc = promtool_check(body)
    if proc.returncode != 0:
        assert "parsing error" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["acme_http01_validations"].type == "counter"
    assert families["process_cpu_seconds"].type == "counter"
    assert "python_info" in families
    healthy = [
        s
        for s in families["acme_http01_validation_success"].samples
        if s.labels == {"domain": "healthy.example.com"}
    ]
    assert [s.value for s in healthy] == [1]
    assert {s.name for s in families["acme_http01_validations"].samples} == {
        "acme_http01_validations_total"
    }


def test_gzip_only_when_accepted(demo: ExporterProcess) -> None:
    status, headers, body = get(demo.base, "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert b"acme_http01_validation_success" in gzip.decompress(body)
    for refused in ("gzip;q=0", "identity", "*;q=0, identity", "gzip;q=0.5, identity;q=1"):
        status, headers, body = get(demo.base, "/metrics", {"Accept-Encoding": refused})
        assert status == 200 and "Content-Encoding" not in headers, refused
        assert body.startswith(b"# HELP "), refused
    status, headers, body = get(
        demo.base, "/metrics", {"Accept-Encoding": "gzip", "Accept": PROMETHEUS_ACCEPT}
    )
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == OM1
    assert gzip.decompress(body).endswith(b"# EOF\n")


# ------------------------------------------------------------ real Prometheus, both ways


class RecordingProxy:
    """A pass-through HTTP proxy in front of the exporter that records what each scrape
    asked for and got; with ``accept``, it replaces the scraper's Accept header."""

    def __init__(self, upstream: str, accept: str | None = None) -> None:
        self.seen: list[tuple[str, str, str]] = []  # (Accept sent, Content-Type, encoding)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                if accept is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "accept"}
                    headers["Accept"] = accept
                status, got, body = get(upstream, self.path, headers)
                proxy.seen.append(
                    (
                        headers.get("Accept", ""),
                        got["Content-Type"],
                        got.get("Content-Encoding", ""),
                    )
                )
                self.send_response(status)
                for name in ("Content-Type", "Content-Encoding", "Vary"):
                    if name in got:
                        self.send_header(name, got[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    return int(match[1]), int(match[2])


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.load(response)["data"]["result"])
    except OSError:
        return []


def test_a_real_prometheus_scrapes_openmetrics_and_the_text_format(
    demo: ExporterProcess, tmp_path: Path
) -> None:
    """Two jobs on the same exporter: one negotiates OpenMetrics (Prometheus' default),
    one the text format only. ``scrape_protocols`` chooses the latter from Prometheus 2.49
    on; an older Prometheus (Debian 12 ships 2.42) always prefers OpenMetrics, so there a
    proxy in front of the exporter sends exactly the Accept header that
    ``scrape_protocols: [PrometheusText0.0.4]`` sends. Both jobs go through a recording
    proxy, so the test sees what was served."""
    binary = tool("prometheus")
    has_protocols = prometheus_version(binary) >= (2, 49)
    upstream = demo.base
    om_proxy = RecordingProxy(upstream)
    text_proxy = RecordingProxy(upstream, None if has_protocols else TEXT_ONLY_ACCEPT)
    om_job: dict[str, Any] = {
        "job_name": "openmetrics",
        "static_configs": [{"targets": [om_proxy.address]}],
    }
    text_job: dict[str, Any] = {
        "job_name": "text",
        "static_configs": [{"targets": [text_proxy.address]}],
    }
    if has_protocols:
        om_job["scrape_protocols"] = ["OpenMetricsText1.0.0", "PrometheusText0.0.4"]
        text_job["scrape_protocols"] = ["PrometheusText0.0.4"]
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [om_job, text_job],
            }
        )
    )
    proc, base = start_prometheus(binary, tmp_path)
    try:
        for job in ("openmetrics", "text"):
            wait_for(
                lambda job=job: [r["value"][1] for r in query(base, f'up{{job="{job}"}}')] == ["1"],
                60,
                f"{job}: target never up; {query(base, 'up')}",
            )
            for expr in (
                f'acme_http01_validation_success{{job="{job}",domain="healthy.example.com"}}',
                f'acme_http01_validations_total{{job="{job}",domain="wrong-aaaa.example.com",'
                'result="failure"}',
                f'process_resident_memory_bytes{{job="{job}"}}',
                f'python_gc_objects_collected_total{{job="{job}",generation="0"}}',
            ):
                wait_for(lambda expr=expr: bool(query(base, expr)), 20, f"no data for {expr}")
            healthy = query(
                base, f'acme_http01_validation_success{{job="{job}",domain="healthy.example.com"}}'
            )
            assert [r["value"][1] for r in healthy] == ["1"], job
        # What each job really got.
        assert om_proxy.seen and text_proxy.seen
        assert {ct for _, ct, _ in om_proxy.seen} == {OM1}, om_proxy.seen
        assert {ct for _, ct, _ in text_proxy.seen} == {TEXT}, text_proxy.seen
        assert all(encoding == "gzip" for *_, encoding in om_proxy.seen + text_proxy.seen)
        assert all("openmetrics" in accept for accept, _, _ in om_proxy.seen)
    finally:
        proc.terminate()
        proc.wait(20)
        om_proxy.stop()
        text_proxy.stop()


# --------------------------------------------------------------- /probe's deadline


def test_scrape_timeout_header_and_budget() -> None:
    def request(value: str | None) -> WebRequest:
        headers = {} if value is None else {"x-prometheus-scrape-timeout-seconds": value}
        return WebRequest("GET", "/probe", {}, headers)

    assert _scrape_timeout(request(None)) is None
    assert _scrape_timeout(request("10")) == 10
    assert _scrape_timeout(request("2.5")) == 2.5
    for bad in ("", "x", "-1", "0", "nan", "inf"):
        assert _scrape_timeout(request(bad)) is None, bad
    assert _probe_budget(10) == 9.5
    assert _probe_budget(3) == 2.5
    assert _probe_budget(1.2) == 1.0  # the floor
    assert _probe_budget(0.1) == 1.0


async def test_probe_bounded_by_the_scrape_timeout_on_a_hanging_server(
    lab: L.Lab, tmp_path: Path
) -> None:
    """A 20 s validation budget, a server that never answers, Prometheus allowing 3 s: the
    probe answers within the 3 s with the deadline verdict Let's Encrypt gives (a timeout
    after connect), instead of a scrape Prometheus abandons.

    The validation is bounded to 2.5 s; a 200 at all means it ended within the exporter's
    own limit (2.9 s, past which it answers 504). The time seen here adds a thread's
    request, the lab's DNS answer and two processes' scheduling on a busy machine, so its
    bound is far below the 20 s that ignoring the header would take, not at 3 s."""
    address = await lab.host(4, L.hang(), L.hang())
    lab.zone.add("hang.example.com", a=[address])
    document = lab_config(
        lab,
        [{"name": "hang.example.com"}],
        interval="1h",
        timeouts={"dial": "2s", "validation": "20s"},
    )
    path = write_config(tmp_path / "hang.yml", document)
    # The lab serves DNS on this event loop: every blocking call goes to a thread.
    exporter = await asyncio.to_thread(ExporterProcess, "--config.file", str(path))
    try:
        base = exporter.base
        assert base is not None
        header = {"X-Prometheus-Scrape-Timeout-Seconds": "3"}
        started = time.monotonic()
        status, headers, body = await asyncio.to_thread(
            get, base, "/probe?target=hang.example.com", header
        )
        elapsed = time.monotonic() - started
        assert status == 200, body
        assert elapsed < 2.5 + 2.5, elapsed
        assert elapsed >= 2.3, elapsed  # it waited for the bounded deadline, no less
        assert headers["Content-Type"] == TEXT
        samples = parse(body.decode())
        assert value(samples, "acme_http01_validation_success", domain="hang.example.com") == 0
        problem = {"domain": "hang.example.com", "type": "connection", "reason": "read_timeout"}
        assert value(samples, "acme_http01_validation_problem", **problem) == 1
        duration = value(
            samples, "acme_http01_validation_duration_seconds", domain="hang.example.com"
        )
        assert duration is not None and 2.4 <= duration < 2.5 + 1.0, duration
        # The trace says what Let's Encrypt would say; OpenMetrics on /probe too.
        started = time.monotonic()
        status, _, body = await asyncio.to_thread(
            get, base, "/probe?target=hang.example.com&debug=true", header
        )
        assert status == 200 and time.monotonic() - started < 2.5 + 2.5
        assert "Timeout after connect (your server may be slow or overloaded)" in body.decode()
        status, headers, body = await asyncio.to_thread(
            get,
            base,
            "/probe?target=hang.example.com",
            {**header, "Accept": PROMETHEUS_ACCEPT, "X-Prometheus-Scrape-Timeout-Seconds": "2"},
        )
        assert status == 200 and headers["Content-Type"] == OM1
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["acme_http01_validations"].samples
    finally:
        await asyncio.to_thread(exporter.stop)
