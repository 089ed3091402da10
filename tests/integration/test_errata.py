"""HTTP-01 errata 13 to 21: what Let's Encrypt's code was measured to do, against the lab.

Each test runs real servers on loopback (raw TCP servers that misbehave on purpose, TLS
servers with their own contexts) and asserts the verdict as Let's Encrypt gives it: the
problem type, our reason, the exact detail text, and the records where they matter. The
source is the "Verified by running Boulder's own code" list at the top of
``letsencrypt-http01.md`` (erratum n = item n).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import struct
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest

from exporter import gocompat
from exporter.lab import servers as L
from exporter.lab.routing import AddressMap
from exporter.lab.tls import lab_certificate, lab_ssl_context
from exporter.records import Family, PassWarning, ProblemType, Reason, ValidationResult
from tests.integration.lab_validation import (
    FAILED,
    KA,
    PATH,
    REDIR,
    REFUSED_REDIR,
    RESP,
    problem,
    records,
    site,
    url,
    validate,
)

NXDOMAIN_HINT = " - check that a DNS record exists for this domain"


def summary(result: ValidationResult) -> dict[str, Any]:
    return {
        "success": result.success,
        "failed_hop": result.failed_hop,
        "redirects": result.redirects,
    }


def ok(redirects: int = 0) -> dict[str, Any]:
    return {"success": True, "failed_hop": None, "redirects": redirects}


def failed(hop: int, redirects: int = 0) -> dict[str, Any]:
    return {"success": False, "failed_hop": hop, "redirects": redirects}


# ------------------------------------------------------------------ hostile servers


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def reset(writer: asyncio.StreamWriter) -> None:
    """Let what was written leave, then end the connection with a RST."""
    await writer.drain()
    await asyncio.sleep(0.1)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def send_then_reset(data: bytes, tls: ssl.SSLContext | None = None) -> L.RawHandler:
    """Read the request, send ``data`` (possibly nothing), then reset the connection."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if tls is not None:
            await writer.start_tls(tls)
        await read_request(reader)
        writer.write(data)
        await reset(writer)

    return run


def reply(data: bytes) -> L.RawHandler:
    """Read the request, send ``data`` as it is, close."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await writer.drain()

    return run


def canary_head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + extra


class BioTLS:
    """The server side of TLS over a raw connection, through memory BIOs.

    asyncio's own TLS server closes the connection without sending the alert its
    handshake failed with; real servers send it. Here every byte OpenSSL writes (alerts
    included) is flushed to the client.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: ssl.SSLContext
    ) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls.wrap_bio(self.incoming, self.outgoing, server_side=True)

    async def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _more(self) -> None:
        await self._flush()
        data = await asyncio.wait_for(self.reader.read(65536), 5)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    async def handshake(self) -> bool:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._more()
            except ssl.SSLError:
                await self._flush()  # the alert
                return False
            else:
                await self._flush()
                return True

    async def read_request(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                data += self.tls.read(65536)
            except ssl.SSLWantReadError:
                await self._more()
            except ssl.SSLError:
                await self._flush()
                raise
        return data

    async def send(self, data: bytes) -> None:
        self.tls.write(data)
        await self._flush()


def tls_site(tls: ssl.SSLContext, seen: list[ssl.SSLObject] | None = None) -> L.RawHandler:
    """An HTTPS server with its own TLS context that serves the canary."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = BioTLS(reader, writer, tls)
        if not await conn.handshake():
            await asyncio.sleep(0.2)
            return
        if seen is not None:
            seen.append(conn.tls)
        await conn.read_request()
        body = KA.encode()
        await conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )

    return run


def plaintext_alert(alert: int) -> L.RawHandler:
    """Answer the ClientHello with a fatal alert record in the clear."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 5)
        writer.write(bytes([21, 3, 3, 0, 2, 2, alert]))
        await writer.drain()
        await asyncio.sleep(0.2)

    return run


# -------------------------------------------------------------------- TLS contexts


def alerting(alert: int) -> ssl.SSLContext:
    """A server that refuses every ClientHello with ``alert`` (from its SNI callback)."""
    ctx = lab_ssl_context()
    ctx.sni_callback = lambda sslobj, name, context: alert
    return ctx


def tls11_only() -> ssl.SSLContext:
    ctx = lab_ssl_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def client_certificate_required() -> ssl.SSLContext:
    """TLS 1.3 with a client certificate required: alert 116 after the handshake."""
    ctx = lab_ssl_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=lab_certificate()[0].decode())
    return ctx


