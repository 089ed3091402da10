"""The fetch seam: one HTTP/1.1 GET, pinned to one chosen address, classified.

Rule: this is the only module that touches httpx, httpcore and anyio, and only
through their public interfaces. It sends one request and returns one
:class:`Response` (status, ``Location``, at most 128 bytes of body) or raises
one classified failure; which request to send next, and what a response or a
failure means, is the driver's and the policy's business.

The request is built as httpx builds it (its URL normalisation, its header
encoding) and spoken with h11 as httpcore's HTTP/1.1 connection speaks it (the
same events, limits and exceptions), over a socket dialled to the address the
policy chose through the ``Dialer`` seam, whatever host the URL names (the Host
header and SNI keep the name). That is what lets a TCP dial failure be told from
a TLS failure. There is no connection pool: every request has a fresh
connection, as Let's Encrypt's has.

It speaks like Let's Encrypt's Go client, not like Python's defaults: the Host
header is the URL's host as written (``host:80`` stays), the TLS ClientHello
offers Go's cipher suites and no ALPN, TLS alerts are reported in Go's words, a
``101`` is a final response, each response is framed by its Transfer-Encoding and
Content-Length as Go frames it (what Go refuses is refused), and a chunked body and
a gzip body (Go asks for gzip and decodes it) are decoded by Go's readers
(``exporter.gocompat``), so that what Go refuses is refused with Go's texts.

How errors are told apart (only the first kind may fall back)::

    DialFailure                   TCP connect failed (timeout, refused, unreachable)
    httpcore.ConnectTimeout       TLS handshake took longer than the TLS timeout
    httpcore.ConnectError         TLS handshake failed (alert, garbage, reset)
    httpcore.RemoteProtocolError  not HTTP/1.x (HTTP/0.9, HTTP/2 preface, bad status line)
    httpcore.ReadError            reset or EOF while waiting for the response, or an
                                  alert on the first read after a TLS 1.3 handshake
    BodyError                     a response whose body could not be read

A reset is ``connection_reset`` only while nothing of the response has arrived;
once any byte of it has (a partial status line or header), Go's client reports a
broken response instead, which Let's Encrypt words "Error getting validation data".

A :class:`Progress` tells the caller where a request was when the caller's
deadline fired (dialling, waiting, reading the body).

A send or receive that fails for want of the exporter's own resources (``ENOBUFS``,
``ENOMEM``; ``EMFILE`` from the dial seam: ``exporter.resources``) is classified as
nothing: :class:`~exporter.resources.ExporterResourceError` passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import socket
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.streams.tls
import h11
import httpcore
import httpx

from exporter import gocompat, policy
from exporter.dial import Dialer, DialFailure
from exporter.policy import Phase
from exporter.records import Reason
from exporter.resources import ExporterResourceError, check_own

__all__ = ["BodyError", "Failed", "Fetcher", "Progress", "Response"]

_T = TypeVar("_T")


@dataclass(slots=True)
class Progress:
    """Where a request is, so that a deadline can be reported like Let's Encrypt does."""

    phase: Phase = Phase.DNS


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    location: str | None  # the first Location, UTF-8 with undecodable bytes escaped
    body: bytes  # at most policy.MAX_RESPONSE_SIZE bytes; empty unless the status is 200


class Failed(Exception):
    """A request that produced no HTTP response."""

    def __init__(self, reason: Reason, text: str = "") -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text


class BodyError(Exception):
    """A 200 response whose body could not be read; ``text`` is Go's io.ReadAll error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# ------------------------------------------------------------------- the network layer

#: Bytes of the response head kept (h11 refuses heads over 100 kB, reads are 64 kB).
_HEAD_CAPTURE = 256 * 1024
#: Bytes of a TLS handshake kept, to find an alert OpenSSL could not name.
_HANDSHAKE_CAPTURE = 64 * 1024


class _Tap:
    """What the server sent on this request's connection, for the classifications below."""

    __slots__ = ("capturing", "handshake", "head", "received", "stream")

    def __init__(self) -> None:
        self.received = 0  # bytes of the HTTP response (after any TLS handshake)
        self.head = bytearray()  # the start of them, until the response head is parsed
        self.capturing = True
        self.handshake = bytearray()  # raw bytes received during the TLS handshake
        self.stream: _Stream | None = None  # the stream the response is read from


