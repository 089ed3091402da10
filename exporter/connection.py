"""One HTTP/1.1 exchange on one connected socket, spoken as Go's client speaks it.

Rule: a :class:`Connection` owns one connected socket for one request and its
response. TLS, when asked for, runs through an ``ssl.MemoryBIO`` pair, so every byte
the server sends passes here first (a handshake alert OpenSSL cannot name is still
read); the request and every byte of the response (heads, body, whatever follows)
go through one ``h11.Connection``; a body is decoded by Go's own readers
(``gocompat.ChunkedBody``, ``gocompat.GzipBody``). The only I/O is the event loop's
``sock_recv`` and ``sock_sendall`` on the socket it was given. It raises its own
:class:`Failure` (facts: where, and what the socket, TLS or the parser said) or
:class:`~exporter.resources.ExporterResourceError`; what a failure means in Let's
Encrypt's words is :func:`exporter.gocompat.client_error`'s to say, which request to
send is the caller's.

Two things are Go's, not h11's. A ``101`` is the final response although the request
proposed no protocol switch: h11's copy of the request proposes one (the request on
the wire does not). And each response head reaches h11 with its framing as Go reads it
(``gocompat.response_head``): where Go refuses the Transfer-Encoding or the
Content-Length, the response is refused; where Go ignores one, h11 does not see it; a
chunked body reaches h11 unframed (read until the connection closes) and Go's chunked
reader decodes it.

The ClientHello is Go's as far as OpenSSL can make it (:func:`go_client_context`):
TLS 1.2 and 1.3, Go's cipher suites, groups and signature algorithms, no ALPN, and no
certificate verification (the server has no certificate yet).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar, TypeVar

import h11

from exporter import gocompat, policy
from exporter.resources import check_own

__all__ = ["BodyFailure", "Connection", "Failure", "HandshakeFailure", "ResponseFailure"]

_T = TypeVar("_T")

#: Bytes asked of the socket per read (httpcore's READ_NUM_BYTES).
_READ_SIZE = 64 * 1024
#: The longest response head h11 waits for (httpcore's max_incomplete_event_size).
_MAX_HEAD = 100 * 1024
#: Bytes of a TLS handshake kept, to find an alert OpenSSL could not name.
_HANDSHAKE_CAPTURE = 64 * 1024
#: The protocol switch the parser's copy of the request proposes, and how h11 writes it.
_UPGRADE = (b"Upgrade", b"any")
_UPGRADE_END = b"Upgrade: any\r\n\r\n"
_BLANK_LINE = re.compile(rb"\n\r?\n")  # h11's end of a head


class Failure(Exception):
    """The exchange failed; the attributes are ``gocompat.ClientFailure``'s facts."""

    stage: ClassVar[str]

    def __init__(
        self,
        *,
        timeout: bool = False,
        reset: bool = False,
        alert: int | None = None,
        received: int = 0,
        http2: bool = False,
        text: str = "",
        local: str = "",
        remote: str = "",
    ) -> None:
        super().__init__(text or self.stage)
        self.timeout, self.reset, self.alert = timeout, reset, alert
        self.received, self.http2, self.text = received, http2, text
        self.local, self.remote = local, remote


class HandshakeFailure(Failure):
    """The TLS handshake failed or timed out."""

    stage = "handshake"


class ResponseFailure(Failure):
    """No final response head: the request could not be sent, or the response was
    refused, cut short or never came."""

    stage = "response"


class BodyFailure(Failure):
    """The final response's body could not be read."""

    stage = "body"


def go_client_context() -> ssl.SSLContext:
    """A client context that offers what Go's client offers (``gocompat``'s TLS lists).

    The groups and signature algorithms have no ``ssl`` API in Python 3.11; they are set
    on the context's ``SSL_CTX`` with OpenSSL's own calls (``SSL_CTX_set1_groups_list``,
    ``SSL_CTX_set1_sigalgs_list``) through the library ``_ssl`` is linked with.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(gocompat.TLS12_CIPHER_SUITES))
    groups = [g for g in gocompat.TLS_GROUPS if _openssl_ctrl(ctx, _SET_GROUPS_LIST, g)]
    if not groups or not _openssl_ctrl(ctx, _SET_GROUPS_LIST, ":".join(groups)):
        raise RuntimeError("OpenSSL accepts none of Go's key-exchange groups")
    if not _openssl_ctrl(ctx, _SET_SIGALGS_LIST, ":".join(gocompat.TLS_SIGNATURE_ALGORITHMS)):
        raise RuntimeError("OpenSSL refuses Go's signature algorithms")
    return ctx


#: SSL_CTX_ctrl commands behind the SSL_CTX_set1_groups_list and _sigalgs_list macros.
_SET_GROUPS_LIST, _SET_SIGALGS_LIST = 92, 98


def _openssl_ctrl(ctx: ssl.SSLContext, command: int, value: str) -> bool:
    """``SSL_CTX_ctrl(ctx, command, 0, value)`` on the ``SSL_CTX`` that ``ctx`` wraps.

    CPython's context object holds its ``SSL_CTX *`` right after the object header.
    """
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    return bool(_ssl_ctx_ctrl()(pointer, command, 0, value.encode("ascii")))


@functools.cache
def _ssl_ctx_ctrl() -> Any:
    """OpenSSL's ``SSL_CTX_ctrl``, from the library ``_ssl`` is linked with."""
    import _ssl

    ctrl = ctypes.CDLL(_ssl.__file__).SSL_CTX_ctrl
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctrl.restype = ctypes.c_long
    return ctrl


