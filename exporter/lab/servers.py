"""A loopback lab: a real DNS server and real web servers with Let's Encrypt's pitfalls.

Rule: everything here listens on 127.0.0.1 or [::1] only and needs no
privileges. The lab is used by the tests, the demo (``--demo``), ``check
--demo`` and the benchmarks.

The host has a single IPv6 loopback address, so each lab host gets a
documentation-prefix address (``2001:db8::/32``, ``192.0.2.0/24``) that DNS
returns, and the lab's router (:class:`~exporter.lab.routing.AddressMap`) sends
each such address's port 80 and 443 to its own loopback endpoint: a web server on ``[::1]`` or
``127.0.0.1``, a port that refuses connections, or a port whose connects time
out (a listening socket whose tiny backlog is full, so SYNs are dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from exporter.lab.routing import AddressMap
from exporter.lab.tls import lab_ssl_context
from exporter.records import Family

__all__ = [
    "CANARY_KA",
    "CANARY_TOKEN",
    "Blackhole",
    "Handler",
    "Lab",
    "LabDNS",
    "Reply",
    "Request",
    "WebServer",
    "Zone",
    "body",
    "chain",
    "hang",
    "plain",
    "raw",
    "redirect",
    "serve",
    "status",
]

#: The canary the lab's healthy servers serve: configure it as a domain's token and
#: key_authorization to validate in canary mode.
CANARY_TOKEN = "lab-canary"
CANARY_KA = "lab-canary.bHuKGrhmvy0cUYxkb1b3cTsBt0vgvZN3tIq0yXcvP2s"


# ----------------------------------------------------------------------------- DNS


@dataclass
class ZoneEntry:
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    cname: str | None = None
    rcode: dict[str, str] = field(default_factory=dict)  # "A" -> "SERVFAIL", "REFUSED", ...
    drop: set[str] = field(default_factory=set)  # "A", "AAAA": never answer
    truncate: bool = False  # UDP answers are truncated (TC): the client must retry over TCP
    extra: list[tuple[str, str, str]] = field(default_factory=list)  # (owner, type, value)
    #: CAA records as (flags, tag, value), sent as they are (any tag, even a malformed one)
    caa: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    #: "A" -> (INFO-CODE, EXTRA-TEXT): an Extended DNS Error with that type's rcode failure,
    #: as a validating resolver (Unbound with ``ede: yes``) attaches to a DNSSEC failure
    ede: dict[str, tuple[int, str]] = field(default_factory=dict)


def _text(name: dns.name.Name) -> str:
    """A query name as the zone keys it: lowercase, no trailing dot, labels in UTF-8."""
    return ".".join(label.decode("utf-8", "replace") for label in name.labels if label).lower()


class Zone:
    """Names (lowercase, no trailing dot) and their records, like a zone with every name's
    parents delegated to itself: a parent of a known name (an empty non-terminal, or the
    TLD) has no records (NOERROR, no answer); any other unknown name is NXDOMAIN."""

    def __init__(self) -> None:
        self.entries: dict[str, ZoneEntry] = {}
        #: Every proper parent of a name in the zone (they exist, with no records).
        self.parents: set[str] = set()
        #: Rendered answers by query (without its ID); cleared whenever the zone changes.
        self.cache: dict[bytes, bytes | None] = {}

    def add(
        self,
        name: str,
        *,
        a: list[str] | None = None,
        aaaa: list[str] | None = None,
        cname: str | None = None,
        servfail: set[str] | None = None,
        rcode: dict[str, str] | None = None,
        drop: set[str] | None = None,
        truncate: bool = False,
        extra: list[tuple[str, str, str]] | None = None,
        caa: list[tuple[int, str | bytes, str | bytes]] | None = None,
        ede: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.cache.clear()
        codes = dict(rcode or {})
        codes.update({rdtype: "SERVFAIL" for rdtype in servfail or ()})
        key = name.lower().rstrip(".")
        labels = key.split(".")
        self.parents.update(".".join(labels[i:]) for i in range(1, len(labels)))
        self.entries[key] = ZoneEntry(
            a=list(a or []),
            aaaa=list(aaaa or []),
            cname=cname.lower().rstrip(".") if cname else None,
            rcode=codes,
            drop=set(drop or ()),
            truncate=truncate,
            extra=list(extra or []),
            caa=[
                (flags, tag.encode() if isinstance(tag, str) else tag, _raw(value))
                for flags, tag, value in caa or ()
            ],
            ede=dict(ede or {}),
        )

    def truncates(self, query: dns.message.Message) -> bool:
        if not query.question:
            return False
        entry = self.entries.get(_text(query.question[0].name))
        return entry is not None and entry.truncate

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The authoritative response to ``query``, or ``None`` to stay silent."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        name = _text(question.name)
        for _ in range(16):  # follow in-zone CNAMEs, bounded
            entry = self.entries.get(name)
            if entry is None:
                if not response.answer and name not in self.parents:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            if rdtype in entry.drop:
                return None
            if rdtype in entry.rcode:
                response.set_rcode(dns.rcode.from_text(entry.rcode[rdtype]))
                if rdtype in entry.ede and query.edns >= 0:
                    code, text = entry.ede[rdtype]
                    response.use_edns(
                        0, 0, 1232, options=[dns.edns.EDEOption(dns.edns.EDECode.make(code), text)]
                    )
                return response
            if rdtype == "CAA" and entry.caa:
                rrset = dns.rrset.RRset(
                    dns.name.from_text(name + "."), dns.rdataclass.IN, dns.rdatatype.CAA
                )
                for flags, tag, raw_value in entry.caa:
                    wire = bytes([flags, len(tag)]) + tag + raw_value
                    rrset.add(
                        dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.CAA, wire), 60
                    )
                response.answer.append(rrset)
            for owner, extra_type, value in entry.extra:
                if extra_type == rdtype:
                    response.answer.append(
                        dns.rrset.from_text(owner + ".", 60, "IN", extra_type, value)
                    )
            if entry.cname is not None and rdtype != "CNAME":
                response.answer.append(
                    dns.rrset.from_text(name + ".", 60, "IN", "CNAME", entry.cname + ".")
                )
                name = entry.cname
                continue
            values = {"A": entry.a, "AAAA": entry.aaaa}.get(rdtype, [])
            if values:
                response.answer.append(
                    dns.rrset.from_text_list(name + ".", 60, "IN", rdtype, values)
                )
            return response
        return response


def _raw(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Identical queries (but for the ID) get the same answer: render each once.
        key = data[2:]
        if key in self.zone.cache:
            wire = self.zone.cache[key]
        else:
            try:
                query = dns.message.from_wire(data)
            except Exception:
                return
            wire = _udp_wire(self.zone, query)
            self.zone.cache[key] = wire
        if wire is not None and self.transport is not None:
            self.transport.sendto(data[:2] + wire[2:], addr)


def _udp_wire(zone: Zone, query: dns.message.Message) -> bytes | None:
    """The UDP answer: truncated (TC, no records) when the zone says so or when it does
    not fit the client's advertised size, as a real server does."""
    response = zone.answer(query)
    if response is None:
        return None
    limit = max(512, query.payload if query.edns >= 0 else 512)
    if not zone.truncates(query):
        try:
            return bytes(response.to_wire(max_size=limit, want_shuffle=False))
        except dns.exception.TooBig:
            pass
    truncated = dns.message.make_response(query)
    truncated.flags |= dns.flags.AA | dns.flags.TC
    return bytes(truncated.to_wire(max_size=limit))


