"""``--web.config.file`` against real clients: curl and a real Prometheus, the exporter as a
real process, certificates made here. Every socket is on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    parse,
    run_cli,
    start_prometheus,
    tool,
    value,
    wait_for,
    write_config,
)
from tests.unit.test_webconfig import Pki, make_pki

ENDPOINTS = [
    "/",
    "/metrics",
    "/config",
    "/runbook",
    "/-/healthy",
    "/-/ready",
    "/domains/healthy.example.com",
    "/probe?target=healthy.example.com",
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def config_file(lab_process: LabProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    domains = [d for d in lab_process.document["domains"] if d["name"] == "healthy.example.com"]
    return write_config(
        tmp_path_factory.mktemp("exp") / "config.yml",
        lab_process.config(interval="60s", domains=domains),
    )


def hashed(password: str, rounds: int = 10) -> str:
    """What ``htpasswd -nBC 10`` makes (cost 10, as the exporter-toolkit docs suggest)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def write_web(path: Path, document: dict[str, Any] | str) -> Path:
    """The web config file (a document, or its text as is), with a new mtime."""
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    path.write_text(text)
    # A rewrite within the same clock tick would keep the mtime: move it on explicitly.
    stamp = time.time_ns() + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    return path


class Curl:
    """``/usr/bin/curl`` against the exporter: (HTTP status or 0, exit code, headers, body)."""

    def __init__(self, base: str, pki: Pki) -> None:
        self.binary = tool("curl", "curl")
        self.base = base
        self.pki = pki

    def __call__(
        self, path: str, *args: str, user: str | None = None, method: str = "GET"
    ) -> tuple[int, int, dict[str, str], str]:
        command = [
            self.binary,
            "-sS",
            "--max-time",
            "15",
            "-D",
            "-",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]
        if self.base.startswith("https:"):
            command += ["--cacert", str(self.pki.ca)]
        if user is not None:
            command += ["-u", user]
        proc = subprocess.run(
            [*command, *args, self.base + path],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        out, _, code = proc.stdout.rpartition("\n")
        head, _, body = out.partition("\n\n")  # text mode: CRLF read as LF
        headers = {}
        for line in head.split("\n")[1:]:
            name, _, content = line.partition(":")
            headers[name.strip().lower()] = content.strip()
        return int(code or 0), proc.returncode, headers, body


def start(config_file: Path, web: Path, *extra: str) -> ExporterProcess:
    return ExporterProcess(
        "--config.file",
        str(config_file),
        "--web.config.file",
        str(web),
        "--log.level",
        "debug",
        *extra,
    )


def tls_server(pki: Pki, **settings: Any) -> dict[str, Any]:
    """``tls_server_config`` with the lab server certificate; ``mutual``: client CA too."""
    config: dict[str, Any] = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    if settings.pop("mutual", False):
        config["client_auth_type"] = "RequireAndVerifyClientCert"
        config["client_ca_file"] = str(pki.ca)
    return {**config, **settings}


def handshake_failures(exporter: ExporterProcess) -> int:
    return sum(1 for entry in exporter.logs if entry.get("msg") == "TLS handshake failed")


def test_tls_and_basic_auth_with_curl(config_file: Path, pki: Pki, tmp_path: Path) -> None:
    web = write_web(
        tmp_path / "web.yml",
        {
            "tls_server_config": tls_server(pki),
            "http_server_config": {
                "headers": {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}
            },
            "basic_auth_users": {"alice": hashed("right horse")},
        },
    )
    exporter = start(config_file, web)
    try:
        assert exporter.base.startswith("https://127.0.0.1:")
        curl = Curl(exporter.base, pki)
        wait_for(
            lambda: curl("/-/ready", user="alice:right horse")[0] == 200,
            30,
            "never ready",
            exporter,
        )
        # The right password: 200, with the configured headers.
        status, rc, headers, body = curl("/metrics", user="alice:right horse")
        assert (status, rc) == (200, 0)
        assert value(parse(body), "acme_http01_domains") == 1
        assert headers["x-frame-options"] == "deny"
        assert headers["x-content-type-options"] == "nosniff"
        # A wrong password, an unknown user, no credentials: 401 asking for Basic.
        for user in ("alice:wrong", "bob:right horse", None):
            status, rc, headers, body = curl("/metrics", user=user)
            assert (status, rc) == (401, 0), user
            assert headers["www-authenticate"] == "Basic"
            assert headers["x-frame-options"] == "deny"  # on every response
            assert "acme_http01" not in body
        # Every endpoint is behind the same door.
        for path in ENDPOINTS:
            assert curl(path)[0] == 401, path
            assert curl(path, user="alice:right horse")[0] == 200, path
        assert curl("/-/reload", method="POST")[0] == 401
        assert curl("/-/reload", method="POST", user="alice:right horse")[0] == 200
        # Plain HTTP against the TLS port: no HTTP answer, the connection is closed.
        plain = Curl(exporter.base.replace("https://", "http://"), pki)
        status, rc, _, _ = plain("/metrics", user="alice:right horse")
        assert status == 0 and rc != 0
        # A client that connects and sends garbage, or nothing at all, hangs nothing.
        host, port = exporter.base.removeprefix("https://").split(":")
        silent = socket.create_connection((host, int(port)), timeout=5)
        with socket.create_connection((host, int(port)), timeout=5) as garbage:
            garbage.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 100)
            garbage.settimeout(10)
            assert garbage.recv(4096) is not None  # an alert or EOF, never a hang
        try:
            assert curl("/metrics", user="alice:right horse")[0] == 200
        finally:
            silent.close()
        wait_for(lambda: handshake_failures(exporter) >= 2, 10, "not logged", exporter)
        assert all(
            e["level"] == "debug" for e in exporter.logs if e.get("msg") == "TLS handshake failed"
        )
        assert exporter.proc.poll() is None
    finally:
        assert exporter.stop() == 0


