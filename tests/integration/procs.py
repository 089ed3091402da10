"""Real processes for the service tests: the lab (``lab`` command) and the exporter."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.lab.ports import free_port
from tests.conftest import ROOT, subprocess_env

EXE = [sys.executable, "-m", "exporter"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``acme-http01-exporter ARGS`` as a user runs it; waits for it to exit."""
    return subprocess.run(
        [*EXE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


class LabProcess:
    """``acme-http01-exporter lab``: the showcase lab in its own process."""

    def __init__(self, directory: Path) -> None:
        self.config_path = directory / "lab.yml"
        self.proc = subprocess.Popen(
            [*EXE, "lab", "--write-config", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=subprocess_env(),
            cwd=ROOT,
        )
        wait_for(self.config_path.exists, 20, "the lab did not write its config")
        self.document: dict[str, Any] = yaml.safe_load(self.config_path.read_text())

    def config(self, **overrides: Any) -> dict[str, Any]:
        document = json.loads(json.dumps(self.document))
        document.update(overrides)
        return document

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class ExporterProcess:
    """The exporter, started exactly as a user would, listening on an ephemeral port."""

    def __init__(
        self, *args: str, prefix: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        """``prefix``: a command the exporter runs under (``unshare ...``); ``env``: extra
        environment variables."""
        self.proc = subprocess.Popen(
            [
                *(prefix or []),
                *EXE,
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**subprocess_env(), **(env or {})},
            cwd=ROOT,
        )
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wait_for(lambda: self._address() is not None, 20, "exporter did not start", self)
        except BaseException:
            self.stop()
            raise
        self.base = self._address()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.logs.append(json.loads(line))

    def _address(self) -> str | None:
        for entry in list(self.logs):
            if entry.get("msg") == "listening":
                return str(entry["address"]).rstrip("/")
        if self.proc.poll() is not None:
            raise AssertionError("exporter exited:\n" + "".join(self.raw))
        return None

    def request(self, path: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def scrape(self) -> tuple[str, Samples]:
        status, text, _ = self.request("/metrics")
        assert status == 200
        return text, parse(text)

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self.request("/-/ready")[0] == 200, timeout, "never ready", self)

    def logged(
        self, match: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 15
    ) -> list[dict[str, Any]]:
        """The log entries ``match`` accepts, once there are at least ``count`` of them.

        A thread reads the log from the exporter's stderr: an entry may trail the reply of
        the request that caused it, so a test waits for it here instead of looking once."""

        def matching() -> list[dict[str, Any]]:
            return [entry for entry in list(self.logs) if match(entry)]

        wait_for(lambda: len(matching()) >= count, timeout, f"fewer than {count} entries", self)
        return matching()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._reader.join(5)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def validations(exporter: ExporterProcess, domain: str, result: str = "success") -> float:
    """``acme_http01_validations_total`` of one domain and result, scraped now (0 if absent)."""
    found = value(
        exporter.scrape()[1], "acme_http01_validations_total", domain=domain, result=result
    )
    return found or 0.0


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    message: str,
    exporter: ExporterProcess | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    logs = "" if exporter is None else "\n" + "".join(exporter.raw[-30:])
    raise AssertionError(f"{message} within {timeout}s{logs}")


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def tool(name: str, package: str = "prometheus") -> str:
    """The path of a binary the tests need; under CI a missing one fails, never skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (Debian package {package})")
        pytest.skip(f"{name} not installed")
    return path


def start_prometheus(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus on 127.0.0.1 with ``directory/prometheus.yml``; (process, base URL).

    The caller writes the config first and terminates the process when done.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"