async def bind_dns(
    host: str,
    port: int,
    udp: Callable[[], asyncio.DatagramProtocol],
    tcp: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.DatagramTransport, asyncio.Server, int]:
    """A DNS server's UDP and TCP listeners on one port of ``host`` (0: a free one)."""
    loop = asyncio.get_running_loop()
    for _ in range(20):
        transport, _protocol = await loop.create_datagram_endpoint(udp, local_addr=(host, port))
        bound = transport.get_extra_info("sockname")[1]
        try:
            server = await asyncio.start_server(tcp, host, bound)
        except OSError:
            transport.close()
            continue
        return transport, server, bound
    raise OSError(f"could not bind a DNS server on one UDP and TCP port of {host}")


async def close_dns(udp: asyncio.DatagramTransport | None, tcp: asyncio.Server | None) -> None:
    """Stop a DNS server's listeners (from :func:`bind_dns`)."""
    if udp is not None:
        udp.close()
    if tcp is not None:
        tcp.close()
        await tcp.wait_closed()


async def serve_dns_over_tcp(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: Callable[[dns.message.Message], dns.message.Message | None],
) -> None:
    """Answer the length-prefixed queries of one TCP connection until it ends (or
    ``answer`` chooses silence: ``None`` closes the connection)."""
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            response = answer(dns.message.from_wire(await reader.readexactly(size)))
            if response is None:
                return
            wire = response.to_wire(max_size=65535, want_shuffle=False)
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
        pass
    finally:
        writer.close()