def test_client_certificate_required(config_file: Path, pki: Pki, tmp_path: Path) -> None:
    web = write_web(
        tmp_path / "web.yml",
        {"tls_server_config": tls_server(pki, mutual=True, client_allowed_sans=["client.example"])},
    )
    exporter = start(config_file, web)
    try:
        curl = Curl(exporter.base, pki)
        client = ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
        rogue = ["--cert", str(pki.rogue_cert), "--key", str(pki.rogue_key)]
        assert curl("/metrics", *client)[:2] == (200, 0)
        # No client certificate, or one from another CA: the handshake is refused.
        for args in ([], rogue):
            status, rc, _, _ = curl("/metrics", *args)
            assert status == 0 and rc != 0, args
        # TLS 1.2 too (the refusal comes during the handshake there).
        status, rc, _, _ = curl("/metrics", "--tls-max", "1.2")
        assert status == 0 and rc != 0
        assert curl("/metrics", "--tls-max", "1.2", *client)[:2] == (200, 0)
        wait_for(lambda: handshake_failures(exporter) >= 3, 10, "not logged", exporter)
        assert exporter.proc.poll() is None
    finally:
        assert exporter.stop() == 0


def test_client_certificate_without_an_allowed_san(
    config_file: Path, pki: Pki, tmp_path: Path
) -> None:
    web = write_web(
        tmp_path / "web.yml",
        {
            "tls_server_config": tls_server(
                pki, mutual=True, client_allowed_sans=["prometheus.example"]
            )
        },
    )
    exporter = start(config_file, web)
    try:
        curl = Curl(exporter.base, pki)
        status, rc, _, _ = curl(
            "/metrics", "--cert", str(pki.client_cert), "--key", str(pki.client_key)
        )
        assert status == 0 and rc != 0
        assert exporter.proc.poll() is None
    finally:
        assert exporter.stop() == 0


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def test_prometheus_scrapes_over_tls_with_basic_auth(
    config_file: Path, pki: Pki, tmp_path: Path
) -> None:
    binary = tool("prometheus")
    web = write_web(
        tmp_path / "web.yml",
        {
            "tls_server_config": tls_server(pki, mutual=True, min_version="TLS12"),
            "basic_auth_users": {"prometheus": hashed("scrape me")},
        },
    )
    exporter = start(config_file, web)
    try:
        target = exporter.base.removeprefix("https://")
        tls = {
            "ca_file": str(pki.ca),
            "cert_file": str(pki.client_cert),
            "key_file": str(pki.client_key),
        }

        def job(name: str, password: str, tls_config: dict[str, str]) -> dict[str, Any]:
            return {
                "job_name": name,
                "scheme": "https",
                "tls_config": tls_config,
                "basic_auth": {"username": "prometheus", "password": password},
                "static_configs": [{"targets": [target]}],
            }

        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    # bcrypt runs below the event loop's priority: on a busy machine a
                    # refusal can outlast a 1 s scrape timeout, and a timed-out scrape
                    # says nothing about the password.
                    "global": {"scrape_interval": "5s", "scrape_timeout": "5s"},
                    "scrape_configs": [
                        job("good", "scrape me", tls),
                        job("wrong-password", "scrape you", tls),
                        job("no-client-cert", "scrape me", {"ca_file": str(pki.ca)}),
                    ],
                }
            )
        )
        proc, base = start_prometheus(binary, tmp_path)
        try:

            def targets() -> dict[str, tuple[str, str]]:
                try:
                    active = api(base, "/api/v1/targets", state="active")["activeTargets"]
                except OSError:
                    return {}
                return {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}

            expected = {"good": "up", "wrong-password": "down", "no-client-cert": "down"}
            last: list[dict[str, tuple[str, str]]] = [{}]

            def settled() -> bool:
                last[0] = targets()
                health = {k: v[0] for k, v in last[0].items()}
                return health == expected and "401" in last[0]["wrong-password"][1]

            try:
                wait_for(settled, 90, "targets never settled", exporter)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nlast: {last[0]}") from None
            seen = last[0]
            assert seen["no-client-cert"][1], seen
            up = {
                r["metric"]["job"]: r["value"][1]
                for r in api(base, "/api/v1/query", query="up")["result"]
            }
            assert up == {"good": "1", "wrong-password": "0", "no-client-cert": "0"}
            domains = api(base, "/api/v1/query", query="acme_http01_domains")["result"]
            assert [r["metric"]["job"] for r in domains] == ["good"]
            print("prometheus targets:", json.dumps(seen))
        finally:
            proc.terminate()
            proc.wait(20)
        assert exporter.proc.poll() is None
    finally:
        assert exporter.stop() == 0


