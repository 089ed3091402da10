"""The exporter out of descriptors, for real: no domain is blamed for it.

The exporter runs as a process with a soft and hard ``RLIMIT_NOFILE`` of 256 (so it
cannot lift it), validating the showcase lab every 2 s. The test then holds 300
connections open to its web port: the web server accepts until descriptors run out,
and every validation meanwhile finds no descriptor for its DNS query or its dial. No
domain's verdict may change for that (no ``dns_error``, no connection problem); the
exporter counts it as its own (``acme_http01_exporter_errors_total``).
"""

from __future__ import annotations

import functools
import json
import resource
import socket
import subprocess
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    value,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

NOFILE = 256
HELD = 300  # more than the exporter may open, fewer than the listen backlog (512)
#: Timeouts a busy machine keeps within, so a verdict changes for nothing but the fault
#: under test. A run longer than the interval (the 3 s dials of the lab's dead IPv6
#: addresses) is not overlapped: the run due meanwhile follows it.
CONFIG = {"interval": "2s", "jitter": "500ms", "timeouts": {"dial": "3s", "validation": "20s"}}


class LimitedExporter(ExporterProcess):
    """The exporter started with soft = hard ``RLIMIT_NOFILE`` = ``nofile``."""

    def __init__(self, nofile: int, *args: str) -> None:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        popen = functools.partial(subprocess.Popen, preexec_fn=limit)
        with mock.patch.object(subprocess, "Popen", popen):
            super().__init__(*args)


@pytest.fixture(scope="module")
def exporter(
    lab_process: LabProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LimitedExporter]:
    path = write_config(tmp_path_factory.mktemp("exp") / "config.yml", lab_process.config(**CONFIG))
    running = LimitedExporter(NOFILE, "--config.file", str(path))
    try:
        running.wait_ready(40)
        yield running
    finally:
        running.stop()


def verdicts(exporter: ExporterProcess) -> dict[str, tuple[Any, ...]]:
    """Each domain's last verdict, as ``/domains/<name>`` reports it."""
    _, samples = exporter.scrape()
    names = sorted(
        dict(labels)["domain"]
        for name, labels in samples
        if name == "acme_http01_validation_success"
    )
    found = {}
    for name in names:
        status, text, _ = exporter.request(f"/domains/{name}")
        assert status == 200, text
        document = json.loads(text)
        problem = document["problem"] or {}
        found[name] = (document["success"], problem.get("type"), problem.get("reason"))
    return found


def hold(address: str, count: int) -> list[socket.socket]:
    host, _, port = address.removeprefix("http://").rpartition(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    return [socket.create_connection((host, int(port)), timeout=30) for _ in range(count)]


def test_out_of_descriptors_no_domain_is_blamed_and_the_exporter_counts_it(
    exporter: LimitedExporter,
) -> None:
    before = verdicts(exporter)
    assert len(before) == 13
    assert any(not success for success, _, _ in before.values())  # failures of their own
    seen = len(exporter.logs)
    held = hold(exporter.base, HELD)
    try:
        # Held until every domain's validation has run into the limit at least once: the
        # exporter counted it as its own, or (the fault this guards against) the domain
        # got a new verdict for it.
        def every_domain_out_of_descriptors() -> bool:
            hit = {
                entry.get("domain")
                for entry in exporter.logs[seen:]
                if entry.get("reason") == "descriptors" or entry.get("msg") == "verdict changed"
            }
            return set(before) <= hit

        wait_for(every_domain_out_of_descriptors, 90, "no validation ran out", exporter)
    finally:
        for sock in held:
            sock.close()
    window = exporter.logs[seen:]
    wait_for(lambda: exporter.request("/-/healthy")[0] == 200, 30, "not serving again", exporter)
    after = verdicts(exporter)
    _, samples = exporter.scrape()
    changed = [
        (entry["domain"], entry.get("type"), entry.get("reason"))
        for entry in exporter.logs[seen:]
        if entry.get("msg") == "verdict changed"
    ]
    blamed = {name for name, verdict in after.items() if verdict != before[name]}
    blamed |= {name for name, _, _ in changed}
    assert blamed == set(), f"{len(blamed)} of {len(before)} domains blamed: {changed}"
    own = value(samples, "acme_http01_exporter_errors_total", reason="descriptors") or 0
    own_logged = [e for e in window if e.get("reason") == "descriptors" and e.get("domain")]
    assert own >= len(before) and own >= 1
    assert len(own_logged) >= len(before)
    assert not [e for e in window if e.get("msg") == "validation crashed"]
