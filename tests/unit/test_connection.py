"""The HTTP/1.1 connection (``exporter.connection``) over a scripted loopback peer.

What the connection adds to h11 is Go's: a ``101`` is a final response although the
request proposed no switch (h11 alone refuses it), each response head reaches h11 with
its framing as Go reads it, a chunked body goes through Go's chunked reader, and a
failure is reported as facts that ``gocompat.client_error`` words as Let's Encrypt
does. These tests pin the parts the lab cannot time: the request on the wire carries no
trace of the parser's upgrade proposal, a head split across reads is still read, bytes
that are no HTTP fail at the first read (an HTTP/2 server waits for us: nothing more
comes), and a reset names our own port as Go's error does.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Sequence

import pytest

from exporter import gocompat
from exporter.connection import (
    BodyFailure,
    Connection,
    Failure,
    HandshakeFailure,
    ResponseFailure,
    go_client_context,
)
from exporter.lab.tls import Algorithm, lab_ssl_context
from exporter.records import Reason

HEADERS = [(b"Host", b"example.com"), (b"Accept-Encoding", b"gzip"), (b"Connection", b"close")]
REQUEST = (
    b"GET /x HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
)


class Peer:
    """The server's end of a loopback TCP connection: it sends ``reads`` one by one,
    then closes (``then="close"``), resets (``"reset"``) or stays silent (``"wait"``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written = bytearray()

    async def play(self, reads: Sequence[bytes], then: str) -> None:
        loop = asyncio.get_running_loop()
        self.written += await loop.sock_recv(self.sock, 65536)
        for data in reads:
            await loop.sock_sendall(self.sock, data)
            await asyncio.sleep(0.001)  # each piece its own read
        if then == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if then != "wait":
            self.sock.close()


async def pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(client, listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    return client, server


@pytest.fixture
async def ends() -> AsyncIterator[tuple[socket.socket, socket.socket]]:
    client, server = await pair()
    yield client, server
    client.close()
    server.close()


async def exchange(
    ends: tuple[socket.socket, socket.socket], *reads: bytes, then: str = "close"
) -> tuple[Peer, int, dict[bytes, bytes], bytes]:
    client, server = ends
    peer = Peer(server)
    playing = asyncio.create_task(peer.play(reads, then))
    connection = Connection(client, "192.0.2.1:80")
    try:
        async with asyncio.timeout(5):  # "wait": a failure must not wait for more bytes
            status, headers = await connection.request(b"/x", HEADERS)
            body = b""
            if status == 200:
                body = await connection.body(gzipped=False)
    finally:
        playing.cancel()
    return peer, status, dict(headers), body


async def test_a_101_is_final_and_the_request_proposes_nothing(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    peer, status, headers, _ = await exchange(
        ends,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes...",
        then="wait",
    )
    assert (status, headers) == (101, {b"Upgrade": b"websocket"})
    assert bytes(peer.written) == REQUEST


async def test_heads_split_byte_by_byte_interim_ones_skipped(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    sent = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\nX: y\r\n\r\nok"
    )
    _, status, headers, body = await exchange(ends, *(sent[i : i + 1] for i in range(len(sent))))
    assert (status, body) == (200, b"ok")
    assert headers == {b"X": b"y", b"Content-Length": b"2"}


async def test_http10_ignores_transfer_encoding(ends: tuple[socket.socket, socket.socket]) -> None:
    # Go ignores Transfer-Encoding in HTTP/1.0: the body is read until the connection closes.
    _, status, headers, body = await exchange(
        ends, b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"4\r\nabcd\r\n"
    )
    assert (status, headers, body) == (200, {}, b"4\r\nabcd\r\n")


async def test_chunked_wins_over_a_length_and_is_read_by_gos_reader(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    _, _, headers, body = await exchange(
        ends,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
        b"cd\r\n0\r\n\r\nwhatever follows",
    )
    assert (headers, body) == ({}, b"abcd")


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n",  # a blank line first
    ],
    ids=["length-list", "identity", "interim-bad-length", "leading-blank-line"],
)
async def test_what_go_refuses_fails_at_once(
    ends: tuple[socket.socket, socket.socket], sent: bytes
) -> None:
    with pytest.raises(ResponseFailure) as failed:
        await exchange(ends, sent, then="wait")
    assert gocompat.client_error(failed.value) == (Reason.PROTOCOL_ERROR, str(failed.value))


async def test_an_http2_frame_is_http2_over_http(ends: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(ResponseFailure) as failed:
        await exchange(ends, b"\x00\x00\x12\x04\x00\x00\x00\x00\x00", then="wait")
    assert gocompat.client_error(failed.value) == (Reason.HTTP2_OVER_HTTP, "")


async def test_a_head_that_never_ends_fails_past_h11s_limit(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Pad: " + b"p" * 8000 + b"\r\n"] * 20
    with pytest.raises(ResponseFailure):
        await exchange(ends, *endless, then="wait")


async def test_eof_in_a_head_is_a_disconnect(ends: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(ResponseFailure, match="Server disconnected") as failed:
        await exchange(ends, b"HTTP/1.1 200 OK\r\nContent-Le")
    assert gocompat.client_error(failed.value)[0] is Reason.PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("sent", "reason"),
    [(b"", Reason.CONNECTION_RESET), (b"HTTP/1.1 200 OK\r\n", Reason.PROTOCOL_ERROR)],
    ids=["before-any-byte", "mid-head"],
)
async def test_a_reset_is_connection_reset_only_before_any_byte(
    ends: tuple[socket.socket, socket.socket], sent: bytes, reason: Reason
) -> None:
    with pytest.raises(ResponseFailure) as failed:
        await exchange(ends, *([sent] if sent else []), then="reset")
    assert failed.value.reset
    assert gocompat.client_error(failed.value)[0] is reason


async def test_a_reset_mid_body_names_our_port_as_go_does(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = ends
    port = client.getsockname()[1]
    with pytest.raises(BodyFailure) as failed:
        await exchange(ends, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", then="reset")
    assert gocompat.client_error(failed.value) == (
        Reason.BODY_READ_ERROR,
        f"read tcp 127.0.0.1:{port}->192.0.2.1:80: read: connection reset by peer",
    )


async def test_a_body_cut_short_of_its_length_is_unexpected_eof(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    with pytest.raises(BodyFailure) as failed:
        await exchange(ends, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
    assert gocompat.client_error(failed.value) == (Reason.BODY_READ_ERROR, "unexpected EOF")


async def test_a_silent_tls_server_times_out_the_handshake(
    ends: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = ends
    connection = Connection(client, "192.0.2.1:443")
    with pytest.raises(HandshakeFailure) as failed:
        await connection.start_tls(go_client_context(), "example.com", timeout=0.05)
    assert gocompat.client_error(failed.value) == (Reason.TLS_HANDSHAKE_TIMEOUT, "")


def test_every_failure_is_one_of_three_stages() -> None:
    assert {kind.stage for kind in Failure.__subclasses__()} == {"handshake", "response", "body"}


# ------------------------------------------------------------------ Go's ClientHello


def handshake_in_memory(server: ssl.SSLContext) -> ssl.SSLError | None:
    """A handshake between go_client_context() and ``server`` through memory only: the
    client's error (the server's alert, if it sent one), or None when it succeeded."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = go_client_context().wrap_bio(c_in, c_out, server_hostname="example.com")
    peer = server.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(20):
        try:
            client.do_handshake()
            client_done = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            return exc
        if not server_done:
            try:
                peer.do_handshake()
                server_done = True
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass  # a failing server sends its alert: the client reads it next
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if client_done and server_done:
            return None
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize(
    ("algorithm", "curve", "alert"),
    [
        ("ec", None, None),
        ("rsa", "prime256v1", None),
        ("ec", "X448", 40),  # OpenSSL's client offers X448; Go's does not
        ("ed448", None, 40),  # OpenSSL's client offers Ed448 signatures; Go's does not
    ],
    ids=["default", "p256", "x448-only", "ed448-certificate"],
)
def test_the_client_hello_offers_gos_groups_and_signatures(
    algorithm: Algorithm, curve: str | None, alert: int | None
) -> None:
    server = lab_ssl_context(algorithm)
    if curve is not None:
        server.set_ecdh_curve(curve)
    failure = handshake_in_memory(server)
    if alert is None:
        assert failure is None
    else:
        assert failure is not None
        assert gocompat.tls_alert(failure.reason, str(failure)) == alert
