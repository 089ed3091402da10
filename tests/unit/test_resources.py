"""The exporter's own resources at each I/O seam: out of descriptors or buffers is the
exporter's problem, never the domain's (``exporter.resources``).

Descriptors run out for real here: the soft ``RLIMIT_NOFILE`` is lowered to just above
the descriptors this process holds and the rest are taken, so every new socket fails with
``EMFILE`` as it does under load. Errors no test can provoke on loopback (``ENOBUFS``,
``ENOMEM`` on connect, send, receive or a TLS handshake) come from a fake of the one call
that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.certs import CertificateReader
from exporter.config import DomainConfig
from exporter.dial import Dialer, PortMap
from exporter.dns import DnspythonResolver
from exporter.fetch import Fetcher, Progress
from exporter.lab import servers as L
from exporter.policy import AddressPolicy, DnsAnswer
from exporter.records import Family
from exporter.resources import ExporterResourceError, ResourceReason
from exporter.scheduler import guarded
from tests.integration import lab_validation


@contextlib.contextmanager
def out_of_descriptors() -> Iterator[None]:
    """Every descriptor this process may open is taken until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, hard))
    held: list[int] = []
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _failing(code: int) -> Any:
    async def fail(*args: object, **kwargs: object) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


async def _silent_server() -> tuple[asyncio.Server, int]:
    """A loopback TCP server that accepts and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


# ------------------------------------------------------------------------------- DNS


async def test_dns_query_without_a_descriptor_is_not_a_dns_failure() -> None:
    resolver = DnspythonResolver(["127.0.0.1"], 53, timeout=2.0)
    with out_of_descriptors(), pytest.raises(ExporterResourceError) as raised:
        await resolver.lookup("example.com", Family.IPV4)
    assert raised.value.reason is ResourceReason.DESCRIPTORS
    with out_of_descriptors(), pytest.raises(ExporterResourceError):
        await resolver.lookup_caa("example.com")


class _Truncating(asyncio.DatagramProtocol):
    """A DNS server that answers every query with an empty, truncated answer."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        flags = struct.unpack("!H", data[2:4])[0] | 0x8200  # QR, TC
        self.transport.sendto(data[:2] + struct.pack("!H", flags) + data[4:], addr)


async def test_dns_retry_over_tcp_without_buffers_is_not_a_dns_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Truncating, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        monkeypatch.setattr(asyncio, "open_connection", _failing(errno.ENOBUFS))
        resolver = DnspythonResolver(["127.0.0.1"], port, timeout=2.0)
        with pytest.raises(ExporterResourceError) as raised:
            await resolver.lookup("example.com", Family.IPV6)
        assert raised.value.reason is ResourceReason.BUFFERS
    finally:
        transport.close()


# ------------------------------------------------------------------------------ dial


async def test_dial_without_a_descriptor_is_not_a_dial_failure() -> None:
    server, port = await _silent_server()
    async with server:
        with out_of_descriptors(), pytest.raises(ExporterResourceError) as raised:
            await Dialer().dial("127.0.0.1", port, 5.0)
    assert raised.value.reason is ResourceReason.DESCRIPTORS


async def test_connect_without_buffers_is_not_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, port = await _silent_server()
    async with server:
        monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", _failing(errno.ENOBUFS))
        with pytest.raises(ExporterResourceError) as raised:
            await Dialer().dial("127.0.0.1", port, 5.0)
    assert raised.value.reason is ResourceReason.BUFFERS


# ----------------------------------------------------------------------------- fetch


def _fetcher() -> Fetcher:
    return Fetcher(Dialer(), dial_timeout=5.0, tls_timeout=5.0, user_agent="test")


async def test_fetch_without_a_descriptor_is_not_a_failed_request() -> None:
    server, port = await _silent_server()
    async with server:
        with out_of_descriptors(), pytest.raises(ExporterResourceError):
            await _fetcher().fetch(f"http://example.com:{port}/", "127.0.0.1", Progress())


@pytest.mark.parametrize("call", ["sock_recv", "sock_sendall"])
async def test_fetch_without_buffers_is_not_a_failed_request(
    monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    server, port = await _silent_server()
    async with server:
        monkeypatch.setattr(asyncio.get_running_loop(), call, _failing(errno.ENOBUFS))
        # The server never answers: without the error, this would wait for the deadline.
        with pytest.raises(ExporterResourceError) as raised:
            async with asyncio.timeout(20):
                await _fetcher().fetch(f"http://example.com:{port}/", "127.0.0.1", Progress())
    assert raised.value.reason is ResourceReason.BUFFERS


# ---------------------------------------------------------------------- certificates


class _Loopback:
    """A resolver that answers every name with 127.0.0.1."""

    async def lookup(self, host: str, family: Family) -> DnsAnswer:
        return DnsAnswer(family, ("127.0.0.1",) if family is Family.IPV4 else ())


def _reader(port: int) -> CertificateReader:
    return CertificateReader(
        _Loopback(),  # type: ignore[arg-type]
        Dialer(PortMap({443: port})),
        AddressPolicy(allow_loopback=True),
        dial_timeout=5.0,
        tls_timeout=5.0,
        renewal_remaining=0.333,
    )


async def test_certificate_reading_without_a_descriptor_is_no_reading() -> None:
    server, port = await _silent_server()
    async with server:
        with out_of_descriptors(), pytest.raises(ExporterResourceError):
            await _reader(port).read("example.com")


async def test_tls_handshake_without_memory_is_no_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, port = await _silent_server()
    async with server:
        monkeypatch.setattr(asyncio, "open_connection", _failing(errno.ENOMEM))
        with pytest.raises(ExporterResourceError) as raised:
            await _reader(port).read("example.com")
    assert raised.value.reason is ResourceReason.MEMORY


# ------------------------------------------------------------- the driver and the guard


async def test_a_validation_out_of_descriptors_raises_through_the_driver_and_the_guard(
    lab: L.Lab,
) -> None:
    """The driver (``http01``) lets the seam's error through, and ``guarded`` does not
    turn it into an ``internal`` result: no verdict about the domain at all."""
    name = "resources.example.com"
    await lab_validation.site(lab, name, L.serve())
    engine = lab_validation.validator(lab)
    first = await engine.validate(name)
    assert first.success, first.problem  # the domain itself is fine
    with out_of_descriptors(), pytest.raises(ExporterResourceError):
        await guarded(engine, DomainConfig(name=name), None)