class LabDNS:
    """An authoritative DNS server for a :class:`Zone`, UDP and TCP on one loopback port."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1") -> None:
        self.zone = zone
        self.host = host
        self.port = 0
        self.tcp_queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: any free one) for UDP and TCP."""
        self._udp, self._tcp, self.port = await bind_dns(
            self.host, port, lambda: _UDP(self.zone), self._serve_tcp
        )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_dns_over_tcp(reader, writer, self._answer_tcp)

    def _answer_tcp(self, query: dns.message.Message) -> dns.message.Message | None:
        self.tcp_queries += 1
        return self.zone.answer(query)

    async def stop(self) -> None:
        await close_dns(self._udp, self._tcp)


# ---------------------------------------------------------------------------- HTTP


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    host: str  # the Host header, without a port
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


#: A site: what a web server answers. ``None`` means: accept and never answer.
Handler = Callable[[Request], Reply | None]

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
}


def serve(key_authorizations: Mapping[str, str] | None = None) -> Handler:
    """A healthy site: the key authorization for known tokens, a short 404 otherwise."""
    kas = dict(key_authorizations or {CANARY_TOKEN: CANARY_KA})

    def handler(request: Request) -> Reply:
        token = request.path.removeprefix("/.well-known/acme-challenge/")
        if request.path.startswith("/.well-known/acme-challenge/") and token in kas:
            return Reply(200, kas[token].encode())
        return Reply(404, b"not found\n")

    return handler


def status(code: int, text: bytes = b"wrong virtual host\n") -> Handler:
    """Every request gets ``code`` (a wrong AAAA pointing at another server, say)."""
    return lambda request: Reply(code, text)


def body(payload: bytes, code: int = 200) -> Handler:
    """Every request gets ``payload`` (wrong, padded or oversize bodies)."""
    return lambda request: Reply(code, payload)


def redirect(location: str, code: int = 301) -> Handler:
    """Redirect to ``location``; ``{host}`` and ``{path}`` are filled from the request."""

    def handler(request: Request) -> Reply:
        target = location.format(host=request.host, path=request.path)
        return Reply(code, b"", (("Location", target),))

    return handler


def chain(redirects: int, final: Handler | None = None, code: int = 302) -> Handler:
    """``redirects`` relative redirects (``/hop/1`` ... ``/hop/N``), then ``final``."""
    end = final or body(CANARY_KA.encode())

    def handler(request: Request) -> Reply | None:
        step = 0
        if request.path.startswith("/hop/"):
            step = int(request.path.removeprefix("/hop/"))
        if step >= redirects:
            return end(request)
        return Reply(code, b"", (("Location", f"/hop/{step + 1}"),))

    return handler


def hang() -> Handler:
    """Accept the connection, read the request, never answer."""
    return lambda request: None


class _TCPServer:
    """A loopback TCP server that tracks its connections and ends them quietly on stop."""

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.tls = tls
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, port, ssl=self.tls, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            OSError,
            ssl.SSLError,
        ):
            pass
        except asyncio.CancelledError:
            pass  # the lab is stopping; end quietly (asyncio logs cancelled handlers)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