class _Recorder(anyio.abc.ByteStream):
    """The TCP stream under a TLS handshake, keeping what the server sent."""

    def __init__(self, inner: anyio.abc.ByteStream, tap: _Tap) -> None:
        self._inner = inner
        self._tap = tap

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._inner.receive(max_bytes)
        room = _HANDSHAKE_CAPTURE - len(self._tap.handshake)
        if room > 0:
            self._tap.handshake += data[:room]
        return data

    async def send(self, item: bytes) -> None:
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._inner.extra_attributes


class _Stream(httpcore.AsyncNetworkStream):
    """An anyio byte stream as httpcore's network stream; counts what the server sent."""

    def __init__(
        self, stream: anyio.abc.ByteStream, tap: _Tap, tls_context: ssl.SSLContext
    ) -> None:
        self._stream = stream
        self._tap = tap
        self._tls_context = tls_context
        tap.stream = self

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:  # the validation's deadline bounds it
                data = await self._stream.receive(max_bytes)
            else:
                async with asyncio.timeout(timeout):
                    data = await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            check_own(exc)
            raise httpcore.ReadError(str(exc)) from exc
        tap = self._tap
        tap.received += len(data)
        if tap.capturing and len(tap.head) < _HEAD_CAPTURE:
            tap.head += data
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            if timeout is None:
                await self._stream.send(buffer)
            else:
                async with asyncio.timeout(timeout):
                    await self._stream.send(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            check_own(exc)
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # httpcore hands over a context it has just set ALPN on; Go's transport sends
        # no ALPN, so the handshake uses the fetcher's own context (see _tls_context).
        try:
            async with asyncio.timeout(timeout):
                tls = await anyio.streams.tls.TLSStream.wrap(
                    _Recorder(self._stream, self._tap),
                    ssl_context=self._tls_context,
                    hostname=server_hostname,
                    standard_compatible=False,
                    server_side=False,
                )
        except BaseException as exc:
            # Close the socket whatever ended the handshake, a cancellation by the
            # validation's deadline included, so that no socket is left behind.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._stream.aclose())
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout(str(exc)) from exc
            if isinstance(exc, anyio.BrokenResourceError | anyio.EndOfStream | ssl.SSLError):
                raise httpcore.ConnectError(str(exc)) from exc
            raise
        return _Stream(tls, self._tap, self._tls_context)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._stream.extra(anyio.streams.tls.TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return self._stream.extra(anyio.abc.SocketAttribute.local_address, None)
        if info == "server_addr":
            return self._stream.extra(anyio.abc.SocketAttribute.remote_address, None)
        if info == "socket":
            return self._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        return None


class _SocketStream(anyio.abc.ByteStream):
    """A connected socket as an anyio byte stream, on the event loop's socket calls.

    It raises what anyio's own socket stream raises (``EndOfStream`` at EOF,
    ``BrokenResourceError`` from the ``OSError``), so a TLS stream on it behaves alike.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            data = await self._loop.sock_recv(self._sock, max_bytes)
        except OSError as exc:
            check_own(exc)
            raise anyio.BrokenResourceError from exc
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        try:
            await self._loop.sock_sendall(self._sock, item)
        except OSError as exc:
            check_own(exc)
            raise anyio.BrokenResourceError from exc

    async def send_eof(self) -> None:
        self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        self._sock.close()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._sock
        return {
            anyio.abc.SocketAttribute.raw_socket: lambda: sock,
            anyio.abc.SocketAttribute.local_address: sock.getsockname,
            anyio.abc.SocketAttribute.remote_address: sock.getpeername,
        }


class _Exchange:
    """One HTTP/1.1 request and its response on a connected stream, spoken with h11.

    The loop of httpcore's HTTP/1.1 connection (the same h11 settings, events, limits and
    exceptions: a write error is ignored so that a response sent early is still read; a
    server that closes before responding is "Server disconnected without sending a
    response."), without what a pooled, reusable connection needs (state locks, traces).

    Two things are Go's, not h11's. A ``101`` is the final response even though the
    request proposed no protocol switch: the response is parsed by an h11 connection
    whose copy of the request proposes one (the request on the wire does not). And each
    response head reaches h11 with its framing as Go reads it
    (``gocompat.response_head``): where Go refuses the Transfer-Encoding or the
    Content-Length, the response is refused; where Go ignores one, h11 does not see it.
    """

    READ_NUM_BYTES = 64 * 1024
    MAX_INCOMPLETE_EVENT_SIZE = 100 * 1024

    __slots__ = ("_h11", "_heads", "_pending", "_stream")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(
            our_role=h11.CLIENT, max_incomplete_event_size=self.MAX_INCOMPLETE_EVENT_SIZE
        )
        self._pending = bytearray()  # received, not yet given to h11: part of a head
        self._heads = True  # the final response's head is still to come

    async def request(
        self, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Send a GET (no body); the final response's status and raw headers."""
        try:
            switch = [*headers, _UPGRADE]
            data = self._h11.send(h11.Request(method=b"GET", target=target, headers=switch))
            data += self._h11.send(h11.EndOfMessage())
            # h11 writes the header lines in order: the proposal is the last one, and the
            # request on the wire is the same without it.
            if data.endswith(_UPGRADE_END):
                wire = data[: -len(_UPGRADE_END)] + b"\r\n"
            else:  # never with h11 0.16; a writer of its own then
                writer = h11.Connection(our_role=h11.CLIENT)
                wire = writer.send(h11.Request(method=b"GET", target=target, headers=headers))
                wire += writer.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpcore.LocalProtocolError(exc) from exc
        with contextlib.suppress(httpcore.WriteError):
            # a server may answer (and close) before reading the request
            await self._stream.write(wire)
        while True:
            received = await self._receive()
            if isinstance(received, h11.Response) or (
                isinstance(received, h11.InformationalResponse) and received.status_code == 101
            ):
                return received.status_code, list(received.headers.raw_items())

    async def body(self) -> AsyncGenerator[bytes, None]:
        while True:
            received = await self._receive()
            if isinstance(received, h11.Data):
                yield bytes(received.data)
            elif isinstance(received, h11.EndOfMessage) or received is h11.PAUSED:
                return

    async def _receive(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                received = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpcore.RemoteProtocolError(exc) from exc
            if received is not h11.NEED_DATA:
                return received  # type: ignore[return-value]
            data = await self._stream.read(self.READ_NUM_BYTES)
            if data == b"" and self._h11.their_state == h11.SEND_RESPONSE:
                raise httpcore.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
            self._give(data)

    def _give(self, data: bytes) -> None:
        """Hand received bytes to h11, each response head as Go frames it."""
        if not self._heads:
            self._h11.receive_data(data)
            return
        pending = self._pending
        pending += data
        while self._heads and pending and pending[0] >= 0x21:
            end = _BLANK_LINE.search(pending)
            if end is None:
                if len(pending) <= self.MAX_INCOMPLETE_EVENT_SIZE and data:
                    return  # the rest of the head is to come
                break  # h11 refuses it (too long, or cut by the end of the stream)
            head = bytes(pending[: end.end()])
            try:
                head, final = gocompat.response_head(head)
            except gocompat.ResponseHeadError as exc:
                raise httpcore.RemoteProtocolError(str(exc)) from exc
            del pending[: end.end()]
            self._h11.receive_data(head)
            self._heads = not final
        # Not a head (h11 refuses a first byte below 0x21 at once), or the body.
        rest = bytes(pending)
        pending.clear()
        if rest:
            self._h11.receive_data(rest)
        if not data:
            self._h11.receive_data(b"")


#: The protocol switch the parser's copy of the request proposes, and how h11 writes it.
_UPGRADE = (b"Upgrade", b"any")
_UPGRADE_END = b"Upgrade: any\r\n\r\n"


# ---------------------------------------------------------------------- the fetcher


def _tls_context() -> ssl.SSLContext:
    """Go's ClientHello as far as ``ssl`` can set it: TLS 1.2 and 1.3, Go's default
    TLS 1.2 cipher suites (the TLS 1.3 ones are the same), no ALPN; no certificate
    verification (the server has no certificate yet).

    Not settable from Python 3.11: the key-exchange groups (Go: X25519MLKEM768, X25519,
    P-256, P-384, P-521; OpenSSL adds X448 and the FFDHE groups) and the signature
    algorithms. A server that accepts only one of those differences can still tell.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(gocompat.TLS12_CIPHER_SUITES))
    return ctx


class Fetcher:
    """Sends one validation request at a time; one instance serves many validations."""

    def __init__(
        self,
        dialer: Dialer,
        *,
        dial_timeout: float,
        tls_timeout: float,
        user_agent: str,
        remembered_urls: int = 4096,
    ) -> None:
        self._dialer = dialer
        self._dial_timeout = dial_timeout
        self._tls = _tls_context()
        self._tls_timeout = tls_timeout
        # The URLs asked for come back every interval (each domain's challenge URL, its
        # redirect targets): their reading is kept, up to ``remembered_urls`` of them,
        # so that a validation costs the same at any number of domains.
        self._targets: dict[str, tuple[httpcore.URL, bytes]] = {}
        self._remember = remembered_urls
        self._headers = [
            (b"User-Agent", user_agent.encode("ascii")),
            (b"Accept", b"*/*"),
            (b"Accept-Encoding", b"gzip"),
            (b"Connection", b"close"),
        ]
        # The TLS handshake is bounded by the TLS timeout; everything after it only by the
        # validation's overall deadline (the dial has its own timeout, in the dialer).

    async def fetch(self, url: str, address: str, progress: Progress) -> Response:
        """One GET of ``url`` pinned to ``address``; the body only for a 200 response.

        ``url`` is printed as Go prints it (``exporter.gocompat.GoURL``); its host, as
        written, is the Host header, as Go's client sends it.

        Raises :class:`Failed` when no response came back, :class:`BodyError` when a
        200 response's body could not be read.
        """
        tap = _Tap()
        stream: httpcore.AsyncNetworkStream | None = None
        try:
            origin, target, headers = self._request(url)
            progress.phase = Phase.DIAL
            sock = await self._dialer.dial(address, origin.port, self._dial_timeout)
            progress.phase = Phase.WAIT
            stream = _Stream(_SocketStream(sock), tap, self._tls)
            if origin.scheme == b"https":
                # As httpcore's connection does: SNI is the URL's host (none for an IP).
                stream = await stream.start_tls(
                    self._tls,
                    server_hostname=origin.host.decode("ascii"),
                    timeout=self._tls_timeout,
                )
            exchange = _Exchange(stream)
            status, raw_headers = await exchange.request(target, headers)
            tap.capturing = False
            location = _location(raw_headers)
            if status != 200:
                # Let's Encrypt reads the body of a 200 response only.
                return Response(status, location, b"")
            progress.phase = Phase.BODY
            # Header.Get: the first line's value. The exchange gave h11 Go's framing: a
            # Transfer-Encoding line is there only when Go reads the body as chunked.
            coding = _first(raw_headers, b"content-encoding")
            gzipped = coding is not None and coding.strip().lower() == b"gzip"
            chunked = _first(raw_headers, b"transfer-encoding") is not None
            whole = len(tap.head) < _HEAD_CAPTURE  # never short in practice
            start = _body_start(bytes(tap.head)) if chunked and whole else None
            if start is not None and tap.stream is not None:
                body = await _read_chunked_body(tap.stream, bytes(tap.head[start:]), gzipped)
            else:
                body = await _read_body(exchange.body(), gzipped)
            return Response(status, location, body)
        except (BodyError, ExporterResourceError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise _classify(exc, tap) from None
        finally:
            # The tap and the stream point at each other: unlinked, the connection's
            # objects go as soon as the request ends, not at the next cyclic collection.
            tap.stream = None
            if stream is not None:
                await stream.aclose()

    def _request(self, url: str) -> tuple[httpcore.Origin, bytes, list[tuple[bytes, bytes]]]:
        """What httpx makes of ``url`` (its URL normalisation and header encoding): the
        origin to connect to, the request target, and Go's headers, Host first (the URL's
        host[:port] as written)."""
        known = self._targets.get(url)
        if known is None:
            known = _target(url)
            if len(self._targets) >= self._remember:
                self._targets.clear()
            self._targets[url] = known
        core_url, host = known
        return core_url.origin, core_url.target, [(b"Host", host), *self._headers]


def _target(url: str) -> tuple[httpcore.URL, bytes]:
    """httpx's reading of ``url`` and the Host header Go sends for it."""
    parsed = httpx.URL(url)
    try:
        host = gocompat.GoURL.parse(url).host_text.encode("ascii")
    except gocompat.GoURLError:
        host = parsed.netloc  # httpx refuses the URL too, with the same verdict
    core_url = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return core_url, host


def _first(headers: list[tuple[bytes, bytes]], field: bytes) -> bytes | None:
    """Header.Get: the value of the first line named ``field`` (lower case), if any."""
    for name, value in headers:
        if name.lower() == field:
            return value
    return None


def _location(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Header.Get("Location"): the first one, its bytes as sent (UTF-8, else escaped)."""
    value = _first(headers, b"location")
    return None if value is None else value.decode("utf-8", errors="surrogateescape")


_BLANK_LINE = re.compile(rb"\n\r?\n")  # h11's end of a head


def _body_start(received: bytes) -> int | None:
    """Where the body starts in what was received: after the final response's head.

    h11 has parsed the head and keeps the body's first bytes buffered; informational
    (1xx) heads before it are skipped, as httpcore and Go skip them.
    """
    start = 0
    while True:
        end = _BLANK_LINE.search(received, start)
        if end is None:
            return None
        status = received[start : received.find(b"\n", start)].split(None, 2)
        code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
        if 100 <= code < 200 and code != 101:
            start = end.end()
            continue
        return end.end()


async def _read_body(chunks: AsyncGenerator[bytes, None], gzipped: bool) -> bytes:
    """At most MAX_RESPONSE_SIZE bytes of the body, never buffering more.

    Like Go's transport, a gzip body (which we asked for) is decoded by Go's gzip reader
    (``gocompat.GzipBody``), and decoded only as far as needed: a decompression bomb
    costs 128 bytes of output, not gigabytes.
    """
    limit = policy.MAX_RESPONSE_SIZE
    async with contextlib.aclosing(chunks):
        if gzipped:

            async def pull() -> tuple[bytes, str | None, bool]:
                try:
                    return await anext(chunks), None, False
                except StopAsyncIteration:
                    return b"", None, True
                except (
                    httpcore.ProtocolError,
                    httpcore.NetworkError,
                    httpcore.TimeoutException,
                ) as exc:
                    return b"", _body_error_text(exc), False

            return await _read_gzip(pull)
        body = bytearray()
        try:
            async for chunk in chunks:
                body += chunk[: limit - len(body)]
                if len(body) >= limit:
                    break
        except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.TimeoutException) as exc:
            raise BodyError(_body_error_text(exc)) from None
        return bytes(body)


async def _read_gzip(pull: Callable[[], Awaitable[tuple[bytes, str | None, bool]]]) -> bytes:
    """Go's gzip reader over a body: ``pull`` gives the body's next bytes, its error (Go's
    text) or its end, and is called only when the reader needs more."""
    reader = gocompat.GzipBody()
    step = reader.read_all(policy.MAX_RESPONSE_SIZE)
    try:
        step.send(None)
        while True:
            data, error, at_end = await pull()
            reader.feed(data)
            if error is not None or at_end:
                reader.end(error)
            step.send(None)
    except StopIteration as done:
        body, failure = done.value
    if failure is not None:
        raise BodyError(failure)
    return body  # type: ignore[no-any-return]


async def _read_chunked_body(stream: _Stream, prefix: bytes, gzipped: bool) -> bytes:
    """A chunked body read by Go's reader: the bytes h11 buffered after the head, then
    the connection itself, until Let's Encrypt's 128 bytes are read or Go would fail.

    With gzip, Go's gzip reader pulls the chunked body through a 4 KiB bufio.Reader,
    4 KiB at most and only when it needs more; so does this one.
    """
    limit = policy.MAX_RESPONSE_SIZE
    reader = gocompat.ChunkedBody()
    reader.feed(prefix)
    try:
        if not gzipped:
            body, error = await _drive(reader.read_all(limit), reader, stream)
            if error is not None:
                raise BodyError(error)
            return body

        async def pull() -> tuple[bytes, str | None, bool]:
            return await _drive(reader.read(4096), reader, stream)

        return await _read_gzip(pull)
    except (httpcore.NetworkError, httpcore.TimeoutException) as exc:
        raise BodyError(_body_error_text(exc)) from None


async def _drive(
    step: Generator[None, None, _T], reader: gocompat.ChunkedBody, stream: _Stream
) -> _T:
    """Run one of Go's reads: whenever it would block, read the connection and resume."""
    try:
        step.send(None)
        while True:
            data = await stream.read(65536)
            if data:
                reader.feed(data)
            else:
                reader.close()
            step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _body_error_text(exc: Exception) -> str:
    """Go's io.ReadAll error text for what went wrong reading the body."""
    if isinstance(exc, httpcore.RemoteProtocolError):
        return "unexpected EOF"
    alert = _alert_number(exc, b"")
    if alert is not None:
        return gocompat.tls_remote_error(alert)
    if _caused_by_reset(exc):
        # Go: "read tcp <local>-><remote>: read: connection reset by peer"; the local
        # port is not reproducible.
        return "connection reset by peer"
    return "unexpected EOF"


# ------------------------------------------------------------------- classification


def _caused_by_reset(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionResetError):
            return True
        if isinstance(cause, OSError) and cause.errno == errno.ECONNRESET:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


#: OpenSSL's reasons for "the peer sent alert N" (reason code 1000 + N, ssl/sslerr.h), by
#: name. ``ssl.SSLError.reason`` carries the name when Python knows it; otherwise the
#: message carries OpenSSL's reason string, the same name in lower case with spaces
#: (Python 3.11 has no name for 115 and 120). ``_ssl``'s own table is private.
_OPENSSL_ALERTS = {
    "SSLV3_ALERT_UNEXPECTED_MESSAGE": 10,
    "SSLV3_ALERT_BAD_RECORD_MAC": 20,
    "TLSV1_ALERT_DECRYPTION_FAILED": 21,
    "TLSV1_ALERT_RECORD_OVERFLOW": 22,
    "SSLV3_ALERT_DECOMPRESSION_FAILURE": 30,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": 40,
    "SSLV3_ALERT_NO_CERTIFICATE": 41,
    "SSLV3_ALERT_BAD_CERTIFICATE": 42,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": 43,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": 44,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46,
    "SSLV3_ALERT_ILLEGAL_PARAMETER": 47,
    "TLSV1_ALERT_UNKNOWN_CA": 48,
    "TLSV1_ALERT_ACCESS_DENIED": 49,
    "TLSV1_ALERT_DECODE_ERROR": 50,
    "TLSV1_ALERT_DECRYPT_ERROR": 51,
    "TLSV1_ALERT_EXPORT_RESTRICTION": 60,
    "TLSV1_ALERT_PROTOCOL_VERSION": 70,
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": 71,
    "TLSV1_ALERT_INTERNAL_ERROR": 80,
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": 86,
    "TLSV1_ALERT_USER_CANCELLED": 90,
    "TLSV1_ALERT_NO_RENEGOTIATION": 100,
    "TLSV13_ALERT_MISSING_EXTENSION": 109,
    "TLSV1_UNSUPPORTED_EXTENSION": 110,
    "TLSV1_CERTIFICATE_UNOBTAINABLE": 111,
    "TLSV1_UNRECOGNIZED_NAME": 112,
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": 113,
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE": 114,
    "TLSV1_ALERT_UNKNOWN_PSK_IDENTITY": 115,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": 120,
}
_SSL_MESSAGE = re.compile(r"^\[SSL(?:: [A-Z0-9_]+)?\] (.*?) \(_ssl\.c:\d+\)$")


def _plaintext_alert(received: bytes) -> int | None:
    """The last fatal alert sent in the clear (a 2-byte record of type 21), if any.

    Alerts during a handshake are plaintext until encryption starts (TLS 1.2: the
    server's Finished; TLS 1.3: after ServerHello); this finds the number of one
    that OpenSSL has no name for.
    """
    alert, pos = None, 0
    while pos + 5 <= len(received):
        kind, length = received[pos], int.from_bytes(received[pos + 3 : pos + 5], "big")
        if kind == 21 and length == 2 and pos + 7 <= len(received) and received[pos + 5] == 2:
            alert = received[pos + 6]
        pos += 5 + length
    return alert


def _alert_number(exc: BaseException, handshake: bytes) -> int | None:
    """The alert the server sent, if an ``ssl.SSLError`` in ``exc``'s chain reports one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            name = cause.reason
            if name is None:
                match = _SSL_MESSAGE.match(str(cause))
                name = match.group(1).upper().replace(" ", "_") if match else None
            if name in _OPENSSL_ALERTS:
                return _OPENSSL_ALERTS[name]
            return _plaintext_alert(handshake) if cause.reason is None else None
        cause = cause.__cause__ or cause.__context__
    return None


def _ssl_failure(exc: BaseException, tap: _Tap) -> Failed:
    """Classify a failed TLS handshake. Only an alert from the peer is type ``tls``."""
    alert = _alert_number(exc, bytes(tap.handshake))
    if alert is not None:
        return Failed(Reason.TLS_ALERT, gocompat.tls_remote_error(alert))
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return Failed(Reason.TLS_ERROR)
        if isinstance(cause, ConnectionResetError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNRESET
        ):
            return Failed(Reason.CONNECTION_RESET)
        cause = cause.__cause__ or cause.__context__
    return Failed(Reason.TLS_ERROR)


def _looks_like_http2(first: bytes) -> bool:
    """An HTTP/2 frame header (length, type SETTINGS) where an HTTP/1.1 status line belongs."""
    return len(first) >= 9 and first[3] == 0x04 and first[:1] == b"\x00"


def _classify(exc: Exception, tap: _Tap) -> Failed:
    if isinstance(exc, DialFailure):
        return Failed(exc.reason, str(exc))
    if isinstance(exc, httpcore.ConnectTimeout):
        return Failed(Reason.TLS_HANDSHAKE_TIMEOUT)
    if isinstance(exc, httpcore.ConnectError):
        return _ssl_failure(exc, tap)
    if isinstance(exc, httpcore.RemoteProtocolError):
        if _looks_like_http2(bytes(tap.head[:16])):
            return Failed(Reason.HTTP2_OVER_HTTP)
        return Failed(Reason.PROTOCOL_ERROR, str(exc))
    if isinstance(exc, httpcore.ReadError | httpcore.WriteError):
        # An alert right after a TLS 1.3 handshake (certificate required, say) arrives
        # on the first read; Go reports it as the handshake's would be.
        alert = _alert_number(exc, b"")
        if alert is not None:
            return Failed(Reason.TLS_ALERT, gocompat.tls_remote_error(alert))
        # Go finds ECONNRESET only while nothing of the response has arrived; a
        # connection that dies mid-head is a broken response (erratum 13).
        if _caused_by_reset(exc) and tap.received == 0:
            return Failed(Reason.CONNECTION_RESET)
        return Failed(Reason.PROTOCOL_ERROR, str(exc))
    if isinstance(
        exc,
        httpcore.ProtocolError
        | httpcore.NetworkError
        | httpcore.TimeoutException
        | httpcore.UnsupportedProtocol
        | httpx.InvalidURL,
    ):
        return Failed(Reason.PROTOCOL_ERROR, str(exc))
    raise exc
