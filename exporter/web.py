"""A small asyncio HTTP/1.1 server (h11) for the exporter's endpoints.

Rule: transport only. It parses requests with h11, enforces size and idle
limits and a limit on open connections (one more is answered ``503`` without its
request being read, and counted), applies ``--web.config.file`` (TLS per
connection, basic auth per request, extra headers on every response;
``exporter.webconfig``), and hands a :class:`WebRequest` to one handler; routing
and content are the service's business. It runs on the same event loop as the
validations so that ``/probe`` can run one; CPU-heavy renders go to a thread in
the handler. An accept that fails (out of descriptors) is retried after a growing
pause, never in a busy loop. :meth:`WebServer.stop` drains: no new connection,
idle ones closed at once, requests in flight given a grace period to finish, then
cancelled without a traceback.
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
from prometheus_client import CollectorRegistry, Counter, Gauge

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

#: The most connections open at once; past it a new connection gets a 503 at once. Prometheus'
#: own default for ``--web.max-connections``.
DEFAULT_MAX_CONNECTIONS = 512
#: How long :meth:`WebServer.stop` lets requests in flight finish by default: a ``/probe``
#: under Prometheus' default 10 s scrape timeout.
DEFAULT_GRACE = 10.0
#: Accept failures (out of descriptors, say) are retried after this long, doubling to the
#: most; Go's net/http waits 5 ms to 1 s.
ACCEPT_BACKOFF = (0.005, 1.0)
#: A connection past the limit: answered without reading its request, then closed.
_REFUSAL_BODY = b"the exporter is at its connection limit; try again later\n"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _REFUSAL_BODY
)


#: A refused TLS connection gets this long for its handshake (a client on the network
#: needs milliseconds); past it, or past as many refusals in progress as the connection
#: limit, a refused connection is closed unanswered.
REFUSAL_HANDSHAKE_TIMEOUT = 2.0


def _refuse(sock: socket.socket) -> None:
    """The 503 in one non-blocking send (it fits any socket buffer), what the client sent
    so far discarded (closing over unread bytes would reset the connection, and the 503
    with it), and the descriptor closed at once."""
    with contextlib.suppress(OSError):
        sock.send(_REFUSAL)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    sock.close()


class _Connection:
    """One open connection's task, and whether it is inside a request (else idle)."""

    __slots__ = ("busy", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.busy = False


class WebServer:
    """``web_config`` (``--web.config.file``): TLS on every connection, basic auth on every
    request and extra headers on every response, whatever the handler.

    At most ``max_connections`` connections are open at once (``None`` or 0: no limit);
    one more is answered ``503`` and closed without its request being read. The
    refusals and the open connections are counted in ``registry``
    (``acme_http01_web_connections_refused_total``, ``acme_http01_web_connections``).
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None,
        port: int,
        web_config: WebConfigWatcher | None = None,
        *,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.web_config = web_config
        self.max_connections = max_connections or None
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._refusing: set[asyncio.Task[None]] = set()
        self._stopping = False
        registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.refused = Counter(
            "acme_http01_web_connections_refused",
            "Connections to the exporter's web server answered 503 at once: "
            "--web.max-connections were open.",
            registry=registry,
        )
        self.open_connections = Gauge(
            "acme_http01_web_connections",
            "Connections to the exporter's web server open now.",
            registry=registry,
        )
        self.open_connections.set_function(lambda: len(self._connections))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [s.getsockname()[:2] for s in self._listeners]

    async def start(self) -> None:
        # Each accepted socket is handed to the loop (connect_accepted_socket) with the TLS
        # context in force at that moment, so a changed certificate or policy applies to the
        # next connection, and no byte is read before the handshake reads it. Accepting here,
        # not in asyncio's server, is what lets a connection past the limit be answered
        # before any protocol exists for it, and an accept that fails back off quietly.
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._listeners = _listen(self.host, self.port)
        self._acceptors = [loop.create_task(self._accept(sock)) for sock in self._listeners]

    async def _accept(self, listener: socket.socket) -> None:
        """Accept connections until stopped. An accept that fails (out of descriptors: the
        connection waits in the backlog) is retried after a pause that doubles up to a
        second, as Go's net/http does; logged once at warning, then at debug until an
        accept succeeds again."""
        loop = asyncio.get_running_loop()
        first, most = ACCEPT_BACKOFF
        pause = 0.0
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:
                level = logging.DEBUG if pause else logging.WARNING
                log.log(level, "accept failed", extra={"fields": {"error": repr(exc)}})
                pause = min(most, pause * 2) if pause else first
                await asyncio.sleep(pause)
                continue
            if pause:
                log.info("accepting again", extra={"fields": {"after": f"{pause:.3f}"}})
                pause = 0.0
            if self.max_connections is not None and len(self._connections) >= self.max_connections:
                self.refused.inc()
                self._refuse(sock)
                continue
            task = loop.create_task(self._serve_socket(sock))
            self._connections[task] = _Connection(task)
            task.add_done_callback(self._forget)

    def _refuse(self, sock: socket.socket) -> None:
        """A connection past the limit: the 503 at once (in plain HTTP), or after a short
        TLS handshake on a TLS listener; never its request read."""
        tls = None if self.web_config is None else self.web_config.current.ssl_context
        if tls is None:
            _refuse(sock)
            return
        if len(self._refusing) >= (self.max_connections or 0):
            sock.close()  # a flood: no handshake for each of it
            return
        task = asyncio.get_running_loop().create_task(self._refuse_tls(sock, tls))
        self._refusing.add(task)
        task.add_done_callback(self._refusing.discard)

    async def _refuse_tls(self, sock: socket.socket, tls: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(REFUSAL_HANDSHAKE_TIMEOUT):
                transport, _ = await loop.connect_accepted_socket(
                    asyncio.Protocol, sock, ssl=tls, ssl_handshake_timeout=REFUSAL_HANDSHAKE_TIMEOUT
                )
        except (Exception, asyncio.CancelledError):
            sock.close()
            return
        transport.write(_REFUSAL)
        transport.close()  # flushed, then closed

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("connection crashed", exc_info=task.exception())

    async def _serve_socket(self, sock: socket.socket) -> None:
        """The TLS handshake of one accepted connection (with TLS), then HTTP.

        A failed handshake (plain HTTP on the TLS port, no or a bad client certificate, a
        client that sends nothing) is the client's problem: logged at debug, never raised.
        """
        config = None if self.web_config is None else await self.web_config.get()
        tls = None if config is None else config.ssl_context
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await asyncio.wait_for(
                loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=tls,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls else None,
                ),
                HANDSHAKE_TIMEOUT + 1,
            )
        except Exception as exc:  # ssl.SSLError, ConnectionError, TimeoutError, ...
            log.debug(
                "TLS handshake failed" if tls else "connection failed",
                extra={"fields": {"error": repr(exc)}},
            )
            sock.close()
            return
        except asyncio.CancelledError:
            sock.close()  # stopped during the handshake
            raise
        await self._serve(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    async def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop accepting at once; let requests in flight finish within ``grace`` seconds
        (each answered with ``Connection: close``); close idle connections at once; then
        cancel what remains (quietly: the client sees the connection close)."""
        self._stopping = True
        for task in self._acceptors:
            task.cancel()
        for sock in self._listeners:
            sock.close()
        if self._acceptors:
            await asyncio.gather(*self._acceptors, return_exceptions=True)
        self._acceptors = []
        for task in list(self._refusing):
            task.cancel()
        for connection in list(self._connections.values()):
            if not connection.busy:
                connection.task.cancel()
        pending = set(self._connections)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            # A handler that swallows its cancellation is left behind, not waited for.
            await asyncio.wait(pending, timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = self._connections.get(task) or _Connection(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        extra: tuple[tuple[str, str], ...] = ()
        try:
            if self.web_config is not None and not await self._secure(writer):
                return
            while not self._stopping:
                connection.busy = False
                request = await self._read_request(conn, reader, connection)
                if request is None:
                    return
                config = None if self.web_config is None else await self.web_config.get()
                extra = () if config is None else config.headers
                response = await self._respond(config, request)
                if self._stopping:  # draining: this is the connection's last response
                    extra = (*extra, ("Connection", "close"))
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
        self, conn: h11.Connection, reader: asyncio.StreamReader, connection: _Connection
    ) -> WebRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT)
                connection.busy = connection.busy or bool(data)  # a request has begun
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            if isinstance(event, h11.Request):
                head = event
                connection.busy = True
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