def tls12_rsa_only(ciphers: str) -> ssl.SSLContext:
    """A TLS 1.2 server with an RSA certificate that accepts only ``ciphers``."""
    ctx = lab_ssl_context("rsa")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


async def https_hop(lab: L.Lab, name: str, https: Any) -> str:
    """``name``: port 80 redirects to HTTPS, where ``https`` answers."""
    return await site(lab, name, L.redirect("https://{host}{path}"), https)


def tls_alert_problem(v4: str, name: str, text: str) -> tuple[Any, ...]:
    return (
        ProblemType.TLS,
        Reason.TLS_ALERT,
        f"{v4}: Fetching {url(name, 'https')}: remote error: tls: {text}",
    )


# ----------------------------------------------------- erratum 13: resets mid-response


@pytest.mark.parametrize(
    "sent",
    [b"HTTP/1.1 200 OK\r\nContent-Len", b"HTTP/1.1 200 OK\r\n"],
    ids=["mid-header-line", "after-status-line"],
)
async def test_reset_after_part_of_the_head_is_a_broken_response(lab: L.Lab, sent: bytes) -> None:
    v4 = await site(lab, "reset.example.com", L.raw(send_then_reset(sent)))
    result = await validate(lab, "reset.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.PROTOCOL_ERROR,
        f"{v4}: Fetching {url('reset.example.com')}: Error getting validation data",
    )
    assert records(result) == [
        (0, url("reset.example.com"), v4, FAILED, None, Reason.PROTOCOL_ERROR)
    ]
    assert summary(result) == failed(0)


async def test_reset_before_any_byte_is_connection_reset(lab: L.Lab) -> None:
    v4 = await site(lab, "reset.example.com", L.raw(send_then_reset(b"")))
    result = await validate(lab, "reset.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.CONNECTION_RESET,
        f"{v4}: Fetching {url('reset.example.com')}: Connection reset by peer",
    )
    assert records(result) == [
        (0, url("reset.example.com"), v4, FAILED, None, Reason.CONNECTION_RESET)
    ]


async def test_reset_mid_head_on_an_https_hop(lab: L.Lab) -> None:
    # "Bytes of the response" are those after the TLS handshake.
    v4 = await https_hop(
        lab, "reset.example.com", L.raw(send_then_reset(b"HTTP/1.1 200 OK\r\n", lab_ssl_context()))
    )
    result = await validate(lab, "reset.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.PROTOCOL_ERROR,
        f"{v4}: Fetching {url('reset.example.com', 'https')}: Error getting validation data",
    )
    assert summary(result) == failed(1, redirects=1)


# --------------------------------------------------- erratum 14: TLS alerts, Go's words


@pytest.mark.parametrize(
    ("alert", "text"),
    [
        (40, "handshake failure"),
        (49, "access denied"),
        (80, "internal error"),
        (112, "unrecognized name"),
        (115, "unknown PSK identity"),
        (120, "no application protocol"),
    ],
)
async def test_handshake_alerts_in_gos_words(lab: L.Lab, alert: int, text: str) -> None:
    v4 = await https_hop(lab, "alert.example.com", L.raw(tls_site(alerting(alert))))
    result = await validate(lab, "alert.example.com")
    assert problem(result) == tls_alert_problem(v4, "alert.example.com", text)
    assert records(result) == [
        (0, url("alert.example.com"), v4, REDIR, 301, None),
        (1, url("alert.example.com", "https"), v4, FAILED, None, Reason.TLS_ALERT),
    ]
    assert summary(result) == failed(1, redirects=1)


