"""Fixtures of the integration suites that run the exporter as a real process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.kubeapi import kube_api
from tests.integration.procs import ExporterProcess, LabProcess

__all__ = ["demo", "kube_api", "lab_process"]


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    """The lab in a process of its own, shared by a module's exporter processes."""
    running = LabProcess(tmp_path_factory.mktemp("lab"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def demo() -> Iterator[ExporterProcess]:
    """The exporter serving its demo lab, once every showcase domain has a result."""
    exporter = ExporterProcess("--demo")
    try:
        exporter.wait_ready(40)
        yield exporter
    finally:
        exporter.stop()
