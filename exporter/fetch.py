"""The fetch seam: one HTTP/1.1 GET, pinned to one chosen address, classified.

Rule: this is the only module that touches httpx, httpcore and anyio, and only
through their public interfaces. It sends one request and returns one
:class:`Response` (status, ``Location``, at most 128 bytes of body) or raises
one classified failure; which request to send next, and what a response or a
failure means, is the driver's and the policy's business.

The request is built with httpx's models (URL normalisation, header encoding)
and sent through an httpcore connection pool whose network backend dials the
address the policy chose through the ``Dialer`` seam, whatever host the URL
names (the Host header and SNI keep the name). That is what lets a TCP dial
failure be told from a TLS failure.

How errors are told apart (only the first kind may fall back)::

    DialFailure                   TCP connect failed (timeout, refused, unreachable)
    httpcore.ConnectTimeout       TLS handshake took longer than the TLS timeout
    httpcore.ConnectError         TLS handshake failed (alert, garbage, reset)
    httpcore.RemoteProtocolError  not HTTP/1.x (HTTP/0.9, HTTP/2 preface, bad status line)
    httpcore.ReadError            reset or EOF while waiting for the response
    BodyError                     a response whose body could not be read

A :class:`Progress` tells the caller where a request was when the caller's
deadline fired (dialling, waiting, reading the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import zlib
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.streams.tls
import httpcore
import httpx

from exporter import policy
from exporter.dial import Dialer, DialFailure
from exporter.policy import Phase
from exporter.records import Reason

__all__ = ["BodyError", "Failed", "Fetcher", "Progress", "Response"]


@dataclass(slots=True)
class Progress:
    """Where a request is, so that a deadline can be reported like Let's Encrypt does."""

    phase: Phase = Phase.DNS
    first_bytes: bytes = b""  # the start of what the server sent (to recognise HTTP/2)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    location: str | None
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


class _Stream(httpcore.AsyncNetworkStream):
    """An anyio byte stream as httpcore's network stream; keeps the server's first bytes."""

    def __init__(self, stream: anyio.abc.ByteStream, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            with anyio.fail_after(timeout):
                data = await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpcore.ReadError(str(exc)) from exc
        if len(self._progress.first_bytes) < 16:
            self._progress.first_bytes += data[: 16 - len(self._progress.first_bytes)]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            with anyio.fail_after(timeout):
                await self._stream.send(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                tls = await anyio.streams.tls.TLSStream.wrap(
                    self._stream,
                    ssl_context=ssl_context,
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
        return _Stream(tls, self._progress)

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


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials the one address chosen by the policy, whatever host the URL names."""

    def __init__(self, dialer: Dialer, address: str, timeout: float, progress: Progress):
        self._dialer = dialer
        self._address = address
        self._timeout = timeout
        self._progress = progress

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self._progress.phase = Phase.DIAL
        sock = await self._dialer.dial(self._address, port, self._timeout)
        self._progress.phase = Phase.WAIT
        try:
            stream = await anyio.abc.SocketStream.from_socket(sock)
        except BaseException:
            sock.close()
            raise
        return _Stream(stream, self._progress)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - never used
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - no retries
        await asyncio.sleep(seconds)


# ---------------------------------------------------------------------- the fetcher


def _ssl_context() -> ssl.SSLContext:
    """No certificate verification (the server has no certificate yet), TLS >= 1.2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Fetcher:
    """Sends one validation request at a time; one instance serves many validations."""

    def __init__(
        self, dialer: Dialer, *, dial_timeout: float, tls_timeout: float, user_agent: str
    ) -> None:
        self._dialer = dialer
        self._dial_timeout = dial_timeout
        self._ssl = _ssl_context()
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "gzip",
            "Connection": "close",
        }
        # The TLS handshake is bounded by the TLS timeout; everything after it only by the
        # validation's overall deadline (the dial has its own timeout, in the backend).
        self._extensions = {
            "timeout": {"connect": tls_timeout, "read": None, "write": None, "pool": None}
        }

    async def fetch(self, url: str, address: str, progress: Progress) -> Response:
        """One GET of ``url`` pinned to ``address``; the body only for a 200 response.

        Raises :class:`Failed` when no response came back, :class:`BodyError` when a
        200 response's body could not be read.
        """
        backend = _PinnedBackend(self._dialer, address, self._dial_timeout, progress)
        pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl,
            max_connections=1,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            network_backend=backend,
        )
        try:
            request = httpx.Request("GET", url, headers=self._headers)
            core_request = httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                extensions=self._extensions,
            )
            response = await pool.handle_async_request(core_request)
            try:
                headers = httpx.Headers(response.headers)
                location = headers.get("location")
                if response.status != 200:
                    # Let's Encrypt reads the body of a 200 response only.
                    return Response(response.status, location, b"")
                progress.phase = Phase.BODY
                gzipped = headers.get("content-encoding", "").strip().lower() == "gzip"
                body = await _read_body(response, gzipped)
                return Response(response.status, location, body)
            finally:
                await response.aclose()
        except (BodyError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise _classify(exc, progress.first_bytes) from None
        finally:
            await pool.aclose()


async def _read_body(response: httpcore.Response, gzipped: bool) -> bytes:
    """At most MAX_RESPONSE_SIZE bytes of the body, never buffering more.

    Like Go's transport, a gzip body (which we asked for) is decoded, and decoded only
    as far as needed: a decompression bomb costs 128 bytes of output, not gigabytes.
    """
    limit = policy.MAX_RESPONSE_SIZE
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    body = bytearray()
    try:
        async for chunk in response.aiter_stream():
            if decoder is not None:
                chunk = decoder.decompress(chunk, limit - len(body))
            body += chunk[: limit - len(body)]
            if len(body) >= limit:
                break
    except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.TimeoutException) as exc:
        raise BodyError(_body_error_text(exc)) from None
    except zlib.error:
        raise BodyError("gzip: invalid header") from None
    return bytes(body)


def _body_error_text(exc: Exception) -> str:
    """Go's io.ReadAll error text for what went wrong reading the body."""
    if isinstance(exc, httpcore.RemoteProtocolError):
        return "unexpected EOF"
    if _caused_by_reset(exc):
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


def _ssl_failure(exc: BaseException) -> Failed:
    """Classify a failed TLS handshake. Only an alert from the peer is type ``tls``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            name = (cause.reason or "").upper()
            if "ALERT" in name:
                alert = name.split("ALERT_", 1)[-1].replace("_", " ").lower()
                return Failed(Reason.TLS_ALERT, f"remote error: tls: {alert}")
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


def _classify(exc: Exception, first: bytes) -> Failed:
    if isinstance(exc, DialFailure):
        return Failed(exc.reason, str(exc))
    if isinstance(exc, httpcore.ConnectTimeout):
        return Failed(Reason.TLS_HANDSHAKE_TIMEOUT)
    if isinstance(exc, httpcore.ConnectError):
        return _ssl_failure(exc)
    if isinstance(exc, httpcore.RemoteProtocolError):
        if _looks_like_http2(first):
            return Failed(Reason.HTTP2_OVER_HTTP)
        return Failed(Reason.PROTOCOL_ERROR, str(exc))
    if isinstance(exc, httpcore.ReadError | httpcore.WriteError):
        if _caused_by_reset(exc):
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