async def test_tls_1_1_only_server_is_protocol_version_not_supported(lab: L.Lab) -> None:
    v4 = await https_hop(lab, "old.example.com", L.raw(tls_site(tls11_only())))
    result = await validate(lab, "old.example.com")
    assert problem(result) == tls_alert_problem(
        v4, "old.example.com", "protocol version not supported"
    )


async def test_certificate_required_arrives_after_a_tls13_handshake(lab: L.Lab) -> None:
    # TLS 1.3: the client's handshake is over before the server checks for a certificate;
    # the alert is read where the response should be.
    v4 = await https_hop(lab, "mtls.example.com", L.raw(tls_site(client_certificate_required())))
    result = await validate(lab, "mtls.example.com")
    assert problem(result) == tls_alert_problem(v4, "mtls.example.com", "certificate required")
    assert records(result)[1] == (
        1,
        url("mtls.example.com", "https"),
        v4,
        FAILED,
        None,
        Reason.TLS_ALERT,
    )


@pytest.mark.parametrize(
    ("alert", "text"), [(121, "encrypted client hello required"), (200, "alert(200)")]
)
async def test_alerts_openssl_cannot_name(lab: L.Lab, alert: int, text: str) -> None:
    v4 = await https_hop(lab, "odd.example.com", L.raw(plaintext_alert(alert)))
    result = await validate(lab, "odd.example.com")
    assert problem(result) == tls_alert_problem(v4, "odd.example.com", text)


async def test_handshake_ended_without_an_alert(lab: L.Lab) -> None:
    async def close_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 5)

    v4 = await https_hop(lab, "eof.example.com", L.raw(close_after_hello))
    result = await validate(lab, "eof.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.TLS_ERROR,
        f"{v4}: Fetching {url('eof.example.com', 'https')}: Error getting validation data",
    )


def test_openssl_alert_names_match_this_openssl() -> None:
    # gocompat maps OpenSSL's reason names (code 1000 + alert) without touching
    # ssl's private table; this checks the map against that table where it has a name.
    import _ssl  # private, on purpose: only to check the public route's table

    codes: dict[str, tuple[int, int]] = _ssl.err_names_to_codes  # type: ignore[attr-defined]
    for name, alert in gocompat._OPENSSL_ALERTS.items():
        if name in codes:
            assert codes[name][1] == 1000 + alert, name
    assert gocompat.tls_remote_error(41) == "remote error: tls: alert(41)"  # SSL 3.0 only


# ---------------------------------------------------- erratum 15: Go's ClientHello


async def test_server_accepting_only_a_go_suite_succeeds_and_sees_no_alpn(lab: L.Lab) -> None:
    seen: list[ssl.SSLObject] = []
    tls = tls12_rsa_only("ECDHE-RSA-AES128-SHA")
    v4 = await https_hop(lab, "cbc.example.com", L.raw(tls_site(tls, seen)))
    result = await validate(lab, "cbc.example.com")
    assert summary(result) == ok(redirects=1)
    assert records(result)[1] == (1, url("cbc.example.com", "https"), v4, RESP, 200, None)
    assert [(s.cipher()[0], s.selected_alpn_protocol()) for s in seen] == [  # type: ignore[index]
        ("ECDHE-RSA-AES128-SHA", None)
    ]


@pytest.mark.parametrize(
    "suite",
    ["ECDHE-RSA-AES128-SHA256", "AES128-GCM-SHA256"],
    ids=["cbc-sha256", "rsa-key-exchange"],
)
async def test_server_accepting_only_suites_go_does_not_offer(lab: L.Lab, suite: str) -> None:
    v4 = await https_hop(lab, "strict.example.com", L.raw(tls_site(tls12_rsa_only(suite))))
    result = await validate(lab, "strict.example.com")
    assert problem(result) == tls_alert_problem(v4, "strict.example.com", "handshake failure")


# ---------------------------------------------------- erratum 16: Unicode redirect hosts


