"""Soak: a mixed fleet, periodic reloads and concurrent scrapes; nothing grows, nothing breaks.

    SOAK_SECONDS=600 .venv/bin/python -m pytest tests/integration/test_soak.py -s

CI runs the short version (SOAK_SECONDS defaults to 60). The figures are printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.conftest import ROOT, subprocess_env
from tests.integration.procs import ExporterProcess, value, wait_for, write_config

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
DOMAINS = 2000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_soak(tmp_path: Path) -> None:
    fleet = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fleet",
            "--domains",
            str(DOMAINS),
            "--out",
            str(tmp_path / "fleet"),
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    exporter = None
    try:
        wait_for((tmp_path / "fleet" / "ready").exists, 60, "the fleet did not start")
        info = yaml.safe_load((tmp_path / "fleet" / "fleet.yml").read_text())
        from bench.fleet import domains

        document = dict(info["base"])
        document.update(
            interval="20s",
            jitter="2s",
            concurrency=500,
            timeouts={"dial": "2s", "validation": "5s"},
            domains=domains(info["counts"]),
        )
        path = write_config(tmp_path / "c.yml", document)
        exporter = ExporterProcess("--config.file", str(path))
        pid = exporter.proc.pid
        stop = threading.Event()
        scrapes = [0]
        # (when, asyncio tasks, open fds) at every scrape: validations and connections in
        # flight come and go with the load (a reload or a GC pause lets runs bunch up), so
        # a leak is judged on the fewest seen over a few seconds, which a leak raises too.
        seen: list[tuple[float, float, int]] = []

        def scraper() -> None:
            while not stop.is_set():
                _, samples = exporter.scrape()
                count = value(samples, "acme_http01_exporter_tasks")
                assert count is not None
                seen.append((time.monotonic(), count, fds(pid)))
                scrapes[0] += 1
                time.sleep(0.5)

        def fewest(since: float) -> dict[str, float]:
            wait_for(lambda: seen[-1][0] >= since + 5, 30, "no scrapes")
            window = [(count, files) for when, count, files in seen if when >= since]
            return {
                "rss": rss_mib(pid),
                "tasks": min(count for count, _ in window),
                "fds": min(files for _, files in window),
            }

        threads = [threading.Thread(target=scraper, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(min(30.0, SECONDS / 2))  # warm up: every domain validated once
        start = fewest(time.monotonic())
        deadline = time.monotonic() + SECONDS
        reloads = 0
        while time.monotonic() < deadline:
            document["interval"] = "21s" if reloads % 2 == 0 else "20s"
            write_config(path, document)
            assert exporter.request("/-/reload", "POST")[0] == 200
            reloads += 1
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        end = fewest(time.monotonic())
        _, samples = exporter.scrape()
        stop.set()
        for thread in threads:
            thread.join(10)
        total = sum(v for k, v in samples.items() if k[0] == "acme_http01_validations_total")
        print(
            f"\nsoak {SECONDS:.0f}s, {DOMAINS} domains: {total:.0f} validations, "
            f"{reloads} reloads, {scrapes[0]} scrapes; RSS {start['rss']:.0f} -> "
            f"{end['rss']:.0f} MiB, fds {start['fds']} -> {end['fds']}, "
            f"tasks {start['tasks']:.0f} -> {end['tasks']:.0f} (the fewest in 5 s; "
            f"most seen {max(count for _, count, _ in seen):.0f})"
        )
        assert end["rss"] < start["rss"] * 1.15 + 20, (start, end)
        assert end["fds"] < start["fds"] * 1.5 + 50, (start, end)
        assert end["tasks"] < start["tasks"] * 1.5 + 50, (start, end)
        assert value(samples, "acme_http01_config_last_reload_successful") == 1
        assert total > DOMAINS
    finally:
        if exporter is not None:
            assert exporter.stop() == 0
            errors = [e for e in exporter.logs if e.get("level") == "error"]
            assert errors == [], errors[:3]
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(30)
