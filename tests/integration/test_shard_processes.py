"""Sharding with real exporter processes: the union covers every domain exactly once."""

from __future__ import annotations

from pathlib import Path

from exporter.shard import owner
from tests.integration.procs import ExporterProcess, LabProcess, write_config

NAMES = [f"s{i}.example.com" for i in range(40)]  # NXDOMAIN in the lab: validated at once


def owned(config: Path, count: int) -> list[set[str]]:
    exporters = [
        ExporterProcess(
            "--config.file",
            str(config),
            "--shard.count",
            str(count),
            "--shard.index",
            f"acme-http01-exporter-{index}",
            "--perspective",
            "lab-1",
        )
        for index in range(count)
    ]
    try:
        out = []
        for index, exporter in enumerate(exporters):
            exporter.wait_ready(30)
            _, samples = exporter.scrape()
            domains = {
                dict(labels)["domain"]
                for name, labels in samples
                if name == "acme_http01_validation_success"
            }
            info = {
                dict(labels)["shard"]: dict(labels)
                for name, labels in samples
                if name == "acme_http01_exporter_info"
            }
            assert info == {
                str(index): {"perspective": "lab-1", "shard": str(index), "shards": str(count)}
            }
            out.append(domains)
        return out
    finally:
        for exporter in exporters:
            exporter.stop()


def test_shards_cover_every_domain_once_and_rescale_minimally(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.yml", lab_process.config(interval="60s", jitter="0s", domains=NAMES)
    )
    three = owned(config, 3)
    assert set().union(*three) == set(NAMES)
    assert sum(len(s) for s in three) == len(NAMES)
    assert all(three), "every replica has some domains"
    for index, domains in enumerate(three):
        assert domains == {n for n in NAMES if owner(n, 3) == index}
    four = owned(config, 4)
    assert set().union(*four) == set(NAMES) and sum(len(s) for s in four) == len(NAMES)
    for index in range(3):
        assert four[index] <= three[index], "growing only moves domains to the new replica"
