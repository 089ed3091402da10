"""The fetch seam's HTTP/1.1 exchange (``fetch._Exchange``) over a scripted stream.

What the exchange adds to h11 is Go's: a ``101`` is a final response although the
request proposed no switch (h11 alone refuses it), and each response head reaches h11
with its framing as Go reads it. These tests pin the parts the lab cannot time: the
request on the wire carries no trace of the parser's upgrade proposal, a head split
across reads is still read, and bytes that are no HTTP fail at the first read, as they
did before the heads were held back (an HTTP/2 server waits for us: nothing more comes).
"""

from __future__ import annotations

import httpcore
import pytest

from exporter.fetch import _Exchange

HEADERS = [(b"Host", b"example.com"), (b"Accept-Encoding", b"gzip"), (b"Connection", b"close")]
REQUEST = (
    b"GET /x HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
)


class Script(httpcore.AsyncNetworkStream):
    """Reads hand out ``reads`` one by one, then EOF, or fail once ``then_fail``."""

    def __init__(self, *reads: bytes, then_fail: bool = False) -> None:
        self.reads = list(reads)
        self.written = bytearray()
        self.then_fail = then_fail

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self.reads:
            if self.then_fail:
                raise AssertionError("read past what the server sent: it would wait forever")
            return b""
        return self.reads.pop(0)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass


async def exchange(
    *reads: bytes, then_fail: bool = False
) -> tuple[Script, int, dict[bytes, bytes], bytes]:
    stream = Script(*reads, then_fail=then_fail)
    ex = _Exchange(stream)
    status, headers = await ex.request(b"/x", HEADERS)
    body = b""
    if status >= 200:
        body = b"".join([chunk async for chunk in ex.body()])
    return stream, status, dict(headers), body


async def test_a_101_is_final_and_the_request_proposes_nothing() -> None:
    stream, status, headers, _ = await exchange(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes...",
        then_fail=True,
    )
    assert (status, headers) == (101, {b"Upgrade": b"websocket"})
    assert bytes(stream.written) == REQUEST


async def test_heads_split_byte_by_byte_interim_ones_skipped() -> None:
    sent = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\nX: y\r\n\r\nok"
    )
    _, status, headers, body = await exchange(*(sent[i : i + 1] for i in range(len(sent))))
    assert (status, body) == (200, b"ok")
    assert headers == {b"X": b"y", b"Content-Length": b"2"}


async def test_framing_reaches_h11_as_go_reads_it() -> None:
    # HTTP/1.0: Go ignores Transfer-Encoding; the body is read until the connection closes.
    _, status, headers, body = await exchange(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"4\r\nabcd\r\n"
    )
    assert (status, headers, body) == (200, {}, b"4\r\nabcd\r\n")
    # Chunked wins over a valid Content-Length.
    _, _, headers, body = await exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"4\r\nabcd\r\n0\r\n\r\n",
    )
    assert (headers, body) == ({b"Transfer-Encoding": b"chunked"}, b"abcd")


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ],
    ids=["length-list", "identity", "interim-bad-length"],
)
async def test_framing_go_refuses_is_a_protocol_error(sent: bytes) -> None:
    with pytest.raises(httpcore.RemoteProtocolError):
        await exchange(sent, then_fail=True)


@pytest.mark.parametrize(
    "sent",
    [
        b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",  # an HTTP/2 SETTINGS frame
        b"\r\nHTTP/1.1 200 OK\r\n",  # a blank line first
    ],
    ids=["http2-frame", "leading-blank-line"],
)
async def test_bytes_that_start_no_head_fail_at_once(sent: bytes) -> None:
    with pytest.raises(httpcore.RemoteProtocolError):
        await exchange(sent, then_fail=True)


async def test_a_head_that_never_ends_fails_past_h11s_limit() -> None:
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Pad: " + b"p" * 8000 + b"\r\n"] * 20
    with pytest.raises(httpcore.RemoteProtocolError):
        await exchange(*endless, then_fail=True)


async def test_eof_in_a_head_is_a_disconnect() -> None:
    with pytest.raises(httpcore.RemoteProtocolError, match="Server disconnected"):
        await exchange(b"HTTP/1.1 200 OK\r\nContent-Le")
