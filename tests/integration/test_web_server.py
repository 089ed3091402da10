"""The exporter's own web server (``exporter.web``), real on loopback: the connection limit,
accepting again after descriptors ran out, and the graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import select
import socket
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.web import DEFAULT_MAX_CONNECTIONS, WebRequest, WebResponse, WebServer
from exporter.webconfig import WebConfigWatcher, load_web_config
from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    parse,
    value,
    wait_for,
    write_config,
)
from tests.unit.test_resources import out_of_descriptors
from tests.unit.test_webconfig import make_pki

REFUSAL = b"the exporter is at its connection limit; try again later\n"


class Handlers:
    """``/slow`` waits for ``release``; ``/hang`` never answers; anything else: ``ok``."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: WebRequest) -> WebResponse:
        if request.path in ("/slow", "/hang"):
            self.started.set()
            if request.path == "/hang":
                await asyncio.Event().wait()
            await self.release.wait()
            return WebResponse.text(200, "slow answer\n")
        return WebResponse.text(200, "ok\n")


@contextlib.asynccontextmanager
async def running(
    handlers: Handlers, **options: object
) -> AsyncIterator[tuple[WebServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    server = WebServer(handlers, "127.0.0.1", 0, registry=registry, **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server, registry
    finally:
        await server.stop(grace=0)


class Client:
    """One keep-alive HTTP/1.1 connection, spoken by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: WebServer, tls: ssl.SSLContext | None = None) -> Client:
        host, port = server.addresses[0]
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname="localhost" if tls else None
        )
        return cls(reader, writer)

    def send(self, path: str) -> None:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    async def response(self) -> tuple[bytes, bytes]:
        """The head and the body of the next response."""
        async with asyncio.timeout(30):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return head, await self.reader.readexactly(length)

    async def get(self, path: str) -> tuple[bytes, bytes]:
        self.send(path)
        return await self.response()

    async def closed(self) -> bool:
        """True once the server closed the connection (EOF, or a reset)."""
        try:
            async with asyncio.timeout(30):
                return await self.reader.read(1) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


def sample(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


# ----------------------------------------------------------------- the connection limit


def test_the_default_limit_is_prometheus_default() -> None:
    assert DEFAULT_MAX_CONNECTIONS == 512


async def _past_the_limit(tls: ssl.SSLContext | None, **options: object) -> None:
    async with running(Handlers(), max_connections=2, **options) as (server, registry):
        first, second = await Client.open(server, tls), await Client.open(server, tls)
        assert (await first.get("/"))[1] == b"ok\n"
        assert (await second.get("/"))[1] == b"ok\n"
        assert sample(registry, "acme_http01_web_connections") == 2
        third = await Client.open(server, tls)
        head, body = await third.response()  # answered without a request sent
        assert head.startswith(b"HTTP/1.1 503 ")
        assert b"connection: close" in head.lower()
        assert body == REFUSAL
        assert await third.closed()
        assert sample(registry, "acme_http01_web_connections_refused_total") == 1
        assert (await first.get("/"))[1] == b"ok\n"  # the open ones are served on
        first.close()
        async with asyncio.timeout(30):
            while sample(registry, "acme_http01_web_connections") != 1:
                await asyncio.sleep(0.01)
        fourth = await Client.open(server, tls)
        assert (await fourth.get("/"))[1] == b"ok\n"
        for client in (second, third, fourth):
            client.close()


async def test_a_connection_past_the_limit_is_answered_503_and_closed() -> None:
    await _past_the_limit(None)


async def test_a_tls_connection_past_the_limit_is_answered_503_and_closed(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
    )
    watcher = WebConfigWatcher(web, load_web_config(web))
    client = ssl.create_default_context(cafile=str(pki.ca))
    await _past_the_limit(client, web_config=watcher)


# ------------------------------------------------------------- out of descriptors


async def test_accept_backs_off_quietly_without_descriptors_and_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Out of descriptors, the waiting connection stays in the backlog: accept is retried
    after a growing pause (not in a loop, not logged as an error each time) and the
    connection is served once descriptors are back."""
    caplog.set_level(logging.DEBUG, logger="exporter.web")
    async with running(Handlers()) as (server, _):
        loop = asyncio.get_running_loop()
        sock = socket.socket()  # the client's descriptor, taken before they run out
        sock.setblocking(False)
        cpu = time.process_time()
        with out_of_descriptors():
            await loop.sock_connect(sock, server.addresses[0])  # into the backlog
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(1.0)
        busy = time.process_time() - cpu
        client = Client(*await asyncio.open_connection(sock=sock))
        assert (await client.response())[1] == b"ok\n"
        client.close()
    failures = [r for r in caplog.records if r.getMessage() == "accept failed"]
    assert failures, "the accept never met the limit"
    assert len(failures) < 20  # a pause that grows: a handful in a second, not thousands
    assert [r.levelno for r in failures if r.levelno > logging.DEBUG] == [logging.WARNING]
    assert busy < 0.5  # no busy loop (generous: the loop is idle between retries)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --------------------------------------------------------------------- graceful stop


async def test_stop_lets_a_request_in_flight_finish_and_refuses_new_connections() -> None:
    handlers = Handlers()
    async with running(handlers) as (server, _):
        host, port = server.addresses[0]
        slow = await Client.open(server)
        idle = await Client.open(server)
        assert (await idle.get("/"))[1] == b"ok\n"  # a keep-alive connection, now idle
        slow.send("/slow")
        await asyncio.wait_for(handlers.started.wait(), 30)
        stopping = asyncio.create_task(server.stop(grace=30))
        assert await idle.closed()  # idle: closed at once, before the slow one ends
        with pytest.raises(OSError):
            await asyncio.open_connection(host, port)
        assert not stopping.done()
        handlers.release.set()
        head, body = await slow.response()
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"slow answer\n"
        assert b"connection: close" in head.lower()
        assert await slow.closed()
        await asyncio.wait_for(stopping, 30)
        slow.close()
        idle.close()


async def test_stop_cancels_a_hung_request_after_the_grace_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handlers = Handlers()
    grace = 0.5
    async with running(handlers) as (server, _):
        hung = await Client.open(server)
        hung.send("/hang")
        await asyncio.wait_for(handlers.started.wait(), 30)
        started = time.monotonic()
        await server.stop(grace=grace)
        took = time.monotonic() - started
        assert await hung.closed()
        hung.close()
    assert grace <= took < grace + 5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# ------------------------------------------------------------------- SIGTERM, for real


def test_sigterm_lets_a_probe_in_flight_finish(lab_process: LabProcess, tmp_path: Path) -> None:
    """A ``/probe`` that is validating (a 5 s IPv6 dial timeout, then the IPv4 fallback)
    when the exporter gets SIGTERM still gets its answer; the exporter exits 0, quietly."""
    document = lab_process.config(
        interval="60s",
        jitter="500ms",
        timeouts={"dial": "5s", "validation": "10s"},
        domains=[
            d for d in lab_process.document["domains"] if d["name"] == "aaaa-timeout.example.com"
        ],
    )
    exporter = ExporterProcess("--config.file", str(write_config(tmp_path / "c.yml", document)))
    assert exporter.base is not None
    host, port = urllib.parse.urlsplit(exporter.base).netloc.rsplit(":", 1)
    probe = http.client.HTTPConnection(host, int(port), timeout=30)
    watch = http.client.HTTPConnection(host, int(port), timeout=30)

    def open_connections() -> float | None:
        # One kept-alive connection for these scrapes, so it counts as exactly one.
        watch.request("GET", "/metrics")
        return value(parse(watch.getresponse().read().decode()), "acme_http01_web_connections")

    try:
        exporter.wait_ready(40)
        wait_for(lambda: open_connections() == 1, 10, "connections left open", exporter)
        # The request is sent before the exporter is seen to hold its connection, so from
        # then on only the exporter's own next steps stand between it and the validation.
        probe.request("GET", "/probe?target=aaaa-timeout.example.com")
        wait_for(lambda: open_connections() == 2, 10, "the probe was not accepted", exporter)
        watch.close()
        time.sleep(0.5)  # reading the request: a few turns of the exporter's event loop
        assert not select.select([probe.sock], [], [], 0)[0]  # waiting on its IPv6 dial
        assert exporter.stop() == 0
        answer = probe.getresponse()
        status, body = answer.status, answer.read().decode()
    finally:
        probe.close()
        watch.close()
        exporter.stop()
    assert status == 200, body
    assert 'acme_http01_validation_success{domain="aaaa-timeout.example.com"} 1' in body
    assert not [line for line in exporter.raw if "Traceback" in line]