def unicode_nxdomain(host: str) -> str:
    return (
        f"DNS problem: NXDOMAIN looking up A for {host}{NXDOMAIN_HINT}; "
        f"DNS problem: NXDOMAIN looking up AAAA for {host}{NXDOMAIN_HINT}"
    )


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (b"http://b\xc3\xbccher.example.com/x", "http://bücher.example.com/x"),
        (b"http://b%C3%BCcher.example.com/x", "http://b%C3%BCcher.example.com/x"),
    ],
    ids=["raw-utf8", "percent-encoded"],
)
async def test_unicode_redirect_host_is_looked_up_as_is(
    lab: L.Lab, sent: bytes, shown: str
) -> None:
    # The punycode name exists: Let's Encrypt never asks for it.
    other = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("xn--bcher-kva.example.com", a=[other])
    head = b"HTTP/1.1 302 Found\r\nLocation: " + sent + b"\r\nContent-Length: 0\r\n\r\n"
    v4 = await site(lab, "idn.example.com", L.raw(reply(head)))
    result = await validate(lab, "idn.example.com")
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_NXDOMAIN,
        f"{v4}: Fetching {shown}: {unicode_nxdomain('bücher.example.com')}",
    )
    assert records(result) == [
        (0, url("idn.example.com"), v4, REFUSED_REDIR, 302, Reason.DNS_NXDOMAIN)
    ]
    assert summary(result) == failed(1)


async def test_unicode_redirect_host_that_resolves_is_still_not_fetched(lab: L.Lab) -> None:
    # Go's transport dials the punycode name; Boulder's dialer was made for the Unicode
    # one, so the request fails before a byte is sent.
    other = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("bücher.example.com", a=[other])
    location = f"http://B\u00dcCHER.example.com{PATH}".encode()
    head = b"HTTP/1.1 301 Moved Permanently\r\nLocation: " + location + b"\r\n\r\n"
    v4 = await site(lab, "idn.example.com", L.raw(reply(head)))
    result = await validate(lab, "idn.example.com")
    target = f"http://b%C3%BCcher.example.com{PATH}"
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.PROTOCOL_ERROR,
        f"{other}: Fetching {target}: Error getting validation data",
    )
    assert records(result) == [
        (0, url("idn.example.com"), v4, REDIR, 301, None),
        (1, target, other, FAILED, None, Reason.PROTOCOL_ERROR),
    ]
    assert result.records[1].hostname == "bücher.example.com"


# ------------------------------------------------------- erratum 17: trailing dot


async def test_redirect_host_with_a_trailing_dot(lab: L.Lab) -> None:
    target = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("host.example.com", a=[target])  # it would resolve
    v4 = await site(lab, "dot.example.com", L.redirect("http://host.example.com./x"))
    result = await validate(lab, "dot.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.REDIRECT_BAD_TLD,
        f"{v4}: Fetching http://host.example.com./x: "
        "Invalid host in redirect target, must end in IANA registered TLD",
    )
    assert records(result) == [
        (0, url("dot.example.com"), v4, REFUSED_REDIR, 301, Reason.REDIRECT_BAD_TLD)
    ]
    assert summary(result) == failed(1)


# ----------------------------------------------------- erratum 18: explicit default port


@pytest.mark.parametrize(
    ("scheme", "port"), [("http", 80), ("https", 443)], ids=["http-80", "https-443"]
)
async def test_explicit_default_port_stays(lab: L.Lab, scheme: str, port: int) -> None:
    hosts: list[str] = []

    def handler(request: L.Request) -> L.Reply:
        hosts.append(request.headers["host"])
        if request.headers["host"] == "port.example.com":
            location = f"{scheme}://Port.example.com:{port}{request.path}"
            return L.Reply(301, b"", (("Location", location),))
        return L.Reply(200, KA.encode())

    v4 = await site(lab, "port.example.com", handler, handler)
    result = await validate(lab, "port.example.com")
    assert summary(result) == ok(redirects=1)
    # http://h/x and http://h:80/x are different URLs to Let's Encrypt: no loop.
    assert records(result) == [
        (0, url("port.example.com"), v4, REDIR, 301, None),
        (1, f"{scheme}://port.example.com:{port}{PATH}", v4, RESP, 200, None),
    ]
    assert result.records[1].port == port
    assert hosts == ["port.example.com", f"port.example.com:{port}"]


