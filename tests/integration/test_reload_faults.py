"""Config and reload faults on a running exporter: the good config is never lost."""

from __future__ import annotations

import collections
from pathlib import Path

from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    run_cli,
    validations,
    value,
    wait_for,
    write_config,
)

NAMES = [
    "healthy.example.com",
    "wrong-aaaa.example.com",
    "aaaa-refused.example.com",
    "ipv4-only.example.com",
    "nxdomain.example.com",
]


run = run_cli


def test_unreadable_config(tmp_path: Path) -> None:
    proc = run("--config.file", str(tmp_path), "--config.check")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{tmp_path}: cannot read the file: Is a directory"
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00domains")
    proc = run("--config.file", str(binary), "--config.check")
    assert proc.returncode == 1 and str(binary) in proc.stderr


def test_empty_domain_list_runs_and_is_ready(lab_process: LabProcess, tmp_path: Path) -> None:
    exporter = ExporterProcess(
        "--config.file", str(write_config(tmp_path / "c.yml", lab_process.config(domains=[])))
    )
    try:
        exporter.wait_ready(10)
        assert value(exporter.scrape()[1], "acme_http01_domains") == 0
    finally:
        assert exporter.stop() == 0


def test_reload_storm_keeps_the_good_config_and_every_result(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    domains = [d for d in lab_process.document["domains"] if d["name"] in NAMES]
    good = lab_process.config(
        interval="1s", jitter="0s", timeouts={"dial": "1s", "validation": "3s"}, domains=domains
    )
    path = write_config(tmp_path / "c.yml", good)
    good_text = path.read_text()
    bad_texts = [
        good_text + "intervall: 5m\n",
        "domains: [\n",
        good_text.replace("interval: 1s", "interval: fast"),
    ]
    exporter = ExporterProcess("--config.file", str(path), "--log.level", "debug")
    try:
        exporter.wait_ready(20)
        statuses = []
        for i in range(100):
            if i % 2:
                path.write_text(bad_texts[i % 3])
            else:
                path.write_text(good_text)
            statuses.append(exporter.request("/-/reload", "POST")[0])
        path.write_text(good_text)
        assert statuses == [200 if i % 2 == 0 else 500 for i in range(100)]
        _, samples = exporter.scrape()
        assert value(samples, "acme_http01_config_reloads_total", result="success") == 50
        assert value(samples, "acme_http01_config_reloads_total", result="failure") == 50
        assert value(samples, "acme_http01_config_last_reload_successful") == 0
        assert value(samples, "acme_http01_domains") == len(NAMES)
        rejected = exporter.logged(
            lambda e: e.get("msg") == "config reload rejected; the running config is kept", 50
        )
        assert len(rejected) == 50 and all(e["problems"] for e in rejected)
        # Validations went on through the storm.
        wait_for(
            lambda: validations(exporter, "healthy.example.com") >= 3,
            15,
            "validations stopped",
            exporter,
        )
        # Quiesce (one more run each, then an hour's wait), and compare counters and logs.
        path.write_text(good_text.replace("interval: 1s", "interval: 1h"))
        assert exporter.request("/-/reload", "POST")[0] == 200

        def settled() -> bool:
            first = exporter.scrape()[1]
            if value(first, "acme_http01_validations_in_flight") != 0:
                return False
            import time

            time.sleep(1.0)
            return exporter.scrape()[1] == first or _same_totals(first, exporter.scrape()[1])

        wait_for(settled, 20, "validations did not settle", exporter)
        _, samples = exporter.scrape()
    finally:
        assert exporter.stop() == 0
    # Every finished validation was counted exactly once, and logged exactly once.
    logged = collections.Counter(
        e["domain"]
        for e in exporter.logs
        if e.get("msg") in ("validation finished", "verdict changed")
    )
    assert set(logged) == set(NAMES)
    for name in NAMES:
        counted = sum(
            value(samples, "acme_http01_validations_total", domain=name, result=r) or 0
            for r in ("success", "failure")
        )
        assert logged[name] == counted, name


def _same_totals(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    keys = [k for k in a if k[0] == "acme_http01_validations_total"]
    return all(a[k] == b.get(k) for k in keys)


def test_an_empty_file_mid_rewrite_is_refused_and_the_domains_kept(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    """What a reload sees between a truncate and a write: not a config with zero domains."""
    domains = [d for d in lab_process.document["domains"] if d["name"] in NAMES]
    path = write_config(tmp_path / "c.yml", lab_process.config(interval="60s", domains=domains))
    good_text = path.read_text()
    exporter = ExporterProcess("--config.file", str(path))
    try:
        exporter.wait_ready(20)
        for text in ("", "  \n\n   \n"):
            path.write_text(text)
            status, body, _ = exporter.request("/-/reload", "POST")
            assert status == 500
            assert body.strip() == f"{path}: (top level): the file holds no YAML document (empty?)"
            _, samples = exporter.scrape()
            assert value(samples, "acme_http01_domains") == len(NAMES)
            assert value(samples, "acme_http01_config_last_reload_successful") == 0
            assert all(
                value(samples, "acme_http01_validation_success", domain=name) is not None
                for name in NAMES
            )
        path.write_text(good_text)
        assert exporter.request("/-/reload", "POST")[0] == 200
        # An explicit empty list is a config, but never a silent one.
        write_config(path, lab_process.config(interval="60s", domains=[]))
        assert exporter.request("/-/reload", "POST")[0] == 200
        assert value(exporter.scrape()[1], "acme_http01_domains") == 0
        exporter.logged(
            lambda e: (
                e.get("level") == "warning"
                and e.get("msg", "").startswith("no domains to validate")
            )
        )
    finally:
        assert exporter.stop() == 0