class WebServer(_TCPServer):
    """A tiny HTTP/1.1 server (plain or TLS) on one loopback address and port."""

    def __init__(self, handler: Handler, host: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(host, tls)
        self.handler = handler
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await asyncio.wait_for(reader.readexactly(1), 30)
        if first == b"\x16":  # a TLS ClientHello on a plain port: 400, like any web server
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = [*lines[0].split(" "), "", ""][:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        host = headers.get("host", "")
        host = host[: host.find("]") + 1] if host.startswith("[") else host.split(":")[0]
        self.requests += 1
        reply = self.handler(Request(method, path, host, headers))
        if reply is None:
            await asyncio.sleep(3600)
            return
        reason = _REASONS.get(reply.status, "Status")
        out = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Length: {len(reply.body)}"]
        out += [f"{k}: {v}" for k, v in reply.headers]
        out += ["Connection: close", "", ""]
        writer.write("\r\n".join(out).encode("latin-1") + reply.body)
        await writer.drain()


class Blackhole:
    """A loopback port whose connects time out: a full listen backlog, never accepted.

    ``listen(0)`` plus one connection that is never accepted fills the queue; the
    kernel then drops every further SYN, which looks exactly like a firewall.
    """

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if Family.of(host) is Family.IPV6 else socket.AF_INET
        self.host = host
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(2):
            filler = socket.socket(family, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, self.port))
            self._fillers.append(filler)

    def close(self) -> None:
        for sock in (*self._fillers, self._listener):
            sock.close()


class Refuser:
    """A loopback port that refuses connections: bound, never listening."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if Family.of(host) is Family.IPV6 else socket.AF_INET
        self.host = host
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()


# ----------------------------------------------------------------------------- lab

#: What a lab address does on one port: a site, or one of the dead behaviours.
Behaviour = Handler | Literal["timeout", "refused", "plain"]


@dataclass(frozen=True, slots=True)
class _PlainOnTLS:
    handler: Handler


def plain(handler: Handler) -> _PlainOnTLS:
    """On port 443: answer plain HTTP instead of TLS."""
    return _PlainOnTLS(handler)


#: A hostile server: gets the raw connection and may do anything with it.
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Raw:
    handler: RawHandler


def raw(handler: RawHandler) -> _Raw:
    """A plain TCP server (on either port) that runs ``handler`` per connection."""
    return _Raw(handler)


class RawServer(_TCPServer):
    """A plain TCP server that hands each connection to a hostile handler."""

    def __init__(self, handler: RawHandler, host: str) -> None:
        super().__init__(host)
        self.handler = handler

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.handler(reader, writer)


class Lab:
    """A DNS zone plus web servers, on loopback. ``async with Lab() as lab: ...``."""

    def __init__(self) -> None:
        self.zone = Zone()
        self.dns = LabDNS(self.zone)
        self._servers: list[WebServer | RawServer] = []
        self._endpoints: dict[str, dict[int, tuple[str, int]]] = {}
        self._tls = lab_ssl_context()
        self._blackholes: dict[str, Blackhole] = {}
        self._refusers: dict[str, Refuser] = {}
        self._next = {4: 1, 6: 1}

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self.dns.start()

    async def stop(self) -> None:
        await self.dns.stop()
        await asyncio.gather(*(server.stop() for server in self._servers))
        for blackhole in self._blackholes.values():
            blackhole.close()
        for refuser in self._refusers.values():
            refuser.close()

    @property
    def routes(self) -> AddressMap:
        """The router that sends each lab address to its endpoints."""
        return AddressMap(endpoints=self._endpoints)

    @property
    def nameserver(self) -> tuple[str, int]:
        return self.dns.host, self.dns.port

    def new_address(self, version: Literal[4, 6]) -> str:
        """The next unused documentation-prefix address of that family."""
        n = self._next[version]
        self._next[version] = n + 1
        if version == 6:
            return f"2001:db8::{n:x}"
        return f"192.0.2.{n}" if n < 255 else f"198.51.100.{n - 254}"

    async def _endpoint(
        self,
        loopback: str,
        behaviour: Handler | _PlainOnTLS | _Raw | str,
        tls: ssl.SSLContext | None,
    ) -> tuple[str, int]:
        if behaviour == "timeout":
            if loopback not in self._blackholes:
                self._blackholes[loopback] = Blackhole(loopback)
            return loopback, self._blackholes[loopback].port
        if behaviour == "refused":
            if loopback not in self._refusers:
                self._refusers[loopback] = Refuser(loopback)
            return loopback, self._refusers[loopback].port
        if isinstance(behaviour, _Raw):
            raw_server = RawServer(behaviour.handler, loopback)
            await raw_server.start()
            self._servers.append(raw_server)
            return loopback, raw_server.port
        if isinstance(behaviour, _PlainOnTLS):
            server = WebServer(behaviour.handler, loopback, None)
        elif callable(behaviour):
            server = WebServer(behaviour, loopback, tls)
        else:
            raise ValueError(f"unknown lab behaviour {behaviour!r}")
        await server.start()
        self._servers.append(server)
        return loopback, server.port

    async def host(
        self,
        version: Literal[4, 6],
        http: Handler | _Raw | str = "refused",
        https: Handler | _PlainOnTLS | _Raw | str = "refused",
        *,
        address: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> str:
        """A lab host: a new address whose port 80 and 443 behave as given; 443 serves the
        lab's certificate, or the context ``tls`` (a certificate of a chosen validity)."""
        address = address or self.new_address(version)
        loopback = "::1" if version == 6 else "127.0.0.1"
        self._endpoints[address] = {
            80: await self._endpoint(loopback, http, None),
            443: await self._endpoint(loopback, https, tls or self._tls),
        }
        return address

    def alias(self, address: str, like: str) -> None:
        """Route ``address`` to the same endpoints as ``like`` (cheap fleets)."""
        self._endpoints[address] = self._endpoints[like]