# ---------------------------------------------------- erratum 19: unparsable Location


def redirect_to(location: str, code: int = 301) -> L.Handler:
    return lambda request: L.Reply(code, b"", (("Location", location),))


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("http://loc.example.com/a\tb", 301),
        ("http://loc.example.com:abc/x", 301),
        ("http://loc.example.com:80:80/x", 302),
        ("http://[1.2.3.4]/x", 307),
        ("http://loc.example.com/a\tb", 303),
    ],
    ids=["tab", "port-not-numeric", "two-ports", "ipv4-in-brackets", "303-with-tab"],
)
async def test_unparsable_location_names_the_request(lab: L.Lab, location: str, code: int) -> None:
    v4 = await site(lab, "loc.example.com", redirect_to(location, code))
    result = await validate(lab, "loc.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.BAD_REDIRECT_LOCATION,
        f"{v4}: Fetching {url('loc.example.com')}: Error getting validation data",
    )
    assert records(result) == [
        (0, url("loc.example.com"), v4, REFUSED_REDIR, code, Reason.BAD_REDIRECT_LOCATION)
    ]
    assert summary(result) == failed(1)


async def test_unparsable_twelfth_location_beats_too_many_redirects(lab: L.Lab) -> None:
    def handler(request: L.Request) -> L.Reply:
        step = int(request.path.removeprefix("/hop/")) if request.path.startswith("/hop/") else 0
        location = f"/hop/{step + 1}" if step < 11 else "/hop/\t12"
        return L.Reply(302, b"", (("Location", location),))

    v4 = await site(lab, "twelve.example.com", handler)
    result = await validate(lab, "twelve.example.com")
    assert problem(result) == (
        ProblemType.CONNECTION,
        Reason.BAD_REDIRECT_LOCATION,
        f"{v4}: Fetching http://twelve.example.com/hop/11: Error getting validation data",
    )
    assert summary(result) == failed(12, redirects=11)


async def test_empty_location_ends_the_chain_as_a_final_response(lab: L.Lab) -> None:
    v4 = await site(lab, "empty.example.com", redirect_to(""))
    result = await validate(lab, "empty.example.com")
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{v4}: Invalid response from {url('empty.example.com')}: 301",
    )
    assert records(result) == [(0, url("empty.example.com"), v4, RESP, 301, None)]
    assert summary(result) == failed(0)


# ------------------------------------------------------ erratum 20: chunked framing


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"zz\r\n" + KA.encode() + b"\r\n0\r\n\r\n", "invalid byte in chunk length"),
        (b"\r\n" + KA.encode() + b"\r\n0\r\n\r\n", "empty hex number for chunk length"),
        (b"4\r\nabcd0\r\n\r\n", "malformed chunked encoding"),
        (b"4\nabcd\r\n0\r\n\r\n", "chunked line ends with bare LF"),
        (b"4\r\r\nabcd\r\n0\r\n\r\n", "invalid CR in chunked line"),
        (b"00000000000000004\r\nabcd\r\n0\r\n\r\n", "http chunk length too large"),
        (b"4 ;x\r\nabcd\r\n0\r\n\r\n", "invalid byte in chunk length"),
        (b"40\r\nabcd", "unexpected EOF"),
        (b"4\r\nabcd\r\n", "unexpected EOF"),
        (b"4\r\nabcd\r\n0\r\n", "http: unexpected EOF reading trailer"),
        (
            b"4\r\nabcd\r\n0\r\nX-Trailer: 1\r\n",
            "http: suspiciously long trailer after chunked body",
        ),
    ],
    ids=[
        "not-hex",
        "empty-size",
        "data-not-followed-by-crlf",
        "bare-lf",
        "stray-cr",
        "seventeen-digits",
        "space-before-extension",
        "eof-in-data",
        "eof-before-last-chunk",
        "eof-before-trailer-end",
        "unterminated-trailer",
    ],
)
async def test_chunked_framing_errors_in_gos_words(lab: L.Lab, body: bytes, text: str) -> None:
    head = canary_head(b"Transfer-Encoding: chunked\r\n\r\n")
    v4 = await site(lab, "chunked.example.com", L.raw(reply(head + body)))
    result = await validate(lab, "chunked.example.com")
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{v4}: Error reading HTTP response body: {text}",
    )
    assert records(result) == [
        (0, url("chunked.example.com"), v4, RESP, None, Reason.BODY_READ_ERROR)
    ]
    assert summary(result) == failed(0)


