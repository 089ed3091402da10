"""The fetch seam: one HTTP/1.1 GET, pinned to one chosen address, classified.

Rule: one request, one fresh connection (no pool: Let's Encrypt's client has none),
one :class:`Response` (status, ``Location``, at most 128 bytes of body) or one
:class:`Failed` with its reason. The URL is read as httpx reads it (its
normalisation, its target) and the Host header is the URL's host as Go writes it
(``host:80`` stays); the socket comes from the ``Dialer`` seam, connected to the
address the policy chose whatever host the URL names (the Host header and SNI keep the
name), which is what lets a TCP dial failure be told from a TLS failure. The exchange
itself is :class:`exporter.connection.Connection`'s, and what a failure is called is
:func:`exporter.gocompat.client_error`'s; which request to send next, and what a
response means, is the driver's and the policy's business.

How failures are told apart (only the first may fall back)::

    DialFailure         TCP connect failed (timeout, refused, unreachable)
    HandshakeFailure    TLS handshake timed out, got an alert, was reset or broken
    ResponseFailure     no final response head: reset, alert, not HTTP/1.x, cut short
    BodyFailure         a 200 response whose body could not be read (:class:`BodyError`)

A :class:`Progress` tells the caller where a request was when the caller's
deadline fired (dialling, waiting, reading the body).

A send or receive that fails for want of the exporter's own resources (``ENOBUFS``,
``ENOMEM``; ``EMFILE`` from the dial seam: ``exporter.resources``) is classified as
nothing: :class:`~exporter.resources.ExporterResourceError` passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from exporter import gocompat
from exporter.connection import BodyFailure, Connection, Failure, go_client_context
from exporter.dial import Dialer, DialFailure
from exporter.policy import Phase
from exporter.records import Reason

__all__ = ["BodyError", "Failed", "Fetcher", "Progress", "Response"]


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


@dataclass(frozen=True, slots=True)
class _Target:
    """What one URL asks for: where, and the request's target and Host header."""

    https: bool
    host: str  # the server name (SNI), without brackets
    port: int
    target: bytes
    host_header: bytes


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
        self._tls = go_client_context()
        self._tls_timeout = tls_timeout
        # The URLs asked for come back every interval (each domain's challenge URL, its
        # redirect targets): their reading is kept, up to ``remembered_urls`` of them,
        # so that a validation costs the same at any number of domains.
        self._targets: dict[str, _Target] = {}
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
        target = self._target(url)
        progress.phase = Phase.DIAL
        try:
            sock = await self._dialer.dial(address, target.port, self._dial_timeout)
        except DialFailure as exc:
            raise Failed(exc.reason, str(exc)) from None
        progress.phase = Phase.WAIT
        connection = Connection(sock, gocompat.join_host_port(address, target.port))
        try:
            if target.https:
                await connection.start_tls(self._tls, target.host, self._tls_timeout)
            headers = [(b"Host", target.host_header), *self._headers]
            status, raw_headers = await connection.request(target.target, headers)
            location = _location(raw_headers)
            if status != 200:
                # Let's Encrypt reads the body of a 200 response only.
                return Response(status, location, b"")
            progress.phase = Phase.BODY
            # Header.Get: the first line's value.
            coding = _first(raw_headers, b"content-encoding")
            gzipped = coding is not None and coding.strip().lower() == b"gzip"
            return Response(status, location, await connection.body(gzipped))
        except BodyFailure as failure:
            raise BodyError(gocompat.read_error(failure)) from None
        except Failure as failure:
            raise Failed(*gocompat.client_error(failure)) from None
        finally:
            connection.close()

    def _target(self, url: str) -> _Target:
        """What httpx makes of ``url`` (its URL normalisation), and Go's Host header (the
        URL's host[:port] as written); remembered."""
        known = self._targets.get(url)
        if known is None:
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise Failed(Reason.PROTOCOL_ERROR, str(exc)) from None
            if parsed.scheme not in ("http", "https"):
                raise Failed(
                    Reason.PROTOCOL_ERROR, f"unsupported protocol scheme {parsed.scheme!r}"
                )
            try:
                host = gocompat.GoURL.parse(url).host_text.encode("ascii")
            except gocompat.GoURLError:
                host = parsed.netloc  # Go refuses the URL too: the same verdict
            https = parsed.scheme == "https"
            known = _Target(
                https,
                parsed.raw_host.decode("ascii"),
                parsed.port or (443 if https else 80),
                parsed.raw_path,
                host,
            )
            if len(self._targets) >= self._remember:
                self._targets.clear()
            self._targets[url] = known
        return known


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