def _is_reset(exc: OSError) -> bool:
    return exc.errno == errno.ECONNRESET


class Connection:
    """One request and its response on ``sock`` (connected to ``remote``, host:port as
    dialled); :meth:`close` it when done."""

    __slots__ = (
        "_first",
        "_give_raw",
        "_h11",
        "_in",
        "_loop",
        "_out",
        "_pending",
        "_remote",
        "_sock",
        "_tls",
        "chunked",
        "received",
    )

    def __init__(self, sock: socket.socket, remote: str) -> None:
        self._sock = sock
        self._remote = remote
        self._loop = asyncio.get_running_loop()
        self._tls: ssl.SSLObject | None = None
        self._in = self._out = ssl.MemoryBIO()
        self._h11 = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self._pending = bytearray()  # received, not yet given to h11: part of a head
        self._give_raw = False  # the final response's head is in: h11 takes bytes as they come
        self._first = b""  # the response's first bytes (an HTTP/2 frame?)
        self.received = 0  # bytes of the response received (after any TLS handshake)
        self.chunked = False  # the final response's body is chunked, as Go reads it

    def close(self) -> None:
        self._sock.close()

    # ------------------------------------------------------------------------ TLS

    async def start_tls(self, context: ssl.SSLContext, server_name: str, timeout: float) -> None:
        """The TLS handshake, bounded by ``timeout``; SNI is ``server_name`` (none for an IP)."""
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(self._in, self._out, server_hostname=server_name)
        seen = bytearray()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._flush()
                        data = await self._recv()
                        seen += data[: _HANDSHAKE_CAPTURE - len(seen)]
                        self._feed(data)
                await self._flush()
        except TimeoutError:
            raise HandshakeFailure(timeout=True) from None
        except ssl.SSLError as exc:
            alert = gocompat.tls_alert(exc.reason, str(exc), bytes(seen))
            raise HandshakeFailure(alert=alert, text=str(exc)) from None
        except OSError as exc:
            raise HandshakeFailure(reset=_is_reset(exc), text=str(exc)) from None
        self._tls = tls

    def _feed(self, data: bytes) -> None:
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self._sendall(data)

    # -------------------------------------------------------------------- the socket

    async def _recv(self) -> bytes:
        try:
            return await self._loop.sock_recv(self._sock, _READ_SIZE)
        except OSError as exc:
            check_own(exc)
            raise

    async def _sendall(self, data: bytes) -> None:
        try:
            await self._loop.sock_sendall(self._sock, data)
        except OSError as exc:
            check_own(exc)
            raise

    async def _read(self) -> bytes:
        """The response's next bytes (decrypted), ``b""`` at its end."""
        tls = self._tls
        if tls is None:
            data = await self._recv()
        else:
            while True:
                try:
                    data = tls.read(_READ_SIZE)
                    break
                except ssl.SSLWantReadError:
                    await self._flush()
                    self._feed(await self._recv())
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""  # an end without close_notify is an end too
                    break
        self.received += len(data)
        if len(self._first) < 16:
            self._first += data[: 16 - len(self._first)]
        return data

    async def _write(self, data: bytes) -> None:
        if self._tls is None:
            await self._sendall(data)
        else:
            self._tls.write(data)
            await self._flush()

    # ------------------------------------------------------------------------ HTTP

    async def request(
        self, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Send a GET (no body); the final response's status and raw headers."""
        try:
            wire = self._request_bytes(target, headers)
            try:
                await self._write(wire)
            except OSError as exc:  # a server may answer (and close) before reading it
                check_own(exc)
            while True:
                event = await self._event()
                if isinstance(event, h11.Response) or (
                    isinstance(event, h11.InformationalResponse) and event.status_code == 101
                ):
                    return event.status_code, list(event.headers.raw_items())
        except (h11.ProtocolError, gocompat.ResponseHeadError) as exc:
            raise ResponseFailure(
                received=self.received, http2=_looks_like_http2(self._first), text=str(exc)
            ) from None
        except _Disconnected:
            raise ResponseFailure(text="Server disconnected without sending a response.") from None
        except (ssl.SSLError, OSError) as exc:
            raise self._read_failure(ResponseFailure, exc) from None

    def _request_bytes(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The request as Go sends it; h11's copy also proposes a protocol switch."""
        request = h11.Request(method=b"GET", target=target, headers=[*headers, _UPGRADE])
        data = (self._h11.send(request) or b"") + (self._h11.send(h11.EndOfMessage()) or b"")
        # h11 writes the header lines in order: the proposal is the last one, and the
        # request on the wire is the same without it.
        if not data.endswith(_UPGRADE_END):
            raise h11.LocalProtocolError("h11 wrote the request in another order")
        return data[: -len(_UPGRADE_END)] + b"\r\n"

    async def body(self, gzipped: bool) -> bytes:
        """At most ``MAX_RESPONSE_SIZE`` bytes of the body, as Go's client reads them:
        chunked through Go's chunked reader, gzip (which Go asks for) through Go's gzip
        reader, and never more buffered than needed (a decompression bomb costs 128
        bytes of output, not gigabytes)."""
        limit = policy.MAX_RESPONSE_SIZE
        if self.chunked:
            reader = gocompat.ChunkedBody()
            if gzipped:
                # Go's gzip reader pulls through a 4 KiB bufio.Reader, when it needs more.
                return await _read_gzip(lambda: self._drive(reader.read(4096), reader))
            body, error = await self._drive(reader.read_all(limit), reader)
            if error is not None:
                raise BodyFailure(text=error)
            return body
        if gzipped:

            async def pull() -> tuple[bytes, str | None, bool]:
                try:
                    piece = await self._piece()
                except BodyFailure as failure:
                    return b"", gocompat.read_error(failure), False
                return (b"", None, True) if piece is None else (piece, None, False)

            return await _read_gzip(pull)
        out = bytearray()
        while len(out) < limit:
            piece = await self._piece()
            if piece is None:
                break
            out += piece[: limit - len(out)]
        return bytes(out)

    async def _piece(self) -> bytes | None:
        """The body's next bytes as h11 frames them; ``None`` at its end."""
        try:
            event = await self._event()
        except h11.ProtocolError:
            raise BodyFailure(text="unexpected EOF") from None  # cut short of its length
        except (ssl.SSLError, OSError) as exc:
            raise self._read_failure(BodyFailure, exc) from None
        return bytes(event.data) if isinstance(event, h11.Data) else None

    async def _drive(self, step: Generator[None, None, _T], reader: gocompat.ChunkedBody) -> _T:
        """Run one of Go's chunked reads: whenever it would block, read on and resume."""
        try:
            step.send(None)
            while True:
                piece = await self._piece()
                if piece is None:
                    reader.close()
                else:
                    reader.feed(piece)
                step.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _read_failure(self, kind: type[Failure], exc: Exception) -> Failure:
        alert = None
        if isinstance(exc, ssl.SSLError):
            alert = gocompat.tls_alert(exc.reason, str(exc))
        local = ""
        if isinstance(exc, OSError) and _is_reset(exc):
            name = self._sock.getsockname()
            local = gocompat.join_host_port(name[0], name[1])
        return kind(
            reset=bool(local),
            alert=alert,
            received=self.received,
            text=str(exc),
            local=local,
            remote=self._remote,
        )

    async def _event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await self._read()
            if not data and self._h11.their_state == h11.SEND_RESPONSE:
                raise _Disconnected
            self._give(data)

    def _give(self, data: bytes) -> None:
        """Hand received bytes to h11, each response head as Go frames it."""
        if self._give_raw:
            self._h11.receive_data(data)
            return
        pending = self._pending
        pending += data
        while not self._give_raw and pending and pending[0] >= 0x21:
            blank = _BLANK_LINE.search(pending)
            if blank is None:
                if len(pending) <= _MAX_HEAD and data:
                    return  # the rest of the head is to come
                break  # h11 refuses it (too long, or cut by the end of the stream)
            head, final, self.chunked = gocompat.response_head(bytes(pending[: blank.end()]))
            del pending[: blank.end()]
            self._h11.receive_data(head)
            self._give_raw = final
        # Not a head (h11 refuses a first byte below 0x21 at once), or the body.
        rest = bytes(pending)
        pending.clear()
        if rest:
            self._h11.receive_data(rest)
        if not data:
            self._h11.receive_data(b"")


class _Disconnected(Exception):
    """The server closed the connection before any response."""


def _looks_like_http2(first: bytes) -> bool:
    """An HTTP/2 frame header (length, type SETTINGS) where an HTTP/1.1 status line belongs."""
    return len(first) >= 9 and first[3] == 0x04 and first[:1] == b"\x00"


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
        raise BodyFailure(text=failure)
    return body  # type: ignore[no-any-return]