def test_web_config_changed_at_run_time(config_file: Path, pki: Pki, tmp_path: Path) -> None:
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    path = write_web(
        tmp_path / "web.yml",
        {"tls_server_config": tls, "basic_auth_users": {"alice": hashed("one", 4)}},
    )
    exporter = start(config_file, path)
    try:
        curl = Curl(exporter.base, pki)
        assert curl("/metrics", user="alice:one")[0] == 200
        assert curl("/metrics", user="alice:two")[0] == 401
        # A new password: accepted without a restart, the old one refused.
        write_web(path, {"tls_server_config": tls, "basic_auth_users": {"alice": hashed("two", 4)}})
        wait_for(lambda: curl("/metrics", user="alice:two")[0] == 200, 15, "not reloaded", exporter)
        assert curl("/metrics", user="alice:one")[0] == 401
        # A bad file: the previous one stays in force, logged and counted.
        path.write_text("basic_auth_users:\n  alice: two\n")
        wait_for(
            lambda: (
                curl("/-/healthy", user="alice:two")[0] == 200
                and any(
                    e.get("msg", "").startswith("web config reload failed") for e in exporter.logs
                )
            ),
            15,
            "bad file not noticed",
            exporter,
        )
        failed = [
            e for e in exporter.logs if e.get("msg", "").startswith("web config reload failed")
        ]
        assert failed and failed[0]["level"] == "error"
        assert f"{path}: basic_auth_users.alice: not a bcrypt hash" in failed[0]["problems"]
        status, _, _, body = curl("/metrics", user="alice:two")
        assert status == 200
        samples = parse(body)
        assert value(samples, "acme_http01_web_config_reloads_total", result="success") == 1
        assert value(samples, "acme_http01_web_config_reloads_total", result="failure") == 1
        assert value(samples, "acme_http01_web_config_last_reload_successful") == 0
        # A good file again: in force, and the gauge says so.
        write_web(path, {"tls_server_config": tls, "basic_auth_users": {"bob": hashed("three", 4)}})
        wait_for(lambda: curl("/metrics", user="bob:three")[0] == 200, 15, "not reloaded", exporter)
        assert curl("/metrics", user="alice:two")[0] == 401
    finally:
        assert exporter.stop() == 0


