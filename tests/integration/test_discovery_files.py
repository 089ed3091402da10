"""The files source in a running exporter: names added, removed, and a bad file kept out."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from exporter.compose import build_bundle
from exporter.config import parse
from exporter.service import Exporter
from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    run_cli,
    value,
    wait_for,
    write_config,
)

HEALTHY = "healthy.example.com"
IPV4_ONLY = "ipv4-only.example.com"


def replace(path: Path, text: str) -> None:
    """Write elsewhere and rename over, as the README asks."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def domains(exporter: ExporterProcess) -> set[str]:
    return {
        dict(labels)["domain"]
        for (name, labels) in exporter.scrape()[1]
        if name == "acme_http01_validations_total"
    }


def test_names_from_files_follow_the_files(lab_process: LabProcess, tmp_path: Path) -> None:
    names = tmp_path / "names"
    names.mkdir()
    replace(names / "a.yaml", f"- {HEALTHY}\n- '*.example.com'\n")
    document = lab_process.config(interval="60s", jitter="0s", domains=[IPV4_ONLY])
    document["sources"] = {"files": [{"files": [str(names / "*.yaml")], "refresh_interval": "1s"}]}
    config = write_config(tmp_path / "c.yml", document)
    exporter = ExporterProcess("--config.file", str(config))
    try:
        exporter.wait_ready(30)
        assert domains(exporter) == {HEALTHY, IPV4_ONLY}
        _, samples = exporter.scrape()
        assert value(samples, "acme_http01_validation_success", domain=HEALTHY) == 1
        origin = frozenset(
            {
                "domain": HEALTHY,
                "source": "file",
                "kind": "File",
                "namespace": "",
                "name": str(names / "a.yaml"),
            }.items()
        )
        assert samples[("acme_http01_domain_source_info", origin)] == 1
        assert (
            value(
                samples,
                "acme_http01_discovery_skipped_names",
                source="file",
                kind="File",
                reason="wildcard",
            )
            == 1
        )

        status, page, _ = exporter.request("/")
        assert status == 200 and f'<div class="src">file {names / "a.yaml"}</div>' in page

        # A new file: its names start validating; a static name listed there too keeps both
        # origins and is validated once.
        replace(names / "b.yaml", f"[{IPV4_ONLY}, nxdomain.example.com]")
        wait_for(
            lambda: "nxdomain.example.com" in domains(exporter), 10, "b.yaml's names", exporter
        )
        text, _ = exporter.scrape()
        assert text.count(f'acme_http01_validations_total{{domain="{IPV4_ONLY}",result=') == 2
        assert exporter.request("/probe?target=nxdomain.example.com")[0] == 200

        # A bad file keeps its last good list; the failure is counted.
        replace(names / "b.yaml", "[unclosed")
        wait_for(
            lambda: (
                value(exporter.scrape()[1], "acme_http01_discovery_up", source="file", kind="File")
                == 0
            ),
            10,
            "the bad file seen",
            exporter,
        )
        assert "nxdomain.example.com" in domains(exporter)
        _, samples = exporter.scrape()
        errors = value(
            samples,
            "acme_http01_discovery_errors_total",
            source="file",
            kind="File",
            reason="invalid",
        )
        assert errors is not None and errors >= 1

        # A removed file takes its names with it (the static one stays).
        (names / "b.yaml").unlink()
        wait_for(
            lambda: domains(exporter) == {HEALTHY, IPV4_ONLY}, 10, "b.yaml's names gone", exporter
        )
    finally:
        exporter.stop()


async def test_a_large_static_list_starts_beside_a_source(tmp_path: Path) -> None:
    """The static domains are scheduled at start while the first names of a source may
    arrive: both add jobs, and never the same one twice (it once exited at 3,000)."""
    names = tmp_path / "names.yaml"
    names.write_text("[f0.example.com, f1.example.com]")
    config = parse(
        {
            "interval": "7d",
            "jitter": "7d",
            "resolver": {"nameservers": ["127.0.0.1"], "port": 9, "timeout": "1s"},
            "certificates": {"enabled": False},
            "domains": [f"s{i}.example.com" for i in range(5000)],
            "sources": {"files": [{"files": [str(names)]}]},
        }
    )
    exporter = Exporter(build_bundle(config))
    failures: list[BaseException] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failures.append(context.get("exception")))
    try:
        await exporter.start()
        for _ in range(200):
            if exporter.discovery_settled and len(exporter.domains) == 5002:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert failures == []
        assert len(exporter.domains) == 5002
        assert set(exporter.store.snapshot()) == set(exporter.domains)
    finally:
        await exporter.stop()


def test_check_reads_each_source_once(lab_process: LabProcess, tmp_path: Path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text(f"[{HEALTHY}, '*.example.com']")
    document = lab_process.config(domains=[IPV4_ONLY])
    document["sources"] = {"files": [{"files": [str(names)]}]}
    config = write_config(tmp_path / "c.yml", document)
    proc = run_cli("check", "--config", str(config), "--json", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {doc["domain"]: doc for doc in map(json.loads, proc.stdout.splitlines())}
    assert set(results) == {HEALTHY, IPV4_ONLY}
    assert results[HEALTHY]["sources"] == [
        {"source": "file", "kind": "File", "namespace": "", "name": str(names), "acme_server": ""}
    ]
    assert results[IPV4_ONLY]["sources"] == []
    assert f"skipped: *.example.com (wildcard; File {names})" in proc.stderr
    ok = run_cli("--config.file", str(config), "--config.check")
    assert ok.returncode == 0
    assert "OK (1 domains, and names from 1 file source(s))" in ok.stdout