@pytest.mark.parametrize(
    "body",
    [
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(KA), KA.encode()),
        b"%x;name=value \t\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(KA), KA.encode()),
        b"".join(b"1\r\n%c\r\n" % c for c in KA.encode()) + b"0\r\n\r\n",
    ],
    ids=["one-chunk", "extension-and-trailer", "byte-per-chunk"],
)
async def test_chunked_bodies_go_accepts(lab: L.Lab, body: bytes) -> None:
    head = canary_head(b"Transfer-Encoding: chunked\r\n\r\n")
    await site(lab, "chunked.example.com", L.raw(reply(head + body)))
    result = await validate(lab, "chunked.example.com")
    assert summary(result) == ok(), result.problem


async def test_gzip_inside_chunks(lab: L.Lab) -> None:
    import gzip

    packed = gzip.compress(KA.encode())
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(packed[i : i + 7]), packed[i : i + 7])
        for i in range(0, len(packed), 7)
    )
    head = canary_head(b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
    await site(lab, "gzip.example.com", L.raw(reply(head + body + b"0\r\n\r\n")))
    result = await validate(lab, "gzip.example.com")
    assert summary(result) == ok(), result.problem
    # The same body with its last chunk cut short: Go's reader fails first.
    v4 = await site(lab, "gzip2.example.com", L.raw(reply(head + body[:-3])))
    result = await validate(lab, "gzip2.example.com")
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{v4}: Error reading HTTP response body: unexpected EOF",
    )


async def test_chunked_framing_after_128_bytes_is_never_read(lab: L.Lab) -> None:
    # Let's Encrypt reads 128 bytes: a framing error the server sends later, after a
    # pause, is not seen; the body is too large.
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(canary_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"100\r\n" + b"z" * 200)
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"z" * 56 + b"XX")
        await writer.drain()

    v4 = await site(lab, "chunked.example.com", L.raw(run))
    result = await validate(lab, "chunked.example.com")
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_TOO_LARGE,
        f"{v4}: Invalid response from {url('chunked.example.com')}: " + '"' + "z" * 128 + '"',
    )


# ------------------------------------------------ erratum 21: multicast is dialled

UNREACHABLE = Reason.NETWORK_UNREACHABLE


@dataclass
class KernelForMulticast:
    """The lab's router, except that a multicast address goes to the kernel as it is.

    The kernel refuses a TCP connect to multicast at once (ENETUNREACH) without sending a
    packet. Any other address outside the lab is refused here and noted: a dial to it
    would be a bug (nothing may leave loopback).
    """

    lab: AddressMap
    dialled: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)

    def route(self, address: str, port: int) -> tuple[str, int] | None:
        self.dialled.append(address)
        if address in self.lab.endpoints:
            return self.lab.route(address, port)
        if ipaddress.ip_address(address).is_multicast:
            return address, port
        self.stray.append(address)
        return None


async def validate_multicast(lab: L.Lab, name: str) -> tuple[ValidationResult, KernelForMulticast]:
    # A long dial timeout: the kernel's refusal must be immediate, not a timeout.
    router = KernelForMulticast(lab.routes)
    result = await validate(lab, name, routes=router, dial=10.0, budget=15.0)
    assert router.stray == []
    return result, router