def test_bad_web_config_at_start_exits_1(config_file: Path, tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(
        "basic_auth_users:\n  alice: secret\nhttp_server_config:\n  headers:\n    Server: x\n"
    )
    proc = run_cli(
        "--config.file", str(config_file), "--web.config.file", str(web), "--log.format", "json"
    )
    assert proc.returncode == 1
    entry = json.loads(proc.stderr.strip().splitlines()[-1])
    assert entry["msg"] == "invalid web configuration"
    assert entry["problems"].startswith(f"{web}: basic_auth_users.alice: not a bcrypt hash")
    proc = run_cli("--config.file", str(config_file), "--web.config.file", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'nope'}: cannot read the file: No such file or directory" in proc.stderr


def test_basic_auth_and_headers_without_tls(config_file: Path, pki: Pki, tmp_path: Path) -> None:
    web = write_web(
        tmp_path / "web.yml",
        {
            "http_server_config": {"headers": {"Content-Security-Policy": "default-src 'self'"}},
            "basic_auth_users": {"alice": hashed("pw", 4)},
        },
    )
    exporter = start(config_file, web)
    try:
        assert exporter.base.startswith("http://127.0.0.1:")
        curl = Curl(exporter.base, pki)
        status, _, headers, _ = curl("/config")
        assert status == 401 and headers["www-authenticate"] == "Basic"
        status, _, headers, body = curl("/config", user="alice:pw")
        assert status == 200 and "domains:" in body
        assert headers["content-security-policy"] == "default-src 'self'"
        assert curl("/config", user="alice:wrong")[0] == 401
    finally:
        assert exporter.stop() == 0


# ------------------------------------------------- a file with no document, a rewrite in place

NO_DOCUMENT = {"empty": "", "blank": "\n   \n\n", "comments-only": "# web config\n# (later)\n"}


@pytest.mark.parametrize("name", sorted(NO_DOCUMENT))
def test_web_config_without_a_document_at_start_exits_1(
    config_file: Path, tmp_path: Path, name: str
) -> None:
    web = write_web(tmp_path / "web.yml", NO_DOCUMENT[name])
    proc = run_cli("--config.file", str(config_file), "--web.config.file", str(web))
    assert proc.returncode == 1
    assert f"{web}: (top level): the file holds no YAML document (empty?)" in proc.stderr


def reload_attempts(exporter: ExporterProcess) -> int:
    return sum(
        1
        for entry in exporter.logs
        if entry.get("msg") == "web config reloaded"
        or str(entry.get("msg", "")).startswith("web config reload failed")
    )


def reread(curl: Curl, exporter: ExporterProcess) -> int:
    """The reload attempts so far, after a request (a request is what re-checks the file)."""
    curl("/-/healthy")
    return reload_attempts(exporter)


def test_reload_removes_basic_auth_only_when_the_file_says_so(
    config_file: Path, pki: Pki, tmp_path: Path
) -> None:
    users = {"basic_auth_users": {"alice": hashed("pw", 4)}}
    path = write_web(tmp_path / "web.yml", users)
    exporter = start(config_file, path)
    try:
        curl = Curl(exporter.base, pki)
        assert curl("/config")[0] == 401
        assert curl("/config", user="alice:pw")[0] == 200
        headers_only = {"http_server_config": {"headers": {"X-Frame-Options": "deny"}}}
        refusals = {
            "blank": ("  \n\n", "(top level): the file holds no YAML document (empty?)"),
            "comments-only": (
                "# basic_auth_users moved elsewhere\n",
                "(top level): the file holds no YAML document (empty?)",
            ),
            "no basic_auth_users": (
                headers_only,
                "basic_auth_users: missing while basic auth is in force",
            ),
        }

        def reload_log(entry: dict[str, Any]) -> bool:
            return str(entry.get("msg", "")).startswith("web config reload")

        for count, (name, (document, problem)) in enumerate(refusals.items(), 1):
            write_web(path, document)
            wait_for(lambda n=count: reread(curl, exporter) >= n, 15, f"{name}: not re-read")
            failed = exporter.logged(reload_log, count)
            assert len(failed) == count and failed[-1]["level"] == "error", name
            assert f"{path}: {problem}" in failed[-1]["problems"], name
            status, _, headers, _ = curl("/config")
            assert status == 401 and headers["www-authenticate"] == "Basic", name
            assert curl("/config", user="alice:pw")[0] == 200, name
        status, _, _, body = curl("/metrics", user="alice:pw")
        samples = parse(body)
        assert value(samples, "acme_http01_web_config_reloads_total", result="failure") == 3
        assert value(samples, "acme_http01_web_config_last_reload_successful") == 0
        # Said explicitly: applied, and logged at warning.
        write_web(path, {"basic_auth_users": {}})
        wait_for(lambda: curl("/config")[0] == 200, 15, "explicit removal not applied", exporter)
        removed = exporter.logged(
            lambda e: e.get("msg") == "web config reload removes access control"
        )
        assert removed[0]["level"] == "warning"
    finally:
        assert exporter.stop() == 0


def test_web_config_rewritten_in_place_never_opens_the_door(
    config_file: Path, pki: Pki, tmp_path: Path
) -> None:
    """An editor without atomic rename: truncate, then small writes, again and again, while
    requests without credentials arrive. None of them may get in.

    Some pauses are longer than a reader's settle time: a part of a file can look finished
    (empty, or cut before ``basic_auth_users``) and must still not be read as "no auth"."""
    document = {
        "http_server_config": {
            "headers": {
                "X-Frame-Options": "deny",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            }
        },
        "basic_auth_users": {"alice": hashed("pw", 4), "bob": hashed("pw2", 4)},
    }
    text = yaml.safe_dump(document, sort_keys=False).encode()
    path = write_web(tmp_path / "web.yml", document)
    exporter = start(config_file, path)
    done = threading.Event()
    rewrites = 0

    def rewrite() -> None:
        nonlocal rewrites
        chunks = random.Random(7)

        def pause() -> None:
            time.sleep(0.3 if chunks.random() < 0.15 else 0.005)

        while not done.is_set():
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                pause()
                offset = 0
                while offset < len(text):
                    size = chunks.randint(16, 64)
                    os.write(fd, text[offset : offset + size])
                    offset += size
                    pause()
            finally:
                os.close(fd)
            rewrites += 1

    writer = threading.Thread(target=rewrite, daemon=True)
    statuses: dict[int, int] = {}
    try:
        curl = Curl(exporter.base, pki)
        writer.start()
        deadline = time.monotonic() + 180
        # Every reload attempt (one at most every 2 s) reads the file at some point of a
        # rewrite: twelve of them, with requests in between.
        while reload_attempts(exporter) < 12 and time.monotonic() < deadline:
            status = curl("/config")[0]
            statuses[status] = statuses.get(status, 0) + 1
        done.set()
        writer.join(10)
        print(
            f"rewrites: {rewrites}, reload attempts: {reload_attempts(exporter)}, "
            f"statuses without credentials: {statuses}"
        )
        assert reload_attempts(exporter) >= 12
        assert statuses.get(200, 0) == 0, statuses
        assert set(statuses) == {401}, statuses
        # Still serving, with the file as written last.
        write_web(path, document)
        wait_for(lambda: curl("/config", user="bob:pw2")[0] == 200, 15, "stuck", exporter)
        assert curl("/config")[0] == 401
    finally:
        done.set()
        writer.join(10)
        assert exporter.stop() == 0


def test_control_character_in_a_header_at_start_exits_1(config_file: Path, tmp_path: Path) -> None:
    """A CR/LF (or NUL) in a header would leave every response empty: the exporter refuses
    to start, and names the key."""
    cases = {
        "CR": "default-src 'self'\r\nX-Injected: 1",
        "LF": "default-src 'self'\nX-Injected: 1",
        "NUL": "default-src 'self'\x00",
    }
    for control, content in cases.items():
        headers = {"Content-Security-Policy": content}
        web = write_web(tmp_path / "web.yml", {"http_server_config": {"headers": headers}})
        proc = run_cli("--config.file", str(config_file), "--web.config.file", str(web))
        assert proc.returncode == 1, control
        expected = (
            f"{web}: http_server_config.headers.Content-Security-Policy: a control character "
            f"({control}) in the header value"
        )
        assert expected in proc.stderr, proc.stderr
