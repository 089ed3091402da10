"""A small asyncio HTTP/1.1 server (h11) for the exporter's endpoints.

Rule: transport only. It parses requests with h11, enforces size and idle
limits, applies ``--web.config.file`` (TLS per connection, basic auth per request,
extra headers on every response; ``exporter.webconfig``), and hands a
:class:`WebRequest` to one handler; routing and content are the service's business.
It runs on the same event loop as the validations so that ``/probe`` can run one;
CPU-heavy renders go to a thread in the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import h11

from exporter.webconfig import HANDSHAKE_TIMEOUT, WebConfig, WebConfigWatcher, peer_sans

__all__ = ["WebRequest", "WebResponse", "WebServer", "parse_listen_address"]

log = logging.getLogger("exporter.web")

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
IDLE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class WebRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class WebResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def text(cls, status: int, text: str) -> WebResponse:
        return cls(status, text.encode())


Handler = Callable[[WebRequest], Awaitable[WebResponse]]


def parse_listen_address(value: str) -> tuple[str | None, int]:
    """``:9469`` (all interfaces), ``127.0.0.1:9469``, ``[::1]:9469``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid --web.listen-address {value!r}: use host:port, e.g. :9469")
    host = host.strip("[]")
    return (host or None), int(port)


def _listen(host: str | None, port: int) -> list[socket.socket]:
    """Listening sockets for ``host`` (None: every interface) as asyncio's server makes
    them: SO_REUSEADDR, IPv6 sockets IPv6-only, a backlog of 512, non-blocking."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(512)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


_UNAUTHORIZED = WebResponse(401, b"Unauthorized\n", headers=(("WWW-Authenticate", "Basic"),))


class WebServer:
    """``web_config`` (``--web.config.file``): TLS on every connection, basic auth on every
    request and extra headers on every response, whatever the handler."""

    def __init__(
        self,
        handler: Handler,
        host: str | None,
        port: int,
        web_config: WebConfigWatcher | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.web_config = web_config
        self._server: asyncio.Server | None = None
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._listeners:
            return [s.getsockname()[:2] for s in self._listeners]
        assert self._server is not None
        return [s.getsockname()[:2] for s in self._server.sockets]

    async def start(self) -> None:
        if self.web_config is None or not self.web_config.tls:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, reuse_address=True, backlog=512
            )
            return
        # TLS: each accepted socket is handed to the loop with the context in force at that
        # moment (connect_accepted_socket), so a changed certificate or policy applies to
        # the next connection, and no byte is read before the handshake reads it.
        loop = asyncio.get_running_loop()
        self._listeners = _listen(self.host, self.port)
        self._acceptors = [loop.create_task(self._accept(sock)) for sock in self._listeners]

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:  # out of file descriptors, say: try again shortly
                log.warning("accept failed", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._serve_tls(sock))
            self._connections.add(task)  # _serve keeps it there; stop() cancels it
            task.add_done_callback(self._connections.discard)

    async def _serve_tls(self, sock: socket.socket) -> None:
        """The TLS handshake of one accepted connection, then HTTP as on any other.

        A failed handshake (plain HTTP on the TLS port, no or a bad client certificate, a
        client that sends nothing) is the client's problem: logged at debug, never raised.
        """
        assert self.web_config is not None
        config = await self.web_config.get()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16)
        protocol = asyncio.StreamReaderProtocol(reader)
        peer = sock.getpeername()
        try:
            transport, _ = await asyncio.wait_for(
                loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=config.ssl_context,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT if config.ssl_context else None,
                ),
                HANDSHAKE_TIMEOUT + 1,
            )
        except Exception as exc:  # ssl.SSLError, ConnectionError, TimeoutError, ...
            log.debug(
                "TLS handshake failed", extra={"fields": {"peer": str(peer), "error": repr(exc)}}
            )
            sock.close()
            return
        await self._serve(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._acceptors:
            task.cancel()
        for sock in self._listeners:
            sock.close()
        for task in list(self._connections):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        extra: tuple[tuple[str, str], ...] = ()
        try:
            if self.web_config is not None and not await self._secure(writer):
                return
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                config = None if self.web_config is None else await self.web_config.get()
                extra = () if config is None else config.headers
                response = await self._respond(config, request)
                await self._send(conn, writer, response, request.method == "HEAD", extra)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (h11.RemoteProtocolError, ValueError):
            with contextlib.suppress(Exception):
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    bad = WebResponse.text(400, "bad request\n")
                    await self._send(conn, writer, bad, False, extra)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.debug("connection closed", extra={"fields": {"error": repr(exc)}})
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _secure(self, writer: asyncio.StreamWriter) -> bool:
        """The client SAN check of a TLS connection; False: drop the client."""
        assert self.web_config is not None
        config = await self.web_config.get()
        if config.allowed_sans is not None and config.ssl_context is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
            if not peer_sans(der) & config.allowed_sans:
                log.debug(
                    "client certificate has no allowed SAN",
                    extra={"fields": {"peer": str(writer.get_extra_info("peername"))}},
                )
                return False
        return True

    async def _respond(self, config: WebConfig | None, request: WebRequest) -> WebResponse:
        if config is not None and config.users:
            assert self.web_config is not None
            if not await self.web_config.auth.check(config, request.headers.get("authorization")):
                log.debug("unauthorized request", extra={"fields": {"path": request.path}})
                return _UNAUTHORIZED
        try:
            return await self.handler(request)
        except Exception:
            log.exception("handler failed", extra={"fields": {"path": request.path}})
            return WebResponse.text(500, "internal error\n")

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> WebRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise ValueError("request body too large")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                target = head.target.decode("latin-1")
                parts = urlsplit(target)
                return WebRequest(
                    method=head.method.decode("ascii"),
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.decode().lower(): v.decode("latin-1") for k, v in head.headers},
                    body=bytes(body),
                )

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: WebResponse,
        head: bool,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
            *extra,
        ]
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
        if response.body and not head:
            writer.write(conn.send(h11.Data(data=response.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