@pytest.mark.parametrize(
    ("family", "address"), [("a", "224.0.0.1"), ("aaaa", "ff0e::1")], ids=["ipv4", "ipv6"]
)
async def test_a_multicast_only_address_is_dialled_and_unreachable(
    lab: L.Lab, family: str, address: str
) -> None:
    name = "mcast.example.com"
    if family == "a":
        lab.zone.add(name, a=[address])
    else:
        lab.zone.add(name, aaaa=[address])
    started = time.monotonic()
    result, router = await validate_multicast(lab, name)
    assert time.monotonic() - started < 4.0  # refused at once, no 10 s dial timeout
    # A connection problem against the address, not "no valid A records found".
    assert problem(result) == (
        ProblemType.CONNECTION,
        UNREACHABLE,
        f"{address}: Fetching {url(name)}: Network unreachable",
    )
    assert records(result) == [(0, url(name), address, FAILED, None, UNREACHABLE)]
    assert summary(result) == failed(0)
    assert router.dialled == [address]


async def test_a_multicast_aaaa_falls_back_to_a_working_a(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    name = "mcast6.example.com"
    lab.zone.add(name, a=[v4], aaaa=["ff0e::1"])
    result, _ = await validate_multicast(lab, name)
    assert summary(result) == ok()
    assert (result.ipv4_fallback, result.aaaa_mismatch) == (True, True)
    assert records(result) == [
        (0, url(name), "ff0e::1", FAILED, None, UNREACHABLE),
        (0, url(name), v4, RESP, 200, None),
    ]
    assert [(f.family, f.address, f.error) for f in result.families] == [
        (Family.IPV6, "ff0e::1", UNREACHABLE),
        (Family.IPV4, v4, None),
    ]
    assert result.warnings == (PassWarning.IPV4_FALLBACK, PassWarning.AAAA_MISMATCH)


async def test_a_multicast_first_aaaa_hands_over_to_the_first_a(lab: L.Lab) -> None:
    good6 = await lab.host(6, L.serve(), L.serve())  # would work: never asked
    v4 = await lab.host(4, L.serve(), L.serve())
    name = "mcast6.example.com"
    lab.zone.add(name, a=[v4], aaaa=["ff0e::1", good6])
    result, router = await validate_multicast(lab, name)
    assert summary(result) == ok()
    assert result.ipv4_fallback is True
    assert records(result) == [
        (0, url(name), "ff0e::1", FAILED, None, UNREACHABLE),
        (0, url(name), v4, RESP, 200, None),
    ]
    assert result.records[0].addresses_resolved == ("ff0e::1", good6, v4)
    assert good6 not in router.dialled


@pytest.mark.parametrize(
    ("location", "address"),
    [("http://224.0.0.1/x", "224.0.0.1"), ("http://[ff0e::1]/x", "ff0e::1")],
    ids=["ipv4", "ipv6"],
)
async def test_a_redirect_to_a_multicast_literal_is_followed(
    lab: L.Lab, location: str, address: str
) -> None:
    name = "redirect.example.com"
    v4 = await site(lab, name, L.redirect(location))
    result, _ = await validate_multicast(lab, name)
    # Prefixed with the target's address, naming the Location: not a reserved-address refusal.
    assert problem(result) == (
        ProblemType.CONNECTION,
        UNREACHABLE,
        f"{address}: Fetching {location}: Network unreachable",
    )
    assert records(result) == [
        (0, url(name), v4, REDIR, 301, None),
        (1, location, address, FAILED, None, UNREACHABLE),
    ]
    assert summary(result) == failed(1, redirects=1)


async def test_other_special_purpose_answers_are_dropped_before_any_dial(lab: L.Lab) -> None:
    name = "special.example.com"
    lab.zone.add(
        name,
        a=["0.0.0.0", "169.254.1.1", "192.0.0.9", "192.31.196.1"],
        aaaa=["::ffff:203.0.113.7", "::", "fe80::1", "64:ff9b::808:808", "2002:808:808::1"],
    )
    result, router = await validate_multicast(lab, name)
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_NO_ADDRESSES,
        f"no valid A records found for {name}; no valid AAAA records found for {name}",
    )
    assert records(result) == []
    assert router.dialled == []
